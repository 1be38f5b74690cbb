//! Cursor paging shared by every List RPC: the cursor is the last id of a page (UUIDv7,
//! so id order is creation order), opaque to callers.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::status::Violations;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// The page token for the page after the one ending with `last_id`.
pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id)
}

/// The id a page token stands for; a violation on `page_token` when it is not ours.
pub fn decode_cursor(v: &mut Violations, token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|id| uuid::Uuid::parse_str(id).is_ok());
    if decoded.is_none() {
        v.add("page_token", "is not a token from an earlier page");
    }
    decoded
}

/// The page size to use: 0 means the default, anything above the maximum is capped.
pub fn page_size(requested: u32) -> u64 {
    match u64::from(requested) {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_named() {
        let id = "0195f0a2-7c1e-7000-8000-000000000001";
        let mut v = Violations::new();
        assert_eq!(
            decode_cursor(&mut v, &encode_cursor(id)).as_deref(),
            Some(id)
        );
        assert!(decode_cursor(&mut v, "garbage!").is_none());
        assert_eq!(v.into_vec()[0].field, "page_token");
        assert_eq!(
            (page_size(0), page_size(10), page_size(10_000)),
            (50, 10, 500)
        );
    }
}
