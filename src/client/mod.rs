//! The client agent.
