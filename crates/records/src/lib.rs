//! Parsers for the health records insurers deliver to Mimoto.
//!
//! - [`checkup`]: 特定健診 (specific health checkup) result files — HL7 CDA R2 XML, one
//!   document per examinee, usually delivered as a ZIP archive — into [`checkup::CheckupDocument`]s.
//! - [`jlac10`]: the table of JLAC10 item codes Mimoto knows by name, with units and MHLW
//!   reference values.
//!
//! Pure: no I/O beyond reading what the caller hands in, no async, no database.

pub mod checkup;
pub mod jlac10;
