//! The integration tests of the HTTP edge, one binary: the real router on a random loopback
//! port, a real SMTP server on loopback, a manual clock and a real store (SQLite file or a
//! fresh PostgreSQL schema), walked like a client — pages without JavaScript, the JSON API,
//! the operator console — plus the service-level stories the pages stand on.
//!
//! Add a module here rather than a new file under `tests/`: every file there is one more
//! binary that compiles and links the whole harness again.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod binding;
mod checkups;
mod consents;
mod console;
mod console_imports;
mod console_member;
mod ekyc;
mod exactly_once;
mod faults;
mod hardening_accounts;
mod hardening_edge;
mod health;
mod health_imports;
mod http;
mod identity;
mod import_jobs;
mod inquiry;
mod liveness;
mod mac_rotation;
mod mail_refusals;
mod operator_admin;
mod outages;
mod pages;
mod passkeys;
mod rekey;
mod retention;
mod roster_rekey;
mod settings;
mod vendor_imports;
