//! caravan's integration tests: one test binary that runs the real `caravan` program and real
//! agents on loopback ports, in the manner of ripgrep's and wasmtime's `tests/`.

mod cli;
mod server;
mod server_cli;
mod server_durability;
mod support;
mod tidy;
