//! Contact fields at rest: AES-256-GCM under a named key, and a keyed hash (HMAC-SHA256)
//! of the normalised phone so a search by phone never stores or compares clear text.
//!
//! Layout: each customer row carries the id of the key its fields were sealed with; each
//! field is `base64(nonce ‖ ciphertext ‖ tag)` with a fresh 96-bit nonce, and the
//! customer id and field name as associated data, so a ciphertext moved to another row or
//! column fails to open. Rotation: new keys are added under new ids and made active; old
//! ids stay configured so old rows still open, and a row is sealed again under the
//! active key whenever it is written.

use std::collections::HashMap;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::customer::normalise_phone;

const NONCE_LEN: usize = 12;
/// The id rows sealed with the public development key carry.
pub const DEV_KEY_ID: &str = "development-only";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("no encryption key with id {0:?} is configured")]
    UnknownKey(String),
    #[error("a sealed {0} does not open: wrong key or altered data")]
    Tampered(String),
    #[error("{0}")]
    BadConfig(String),
}

/// The keys contact fields are sealed with, and the key of the phone search hash.
#[derive(Clone)]
pub struct Vault {
    keys: HashMap<String, Aes256Gcm>,
    active: String,
    search_key: Vec<u8>,
}

impl std::fmt::Debug for Vault {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Vault")
            .field("key_ids", &ids)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Parses `id:<base64 of 32 bytes>,id:…`.
pub fn parse_keys(spec: &str) -> Result<Vec<(String, [u8; 32])>, VaultError> {
    let mut keys = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, encoded) = entry.split_once(':').ok_or_else(|| {
            VaultError::BadConfig(format!("entry {entry:?} is not id:base64-key"))
        })?;
        let id = id.trim();
        if id.is_empty() || keys.iter().any(|(known, _)| known == id) {
            return Err(VaultError::BadConfig(format!(
                "key id {id:?} is empty or given twice"
            )));
        }
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|e| VaultError::BadConfig(format!("key {id}: not base64: {e}")))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            VaultError::BadConfig(format!("key {id}: {} bytes, AES-256 needs 32", b.len()))
        })?;
        keys.push((id.to_owned(), key));
    }
    if keys.is_empty() {
        return Err(VaultError::BadConfig("no keys given".into()));
    }
    Ok(keys)
}

impl Vault {
    pub fn new(
        keys: Vec<(String, [u8; 32])>,
        active: &str,
        search_key: Vec<u8>,
    ) -> Result<Self, VaultError> {
        if search_key.len() < 16 {
            return Err(VaultError::BadConfig(
                "the search key needs at least 16 bytes".into(),
            ));
        }
        let keys: HashMap<String, Aes256Gcm> = keys
            .into_iter()
            .map(|(id, key)| (id, Aes256Gcm::new(&key.into())))
            .collect();
        if !keys.contains_key(active) {
            return Err(VaultError::UnknownKey(active.to_owned()));
        }
        Ok(Self {
            keys,
            active: active.to_owned(),
            search_key,
        })
    }

    /// A fixed key for `aftersales dev` on SQLite and for tests: public, so it protects
    /// nothing. Start-up refuses it on PostgreSQL.
    pub fn development() -> Self {
        let key: [u8; 32] = *b"aftersales-DEVELOPMENT-ONLY-key!";
        Self {
            keys: HashMap::from([(DEV_KEY_ID.to_owned(), Aes256Gcm::new(&key.into()))]),
            active: DEV_KEY_ID.to_owned(),
            search_key: b"aftersales-DEVELOPMENT-ONLY-search".to_vec(),
        }
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Seals `clear` under the active key; empty stays empty (there is nothing to hide).
    pub fn seal(&self, customer_id: &str, field: &str, clear: &str) -> Result<String, VaultError> {
        if clear.is_empty() {
            return Ok(String::new());
        }
        let cipher = self.cipher(&self.active)?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(customer_id, field);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Tampered(field.to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Opens a field sealed under `key_id`.
    pub fn open(
        &self,
        key_id: &str,
        customer_id: &str,
        field: &str,
        sealed: &str,
    ) -> Result<String, VaultError> {
        if sealed.is_empty() {
            return Ok(String::new());
        }
        let cipher = self.cipher(key_id)?;
        let tampered = || VaultError::Tampered(field.to_owned());
        let bytes = STANDARD.decode(sealed).map_err(|_| tampered())?;
        if bytes.len() <= NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| tampered())?;
        let aad = associated_data(customer_id, field);
        let clear = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| tampered())?;
        String::from_utf8(clear).map_err(|_| tampered())
    }

    /// The search hash of a phone: hex HMAC-SHA256 of its normalised digits.
    pub fn phone_hash(&self, phone: &str) -> String {
        let normalised = normalise_phone(phone);
        if normalised.is_empty() {
            return String::new();
        }
        // HMAC takes keys of any length, so this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.search_key) else {
            return String::new();
        };
        mac.update(normalised.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn cipher(&self, key_id: &str) -> Result<&Aes256Gcm, VaultError> {
        self.keys
            .get(key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))
    }
}

fn associated_data(customer_id: &str, field: &str) -> Vec<u8> {
    format!("aftersales.care/{customer_id}/{field}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(ids: &[(&str, u8)], active: &str) -> Vault {
        let keys = ids
            .iter()
            .map(|(id, b)| ((*id).to_owned(), [*b; 32]))
            .collect();
        Vault::new(keys, active, vec![7; 32]).unwrap()
    }

    #[test]
    fn seals_open_only_with_the_right_key_row_and_field() {
        let v = vault(&[("k1", 1)], "k1");
        let sealed = v.seal("c1", "phone", "13800001234").unwrap();
        assert!(!sealed.contains("1380000"));
        assert_eq!(v.open("k1", "c1", "phone", &sealed).unwrap(), "13800001234");
        assert!(matches!(
            v.open("k1", "c2", "phone", &sealed),
            Err(VaultError::Tampered(_))
        ));
        assert!(matches!(
            v.open("k1", "c1", "email", &sealed),
            Err(VaultError::Tampered(_))
        ));
        assert!(matches!(
            v.open("k9", "c1", "phone", &sealed),
            Err(VaultError::UnknownKey(_))
        ));
        assert_ne!(
            sealed,
            v.seal("c1", "phone", "13800001234").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn rotation_keeps_old_rows_readable() {
        let old = vault(&[("k1", 1)], "k1");
        let sealed = old.seal("c1", "email", "a@b.c").unwrap();
        let rotated = vault(&[("k1", 1), ("k2", 2)], "k2");
        assert_eq!(rotated.open("k1", "c1", "email", &sealed).unwrap(), "a@b.c");
        assert_eq!(rotated.active_key_id(), "k2");
    }

    #[test]
    fn phone_hashes_are_keyed_and_normalised() {
        let v = vault(&[("k1", 1)], "k1");
        assert_eq!(
            v.phone_hash("+86 138 0000 1234"),
            v.phone_hash("13800001234")
        );
        let other = Vault::new(vec![("k1".into(), [1; 32])], "k1", vec![8; 32]).unwrap();
        assert_ne!(v.phone_hash("13800001234"), other.phone_hash("13800001234"));
        assert!(!v.phone_hash("13800001234").contains("1380000"));
    }

    #[test]
    fn key_lists_parse_and_name_their_faults() {
        let k = STANDARD.encode([3u8; 32]);
        let keys = parse_keys(&format!("k1:{k}, k2:{k}")).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_keys("k1").is_err());
        assert!(parse_keys(&format!("k1:{}", STANDARD.encode([1u8; 16]))).is_err());
        assert!(parse_keys(&format!("k1:{k},k1:{k}")).is_err());
        assert!(Vault::development().phone_hash("1").len() == 64);
    }
}
