//! Parsers for the health records insurers deliver to Mimoto.
//!
//! - [`checkup`]: 特定健診 (specific health checkup) result files — HL7 CDA R2 XML, one
//!   document per examinee, usually delivered as a ZIP archive — into [`checkup::CheckupDocument`]s.
//! - [`jlac10`]: the table of JLAC10 item codes Mimoto knows by name, with units and MHLW
//!   reference values.
//! - [`medication`]: お薬履歴 (medication history) CSV files into [`medication::MedicationRow`]s.
//! - [`expenses`]: 医療費通知 (medical expense notice) CSV files into [`expenses::ExpenseRow`]s.
//! - [`health_csv`]: what those two CSV formats share (encodings, header, caps, date and
//!   amount formats).
//!
//! - `testing` (cargo feature `testing`, for other crates' tests only): 特定健診 files built
//!   for the demo roster.
//!
//! Pure: no I/O beyond reading what the caller hands in, no async, no database.

pub mod checkup;
pub mod expenses;
pub mod health_csv;
pub mod jlac10;
pub mod medication;
#[cfg(feature = "testing")]
pub mod testing;
