//! What `heph` and `hephd` share about reaching a hub: signing in to an
//! authenticated hub and keeping the token fresh ([`login`]), and the TLS
//! it does that over ([`tls`]).

pub mod login;
pub mod tls;
