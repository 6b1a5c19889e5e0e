//! drydock's conformance framework: scenario files, the runner, probes inside containers,
//! capture snapshots and reports, run against the reference engine and Docker Engine.
//!
//! Nothing is implemented yet: the framework arrives with its issue (see ARCHITECTURE.md). This
//! crate exists so the workspace has its final shape and dependency direction from the start.
