//! Driver host benchmarks (filled in below).
fn main() {}
