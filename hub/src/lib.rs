//! What `heph` and `hephd` share about reaching a hub: signing in to an
//! authenticated hub and keeping the token fresh ([`login`]).

pub mod login;
