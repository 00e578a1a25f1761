//! What `heph` and `hephd` share: signing in to an authenticated hub and
//! keeping the token fresh ([`login`]), the TLS it does that over ([`tls`]),
//! the append-only audit log ([`audit`]), and the OS service files that run
//! hephd ([`service`]).

pub mod audit;
pub mod login;
pub mod service;
pub mod tls;
