//! Unit tests of the client loop against the in-process fake link.
