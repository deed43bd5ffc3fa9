//! Typed ids. Every id this platform hands out is a random UUID in its canonical text form
//! (`services::new_id`); a typed id is one that was checked to be of that shape where it
//! entered (a path parameter, a form field), so a handler can never pass a stray string to a
//! service, and two kinds of id cannot be swapped by mistake.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The text is not an id this platform issues (a canonical lowercase UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an id")]
pub struct InvalidId;

/// Whether `s` is a canonical lowercase hyphenated UUID (36 characters).
pub fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                if is_canonical_uuid(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err(InvalidId)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                if is_canonical_uuid(&s) {
                    Ok($name(s))
                } else {
                    Err(InvalidId)
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    };
}

typed_id!(
    /// A persisted multi-step flow: registration, password reset, identity verification (F1–F3).
    FlowId
);
typed_id!(
    /// An eKYC application (F4).
    ApplicationId
);
typed_id!(
    /// A stored eKYC image (document side, selfie).
    ImageId
);
typed_id!(
    /// A customer-center inquiry (F6).
    InquiryId
);
typed_id!(
    /// A health-record import started from the console.
    ImportJobId
);
typed_id!(
    /// An operator of the console.
    OperatorId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_ids() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(FlowId::parse(id).map(|i| i.to_string()), Ok(id.to_string()));
        for bad in [
            "",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "../etc/passwd",
            "0f8fad5b-d9cb-469f-a165-70867728950e ",
        ] {
            assert_eq!(FlowId::parse(bad), Err(InvalidId), "{bad:?}");
        }
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        let ok: Result<ApplicationId, _> = serde_json::from_str("\"0f8fad5b-d9cb-469f-a165-70867728950e\"");
        assert!(ok.is_ok());
        let bad: Result<ApplicationId, _> = serde_json::from_str("\"x\"");
        assert!(bad.is_err());
    }
}
