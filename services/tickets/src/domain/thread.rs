//! A ticket's thread: public replies and internal notes, each with the attachments it
//! refers to. The rules of what an entry may hold live here; what a reply does to the
//! ticket's clocks is in `ticket::lifecycle`.

use chrono::{DateTime, Utc};

use super::{Author, DomainError, Visibility};

/// An entry of the thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: String,
    pub ticket_id: String,
    pub author: Author,
    /// An agent's entry: the verified caller; a customer's: the ticket's customer.
    pub author_id: String,
    pub body: String,
    pub visibility: Visibility,
    pub attachments: Vec<Attachment>,
    /// Who entered it (the verified caller); empty on entries written before it was kept.
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
    /// An agent's public reply that made a forbidden commitment, kept as an internal note
    /// until a supervisor releases it to the customer or discards it.
    pub held: bool,
}

/// A file kept elsewhere, named by its URL and proven by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub url: String,
    /// 64 lower-case hex digits.
    pub sha256: String,
}

/// The most attachments one entry refers to.
pub const MAX_ATTACHMENTS: usize = 10;
/// The longest attachment URL.
pub const MAX_URL: usize = 2048;
/// The schemes an attachment may be fetched by: the object store, or HTTPS.
const URL_SCHEMES: [&str; 2] = ["https://", "s3://"];

/// An attachment's URL: `https://` or `s3://` with something after it, no white space.
pub fn attachment_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("is required".into());
    }
    if url.chars().count() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let rest = URL_SCHEMES
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    match rest {
        Some(rest) if !rest.is_empty() && !url.chars().any(char::is_whitespace) => {
            Ok(url.to_owned())
        }
        Some(_) => Err("must name a file after the scheme, without white space".into()),
        None => Err("must start with https:// or s3://".into()),
    }
}

/// A SHA-256 digest as 64 hex digits, in lower case.
pub fn sha256_digest(digest: &str) -> Result<String, String> {
    let digest = digest.trim();
    if digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(digest.to_ascii_lowercase())
    } else {
        Err("must be a SHA-256 digest: 64 hex digits".into())
    }
}

/// Who may write an entry of a visibility: internal notes are the desk's.
pub fn may_write(author: Author, visibility: Visibility) -> Result<(), String> {
    match (author, visibility) {
        (Author::Customer, Visibility::Internal) => {
            Err("a customer writes public replies only; internal notes are the desk's".into())
        }
        _ => Ok(()),
    }
}

/// The author of an entry, never taken from the request alone: an agent's entry is the
/// verified caller's (`caller_id`); a customer's is the ticket's customer, and a request
/// naming someone else as that customer is refused.
pub fn author_id(
    author: Author,
    claimed: Option<&str>,
    caller_id: &str,
    customer_id: &str,
) -> Result<String, DomainError> {
    match author {
        Author::Agent => Ok(caller_id.to_owned()),
        Author::Customer => match claimed {
            Some(claimed) if claimed != customer_id => Err(DomainError::invalid(
                "author_id",
                "is not the ticket's customer",
            )),
            _ => Ok(customer_id.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_urls_are_https_or_object_store_references() {
        assert_eq!(
            attachment_url(" s3://evidence/photo 1.jpg"),
            Err("must name a file after the scheme, without white space".into())
        );
        assert_eq!(
            attachment_url("s3://evidence/1.jpg"),
            Ok("s3://evidence/1.jpg".into())
        );
        assert!(attachment_url("https://files.example.com/a.pdf").is_ok());
        for bad in [
            "",
            "http://files.example.com/a.pdf",
            "file:///etc/passwd",
            "s3://",
        ] {
            assert!(attachment_url(bad).is_err(), "{bad:?}");
        }
        let long = format!("https://{}", "a".repeat(MAX_URL));
        assert!(attachment_url(&long).unwrap_err().contains("at most"));
    }

    #[test]
    fn digests_are_64_hex_digits_kept_in_lower_case() {
        let upper = "AB".repeat(32);
        assert_eq!(sha256_digest(&upper), Ok("ab".repeat(32)));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            assert!(sha256_digest(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn authors_come_from_the_caller_or_the_ticket() {
        assert_eq!(
            author_id(Author::Agent, None, "agent-7", "c1"),
            Ok("agent-7".into())
        );
        assert_eq!(
            author_id(Author::Customer, None, "agent-7", "c1"),
            Ok("c1".into())
        );
        assert_eq!(
            author_id(Author::Customer, Some("c1"), "agent-7", "c1"),
            Ok("c1".into())
        );
        assert_eq!(
            author_id(Author::Customer, Some("c2"), "agent-7", "c1"),
            Err(DomainError::invalid(
                "author_id",
                "is not the ticket's customer"
            ))
        );
    }

    #[test]
    fn internal_notes_are_the_desks() {
        assert!(may_write(Author::Agent, Visibility::Internal).is_ok());
        assert!(may_write(Author::Customer, Visibility::Public).is_ok());
        assert!(may_write(Author::Customer, Visibility::Internal).is_err());
    }
}
