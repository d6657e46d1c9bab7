//! caravan
//! integration tests

mod client;
mod client_server;
mod docker;
mod driver_host;
