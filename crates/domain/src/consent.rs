//! 同意: the documents a member accepts at registration (F1-6).

use time::OffsetDateTime;

use crate::org::Organization;

/// A document that needs the member's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDoc {
    /// The platform's terms of use.
    PlatformTerms,
    /// The privacy policy of 「団体・組合名」.
    OrgPrivacy,
    /// The terms of 「独自ポイント名」 (only for organizations with own points).
    PointTerms,
}

/// Current version of the platform terms of use.
pub const PLATFORM_TERMS_VERSION: &str = "2026-04-01";
/// Current version of the organization privacy policy.
pub const ORG_PRIVACY_VERSION: &str = "2026-04-01";
/// Current version of the own-point terms.
pub const POINT_TERMS_VERSION: &str = "2026-04-01";

impl ConsentDoc {
    /// All documents, in display order.
    pub const ALL: [ConsentDoc; 3] = [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy, ConsentDoc::PointTerms];

    /// Stable identifier (`"platform_terms"`, `"org_privacy"`, `"point_terms"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentDoc::PlatformTerms => "platform_terms",
            ConsentDoc::OrgPrivacy => "org_privacy",
            ConsentDoc::PointTerms => "point_terms",
        }
    }

    /// Inverse of [`ConsentDoc::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The document's current version.
    pub fn version(&self) -> &'static str {
        match self {
            ConsentDoc::PlatformTerms => PLATFORM_TERMS_VERSION,
            ConsentDoc::OrgPrivacy => ORG_PRIVACY_VERSION,
            ConsentDoc::PointTerms => POINT_TERMS_VERSION,
        }
    }
}

/// Documents a member of `org` must accept, in display order.
pub fn required_consents(org: &Organization) -> Vec<ConsentDoc> {
    let mut docs = vec![ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy];
    if org.has_own_points() {
        docs.push(ConsentDoc::PointTerms);
    }
    docs
}

/// A recorded consent: which version of which document, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AcceptedConsent {
    /// The document.
    pub doc: ConsentDoc,
    /// Its version at the time of acceptance.
    pub version: String,
    /// When it was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub accepted_at: OffsetDateTime,
}

/// Why consents were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// These required documents were not checked.
    #[error("required consents missing: {}", list(.0))]
    Missing(Vec<ConsentDoc>),
}

fn list(docs: &[ConsentDoc]) -> String {
    docs.iter().map(ConsentDoc::as_str).collect::<Vec<_>>().join(", ")
}

/// Records the consents for `org` if every required document is in `checked`.
/// Documents that are not required are ignored; duplicates are harmless.
pub fn accept_consents(
    org: &Organization,
    checked: &[ConsentDoc],
    now: OffsetDateTime,
) -> Result<Vec<AcceptedConsent>, ConsentError> {
    let required = required_consents(org);
    let missing: Vec<ConsentDoc> = required.iter().copied().filter(|d| !checked.contains(d)).collect();
    if !missing.is_empty() {
        return Err(ConsentError::Missing(missing));
    }
    Ok(required
        .into_iter()
        .map(|doc| AcceptedConsent { doc, version: doc.version().to_owned(), accepted_at: now })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::tests::org;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-04-01 09:00 +09:00);

    #[test]
    fn doc_round_trip() {
        for d in ConsentDoc::ALL {
            assert_eq!(ConsentDoc::parse(d.as_str()), Some(d));
            assert_eq!(d.version(), "2026-04-01");
        }
        assert_eq!(ConsentDoc::OrgPrivacy.as_str(), "org_privacy");
        assert_eq!(ConsentDoc::parse("terms"), None);
    }

    #[test]
    fn with_points_three_items() {
        let o = org(Some("みもとポイント"));
        assert_eq!(required_consents(&o), [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy, ConsentDoc::PointTerms]);
        let accepted = accept_consents(&o, &ConsentDoc::ALL, NOW).unwrap();
        assert_eq!(accepted.len(), 3);
        assert!(accepted.iter().all(|a| a.accepted_at == NOW && a.version == a.doc.version()));
    }

    #[test]
    fn without_points_two_items() {
        let o = org(None);
        assert_eq!(required_consents(&o), [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy]);
        let accepted = accept_consents(&o, &[ConsentDoc::OrgPrivacy, ConsentDoc::PlatformTerms], NOW).unwrap();
        assert_eq!(
            accepted.iter().map(|a| a.doc).collect::<Vec<_>>(),
            [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy]
        );
        // PointTerms is ignored for an org without points.
        let accepted = accept_consents(&o, &ConsentDoc::ALL, NOW).unwrap();
        assert_eq!(accepted.len(), 2);
    }

    #[test]
    fn missing() {
        let o = org(Some("みもとポイント"));
        assert_eq!(
            accept_consents(&o, &[ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy], NOW),
            Err(ConsentError::Missing(vec![ConsentDoc::PointTerms]))
        );
        assert_eq!(accept_consents(&o, &[], NOW), Err(ConsentError::Missing(ConsentDoc::ALL.to_vec())));
        let err = accept_consents(&org(None), &[ConsentDoc::OrgPrivacy], NOW).unwrap_err();
        assert_eq!(err, ConsentError::Missing(vec![ConsentDoc::PlatformTerms]));
        assert_eq!(err.to_string(), "required consents missing: platform_terms");
    }

    proptest! {
        #[test]
        fn accepted_iff_all_required_checked(
            has_points in any::<bool>(),
            checked in proptest::collection::vec(proptest::sample::select(ConsentDoc::ALL.to_vec()), 0..5),
        ) {
            let o = org(has_points.then_some("P"));
            let required = required_consents(&o);
            match accept_consents(&o, &checked, NOW) {
                Ok(acc) => {
                    prop_assert_eq!(acc.iter().map(|a| a.doc).collect::<Vec<_>>(), required);
                }
                Err(ConsentError::Missing(m)) => {
                    prop_assert!(!m.is_empty());
                    prop_assert!(m.iter().all(|d| required.contains(d) && !checked.contains(d)));
                    prop_assert!(required.iter().all(|d| checked.contains(d) || m.contains(d)));
                }
            }
        }
    }
}
