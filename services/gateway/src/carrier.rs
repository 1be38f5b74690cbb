//! Carrier webhooks carry no API key: each carrier signs the raw body with its shared
//! secret, `X-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, and the gateway checks
//! it in constant time before reading a byte of the body.

use std::{collections::HashMap, fmt};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::GatewayError;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret of each carrier, by carrier name. `Debug` shows only the names.
#[derive(Clone, Default)]
pub struct CarrierSecrets(HashMap<String, Vec<u8>>);

impl fmt::Debug for CarrierSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("CarrierSecrets").field(&names).finish()
    }
}

impl CarrierSecrets {
    /// Parses `sf=secret1,jd=secret2`. The error never repeats a secret.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut secrets = HashMap::new();
        for (i, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let Some((name, secret)) = entry.split_once('=') else {
                return Err(format!("entry {} is not carrier=secret", i + 1));
            };
            let (name, secret) = (name.trim(), secret.trim());
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "entry {}: carrier names are letters, digits, - and _",
                    i + 1
                ));
            }
            if secret.len() < 16 {
                return Err(format!(
                    "entry {} ({name}): the secret must be at least 16 characters",
                    i + 1
                ));
            }
            if secrets
                .insert(name.to_owned(), secret.as_bytes().to_vec())
                .is_some()
            {
                return Err(format!("carrier {name} is listed twice"));
            }
        }
        Ok(Self(secrets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `signature` (the `X-Signature` header) is the carrier's signature of `body`.
    /// An unknown carrier and a bad signature answer the same, so callers cannot probe
    /// which carriers exist.
    pub fn verify(
        &self,
        carrier: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), GatewayError> {
        let secret = self.0.get(carrier).ok_or(GatewayError::BadSignature)?;
        let given = signature
            .and_then(|s| s.trim().strip_prefix("sha256="))
            .and_then(|hex_digest| hex::decode(hex_digest).ok())
            .ok_or(GatewayError::BadSignature)?;
        let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| GatewayError::BadSignature)?;
        mac.update(body);
        mac.verify_slice(&given)
            .map_err(|_| GatewayError::BadSignature)
    }
}

/// The `X-Signature` value for `body` under `secret`: what a carrier sends.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // An HMAC takes a key of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SF: &str = "sf-secret-0123456789";

    #[test]
    fn a_good_signature_passes_and_any_change_fails() {
        let secrets = CarrierSecrets::parse(&format!("sf={SF}, jd=jd-secret-0123456789")).unwrap();
        let body = br#"{"event_id":"e1"}"#;
        let signature = sign(SF.as_bytes(), body);
        secrets.verify("sf", Some(&signature), body).unwrap();

        let tampered = br#"{"event_id":"e2"}"#;
        assert!(secrets.verify("sf", Some(&signature), tampered).is_err());
        assert!(secrets.verify("jd", Some(&signature), body).is_err());
        assert!(secrets.verify("ups", Some(&signature), body).is_err());
        assert!(secrets.verify("sf", None, body).is_err());
        assert!(secrets.verify("sf", Some("sha256=zz"), body).is_err());
        assert!(secrets.verify("sf", Some(&signature[7..]), body).is_err());
    }

    #[test]
    fn bad_specs_are_refused_without_echoing_secrets() {
        assert!(CarrierSecrets::parse("").unwrap().is_empty());
        let err = CarrierSecrets::parse("sf").unwrap_err();
        assert!(err.contains("carrier=secret"), "{err}");
        let err = CarrierSecrets::parse("sf=short").unwrap_err();
        assert!(!err.contains("short"), "{err}");
        assert!(CarrierSecrets::parse(&format!("sf={SF},sf={SF}")).is_err());
        assert!(CarrierSecrets::parse(&format!("s f={SF}")).is_err());
        let debug = format!("{:?}", CarrierSecrets::parse(&format!("sf={SF}")).unwrap());
        assert!(!debug.contains(SF), "{debug}");
    }
}
