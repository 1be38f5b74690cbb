//! The one request-validation kit every service's `api` layer uses: ids, trimmed
//! non-empty text, length and count limits, idempotency keys and paging all report
//! through [`Violations`] with the field they are in. Control characters are refused at
//! the codec for every gRPC request (`aftersales_protos::text`); [`Violations::clean`]
//! applies the same rule to input that does not arrive as protobuf (the gateway's HTTP
//! face).

use aftersales_protos::text::{UNCLEAN, is_clean};
use prost::Message;
use tonic::Status;

use crate::{
    idempotency::{Idempotency, fingerprint},
    status::Violations,
};

/// The longest id or idempotency key accepted, in characters.
pub const MAX_ID: usize = 128;

impl Violations {
    /// Adds a violation when `value` holds NUL or another control character.
    pub fn clean(&mut self, field: &str, value: &str) {
        if !is_clean(value) {
            self.add(field, UNCLEAN);
        }
    }

    /// A required id: present, at most [`MAX_ID`] characters, clean.
    pub fn id(&mut self, field: &str, value: &str) {
        self.require(field, value);
        self.max_len(field, value, MAX_ID);
        self.clean(field, value);
    }

    /// An optional id: when given, at most [`MAX_ID`] characters and clean.
    pub fn optional_id(&mut self, field: &str, value: &str) {
        self.max_len(field, value, MAX_ID);
        self.clean(field, value);
    }

    /// Required text of at most `max` characters.
    pub fn required_text(&mut self, field: &str, value: &str, max: usize) {
        self.require(field, value);
        self.text(field, value, max);
    }

    /// Optional text of at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        self.max_len(field, value, max);
        self.clean(field, value);
    }

    /// A list of at most `max` entries.
    pub fn max_count<T>(&mut self, field: &str, values: &[T], max: usize) {
        if values.len() > max {
            self.add(field, format!("at most {max} entries"));
        }
    }

    /// The idempotency key of `request` (in its `idempotency_key` field) and the
    /// fingerprint of the request without it; `None` when no key was sent. Keys are
    /// trimmed, so `" k "` and `"k"` are the same key.
    pub fn idempotency<M: Message + Clone>(
        &mut self,
        key: &str,
        request: &M,
        clear_key: impl FnOnce(&mut M),
    ) -> Option<Idempotency> {
        self.optional_id("idempotency_key", key);
        let key = non_empty(key)?;
        let mut keyless = request.clone();
        clear_key(&mut keyless);
        Some(Idempotency {
            key,
            fingerprint: fingerprint(&keyless.encode_to_vec()),
        })
    }
}

/// The trimmed text, or `None` when nothing is left: how every optional filter and
/// field reads an empty string.
pub fn non_empty(s: &str) -> Option<String> {
    let trimmed = s.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A required id on its own; `InvalidArgument` naming `field` when it is missing, too
/// long or unclean.
pub fn id(field: &str, value: &str) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id(field, value);
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::field_violations;

    #[test]
    fn ids_are_required_bounded_and_clean() {
        assert!(id("ticket_id", "T-1").is_ok());
        for bad in ["", "  ", "a\0b", "a\u{1b}b"] {
            let err = id("ticket_id", bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert_eq!(field_violations(&err)[0].field, "ticket_id", "{bad:?}");
        }
        let err = id("ticket_id", &"x".repeat(MAX_ID + 1)).unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "ticket_id");
    }

    #[test]
    fn text_keeps_line_breaks_and_refuses_control_characters() {
        let mut v = Violations::new();
        v.text("note", "two\nlines\tand a tab", 100);
        assert!(v.is_empty());
        v.text("note", "bell\u{7}", 100);
        v.required_text("subject", "", 10);
        let fields: Vec<_> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["note", "subject"]);
    }

    #[test]
    fn optional_text_is_trimmed_and_empty_is_none() {
        assert_eq!(non_empty("  a b "), Some("a b".to_owned()));
        assert_eq!(non_empty(" \t"), None);
    }

    #[test]
    fn idempotency_keys_are_trimmed_and_fingerprint_the_rest() {
        use aftersales_protos::tickets::v1::GetTicketRequest;
        let mut v = Violations::new();
        let a = GetTicketRequest { id: "k".into() };
        let with = v.idempotency(" key ", &a, |m| m.id.clear());
        let same = v.idempotency("key", &a, |m| m.id.clear());
        assert_eq!(with, same);
        assert_eq!(with.map(|i| i.key), Some("key".to_owned()));
        assert!(v.idempotency("", &a, |_| {}).is_none());
        assert!(v.is_empty());
    }
}
