//! 同意: the documents a member accepts at registration (F1-6) and the purpose consents asked
//! before F4 (face images) and F5 (health data). Each document is versioned; the versions live
//! in the database (`store::documents`), so accepting takes the current version from there.

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
    /// 顔画像の取扱い: biometric processing, asked before F4.
    Biometric,
    /// 健診等情報の受領: receiving health data (要配慮個人情報), asked before F5.
    HealthData,
}

impl ConsentDoc {
    /// All documents, in display order.
    pub const ALL: [ConsentDoc; 5] = [
        ConsentDoc::PlatformTerms,
        ConsentDoc::OrgPrivacy,
        ConsentDoc::PointTerms,
        ConsentDoc::Biometric,
        ConsentDoc::HealthData,
    ];

    /// The documents accepted at registration.
    pub const REGISTRATION: [ConsentDoc; 3] =
        [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy, ConsentDoc::PointTerms];

    /// Stable identifier (`"platform_terms"`, `"org_privacy"`, `"point_terms"`, `"biometric"`,
    /// `"health_data"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentDoc::PlatformTerms => "platform_terms",
            ConsentDoc::OrgPrivacy => "org_privacy",
            ConsentDoc::PointTerms => "point_terms",
            ConsentDoc::Biometric => "biometric",
            ConsentDoc::HealthData => "health_data",
        }
    }

    /// A purpose consent (F4, F5): asked when the purpose comes, withdrawable at any time.
    /// The registration documents can only be left by leaving the service.
    pub fn is_purpose(&self) -> bool {
        matches!(self, ConsentDoc::Biometric | ConsentDoc::HealthData)
    }

    /// Whether an organization may publish its own version (otherwise platform-wide only).
    pub fn per_organization(&self) -> bool {
        !matches!(self, ConsentDoc::PlatformTerms)
    }

    /// Inverse of [`ConsentDoc::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
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

/// Records the consents for `org` if every required document is in `checked`, each at the
/// version `current` gives. Documents that are not required are ignored; duplicates are
/// harmless.
pub fn accept_consents(
    org: &Organization,
    checked: &[ConsentDoc],
    current: impl Fn(ConsentDoc) -> String,
    now: OffsetDateTime,
) -> Result<Vec<AcceptedConsent>, ConsentError> {
    let required = required_consents(org);
    let missing: Vec<ConsentDoc> = required.iter().copied().filter(|d| !checked.contains(d)).collect();
    if !missing.is_empty() {
        return Err(ConsentError::Missing(missing));
    }
    Ok(required.into_iter().map(|doc| AcceptedConsent { doc, version: current(doc), accepted_at: now }).collect())
}

/// A stored consent of a member: one version of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenConsent {
    pub doc: ConsentDoc,
    pub version: String,
    pub accepted_at: OffsetDateTime,
    /// Set when the member withdrew it (purpose consents only).
    pub withdrawn_at: Option<OffsetDateTime>,
}

/// The member's standing consent to `doc`: the one accepted last, unless withdrawn.
pub fn standing(given: &[GivenConsent], doc: ConsentDoc) -> Option<&GivenConsent> {
    given.iter().filter(|g| g.doc == doc).max_by_key(|g| g.accepted_at).filter(|g| g.withdrawn_at.is_none())
}

/// The documents the member must accept again before going on (「規約等の改定への同意」): each
/// registration document required for `org` whose current version the member has not
/// accepted, and each purpose consent the member gave (and did not withdraw) for an older
/// version. `current` gives a document's current version (`None`: not published).
pub fn pending(
    org: &Organization,
    given: &[GivenConsent],
    current: impl Fn(ConsentDoc) -> Option<String>,
) -> Vec<ConsentDoc> {
    let required = required_consents(org);
    ConsentDoc::ALL
        .into_iter()
        .filter(|doc| {
            let Some(now) = current(*doc) else { return false };
            match standing(given, *doc) {
                Some(g) => g.version != now,
                None => required.contains(doc),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::tests::org;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-04-01 09:00 +09:00);

    fn v(doc: ConsentDoc) -> String {
        format!("{}-v1", doc.as_str())
    }

    #[test]
    fn doc_round_trip() {
        for d in ConsentDoc::ALL {
            assert_eq!(ConsentDoc::parse(d.as_str()), Some(d));
            assert_eq!(d.is_purpose(), !ConsentDoc::REGISTRATION.contains(&d));
        }
        assert_eq!(ConsentDoc::parse("health_data"), Some(ConsentDoc::HealthData));
        assert_eq!(ConsentDoc::OrgPrivacy.as_str(), "org_privacy");
        assert_eq!(ConsentDoc::parse("terms"), None);
    }

    #[test]
    fn with_points_three_items() {
        let o = org(Some("みもとポイント"));
        assert_eq!(required_consents(&o), [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy, ConsentDoc::PointTerms]);
        let accepted = accept_consents(&o, &ConsentDoc::ALL, v, NOW).unwrap();
        assert_eq!(accepted.len(), 3);
        assert!(accepted.iter().all(|a| a.accepted_at == NOW && a.version == v(a.doc)));
    }

    #[test]
    fn without_points_two_items() {
        let o = org(None);
        assert_eq!(required_consents(&o), [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy]);
        let accepted = accept_consents(&o, &[ConsentDoc::OrgPrivacy, ConsentDoc::PlatformTerms], v, NOW).unwrap();
        assert_eq!(
            accepted.iter().map(|a| a.doc).collect::<Vec<_>>(),
            [ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy]
        );
        // PointTerms and the purpose consents are ignored for registration without points.
        let accepted = accept_consents(&o, &ConsentDoc::ALL, v, NOW).unwrap();
        assert_eq!(accepted.len(), 2);
    }

    #[test]
    fn missing() {
        let o = org(Some("みもとポイント"));
        assert_eq!(
            accept_consents(&o, &[ConsentDoc::PlatformTerms, ConsentDoc::OrgPrivacy], v, NOW),
            Err(ConsentError::Missing(vec![ConsentDoc::PointTerms]))
        );
        assert_eq!(accept_consents(&o, &[], v, NOW), Err(ConsentError::Missing(ConsentDoc::REGISTRATION.to_vec())));
        let err = accept_consents(&org(None), &[ConsentDoc::OrgPrivacy], v, NOW).unwrap_err();
        assert_eq!(err, ConsentError::Missing(vec![ConsentDoc::PlatformTerms]));
        assert_eq!(err.to_string(), "required consents missing: platform_terms");
    }

    fn given(doc: ConsentDoc, version: &str, day: u8, withdrawn: bool) -> GivenConsent {
        let at = NOW + time::Duration::days(i64::from(day));
        GivenConsent { doc, version: version.into(), accepted_at: at, withdrawn_at: withdrawn.then_some(at) }
    }

    #[test]
    fn pending_after_a_new_version() {
        let o = org(None);
        let cur =
            |d: ConsentDoc| Some(if d == ConsentDoc::OrgPrivacy { "2026-12-01".into() } else { "2026-04-01".into() });
        let mut g = vec![
            given(ConsentDoc::PlatformTerms, "2026-04-01", 0, false),
            given(ConsentDoc::OrgPrivacy, "2026-04-01", 0, false),
        ];
        assert_eq!(pending(&o, &g, cur), [ConsentDoc::OrgPrivacy]);
        g.push(given(ConsentDoc::OrgPrivacy, "2026-12-01", 1, false));
        assert!(pending(&o, &g, cur).is_empty());
        // A purpose consent on an old version asks again; a withdrawn one or one never given does not.
        g.push(given(ConsentDoc::HealthData, "2026-03-01", 1, false));
        assert_eq!(pending(&o, &g, cur), [ConsentDoc::HealthData]);
        g.push(given(ConsentDoc::HealthData, "2026-04-01", 2, true));
        assert!(pending(&o, &g, cur).is_empty());
        assert!(standing(&g, ConsentDoc::HealthData).is_none());
        assert!(standing(&g, ConsentDoc::Biometric).is_none());
        // A registration document never accepted (the organization now has points) is asked.
        assert_eq!(pending(&org(Some("P")), &g, cur), [ConsentDoc::PointTerms]);
        // An unpublished document is never asked.
        let unpublished = |d: ConsentDoc| (d != ConsentDoc::PointTerms).then(|| cur(d)).flatten();
        assert!(pending(&org(Some("P")), &g, unpublished).is_empty());
    }

    proptest! {
        #[test]
        fn accepted_iff_all_required_checked(
            has_points in any::<bool>(),
            checked in proptest::collection::vec(proptest::sample::select(ConsentDoc::ALL.to_vec()), 0..5),
        ) {
            let o = org(has_points.then_some("P"));
            let required = required_consents(&o);
            match accept_consents(&o, &checked, v, NOW) {
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
