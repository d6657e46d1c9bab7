//! The typed wire model: one Rust type per request and response of the HTTP routes, shared by
//! the server's handlers, the client agent's link to the servers and the CLI, as Nomad's `api`
//! package and its shared request structs are for Nomad.
//!
//! One module per area: [`jobs`] (with [`job_diff`], the diff between job versions), [`job_launch`] (children of periodic and parameterized jobs), [`job_statuses`] (the UI's job index),
//! [`scaling`] (`job scale`), [`allocs`], [`nodes`], [`deployments`], [`services`], [`agent`],
//! [`status`], [`scheduler`] (the operator's scheduler configuration), [`events`], [`client`] (the client agent's `/v1/client/...` routes), and [`node`]
//! for a client agent's own calls to the servers (`/v1/internal/...`). Objects that are read whole (a job, an allocation, a node, an
//! evaluation, a deployment, a job summary) travel as the model's own types from
//! [`crate::structs`], which carry Nomad's JSON names; these modules hold the lists' stubs and
//! every request and response envelope. Every type round-trips through a Nomad-shaped JSON file
//! of `testdata/` (`tests.rs`).
//!
//! Invariant: a message that crosses the wire is defined here once; neither side keeps a copy of
//! its own. Raft commands are not wire types: the server's endpoints turn each request into its
//! command in one place, stamping times there.
//! Boundary: this module names only `crate::structs` and serde; never the server nor the client.

pub mod agent;
pub mod allocs;
pub mod client;
pub mod cluster;
pub mod deployments;
pub mod events;
pub mod job_diff;
pub mod job_launch;
pub mod job_statuses;
pub mod jobs;
pub mod node;
pub mod nodes;
pub mod scaling;
pub mod scheduler;
pub mod services;
pub mod status;

#[cfg(test)]
mod tests;
