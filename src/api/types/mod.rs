//! The typed wire model: one Rust type per request and response of the HTTP routes, shared by
//! the server's handlers, the client agent's link to the servers and the CLI, as Nomad's `api`
//! package and its shared request structs are for Nomad.
//!
//! Invariant: a message that crosses the wire is defined here once; neither side keeps a copy of
//! its own. Raft commands are not wire types: the server's endpoints turn each request into its
//! command in one place, stamping times there.

pub mod node;
