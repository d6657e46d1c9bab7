//! caravan
