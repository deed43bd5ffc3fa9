//! Mail templates. Bodies are askama text templates under `templates/<locale>/`
//! (the `.txt` extension turns HTML escaping off); subjects live here.

use askama::Template as _;
use domain::locale::Locale;

use crate::{MailError, OutgoingMail};

/// The mails Mimoto sends.
#[derive(Debug, Clone)]
pub enum Template {
    /// F1 step 7: the registration one-time password.
    RegistrationCode { code: String, org_name: String, valid_minutes: i64 },
    /// F2: password reset code.
    PasswordResetCode { code: String, valid_minutes: i64 },
    /// F4: the member's application went to review (申請): its `reference` (受付番号), when it
    /// was submitted (`submitted_at`, Japan time, already formatted) and within how many
    /// business days the result usually comes.
    EkycReceived { org_name: String, reference: String, submitted_at: String, review_days: u32 },
    /// F4: an operator approved the member's eKYC application.
    EkycApproved { org_name: String },
    /// F4: an operator rejected the application; `reason` is the reviewer's reason from the
    /// console's fixed list, already in the member's language. The member may apply again.
    EkycRejected { org_name: String, reason: String },
    /// An operator withdrew the member's eKYC authentication (and, when `unlinked`, the roster
    /// link of 本人確認); `reason` is from the console's fixed list, in the member's language.
    BindingWithdrawn { org_name: String, unlinked: bool, reason: String },
    /// A passkey was registered on the account (`at`: when, in Japan time, already formatted):
    /// the member learns of it if it was not them.
    PasskeyAdded { at: String },
    /// 「アカウント設定」: the member's password was changed (`at`: when, in Japan time, already
    /// formatted); the member learns of it if it was not them.
    PasswordChanged { at: String },
    /// 「アカウント設定」: the one-time password that confirms a new email address (sent to it).
    EmailChangeCode { code: String, valid_minutes: i64 },
    /// 「アカウント設定」: the account's email address was changed (sent to the old one).
    EmailChanged { at: String },
    /// A login from a browser not seen before on the account (`device`: its coarse label).
    NewDeviceLogin { at: String, device: String },
    /// F6: the customer center received an inquiry. `reference` is the short reference the
    /// member can quote, `category` the inquiry's category in the member's language. The
    /// message itself is not repeated: anyone can type any address into the form.
    InquiryReceived { reference: String, category: String },
    /// F6: an operator's reply to an inquiry; `reply` is the operator's text (several lines).
    InquiryReply { reference: String, reply: String },
}

#[derive(askama::Template)]
#[template(path = "ja/inquiry_received.txt")]
struct JaInquiryReceived<'a> {
    reference: &'a str,
    category: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/inquiry_received.txt")]
struct EnInquiryReceived<'a> {
    reference: &'a str,
    category: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/inquiry_reply.txt")]
struct JaInquiryReply<'a> {
    reference: &'a str,
    reply: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/inquiry_reply.txt")]
struct EnInquiryReply<'a> {
    reference: &'a str,
    reply: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/ekyc_received.txt")]
struct JaEkycReceived<'a> {
    org_name: &'a str,
    reference: &'a str,
    submitted_at: &'a str,
    review_days: u32,
}

#[derive(askama::Template)]
#[template(path = "en/ekyc_received.txt")]
struct EnEkycReceived<'a> {
    org_name: &'a str,
    reference: &'a str,
    submitted_at: &'a str,
    review_days: u32,
}

#[derive(askama::Template)]
#[template(path = "ja/ekyc_approved.txt")]
struct JaEkycApproved<'a> {
    org_name: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/ekyc_approved.txt")]
struct EnEkycApproved<'a> {
    org_name: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/ekyc_rejected.txt")]
struct JaEkycRejected<'a> {
    org_name: &'a str,
    reason: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/ekyc_rejected.txt")]
struct EnEkycRejected<'a> {
    org_name: &'a str,
    reason: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/binding_withdrawn.txt")]
struct JaBindingWithdrawn<'a> {
    org_name: &'a str,
    unlinked: bool,
    reason: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/binding_withdrawn.txt")]
struct EnBindingWithdrawn<'a> {
    org_name: &'a str,
    unlinked: bool,
    reason: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/passkey_added.txt")]
struct JaPasskeyAdded<'a> {
    at: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/passkey_added.txt")]
struct EnPasskeyAdded<'a> {
    at: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/password_changed.txt")]
struct JaPasswordChanged<'a> {
    at: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/password_changed.txt")]
struct EnPasswordChanged<'a> {
    at: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/email_change_code.txt")]
struct JaEmailChangeCode<'a> {
    code: &'a str,
    valid_minutes: i64,
}

#[derive(askama::Template)]
#[template(path = "en/email_change_code.txt")]
struct EnEmailChangeCode<'a> {
    code: &'a str,
    valid_minutes: i64,
}

#[derive(askama::Template)]
#[template(path = "ja/email_changed.txt")]
struct JaEmailChanged<'a> {
    at: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/email_changed.txt")]
struct EnEmailChanged<'a> {
    at: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/new_device_login.txt")]
struct JaNewDeviceLogin<'a> {
    at: &'a str,
    device: &'a str,
}

#[derive(askama::Template)]
#[template(path = "en/new_device_login.txt")]
struct EnNewDeviceLogin<'a> {
    at: &'a str,
    device: &'a str,
}

#[derive(askama::Template)]
#[template(path = "ja/registration_code.txt")]
struct JaRegistrationCode<'a> {
    code: &'a str,
    org_name: &'a str,
    valid_minutes: i64,
}

#[derive(askama::Template)]
#[template(path = "en/registration_code.txt")]
struct EnRegistrationCode<'a> {
    code: &'a str,
    org_name: &'a str,
    valid_minutes: i64,
}

#[derive(askama::Template)]
#[template(path = "ja/password_reset_code.txt")]
struct JaPasswordResetCode<'a> {
    code: &'a str,
    valid_minutes: i64,
}

#[derive(askama::Template)]
#[template(path = "en/password_reset_code.txt")]
struct EnPasswordResetCode<'a> {
    code: &'a str,
    valid_minutes: i64,
}

fn subject(template: &Template, locale: Locale) -> &'static str {
    match (template, locale) {
        (Template::RegistrationCode { .. }, Locale::Ja) => "【Mimoto】ワンタイムパスワードのお知らせ",
        (Template::RegistrationCode { .. }, Locale::En) => "[Mimoto] Your one-time password",
        (Template::PasswordResetCode { .. }, Locale::Ja) => "【Mimoto】パスワード再設定のワンタイムパスワード",
        (Template::PasswordResetCode { .. }, Locale::En) => "[Mimoto] One-time password for resetting your password",
        (Template::EkycReceived { .. }, Locale::Ja) => "【Mimoto】健診・医療アクセス認証のお申し込みを受け付けました",
        (Template::EkycReceived { .. }, Locale::En) => "[Mimoto] We have received your authentication application",
        (Template::EkycApproved { .. }, Locale::Ja) => "【Mimoto】健診・医療アクセス認証が完了しました",
        (Template::EkycApproved { .. }, Locale::En) => "[Mimoto] Health & medical access authentication complete",
        (Template::EkycRejected { .. }, Locale::Ja) => "【Mimoto】健診・医療アクセス認証の審査結果のお知らせ",
        (Template::EkycRejected { .. }, Locale::En) => {
            "[Mimoto] The result of your health & medical access authentication"
        }
        (Template::BindingWithdrawn { .. }, Locale::Ja) => "【Mimoto】本人確認・認証の取り消しのお知らせ",
        (Template::BindingWithdrawn { .. }, Locale::En) => "[Mimoto] Your verification has been withdrawn",
        (Template::PasskeyAdded { .. }, Locale::Ja) => "【Mimoto】パスキーが登録されました",
        (Template::PasskeyAdded { .. }, Locale::En) => "[Mimoto] A passkey was registered",
        (Template::PasswordChanged { .. }, Locale::Ja) => "【Mimoto】パスワードが変更されました",
        (Template::PasswordChanged { .. }, Locale::En) => "[Mimoto] Your password was changed",
        (Template::EmailChangeCode { .. }, Locale::Ja) => "【Mimoto】メールアドレス変更のワンタイムパスワード",
        (Template::EmailChangeCode { .. }, Locale::En) => "[Mimoto] One-time password for changing your email address",
        (Template::EmailChanged { .. }, Locale::Ja) => "【Mimoto】メールアドレスが変更されました",
        (Template::EmailChanged { .. }, Locale::En) => "[Mimoto] Your email address was changed",
        (Template::NewDeviceLogin { .. }, Locale::Ja) => "【Mimoto】新しい端末からのログインのお知らせ",
        (Template::NewDeviceLogin { .. }, Locale::En) => "[Mimoto] A login from a new device",
        (Template::InquiryReceived { .. }, Locale::Ja) => "【Mimoto】お問い合わせを受け付けました",
        (Template::InquiryReceived { .. }, Locale::En) => "[Mimoto] We have received your inquiry",
        (Template::InquiryReply { .. }, Locale::Ja) => "【Mimoto】お問い合わせへの回答",
        (Template::InquiryReply { .. }, Locale::En) => "[Mimoto] Our answer to your inquiry",
    }
}

/// Values are interpolated as separate lines of a plain-text mail; a line
/// break inside one would let it forge extra lines (e.g. a second "code").
fn single_line<'a>(name: &str, value: &'a str) -> Result<&'a str, MailError> {
    if value.chars().any(char::is_control) {
        return Err(MailError::Template(format!("{name} must be a single line without control characters")));
    }
    Ok(value)
}

/// A multi-line value (an operator's reply): line breaks are allowed (`\r\n` becomes `\n`),
/// other control characters except tabs are not.
fn multi_line(name: &str, value: &str) -> Result<String, MailError> {
    let value = value.replace("\r\n", "\n");
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(MailError::Template(format!("{name} must not contain control characters other than line breaks")));
    }
    Ok(value.trim_end().to_owned())
}

/// Renders `template` in `locale` for recipient `to`.
///
/// `to` is checked to be a valid mailbox (`addr@example.com` or
/// `Name <addr@example.com>`); a bad one gives [`MailError::Address`].
pub fn render(template: &Template, locale: Locale, to: &str) -> Result<OutgoingMail, MailError> {
    to.parse::<lettre::message::Mailbox>().map_err(|e| MailError::Address(format!("{to:?}: {e}")))?;

    let body = match template {
        Template::RegistrationCode { code, org_name, valid_minutes } => {
            let code = single_line("code", code)?;
            let org_name = single_line("org_name", org_name)?;
            let valid_minutes = *valid_minutes;
            match locale {
                Locale::Ja => JaRegistrationCode { code, org_name, valid_minutes }.render(),
                Locale::En => EnRegistrationCode { code, org_name, valid_minutes }.render(),
            }
        }
        Template::PasswordResetCode { code, valid_minutes } => {
            let code = single_line("code", code)?;
            let valid_minutes = *valid_minutes;
            match locale {
                Locale::Ja => JaPasswordResetCode { code, valid_minutes }.render(),
                Locale::En => EnPasswordResetCode { code, valid_minutes }.render(),
            }
        }
        Template::EkycReceived { org_name, reference, submitted_at, review_days } => {
            let org_name = single_line("org_name", org_name)?;
            let reference = single_line("reference", reference)?;
            let submitted_at = single_line("submitted_at", submitted_at)?;
            let review_days = *review_days;
            match locale {
                Locale::Ja => JaEkycReceived { org_name, reference, submitted_at, review_days }.render(),
                Locale::En => EnEkycReceived { org_name, reference, submitted_at, review_days }.render(),
            }
        }
        Template::EkycApproved { org_name } => {
            let org_name = single_line("org_name", org_name)?;
            match locale {
                Locale::Ja => JaEkycApproved { org_name }.render(),
                Locale::En => EnEkycApproved { org_name }.render(),
            }
        }
        Template::EkycRejected { org_name, reason } => {
            let org_name = single_line("org_name", org_name)?;
            let reason = single_line("reason", reason)?;
            match locale {
                Locale::Ja => JaEkycRejected { org_name, reason }.render(),
                Locale::En => EnEkycRejected { org_name, reason }.render(),
            }
        }
        Template::BindingWithdrawn { org_name, unlinked, reason } => {
            let org_name = single_line("org_name", org_name)?;
            let reason = single_line("reason", reason)?;
            let unlinked = *unlinked;
            match locale {
                Locale::Ja => JaBindingWithdrawn { org_name, unlinked, reason }.render(),
                Locale::En => EnBindingWithdrawn { org_name, unlinked, reason }.render(),
            }
        }
        Template::PasskeyAdded { at } => {
            let at = single_line("at", at)?;
            match locale {
                Locale::Ja => JaPasskeyAdded { at }.render(),
                Locale::En => EnPasskeyAdded { at }.render(),
            }
        }
        Template::PasswordChanged { at } => {
            let at = single_line("at", at)?;
            match locale {
                Locale::Ja => JaPasswordChanged { at }.render(),
                Locale::En => EnPasswordChanged { at }.render(),
            }
        }
        Template::EmailChangeCode { code, valid_minutes } => {
            let code = single_line("code", code)?;
            let valid_minutes = *valid_minutes;
            match locale {
                Locale::Ja => JaEmailChangeCode { code, valid_minutes }.render(),
                Locale::En => EnEmailChangeCode { code, valid_minutes }.render(),
            }
        }
        Template::EmailChanged { at } => {
            let at = single_line("at", at)?;
            match locale {
                Locale::Ja => JaEmailChanged { at }.render(),
                Locale::En => EnEmailChanged { at }.render(),
            }
        }
        Template::NewDeviceLogin { at, device } => {
            let at = single_line("at", at)?;
            let device = single_line("device", device)?;
            match locale {
                Locale::Ja => JaNewDeviceLogin { at, device }.render(),
                Locale::En => EnNewDeviceLogin { at, device }.render(),
            }
        }
        Template::InquiryReceived { reference, category } => {
            let reference = single_line("reference", reference)?;
            let category = single_line("category", category)?;
            match locale {
                Locale::Ja => JaInquiryReceived { reference, category }.render(),
                Locale::En => EnInquiryReceived { reference, category }.render(),
            }
        }
        Template::InquiryReply { reference, reply } => {
            let reference = single_line("reference", reference)?;
            let reply = multi_line("reply", reply)?;
            let reply = reply.as_str();
            match locale {
                Locale::Ja => JaInquiryReply { reference, reply }.render(),
                Locale::En => EnInquiryReply { reference, reply }.render(),
            }
        }
    }
    .map_err(|e| MailError::Template(e.to_string()))?;

    let mut text = body.trim_end().to_owned();
    text.push('\n');

    Ok(OutgoingMail { to: to.to_owned(), subject: subject(template, locale).to_owned(), text, id: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Template {
        Template::RegistrationCode {
            code: "123456".into(),
            org_name: "ミモト健康保険組合 <&>".into(),
            valid_minutes: 10,
        }
    }

    fn reset() -> Template {
        Template::PasswordResetCode { code: "654321".into(), valid_minutes: 15 }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn registration_ja() {
        let m = render(&registration(), Locale::Ja, "taro@example.com").unwrap();
        assert_eq!(m.to, "taro@example.com");
        assert_eq!(m.subject, "【Mimoto】ワンタイムパスワードのお知らせ");
        // Text templates are not HTML-escaped.
        assert!(m.text.contains("ミモト健康保険組合 <&>"), "{}", m.text);
        assert!(m.text.contains("仮登録"));
        assert!(m.text.contains("10分"));
        assert!(m.text.contains("「承認する」"));
        assert!(lines(&m.text).contains(&"ワンタイムパスワード: 123456"), "{}", m.text);
        assert!(m.text.contains("このメールにお心当たりがない場合は、このメールを破棄してください。"));
        assert!(m.text.ends_with('\n') && !m.text.ends_with("\n\n"));
    }

    #[test]
    fn registration_en() {
        let m = render(&registration(), Locale::En, "Taro <taro@example.com>").unwrap();
        assert_eq!(m.subject, "[Mimoto] Your one-time password");
        assert!(m.text.contains("ミモト健康保険組合 <&>"));
        assert!(m.text.contains("10 minutes"));
        assert!(lines(&m.text).contains(&"One-time password: 123456"), "{}", m.text);
        assert!(!m.text.contains("ワンタイム"));
    }

    #[test]
    fn password_reset_ja() {
        let m = render(&reset(), Locale::Ja, "taro@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】パスワード再設定のワンタイムパスワード");
        assert!(m.text.contains("「パスワード再設定」"));
        assert!(m.text.contains("15分"));
        assert!(lines(&m.text).contains(&"ワンタイムパスワード: 654321"), "{}", m.text);
        assert!(m.text.contains("このメールにお心当たりがない場合は、このメールを破棄してください。"));
    }

    #[test]
    fn password_reset_en() {
        let m = render(&reset(), Locale::En, "taro@example.com").unwrap();
        assert_eq!(m.subject, "[Mimoto] One-time password for resetting your password");
        assert!(m.text.contains("15 minutes"));
        assert!(lines(&m.text).contains(&"One-time password: 654321"), "{}", m.text);
    }

    #[test]
    fn binding_withdrawn_and_passkey_added_ja_and_en() {
        let t = Template::BindingWithdrawn {
            org_name: "みらい健康保険組合".into(),
            unlinked: true,
            reason: "本人確認書類・名簿の照合で別の方と判明しました".into(),
        };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】本人確認・認証の取り消しのお知らせ");
        assert!(
            m.text.contains("本人確認（名簿との照合）と健診・医療アクセス認証") && m.text.contains("「本人確認」から")
        );
        let kept = Template::BindingWithdrawn { org_name: "Mirai".into(), unlinked: false, reason: "Other".into() };
        let m = render(&kept, Locale::En, "hanako@example.com").unwrap();
        assert!(
            !m.text.contains("identity verification (the roster match)") && m.text.contains("apply again"),
            "{}",
            m.text
        );
        let forged =
            Template::BindingWithdrawn { org_name: "Mirai".into(), unlinked: false, reason: "x\n理由: y".into() };
        assert!(render(&forged, Locale::Ja, "hanako@example.com").is_err(), "one line only");

        let t = Template::PasskeyAdded { at: "2026/11/30 10:00".into() };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】パスキーが登録されました");
        assert!(m.text.contains("（2026/11/30 10:00）") && m.text.contains("お問い合わせ"), "{}", m.text);
        let m = render(&t, Locale::En, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "[Mimoto] A passkey was registered");
    }

    #[test]
    fn ekyc_approved_ja_and_en() {
        let t = Template::EkycApproved { org_name: "みらい健康保険組合".into() };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】健診・医療アクセス認証が完了しました");
        assert!(m.text.contains("みらい健康保険組合の健診・医療アクセス認証"), "{}", m.text);
        assert!(m.text.contains("健診結果"));
        let m = render(&t, Locale::En, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "[Mimoto] Health & medical access authentication complete");
        assert!(m.text.contains("authentication is complete") && !m.text.contains("健診"), "{}", m.text);
    }

    #[test]
    fn ekyc_received_gives_the_reference_date_and_review_time() {
        let t = Template::EkycReceived {
            org_name: "みらい健康保険組合".into(),
            reference: "1A2B3C4D".into(),
            submitted_at: "2026/12/01 10:00".into(),
            review_days: 5,
        };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】健診・医療アクセス認証のお申し込みを受け付けました");
        let l = lines(&m.text);
        assert!(l.contains(&"受付番号: 1A2B3C4D") && l.contains(&"申請日時: 2026/12/01 10:00"), "{}", m.text);
        assert!(m.text.contains("通常5営業日以内") && m.text.contains("「ヘルプ・お問い合わせ」"), "{}", m.text);
        let m = render(&t, Locale::En, "hanako@example.com").unwrap();
        assert!(m.text.contains("Reference: 1A2B3C4D") && m.text.contains("within 5 business days"), "{}", m.text);
        let forged = Template::EkycReceived {
            org_name: "みらい健康保険組合".into(),
            reference: "x\n受付番号: 1".into(),
            submitted_at: "2026/12/01 10:00".into(),
            review_days: 5,
        };
        assert!(matches!(render(&forged, Locale::Ja, "hanako@example.com"), Err(MailError::Template(_))));
    }

    #[test]
    fn ekyc_rejected_gives_the_reason_and_the_way_back() {
        let t = Template::EkycRejected {
            org_name: "みらい健康保険組合".into(), reason: "書類が不鮮明".into()
        };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】健診・医療アクセス認証の審査結果のお知らせ");
        assert!(lines(&m.text).contains(&"理由: 書類が不鮮明"), "{}", m.text);
        assert!(m.text.contains("メニューから") && m.text.contains("もう一度お申し込みください"), "{}", m.text);
        let t = Template::EkycRejected { org_name: "Mirai".into(), reason: "The document is unreadable".into() };
        let m = render(&t, Locale::En, "hanako@example.com").unwrap();
        assert!(lines(&m.text).contains(&"Reason: The document is unreadable"), "{}", m.text);
        assert!(m.text.contains("Please apply again") && m.text.contains("menu"), "{}", m.text);
        let forged = Template::EkycRejected { org_name: "Mirai".into(), reason: "x\n理由: none".into() };
        assert!(matches!(render(&forged, Locale::Ja, "hanako@example.com"), Err(MailError::Template(_))));
    }

    #[test]
    fn inquiry_received_gives_the_reference_not_the_message() {
        let t = Template::InquiryReceived { reference: "AB12CD34".into(), category: "ログインについて".into() };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】お問い合わせを受け付けました");
        assert!(lines(&m.text).contains(&"受付番号: AB12CD34"), "{}", m.text);
        assert!(lines(&m.text).contains(&"お問い合わせの種類: ログインについて"), "{}", m.text);
        let t = Template::InquiryReceived { reference: "AB12CD34".into(), category: "Signing in".into() };
        let m = render(&t, Locale::En, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "[Mimoto] We have received your inquiry");
        assert!(lines(&m.text).contains(&"Reference: AB12CD34") && !m.text.contains("受付"), "{}", m.text);
        let forged = Template::InquiryReceived { reference: "x\n受付番号: 1".into(), category: "c".into() };
        assert!(matches!(render(&forged, Locale::Ja, "hanako@example.com"), Err(MailError::Template(_))));
    }

    #[test]
    fn inquiry_reply_carries_the_operators_lines() {
        let t = Template::InquiryReply {
            reference: "AB12CD34".into(),
            reply: "お問い合わせありがとうございます。\r\n再設定をお試しください。\n".into(),
        };
        let m = render(&t, Locale::Ja, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "【Mimoto】お問い合わせへの回答");
        assert!(m.text.contains("受付番号: AB12CD34"), "{}", m.text);
        assert!(m.text.contains("お問い合わせありがとうございます。\n再設定をお試しください。\n----"), "{}", m.text);
        // The way back is the footer link every member page has (web's base.html, `footer.help`).
        assert!(m.text.contains("「ヘルプ・お問い合わせ」"), "{}", m.text);
        let m = render(&t, Locale::En, "hanako@example.com").unwrap();
        assert_eq!(m.subject, "[Mimoto] Our answer to your inquiry");
        assert!(m.text.contains("\"Help & contact\""), "{}", m.text);
        let bad = Template::InquiryReply { reference: "AB12CD34".into(), reply: "bell\u{7}".into() };
        assert!(matches!(render(&bad, Locale::Ja, "hanako@example.com"), Err(MailError::Template(_))));
    }

    #[test]
    fn default_locale_is_japanese() {
        let m = render(&reset(), Locale::default(), "taro@example.com").unwrap();
        assert!(m.subject.starts_with("【Mimoto】"));
    }

    #[test]
    fn bad_recipient_is_an_address_error() {
        let err = render(&reset(), Locale::Ja, "not an address").unwrap_err();
        assert!(matches!(err, MailError::Address(_)), "{err:?}");
        assert!(!err.is_transient());
    }

    #[test]
    fn line_breaks_in_values_are_rejected() {
        let t = Template::RegistrationCode {
            code: "123456".into(),
            org_name: "Org\nワンタイムパスワード: 000000".into(),
            valid_minutes: 10,
        };
        let err = render(&t, Locale::Ja, "taro@example.com").unwrap_err();
        assert!(matches!(err, MailError::Template(_)), "{err:?}");
    }
}
