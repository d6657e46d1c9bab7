//! caravan: a WebAssembly-first workload orchestrator in the mould of Nomad.
//!
//! See ARCHITECTURE.md for the bird's-eye view. The crate is one library with one binary; every
//! subsystem is a module here.

pub mod acl;
pub mod agent;
pub mod allocfs;
pub mod api;
pub mod cli;
pub mod client;
pub mod codec;
pub mod driver_host;
pub mod jobspec;
pub mod scheduler;
pub mod server;
pub mod snapshot_file;
pub mod structs;
pub mod template;
pub mod tls;
