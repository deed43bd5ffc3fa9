//! 団体 (organizations) that offer the app to their insured members.

use crate::insurer::InsurerNumber;

/// Maximum length of an organization name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Maximum length of an own point name, in characters.
pub const MAX_POINT_NAME_CHARS: usize = 50;

/// Kind of organization chosen at 団体選択.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgType {
    /// 「健康保険・共済組合または会社」
    HealthInsurance,
    /// 「市区町村（国民健康保険）」
    Municipality,
}

impl OrgType {
    /// All types, in display order.
    pub const ALL: [OrgType; 2] = [OrgType::HealthInsurance, OrgType::Municipality];

    /// Stable identifier (`"health_insurance"` or `"municipality"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OrgType::HealthInsurance => "health_insurance",
            OrgType::Municipality => "municipality",
        }
    }

    /// Inverse of [`OrgType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How the card's 記号・番号 are entered (パターン①–④).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CardPattern {
    /// ① number only, containing a hyphen.
    HyphenatedNumber,
    /// ② number only.
    NumberOnly,
    /// ③ symbol (with a hyphen) and number.
    SymbolWithHyphen,
    /// ④ symbol and number.
    SymbolAndNumber,
}

impl CardPattern {
    const ALL: [CardPattern; 4] = [
        CardPattern::HyphenatedNumber,
        CardPattern::NumberOnly,
        CardPattern::SymbolWithHyphen,
        CardPattern::SymbolAndNumber,
    ];

    /// The pattern's number in the guide, `1..=4`.
    pub fn number(&self) -> u8 {
        match self {
            CardPattern::HyphenatedNumber => 1,
            CardPattern::NumberOnly => 2,
            CardPattern::SymbolWithHyphen => 3,
            CardPattern::SymbolAndNumber => 4,
        }
    }

    /// Inverse of [`CardPattern::number`].
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.number() == n)
    }
}

/// A stored organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Organization {
    /// Storage identifier.
    pub id: String,
    /// 保険者番号 (the 団体ID members enter).
    pub insurer_number: InsurerNumber,
    /// Kind of organization.
    pub org_type: OrgType,
    /// Display name (「団体・組合名」).
    pub name: String,
    /// 独自ポイント名, if the organization has its own points.
    pub point_name: Option<String>,
    /// 健診結果連携: checkup results are linked.
    pub checkup_linked: bool,
    /// How card symbol/number are entered.
    pub card_pattern: CardPattern,
}

impl Organization {
    /// Whether members earn the organization's own points (else the platform coin).
    pub fn has_own_points(&self) -> bool {
        self.point_name.as_deref().is_some_and(|p| !p.trim().is_empty())
    }
}

/// An organization as entered by an operator, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    /// 保険者番号.
    pub insurer_number: InsurerNumber,
    /// Kind of organization.
    pub org_type: OrgType,
    /// Display name.
    pub name: String,
    /// 独自ポイント名, if any.
    pub point_name: Option<String>,
    /// 健診結果連携.
    pub checkup_linked: bool,
    /// Card input pattern.
    pub card_pattern: CardPattern,
}

/// Why a new organization was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    /// The name is blank.
    #[error("organization name is empty")]
    EmptyName,
    /// The name is longer than 100 characters.
    #[error("organization name is longer than 100 characters")]
    NameTooLong,
    /// A point name was given but is blank.
    #[error("point name is empty")]
    EmptyPointName,
    /// The point name is longer than 50 characters.
    #[error("point name is longer than 50 characters")]
    PointNameTooLong,
}

impl NewOrganization {
    /// Checks the name (non-blank, ≤ 100 chars) and point name (if given:
    /// non-blank, ≤ 50 chars). Lengths are counted after trimming.
    pub fn validate(&self) -> Result<(), OrgError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(OrgError::EmptyName);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(OrgError::NameTooLong);
        }
        if let Some(point_name) = &self.point_name {
            let point_name = point_name.trim();
            if point_name.is_empty() {
                return Err(OrgError::EmptyPointName);
            }
            if point_name.chars().count() > MAX_POINT_NAME_CHARS {
                return Err(OrgError::PointNameTooLong);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn org(point_name: Option<&str>) -> Organization {
        Organization {
            id: "org-1".into(),
            insurer_number: InsurerNumber::parse("06132013").unwrap(),
            org_type: OrgType::HealthInsurance,
            name: "みもと健康保険組合".into(),
            point_name: point_name.map(Into::into),
            checkup_linked: true,
            card_pattern: CardPattern::SymbolAndNumber,
        }
    }

    fn new_org(name: &str, point_name: Option<&str>) -> NewOrganization {
        NewOrganization {
            insurer_number: InsurerNumber::parse("133033").unwrap(),
            org_type: OrgType::Municipality,
            name: name.into(),
            point_name: point_name.map(Into::into),
            checkup_linked: false,
            card_pattern: CardPattern::NumberOnly,
        }
    }

    #[test]
    fn org_type_round_trip() {
        assert_eq!(OrgType::HealthInsurance.as_str(), "health_insurance");
        assert_eq!(OrgType::Municipality.as_str(), "municipality");
        for t in OrgType::ALL {
            assert_eq!(OrgType::parse(t.as_str()), Some(t));
        }
        assert_eq!(OrgType::parse("Municipality"), None);
        assert_eq!(OrgType::parse(""), None);
    }

    #[test]
    fn card_pattern_numbers() {
        assert_eq!(CardPattern::HyphenatedNumber.number(), 1);
        assert_eq!(CardPattern::NumberOnly.number(), 2);
        assert_eq!(CardPattern::SymbolWithHyphen.number(), 3);
        assert_eq!(CardPattern::SymbolAndNumber.number(), 4);
        for n in 1..=4 {
            assert_eq!(CardPattern::from_number(n).map(|p| p.number()), Some(n));
        }
        assert_eq!(CardPattern::from_number(0), None);
        assert_eq!(CardPattern::from_number(5), None);
    }

    #[test]
    fn own_points() {
        assert!(org(Some("みもとポイント")).has_own_points());
        assert!(!org(None).has_own_points());
        assert!(!org(Some("  ")).has_own_points());
    }

    #[test]
    fn validate() {
        assert_eq!(new_org("みもと市", None).validate(), Ok(()));
        assert_eq!(new_org("みもと市", Some("みもとポイント")).validate(), Ok(()));
        assert_eq!(new_org(" \u{3000} ", None).validate(), Err(OrgError::EmptyName));
        assert_eq!(new_org(&"あ".repeat(100), None).validate(), Ok(()));
        assert_eq!(new_org(&"あ".repeat(101), None).validate(), Err(OrgError::NameTooLong));
        assert_eq!(new_org("みもと市", Some(" ")).validate(), Err(OrgError::EmptyPointName));
        assert_eq!(new_org("みもと市", Some(&"ポ".repeat(50))).validate(), Ok(()));
        assert_eq!(new_org("みもと市", Some(&"ポ".repeat(51))).validate(), Err(OrgError::PointNameTooLong));
    }

    proptest! {
        #[test]
        fn valid_name_lengths(name in "[^\\s]{1,100}") {
            prop_assert_eq!(new_org(&name, None).validate(), Ok(()));
        }
    }
}
