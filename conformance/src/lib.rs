//! drydock's conformance framework: scenario files, the runner, probes inside containers,
//! capture snapshots and reports, run against Docker Engine and the reference engine
//! ([`targets`]), a suite at a time ([`suite`]).

pub mod coverage;
pub mod normalize;
pub mod plugin_check;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod suite;
pub mod targets;
pub mod tied;
pub mod version;
