//! Partner API keys: generated from the operating system's random source, shown once,
//! and stored only as a SHA-256 hash (the key carries 240 random bits, so a plain hash is
//! as strong as a slow one would be, and lookups by hash stay cheap).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Every key starts with this, so leaked keys are easy to scan for.
pub const KEY_PREFIX: &str = "ask_";
/// Characters of the key shown in listings to tell keys apart.
const SHOWN_CHARS: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerKey {
    pub id: String,
    pub partner_id: String,
    pub prefix: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl PartnerKey {
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|end| now < end)
    }
}

/// A new clear key: the prefix and 60 hex digits from two v4 UUIDs (122 random bits
/// each, from the OS source).
pub fn generate() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{KEY_PREFIX}{a}{}", &b[..28])
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The part of a key safe to show.
pub fn shown_part(secret: &str) -> String {
    secret.chars().take(SHOWN_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 60);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(shown_part(&a), a[..12]);
    }
}
