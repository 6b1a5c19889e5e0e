//! Labs of simulated hosts made of Linux network namespaces.
//!
//! A [`Lab`] is built from a [`Topology`]: hosts (anonymous network namespaces owned by file
//! descriptors), L2 segments (bridges in a hidden fabric namespace) and routers between them.
//! Packets on any interface can be captured ([`capture`]). Nothing here knows about Docker.

pub mod capture;
pub mod features;
pub mod lab;
pub mod link;
pub mod located;
pub mod netns;
pub mod pidns;
pub mod registry;
pub mod topology;
pub mod userns;

pub use features::KernelFeatures;
pub use lab::{Lab, LabError};
pub use located::LocatedError;
pub use netns::Netns;
pub use topology::{Topology, TopologyError};
