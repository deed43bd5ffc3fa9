//! Mail for Mimoto: plain-text templates (ja/en), SMTP delivery through
//! [`lettre`] and a file outbox for development.
//!
//! * [`render`] turns a [`Template`] into an [`OutgoingMail`] for a locale.
//! * [`Mailer`] delivers an [`OutgoingMail`] either over SMTP or into a
//!   directory of `.eml` files (the "outbox").
//! * [`list_outbox`] / [`parse_eml`] read the outbox back (dev mail viewer,
//!   end-to-end tests).

mod error;
mod mailer;
mod outbox;
mod template;

pub use error::MailError;
pub use mailer::{MailConfig, Mailer, SMTP_TIMEOUT};
pub use outbox::{list_outbox, parse_eml, OutboxEntry};
pub use template::{render, Template};

/// A rendered mail, ready for [`Mailer::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient, `addr@example.com` or `Name <addr@example.com>`.
    pub to: String,
    /// Subject, plain UTF-8 (encoded on the wire by the mailer).
    pub subject: String,
    /// Plain-text body, UTF-8, `\n` line endings.
    pub text: String,
    /// A stable id of this mail (its outbox row): the `Message-ID` is made from it, so a mail
    /// sent twice (a worker that could not record the first delivery) carries the same
    /// `Message-ID` both times and receivers can drop the copy. `None`: a fresh random one.
    pub id: Option<String>,
}
