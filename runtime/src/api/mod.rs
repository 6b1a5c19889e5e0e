//! Docker's Engine API, as far as the engines need it: the CLI's requests as structures
//! ([`spec`]), the request bodies the CLI builds from them with its client-side checks
//! ([`request`], [`ports`]).

pub mod body;
pub mod ports;
pub mod request;
pub mod spec;
