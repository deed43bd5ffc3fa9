//! Message catalogs, loaded once: per language the member pages (`locales/ja.toml`), the eKYC
//! pages (`locales/ekyc.ja.toml`) and the operator console (`locales/console.ja.toml`),
//! merged into one map (a key defined twice is a build defect the tests catch).

use std::collections::HashMap;
use std::sync::OnceLock;

pub use domain::locale::Locale;

type Catalog = HashMap<String, String>;

// The only input is the `include_str!` catalogs below, which the tests of this module parse
// (`catalogs_have_the_same_keys`), so `expect` cannot fire in a built binary.
#[allow(clippy::expect_used)]
fn parse(texts: &[&str]) -> Catalog {
    // The catalogs are compiled in and checked by the tests below, so a parse failure is a
    // build defect, not a runtime condition.
    let mut all = Catalog::new();
    for text in texts {
        let part: Catalog = toml::from_str(text).expect("locale catalog is valid TOML");
        for (k, v) in part {
            let dup = all.insert(k.clone(), v);
            debug_assert!(dup.is_none(), "message {k} defined twice");
        }
    }
    all
}

fn catalog(locale: Locale) -> &'static Catalog {
    static JA: OnceLock<Catalog> = OnceLock::new();
    static EN: OnceLock<Catalog> = OnceLock::new();
    match locale {
        Locale::Ja => JA.get_or_init(|| {
            parse(&[
                include_str!("../locales/ja.toml"),
                include_str!("../locales/ekyc.ja.toml"),
                include_str!("../locales/console.ja.toml"),
                include_str!("../locales/inquiry.ja.toml"),
                include_str!("../locales/checkup.ja.toml"),
                include_str!("../locales/health.ja.toml"),
                include_str!("../locales/settings.ja.toml"),
                include_str!("../locales/consents.ja.toml"),
            ])
        }),
        Locale::En => EN.get_or_init(|| {
            parse(&[
                include_str!("../locales/en.toml"),
                include_str!("../locales/ekyc.en.toml"),
                include_str!("../locales/console.en.toml"),
                include_str!("../locales/inquiry.en.toml"),
                include_str!("../locales/checkup.en.toml"),
                include_str!("../locales/health.en.toml"),
                include_str!("../locales/settings.en.toml"),
                include_str!("../locales/consents.en.toml"),
            ])
        }),
    }
}

/// The message for `key`; the key itself if it is missing (visible, so tests catch it).
pub fn t(locale: Locale, key: &str) -> &'static str {
    match catalog(locale).get(key) {
        Some(v) => v.as_str(),
        None => {
            tracing::warn!(key, locale = locale.as_str(), "missing message");
            Box::leak(key.to_string().into_boxed_str())
        }
    }
}

/// The message for `key` with `{name}` placeholders filled in.
pub fn tf(locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
    let mut s = t(locale, key).to_string();
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

/// The checkbox label of a consent document for an organization (F1 step 6).
pub fn consent_label(locale: Locale, doc: domain::consent::ConsentDoc, org: &domain::org::Organization) -> String {
    use domain::consent::ConsentDoc;
    match doc {
        ConsentDoc::PlatformTerms => t(locale, "consent.platform_terms").to_string(),
        ConsentDoc::OrgPrivacy => tf(locale, "consent.org_privacy", &[("org", &org.name)]),
        ConsentDoc::PointTerms => {
            tf(locale, "consent.point_terms", &[("points", org.point_name.as_deref().unwrap_or_default())])
        }
        ConsentDoc::Biometric => t(locale, "consent.biometric").to_string(),
        ConsentDoc::HealthData => t(locale, "consent.health_data").to_string(),
    }
}

/// The name of a consent document (「Mimoto利用規約」, 「○○のプライバシーポリシー」…), for
/// links and lists.
pub fn consent_name(locale: Locale, doc: domain::consent::ConsentDoc, org: &domain::org::Organization) -> String {
    tf(
        locale,
        &format!("documents.name.{}", doc.as_str()),
        &[("org", &org.name), ("points", org.point_name.as_deref().unwrap_or_default())],
    )
}

/// Translator handed to templates: `{{ tr.t("key") }}`.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub locale: Locale,
}

impl Tr {
    pub fn t(&self, key: &str) -> &'static str {
        t(self.locale, key)
    }
    pub fn tf(&self, key: &str, name: &str, value: &str) -> String {
        tf(self.locale, key, &[(name, value)])
    }
    pub fn lang(&self) -> &'static str {
        self.locale.as_str()
    }
    /// The other language, for the switch link.
    pub fn other(&self) -> &'static str {
        match self.locale {
            Locale::Ja => "en",
            Locale::En => "ja",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_have_the_same_keys() {
        let mut ja: Vec<_> = catalog(Locale::Ja).keys().collect();
        let mut en: Vec<_> = catalog(Locale::En).keys().collect();
        ja.sort();
        en.sort();
        assert_eq!(ja, en);
    }

    #[test]
    fn guide_labels_are_exact() {
        let ja = Locale::Ja;
        assert_eq!(t(ja, "landing.register"), "新規登録");
        assert_eq!(t(ja, "reg.approve"), "承認する");
        assert_eq!(t(ja, "reg.start_account"), "アカウント作成をはじめる");
        assert_eq!(t(ja, "reg.send_mail"), "承認メールを送信");
        assert_eq!(t(ja, "login.trouble"), "ログインでお困りの場合");
        assert_eq!(t(ja, "org_type.health_insurance"), "健康保険・共済組合または会社");
        assert_eq!(
            tf(ja, "consent.org_privacy", &[("org", "みらい健保")]),
            "みらい健保のプライバシーポリシーに同意する"
        );
    }
}
