//! caravan
//! integration tests

mod driver_host;
