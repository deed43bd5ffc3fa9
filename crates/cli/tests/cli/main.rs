//! The `mimoto` binary as an operator runs it, one test binary: imports, operators, the face
//! tools and the demo data, each on a real data directory.
//!
//! Add a module here rather than a new file under `tests/`: every file there is one more binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod checkups;
mod common;
mod face;
mod faults;
mod health_imports;
mod keys;
mod operators;
mod roster_import;
