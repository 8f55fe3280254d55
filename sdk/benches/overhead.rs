//! SDK overhead benchmarks (being written).
fn main() {}
