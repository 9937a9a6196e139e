//! The `evalmint` binary.
fn main() {}
