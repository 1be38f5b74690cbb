//! Reads settings from environment variables (12-factor) and fails start-up with a message
//! that names the variable at fault.

use std::{env, fmt::Display, str::FromStr, time::Duration};

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &str, value: &str, reason: impl Display) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Where variables come from: the process environment, or a fixed list in tests.
#[derive(Debug, Clone, Default)]
pub struct Env {
    overrides: Option<Vec<(String, String)>>,
    /// Values used where the source has none (`aftersales dev` wires its own issuer so).
    defaults: Vec<(String, String)>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::default()
    }

    /// This environment, with `name` set to `value` where it is unset.
    pub fn with_default(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults.push((name.into(), value.into()));
        self
    }

    /// Only the given pairs: for tests that must not see the caller's environment.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            overrides: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            defaults: Vec::new(),
        }
    }

    /// The raw value; an empty string counts as unset.
    pub fn raw(&self, name: &str) -> Option<String> {
        let value = match &self.overrides {
            Some(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            None => env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty()).or_else(|| {
            self.defaults
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    /// A parsed optional value.
    pub fn optional<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.raw(name)
            .map(|raw| {
                raw.trim()
                    .parse::<T>()
                    .map_err(|e| ConfigError::new(name, &raw, e))
            })
            .transpose()
    }

    /// A parsed value with a default when unset.
    pub fn or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// The first of several names that is set (a service-specific name before a shared one).
    pub fn first_of(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| self.raw(name))
    }

    /// A duration given in milliseconds; zero is refused unless `allow_zero`.
    pub fn millis(
        &self,
        name: &str,
        default_ms: u64,
        allow_zero: bool,
    ) -> Result<Duration, ConfigError> {
        let ms: u64 = self.or(name, default_ms)?;
        if ms == 0 && !allow_zero {
            return Err(ConfigError::new(name, "0", "must be greater than zero"));
        }
        Ok(Duration::from_millis(ms))
    }

    /// A period given in whole hours, at least one.
    pub fn hours(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        let hours: u64 = self.or(name, default)?;
        if hours == 0 {
            return Err(ConfigError::new(name, "0", "must be at least 1"));
        }
        Ok(Duration::from_secs(hours * 3600))
    }

    /// A count that must be at least one.
    pub fn positive(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        let n: usize = self.or(name, default)?;
        if n == 0 {
            return Err(ConfigError::new(name, "0", "must be at least 1"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_the_variable() {
        let env = Env::from_pairs([("SLA_SHARDS", "many")]);
        let err = env.positive("SLA_SHARDS", 16).unwrap_err();
        assert_eq!(err.name, "SLA_SHARDS");
        assert!(err.to_string().contains("SLA_SHARDS=\"many\""), "{err}");
    }

    #[test]
    fn unset_and_empty_fall_back_to_the_default() {
        let env = Env::from_pairs([("A", " ")]);
        assert_eq!(env.or("A", 3u32).unwrap(), 3);
        assert_eq!(env.or("B", 4u32).unwrap(), 4);
        assert!(env.millis("C", 0, false).is_err());
    }
}
