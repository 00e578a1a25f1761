//! What `heph` and `hephd` share: signing in to an authenticated hub and
//! keeping the token fresh ([`login`]), and the append-only audit log
//! ([`audit`]).

pub mod audit;
pub mod login;
