//! Carrier webhooks carry no API key: each carrier signs the time of sending together
//! with the raw body, `X-Carrier-Timestamp: <unix seconds>` and
//! `X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. The gateway
//! checks the signature in constant time before reading a byte of the body, then refuses
//! a timestamp more than five minutes away from its own clock (either way), so a captured
//! request stops working. A replay within the window reaches returns, which records each
//! carrier event id once.

use std::{collections::HashMap, fmt};

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::GatewayError;

type HmacSha256 = Hmac<Sha256>;

/// The header with the signing time, in unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-carrier-timestamp";
/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-signature";
/// How far the signing time may be from the gateway's clock, either way.
pub const WINDOW_SECS: u64 = 300;
/// Unix seconds have 10 digits until the year 2286; a longer value is not a timestamp.
const MAX_TIMESTAMP_DIGITS: usize = 12;

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

    /// Whether `signature` (`X-Signature`) is the carrier's signature of `timestamp`
    /// (`X-Carrier-Timestamp`) and `body`, and the timestamp within the window around
    /// `now`. An unknown carrier and a bad signature answer the same, so callers cannot
    /// probe which carriers exist; only a correctly signed request learns that its
    /// timestamp is too far off.
    pub fn verify(
        &self,
        carrier: &str,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), GatewayError> {
        let timestamp = timestamp.map(str::trim).ok_or(GatewayError::BadTimestamp)?;
        let sent_at = parse_timestamp(timestamp).ok_or(GatewayError::BadTimestamp)?;
        let secret = self.0.get(carrier).ok_or(GatewayError::BadSignature)?;
        let given = signature
            .and_then(|s| s.trim().strip_prefix("sha256="))
            .and_then(|hex_digest| hex::decode(hex_digest).ok())
            .ok_or(GatewayError::BadSignature)?;
        mac(secret, timestamp, body)
            .ok_or(GatewayError::BadSignature)?
            .verify_slice(&given)
            .map_err(|_| GatewayError::BadSignature)?;
        if now.timestamp().abs_diff(sent_at) > WINDOW_SECS {
            return Err(GatewayError::StaleTimestamp {
                window_secs: WINDOW_SECS,
            });
        }
        Ok(())
    }
}

/// Unix seconds: digits only, no sign.
fn parse_timestamp(value: &str) -> Option<i64> {
    if value.is_empty()
        || value.len() > MAX_TIMESTAMP_DIGITS
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    value.parse().ok()
}

/// The HMAC of `"<timestamp>.<body>"` under `secret`.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Option<HmacSha256> {
    // An HMAC takes a key of any length, so this does not fail.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `X-Signature` value for `body` sent at `timestamp` (unix seconds) under `secret`:
/// what a carrier sends along with `X-Carrier-Timestamp: <timestamp>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    match mac(secret, &timestamp.to_string(), body) {
        Some(mac) => format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SF: &str = "sf-secret-0123456789";

    const NOW: i64 = 1_790_000_000;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    #[test]
    fn a_good_signature_passes_and_any_change_fails() {
        let secrets = CarrierSecrets::parse(&format!("sf={SF}, jd=jd-secret-0123456789")).unwrap();
        let body = br#"{"event_id":"e1"}"#;
        let signature = sign(SF.as_bytes(), NOW, body);
        let ts = NOW.to_string();
        let verify = |carrier: &str, signature: Option<&str>, ts: Option<&str>, body: &[u8]| {
            secrets.verify(carrier, signature, ts, body, now())
        };
        verify("sf", Some(&signature), Some(&ts), body).unwrap();

        let tampered = br#"{"event_id":"e2"}"#;
        let bad = |result: Result<(), GatewayError>| {
            assert!(
                matches!(result, Err(GatewayError::BadSignature)),
                "{result:?}"
            )
        };
        bad(verify("sf", Some(&signature), Some(&ts), tampered));
        bad(verify("jd", Some(&signature), Some(&ts), body));
        bad(verify("ups", Some(&signature), Some(&ts), body));
        bad(verify("sf", None, Some(&ts), body));
        bad(verify("sf", Some("sha256=zz"), Some(&ts), body));
        bad(verify("sf", Some(&signature[7..]), Some(&ts), body));
        // The timestamp is signed: moving it breaks the signature.
        bad(verify(
            "sf",
            Some(&signature),
            Some(&(NOW + 1).to_string()),
            body,
        ));
        // The body alone, as the old scheme signed it, is no longer enough.
        let mut old = HmacSha256::new_from_slice(SF.as_bytes()).unwrap();
        old.update(body);
        let old = format!("sha256={}", hex::encode(old.finalize().into_bytes()));
        bad(verify("sf", Some(&old), Some(&ts), body));
    }

    #[test]
    fn the_timestamp_must_be_present_readable_and_within_five_minutes() {
        let secrets = CarrierSecrets::parse(&format!("sf={SF}")).unwrap();
        let body = br#"{"event_id":"e1"}"#;
        let at = |sent: i64| {
            secrets.verify(
                "sf",
                Some(&sign(SF.as_bytes(), sent, body)),
                Some(&sent.to_string()),
                body,
                now(),
            )
        };
        at(NOW - 300).unwrap();
        at(NOW + 300).unwrap();
        for sent in [NOW - 301, NOW + 301, 0] {
            assert!(
                matches!(
                    at(sent),
                    Err(GatewayError::StaleTimestamp { window_secs: 300 })
                ),
                "{sent}"
            );
        }
        let signature = sign(SF.as_bytes(), NOW, body);
        for ts in [
            None,
            Some(""),
            Some("-5"),
            Some("+1790000000"),
            Some("17.9e8"),
            Some("1790000000000"),
        ] {
            assert!(
                matches!(
                    secrets.verify("sf", Some(&signature), ts, body, now()),
                    Err(GatewayError::BadTimestamp)
                ),
                "{ts:?}"
            );
        }
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
