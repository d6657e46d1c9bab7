//! caravan's integration tests: one test binary that runs the real `caravan` program and real
//! agents on loopback ports, in the manner of ripgrep's and wasmtime's `tests/`.

mod api_parse;
mod boundaries;
mod cli;
mod cli_api;
mod client;
mod client_hooks;
mod client_server;
mod client_watch;
mod deployments;
mod dev_agent;
mod dispatch;
mod docker;
mod docker_agent;
mod docker_client;
mod driver_host;
mod errors;
mod exec_driver;
mod ha;
mod hardening;
mod jobspec;
mod max_run_duration;
mod periodic;
mod qemu;
mod sandbox_budgets;
mod sandbox_fs;
mod sandbox_identity;
mod scaling;
mod scheduler_config;
mod server;
mod server_durability;
mod services;
mod support;
mod tidy;
mod tutorial;
mod web_ui;
