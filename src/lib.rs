//! caravan

pub mod driver_host;
