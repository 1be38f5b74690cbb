//! Personal data at rest, one scheme for the whole suite: each field sealed with
//! AES-256-GCM under a named key, and a keyed hash (HMAC-SHA256) for the values a service
//! must find by equality without storing them in clear.
//!
//! Layout: each row carries the id of the key its fields were sealed with; each field is
//! `base64(nonce ‖ ciphertext ‖ tag)` with a fresh 96-bit nonce, and
//! `<context>/<row id>/<field>` as associated data, so a ciphertext moved to another row,
//! column or service fails to open. The context names the service (care seals under
//! `aftersales.care`, dispatch under `aftersales.dispatch`). Rotation: new keys are added
//! under new ids and made active; old ids stay configured so old rows still open, and a
//! row is sealed again under the active key whenever it is written.
//!
//! Configuration ([`vault_from_env`]): `<PREFIX>_ENCRYPTION_KEYS`, `<PREFIX>_ACTIVE_KEY_ID`
//! and, for a vault that hashes for search, `<PREFIX>_SEARCH_KEY`. Without keys only an
//! SQLite (development) database may start, on a public development key.

use std::collections::HashMap;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{ConfigError, Env};

const NONCE_LEN: usize = 12;
/// The id rows sealed with the public development key carry.
pub const DEV_KEY_ID: &str = "development-only";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("no encryption key with id {0:?} is configured")]
    UnknownKey(String),
    #[error("a sealed {0} does not open: wrong key or altered data")]
    Tampered(String),
    #[error("this vault has no search key")]
    NoSearchKey,
    #[error("{0}")]
    BadConfig(String),
}

/// The keys one service seals personal data with, and the key of its search hashes.
#[derive(Clone)]
pub struct Vault {
    context: String,
    keys: HashMap<String, Aes256Gcm>,
    active: String,
    search_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Vault {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Vault")
            .field("context", &self.context)
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
    /// Seals under `active`, opens under any of `keys`; `context` is the first part of
    /// every field's associated data.
    pub fn new(
        context: &str,
        keys: Vec<(String, [u8; 32])>,
        active: &str,
    ) -> Result<Self, VaultError> {
        let keys: HashMap<String, Aes256Gcm> = keys
            .into_iter()
            .map(|(id, key)| (id, Aes256Gcm::new(&key.into())))
            .collect();
        if !keys.contains_key(active) {
            return Err(VaultError::UnknownKey(active.to_owned()));
        }
        Ok(Self {
            context: context.to_owned(),
            keys,
            active: active.to_owned(),
            search_key: None,
        })
    }

    /// The same vault, also hashing for search under `search_key` (at least 16 bytes).
    pub fn with_search_key(mut self, search_key: Vec<u8>) -> Result<Self, VaultError> {
        if search_key.len() < 16 {
            return Err(VaultError::BadConfig(
                "the search key needs at least 16 bytes".into(),
            ));
        }
        self.search_key = Some(search_key);
        Ok(self)
    }

    /// A fixed key (and search key) for `aftersales dev` on SQLite and for tests: public,
    /// so it protects nothing. Start-up refuses it on PostgreSQL.
    pub fn development(context: &str) -> Self {
        let key: [u8; 32] = *b"aftersales-DEVELOPMENT-ONLY-key!";
        Self {
            context: context.to_owned(),
            keys: HashMap::from([(DEV_KEY_ID.to_owned(), Aes256Gcm::new(&key.into()))]),
            active: DEV_KEY_ID.to_owned(),
            search_key: Some(b"aftersales-DEVELOPMENT-ONLY-search".to_vec()),
        }
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Seals `clear` under the active key; empty stays empty (there is nothing to hide).
    pub fn seal(&self, row_id: &str, field: &str, clear: &str) -> Result<String, VaultError> {
        if clear.is_empty() {
            return Ok(String::new());
        }
        let cipher = self.cipher(&self.active)?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = self.associated_data(row_id, field);
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

    /// Opens a field of row `row_id` sealed under `key_id`.
    pub fn open(
        &self,
        key_id: &str,
        row_id: &str,
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
        let aad = self.associated_data(row_id, field);
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

    /// The search hash of a value the caller has already normalised: hex HMAC-SHA256
    /// under the search key; empty for an empty value.
    pub fn search_hash(&self, normalised: &str) -> Result<String, VaultError> {
        let key = self.search_key.as_ref().ok_or(VaultError::NoSearchKey)?;
        if normalised.is_empty() {
            return Ok(String::new());
        }
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
            .map_err(|_| VaultError::NoSearchKey)?;
        mac.update(normalised.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    fn cipher(&self, key_id: &str) -> Result<&Aes256Gcm, VaultError> {
        self.keys
            .get(key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))
    }

    fn associated_data(&self, row_id: &str, field: &str) -> Vec<u8> {
        format!("{}/{row_id}/{field}", self.context).into_bytes()
    }
}

// ---- masks: what a reader without clear-text rights sees ------------------------------

/// Keeps the first character (the family name, in Chinese order): "李**", "L**".
pub fn mask_name(name: &str) -> String {
    match name.chars().next() {
        Some(first) => format!("{first}**"),
        None => String::new(),
    }
}

/// Keeps the first three and last four digits: "138****0000".
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Keeps the first letter of the local part and the domain: "l***@example.com".
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None if email.is_empty() => String::new(),
        None => "***".into(),
    }
}

/// Keeps the first four characters (roughly the city), hides the rest.
pub fn mask_address(address: &str) -> String {
    if address.is_empty() {
        return String::new();
    }
    let head: String = address.chars().take(4).collect();
    format!("{head}***")
}

/// The phone as the search hash sees it: digits only, a leading "+86"/"0086" dropped, so
/// "+86 138-0000-0000" and "13800000000" find the same customer.
pub fn normalise_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let trimmed = if phone.trim_start().starts_with('+') {
        digits.strip_prefix("86").unwrap_or(&digits)
    } else {
        digits.strip_prefix("0086").unwrap_or(&digits)
    };
    trimmed.to_owned()
}

/// What [`vault_from_env`] reads.
#[derive(Debug, Clone, Copy)]
pub struct VaultSettings<'a> {
    /// The service's variable prefix, e.g. `CARE`.
    pub prefix: &'a str,
    /// The associated-data context, e.g. `aftersales.care`.
    pub context: &'a str,
    /// Whether the service hashes for search (and so needs `<PREFIX>_SEARCH_KEY`).
    pub search: bool,
    /// What the service seals, for the development-key warning.
    pub what: &'a str,
}

/// The vault `<PREFIX>_ENCRYPTION_KEYS`, `<PREFIX>_ACTIVE_KEY_ID` (optional with one key)
/// and `<PREFIX>_SEARCH_KEY` describe. Key material never appears in an error. Without
/// keys, only an SQLite (development) database may start, on the public development key.
pub fn vault_from_env(
    env: &Env,
    settings: VaultSettings<'_>,
    sqlite: bool,
) -> Result<Vault, ConfigError> {
    let VaultSettings {
        prefix,
        context,
        search,
        what,
    } = settings;
    let keys_var = format!("{prefix}_ENCRYPTION_KEYS");
    let active_var = format!("{prefix}_ACTIVE_KEY_ID");
    let search_var = format!("{prefix}_SEARCH_KEY");
    let Some(spec) = env.raw(&keys_var) else {
        if sqlite {
            tracing::warn!(
                "{keys_var} is not set: {what} are sealed with the PUBLIC development key; \
                 never use this outside development"
            );
            return Ok(Vault::development(context));
        }
        return Err(ConfigError::new(
            &keys_var,
            "",
            "is required on PostgreSQL: id:<base64 of 32 bytes>[,id:…]",
        ));
    };
    let hidden = "(hidden)";
    let keys = parse_keys(&spec).map_err(|e| ConfigError::new(&keys_var, hidden, e))?;
    let active = match (env.raw(&active_var), keys.as_slice()) {
        (Some(active), _) => active.trim().to_owned(),
        (None, [(only, _)]) => only.clone(),
        (None, _) => {
            return Err(ConfigError::new(
                &active_var,
                "",
                "is required when several keys are configured",
            ));
        }
    };
    if !keys.iter().any(|(id, _)| *id == active) {
        return Err(ConfigError::new(
            &active_var,
            &active,
            format!("is not a key id of {keys_var}"),
        ));
    }
    let vault = Vault::new(context, keys, &active)
        .map_err(|e| ConfigError::new(&active_var, &active, e))?;
    if !search {
        return Ok(vault);
    }
    let key = env.raw(&search_var).ok_or_else(|| {
        ConfigError::new(
            &search_var,
            "",
            format!("is required with {keys_var} (base64, at least 16 bytes)"),
        )
    })?;
    let key = STANDARD
        .decode(key.trim())
        .map_err(|e| ConfigError::new(&search_var, hidden, format!("not base64: {e}")))?;
    vault
        .with_search_key(key)
        .map_err(|e| ConfigError::new(&search_var, hidden, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(ids: &[(&str, u8)], active: &str) -> Vault {
        let keys = ids
            .iter()
            .map(|(id, b)| ((*id).to_owned(), [*b; 32]))
            .collect();
        Vault::new("aftersales.test", keys, active)
            .unwrap()
            .with_search_key(vec![7; 32])
            .unwrap()
    }

    #[test]
    fn seals_open_only_with_the_right_key_row_field_and_context() {
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
        let elsewhere = Vault::new("aftersales.other", vec![("k1".into(), [1; 32])], "k1").unwrap();
        assert!(matches!(
            elsewhere.open("k1", "c1", "phone", &sealed),
            Err(VaultError::Tampered(_))
        ));
        assert_ne!(
            sealed,
            v.seal("c1", "phone", "13800001234").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn opens_what_care_sealed_before_the_scheme_was_shared() {
        // The layout care's rows were stored in before the scheme moved here, made by an
        // independent AES-GCM (Python `cryptography`, nonce 0..11, development key, data
        // `aftersales.care/cust-1/phone`): stored rows must keep opening.
        let before = "AAECAwQFBgcICQoL+VBu6ehYyhmAF9Uy/WwE/PGcw6FERbrzl1x7";
        let v = Vault::development("aftersales.care");
        assert_eq!(
            v.open(DEV_KEY_ID, "cust-1", "phone", before).unwrap(),
            "13800001234"
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
    fn search_hashes_are_keyed() {
        let v = vault(&[("k1", 1)], "k1");
        let other = Vault::new("aftersales.test", vec![("k1".into(), [1; 32])], "k1")
            .unwrap()
            .with_search_key(vec![8; 32])
            .unwrap();
        let hash = v.search_hash("13800001234").unwrap();
        assert_ne!(hash, other.search_hash("13800001234").unwrap());
        assert!(!hash.contains("1380000"));
        assert_eq!(hash.len(), 64);
        assert_eq!(v.search_hash("").unwrap(), "");
        let unsearchable = Vault::new("aftersales.test", vec![("k1".into(), [1; 32])], "k1");
        assert_eq!(
            unsearchable.unwrap().search_hash("1"),
            Err(VaultError::NoSearchKey)
        );
        assert!(matches!(
            Vault::development("x").with_search_key(vec![1; 8]),
            Err(VaultError::BadConfig(_))
        ));
    }

    #[test]
    fn key_lists_parse_and_name_their_faults() {
        let k = STANDARD.encode([3u8; 32]);
        let keys = parse_keys(&format!("k1:{k}, k2:{k}")).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_keys("k1").is_err());
        assert!(parse_keys(&format!("k1:{}", STANDARD.encode([1u8; 16]))).is_err());
        assert!(parse_keys(&format!("k1:{k},k1:{k}")).is_err());
    }

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask_phone("13800001234"), "138****1234");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_email("lilei@example.com"), "l***@example.com");
        assert_eq!(mask_address("上海市徐汇区淮海路1号"), "上海市徐***");
        assert_eq!(mask_address(""), "");
        assert_eq!(mask_name("李雷"), "李**");
        assert_eq!(mask_name("Li Lei"), "L**");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn phones_normalise_to_national_digits() {
        assert_eq!(normalise_phone("+86 138-0000-1234"), "13800001234");
        assert_eq!(normalise_phone("0086 13800001234"), "13800001234");
        assert_eq!(normalise_phone("138 0000 1234"), "13800001234");
    }

    const SETTINGS: VaultSettings<'static> = VaultSettings {
        prefix: "SVC",
        context: "aftersales.svc",
        search: false,
        what: "test fields",
    };

    #[test]
    fn settings_need_keys_outside_development_and_hide_them() {
        let none = Env::from_pairs::<&str, &str>([]);
        let dev = vault_from_env(&none, SETTINGS, true).unwrap();
        assert_eq!(dev.active_key_id(), DEV_KEY_ID);
        let refused = vault_from_env(&none, SETTINGS, false).unwrap_err();
        assert!(
            refused.to_string().contains("SVC_ENCRYPTION_KEYS"),
            "{refused}"
        );

        let k = STANDARD.encode([3u8; 32]);
        let two = format!("k1:{k},k2:{k}");
        let env = Env::from_pairs([("SVC_ENCRYPTION_KEYS", two.as_str())]);
        let err = vault_from_env(&env, SETTINGS, false).unwrap_err();
        assert!(err.to_string().contains("SVC_ACTIVE_KEY_ID"), "{err}");
        let env = Env::from_pairs([
            ("SVC_ENCRYPTION_KEYS", two.as_str()),
            ("SVC_ACTIVE_KEY_ID", "k2"),
        ]);
        assert_eq!(
            vault_from_env(&env, SETTINGS, false)
                .unwrap()
                .active_key_id(),
            "k2"
        );
        let searching = VaultSettings {
            search: true,
            ..SETTINGS
        };
        let err = vault_from_env(&env, searching, false).unwrap_err();
        assert!(err.to_string().contains("SVC_SEARCH_KEY"), "{err}");
        let bad = Env::from_pairs([("SVC_ENCRYPTION_KEYS", "k1:c2VjcmV0")]);
        let err = vault_from_env(&bad, SETTINGS, false)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("c2VjcmV0"), "key material in {err}");
    }
}
