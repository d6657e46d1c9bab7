//! The agent: one process that runs a server, a client, or both, plus the HTTP API.
//!
//! `config` reads and merges the HCL agent configuration; start-up wires the roles together.

pub mod client_forward;
pub mod config;
pub mod log_stream;
pub mod logmon;
pub mod proxy;
pub mod run;
pub mod start;
