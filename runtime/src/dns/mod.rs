//! Docker's embedded DNS server: a resolver in every container on a user-defined network,
//! reached at 127.0.0.11:53 (UDP and TCP), answering container names, aliases and reverse
//! names as the asking container sees them, and forwarding the rest upstream — with Docker
//! Engine 20.10's rules (libnetwork's `resolver.go` and `sandbox.ResolveName`).
//!
//! - [`records`]: what the resolvers know and the lookups (pure);
//! - [`answer`]: the request handler (pure, over hickory-proto messages);
//! - `server`, `forward`, `nat`: serving in the container's namespace.

use std::net::Ipv4Addr;

pub mod answer;
mod forward;
mod nat;
#[cfg(test)]
mod properties;
pub mod records;
mod server;

pub use records::{Entry, Lookup, NetworkRecords, Records, SandboxEndpoint, SandboxView, Upstream};
pub use server::{Dns, Resolver};

/// The address every container's resolver listens on (`nat` makes its port 53).
pub const RESOLVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
