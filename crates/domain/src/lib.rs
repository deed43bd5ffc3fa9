//! Mimoto's pure rules: insurer numbers, emails, password policy, one-time codes,
//! organizations and consents, and the member flow state machines.
//! No I/O, no async, no HTTP, no SQL.

pub mod card;
pub mod clock;
pub mod consent;
pub mod ekyc;
pub mod email;
pub mod evidence;
pub mod identity;
pub mod ids;
pub mod insurer;
pub mod kana;
pub mod liveness;
pub mod locale;
pub mod org;
pub mod otp;
pub mod password;
pub mod registration;
pub mod reset;
pub mod roster;
