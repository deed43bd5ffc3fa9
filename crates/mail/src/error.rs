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
