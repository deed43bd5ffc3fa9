//! The member flows as application services over the Store, the keys and the clock. The JSON
//! API and the HTML pages are two thin renderings of these functions.

pub mod audit;
pub mod auth;
pub mod binding;
pub mod checkups;
pub mod codes;
pub mod consents;
pub mod ekyc;
pub mod email_change;
pub mod flows;
pub mod health_imports;
pub mod health_match;
pub mod health_view;
pub mod identity;
pub mod imports;
pub mod inquiry;
pub mod limits;
pub mod mail_refusals;
pub mod members;
pub mod operators;
pub mod passkeys;
pub mod passwords;
pub mod registration;
pub mod rekey;
pub mod rekey_roster;
pub mod reset;
pub mod review;
pub mod roster;
pub mod sessions;
pub mod settings;
pub mod stepup;

use crate::crypto::CryptoError;
use crate::state::App;
use domain::email::Email;

/// The MAC purpose of members' email blind indexes.
pub(crate) const EMAIL_INDEX_PURPOSE: &str = "email-index";

/// The keyed blind index of a normalized email, under the active MAC key: what a new account
/// stores, so that look-ups need not hold the address in clear.
pub fn email_index(app: &App, email: &Email) -> Vec<u8> {
    app.keys.mac(EMAIL_INDEX_PURPOSE, email.as_str().as_bytes())
}

/// An address typed by someone who expects mail at it: parsed, and refused with
/// [`EmailError::NotAscii`](domain::email::EmailError::NotAscii) when no mail could reach it
/// (an internationalized address, unless the relay takes SMTPUTF8: `Config::smtp_utf8`).
pub fn deliverable_email(app: &App, input: &str) -> Result<Email, domain::email::EmailError> {
    let email = Email::parse(input)?;
    if !email.is_ascii() && !app.config.smtp_utf8 {
        return Err(domain::email::EmailError::NotAscii);
    }
    Ok(email)
}

/// The member with `email`, found by its blind index under each configured MAC key (an account
/// not re-keyed yet after a MAC key rotation is still found; see [`find_by_blind_index`]).
pub async fn find_user_by_email(app: &App, email: &Email) -> Result<Option<store::UserRecord>, store::StoreError> {
    find_by_blind_index(app, EMAIL_INDEX_PURPOSE, email.as_str(), |index| async move {
        app.store.find_user_by_email_index(&index).await
    })
    .await
}

/// The row `find` returns for the blind index of `value` (`purpose`) under any configured MAC
/// key, the active key's first. Every key is queried, found or not: the number of queries does
/// not tell whether the value is stored, and a row re-keyed between two queries is not missed.
pub(crate) async fn find_by_blind_index<T, F, Fut>(
    app: &App,
    purpose: &str,
    value: &str,
    find: F,
) -> Result<Option<T>, store::StoreError>
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, store::StoreError>>,
{
    let mut found = None;
    for index in app.keys.macs(purpose, value.as_bytes()) {
        let row = find(index).await?;
        found = found.or(row);
    }
    Ok(found)
}

/// The AAD members' sealed email addresses are bound to.
pub(crate) const EMAIL_AAD: &str = "users.email";

pub fn seal_email(app: &App, email: &Email) -> Result<Vec<u8>, CryptoError> {
    app.keys.seal(EMAIL_AAD, email.as_str().as_bytes())
}

pub fn open_email(app: &App, sealed: &[u8]) -> Result<String, CryptoError> {
    let bytes = app.keys.open(EMAIL_AAD, sealed)?;
    String::from_utf8(bytes).map_err(|_| CryptoError::Malformed)
}

/// A random (v4) UUID from the thread's CSPRNG.
/// The short reference (受付番号) members can quote for an inquiry or an eKYC application: the
/// first 8 characters of its id, upper case.
pub fn reference(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect::<String>().to_ascii_uppercase()
}

/// A moment as members read it in mails: Japan time to the minute, `2026/12/01 10:00`.
pub fn jst_minute(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::macros::offset!(+9));
    format!("{}/{:02}/{:02} {:02}:{:02}", at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute())
}

/// A day as members read it: Japan time, `2026/12/01`.
pub fn jst_date(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::macros::offset!(+9));
    format!("{}/{:02}/{:02}", at.year(), u8::from(at.month()), at.day())
}

pub fn new_id() -> String {
    use rand::Rng;
    uuid::Builder::from_random_bytes(rand::thread_rng().gen()).into_uuid().to_string()
}
