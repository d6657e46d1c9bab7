//! caravan
//! integration tests

mod client;
mod client_server;
mod docker;
mod docker_client;
mod driver_host;
