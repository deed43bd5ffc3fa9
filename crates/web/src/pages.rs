//! The member pages moved to [`crate::member`]; these re-exports keep the old paths working
//! for the console until its imports are updated.

pub(crate) use crate::member::{render, see_other};
