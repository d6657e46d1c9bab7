//! caravan
//! integration tests

mod client;
mod client_server;
mod driver_host;
