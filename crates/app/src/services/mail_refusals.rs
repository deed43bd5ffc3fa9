//! Mails the relay refused for good (issue #15, point 4): an SMTP 5xx such as "no such
//! mailbox" ends the retries (`jobs::deliver_due`), and the customer center sees them here, so
//! a member who calls because no mail came can be told why. Mails carry no organization, so
//! like inquiries only operators who see every organization get the list; each view is
//! audited. What is shown: when, the subject, the recipient's domain (never the whole
//! address) and the relay's answer with the address taken out.

use time::OffsetDateTime;

use crate::error::ServiceResult;
use crate::services::codes::{MailPayload, OUTBOX_AAD};
use crate::services::operators::{self, Operator};
use crate::state::App;

/// At most this many, newest first.
pub const LIMIT: i64 = 200;

pub struct Refusal {
    pub refused_at: OffsetDateTime,
    pub queued_at: OffsetDateTime,
    /// The mail's subject; `None` when its payload cannot be opened (a key taken away).
    pub subject: Option<String>,
    /// The recipient's domain, e.g. `docomo.ne.jp`.
    pub domain: Option<String>,
    pub attempts: i32,
    pub reason: String,
}

/// The domain of `to` (`addr@domain` or `Name <addr@domain>`).
fn domain_of(to: &str) -> Option<String> {
    let (_, domain) = to.trim().trim_end_matches('>').rsplit_once('@')?;
    Some(domain.to_string())
}

/// The refused mails for `operator` (none for an operator limited to some organizations).
#[tracing::instrument(skip_all, fields(operator_id = %operator.id))]
pub async fn list(app: &App, operator: &Operator, ip: &str) -> ServiceResult<Vec<Refusal>> {
    if !operator.sees_all_orgs() {
        return Ok(Vec::new());
    }
    operators::audit(app, Some(&operator.id), operators::actions::VIEW_MAIL_REFUSALS, None, ip).await?;
    let rows = app.store.refused_mails(LIMIT).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let payload: Option<MailPayload> = app.keys.open_json(OUTBOX_AAD, &r.payload).ok();
            Refusal {
                refused_at: r.refused_at,
                queued_at: r.created_at,
                domain: payload.as_ref().and_then(|p| domain_of(&p.to)),
                subject: payload.map(|p| p.subject),
                attempts: r.attempts,
                reason: r.last_error.unwrap_or_default(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_domain_of_the_recipient_is_shown() {
        assert_eq!(domain_of("taro@docomo.ne.jp").as_deref(), Some("docomo.ne.jp"));
        assert_eq!(domain_of("山田 太郎 <taro@example.com>").as_deref(), Some("example.com"));
        assert_eq!(domain_of("nobody"), None);
    }
}
