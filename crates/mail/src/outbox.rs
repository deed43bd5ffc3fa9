//! Reading the file outbox back.

use std::path::Path;

use mail_parser::MessageParser;

use crate::MailError;

/// One mail from the outbox, decoded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    /// File name inside the outbox directory.
    pub file_name: String,
    /// Recipient address(es), comma-separated.
    pub to: String,
    /// Decoded subject (empty if none).
    pub subject: String,
    /// `Date` header as RFC 3339 (empty if none).
    pub date: String,
    /// Decoded plain-text body, `\n` line endings.
    pub text: String,
}

/// Parses an RFC 5322 message (RFC 2047 encoded headers, quoted-printable or
/// base64 bodies are decoded). `None` if it does not parse or has no `To`.
pub fn parse_eml(file_name: &str, bytes: &[u8]) -> Option<OutboxEntry> {
    let message = MessageParser::default().parse(bytes)?;
    let to = message.to()?.iter().filter_map(|addr| addr.address()).collect::<Vec<_>>().join(", ");
    if to.is_empty() {
        return None;
    }
    Some(OutboxEntry {
        file_name: file_name.to_owned(),
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        date: message.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        text: message.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default(),
    })
}

/// The newest `limit` mails of the outbox in `dir`, newest first (file names
/// start with a sortable UTC timestamp). A missing directory is an empty
/// outbox; files that vanish or do not parse are skipped.
pub fn list_outbox(dir: &Path, limit: usize) -> Result<Vec<OutboxEntry>, MailError> {
    let read_dir = match std::fs::read_dir(dir) {
        Ok(read_dir) => read_dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names = Vec::new();
    for entry in read_dir {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Temp files of writes in progress start with a dot.
        if name.starts_with('.') || !name.ends_with(".eml") {
            continue;
        }
        names.push(name);
    }
    names.sort_unstable_by(|a, b| b.cmp(a));

    let mut entries = Vec::with_capacity(limit.min(names.len()));
    for name in names {
        if entries.len() >= limit {
            break;
        }
        let bytes = match std::fs::read(dir.join(&name)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(entry) = parse_eml(&name, &bytes) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words_and_quoted_printable() {
        let raw = concat!(
            "From: Mimoto <no-reply@mimoto.localhost>\r\n",
            "To: taro@example.com\r\n",
            "Subject: =?utf-8?b?44GC44GE44GG?=\r\n",
            "Date: Tue, 15 Nov 1994 08:12:31 +0000\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "=E3=81=82=E3=81=84=E3=81=86\r\ncode: 1\r\n",
        );
        let e = parse_eml("x.eml", raw.as_bytes()).unwrap();
        assert_eq!(e.to, "taro@example.com");
        assert_eq!(e.subject, "あいう");
        assert_eq!(e.date, "1994-11-15T08:12:31Z");
        assert_eq!(e.text, "あいう\ncode: 1\n");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_eml("x.eml", b"").is_none());
        assert!(parse_eml("x.eml", b"just some text\r\n").is_none());
    }

    #[test]
    fn missing_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_outbox(&dir.path().join("nope"), 10).unwrap().is_empty());
    }
}
