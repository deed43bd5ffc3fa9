//! The tests of the parsers, one binary: 特定健診 CDA documents and ZIP deliveries, お薬履歴 and
//! 医療費通知 CSV files, and property-based fuzzing of each (never a panic, bounded memory).
//!
//! Add a module here rather than a new file under `tests/`: every file there is one more binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

mod common;

mod archive;
mod checkup;
mod expenses;
mod fuzz;
mod health_csv_fuzz;
mod medication;
mod vendor;
