/// Everything that can go wrong while rendering or delivering a mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A recipient (or sender) address that does not parse.
    #[error("invalid address: {0}")]
    Address(String),
    /// A template failed to render.
    #[error("template: {0}")]
    Template(String),
    /// SMTP delivery failed in a way that may succeed later: the server could
    /// not be reached, the connection or TLS handshake broke, the server
    /// answered 4xx, or it timed out.
    #[error("smtp: {0}")]
    Smtp(String),
    /// SMTP delivery was refused for good: the server answered 5xx (e.g.
    /// unknown recipient, message rejected) or the client refused to send
    /// (e.g. a non-ASCII address to a server without SMTPUTF8). Retrying the
    /// same mail will not help.
    #[error("smtp (permanent): {0}")]
    SmtpPermanent(String),
    /// Writing to the file outbox failed.
    #[error("outbox file: {0}")]
    Io(#[from] std::io::Error),
    /// The RFC 5322 message could not be built.
    #[error("message: {0}")]
    Message(String),
    /// The mailer configuration is unusable (bad `from`, bad SMTP URL).
    #[error("configuration: {0}")]
    Config(String),
}

impl MailError {
    /// Whether retrying the same delivery later may succeed: SMTP connection
    /// problems, 4xx replies, timeouts and outbox I/O failures. Bad addresses,
    /// template/message/configuration errors and 5xx rejections are not.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Smtp(_) | MailError::Io(_))
    }

    /// Whether the *recipient's address* was refused for good, so that retrying can never
    /// deliver this mail and the member should use another address: an address that does not
    /// parse, one the relay cannot take (non-ASCII without SMTPUTF8), or a 5xx reply whose
    /// enhanced status code is about the address or mailbox (RFC 3463 `5.1.x` bad or unknown
    /// address, `5.2.1` mailbox disabled, `5.6.7` non-ASCII address not permitted). Every
    /// other permanent error — authentication, TLS, a refused sender, a policy or size
    /// rejection — is the relay's or the configuration's, not the member's: it is retried
    /// with backoff and shown to no member.
    pub fn is_recipient_refusal(&self) -> bool {
        match self {
            MailError::Address(_) => true,
            MailError::SmtpPermanent(message) => {
                message.contains("non-ascii chars but server does not support SMTPUTF8")
                    || enhanced_status(message)
                        .is_some_and(|code| code.starts_with("5.1.") || code == "5.2.1" || code == "5.6.7")
            }
            _ => false,
        }
    }

    pub(crate) fn from_smtp(err: &lettre::transport::smtp::Error) -> Self {
        // lettre's Display already includes the direct source; walk the rest of
        // the chain so e.g. "connection refused" is not lost.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err).and_then(std::error::Error::source);
        while let Some(inner) = source {
            let text = inner.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = inner.source();
        }
        if err.is_permanent() || err.is_client() {
            MailError::SmtpPermanent(message)
        } else {
            MailError::Smtp(message)
        }
    }
}

/// The first RFC 3463 enhanced status code (`5.1.1`) in a relay's reply.
fn enhanced_status(message: &str) -> Option<&str> {
    message.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':').find(|word| {
        let mut parts = word.split('.');
        let (Some(class), Some(subject), Some(detail), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        matches!(class, "2" | "4" | "5")
            && (1..=3).contains(&subject.len())
            && (1..=3).contains(&detail.len())
            && subject.bytes().chain(detail.bytes()).all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_address_are_the_members() {
        let refused = |m: &str| MailError::SmtpPermanent(m.to_string()).is_recipient_refusal();
        assert!(refused("permanent error (550): 5.1.1 <a@b.jp>: Recipient address rejected: User unknown"));
        assert!(refused("permanent error (550): 5.2.1 mailbox disabled"));
        assert!(refused("permanent error (553): 5.6.7 non-ASCII addresses are not permitted"));
        assert!(refused("client error: Envelope contains non-ascii chars but server does not support SMTPUTF8"));
        assert!(MailError::Address("\"nobody\": missing @".into()).is_recipient_refusal());
        // The relay's or the configuration's problems: retried, never blamed on the member.
        assert!(!refused("permanent error (535): 5.7.8 Authentication credentials invalid"));
        assert!(!refused("permanent error (550): 5.7.1 Relaying denied"));
        assert!(!refused("permanent error (553): 5.7.1 Sender address rejected: not owned by user"));
        assert!(!refused("permanent error (554): 5.7.1 Message rejected by DMARC policy"));
        assert!(!refused("permanent error (552): 5.3.4 Message size exceeds fixed limit"));
        assert!(!refused("permanent error (550): Mailbox unavailable"));
        assert!(!refused("client error: STARTTLS is not supported on this server"));
        assert!(!MailError::Config("bad from".into()).is_recipient_refusal());
        assert!(!MailError::Smtp("transient error (450): 4.1.1 try later".into()).is_recipient_refusal());
    }
}
