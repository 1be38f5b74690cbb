//! Customer profiles: contact fields and how they are masked (the masks and phone
//! normalisation are the suite's, from `aftersales_platform::seal`), purchase statistics
//! and the tier rules over them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use aftersales_platform::seal::{
    mask_address, mask_email, mask_name, mask_phone, normalise_phone,
};

use super::{DomainError, Tier};

/// The contact fields that are encrypted at rest and masked for readers without
/// `pii:read`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub phone: String,
    pub email: String,
    pub address: String,
}

impl Contact {
    pub const FIELDS: [&'static str; 3] = ["phone", "email", "address"];

    /// What a reader without `pii:read` sees.
    pub fn masked(&self) -> Contact {
        Contact {
            phone: mask_phone(&normalise_phone(&self.phone)),
            email: mask_email(&self.email),
            address: mask_address(&self.address),
        }
    }

    /// The fields that hold something (the ones an unmasked read discloses).
    pub fn present_fields(&self) -> Vec<&'static str> {
        let values = [&self.phone, &self.email, &self.address];
        Self::FIELDS
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(f, _)| *f)
            .collect()
    }
}

/// Purchases as the order system reports them; values in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseStats {
    pub order_count: u32,
    pub order_value_minor: i64,
    pub currency: String,
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
}

/// The tier thresholds: VIP is high value and high repeat, potential is high value with
/// fewer orders, everyone else is regular.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRules {
    pub currency: String,
    pub vip_min_value_minor: i64,
    pub vip_min_orders: u32,
    pub potential_min_value_minor: i64,
    pub version: u32,
}

impl TierRules {
    /// Defaults until someone sets rules: VIP from 20 000 CNY over 5 orders, potential
    /// from 5 000 CNY.
    pub fn default_rules() -> Self {
        Self {
            currency: "CNY".into(),
            vip_min_value_minor: 2_000_000,
            vip_min_orders: 5,
            potential_min_value_minor: 500_000,
            version: 0,
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        if self.vip_min_value_minor < 0 || self.potential_min_value_minor < 0 {
            return Err(DomainError::invalid(
                "rules.vip_min_value",
                "thresholds must not be negative",
            ));
        }
        if self.potential_min_value_minor > self.vip_min_value_minor {
            return Err(DomainError::invalid(
                "rules.potential_min_value",
                "must not exceed the VIP threshold",
            ));
        }
        if self.vip_min_orders == 0 {
            return Err(DomainError::invalid(
                "rules.vip_min_orders",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The tier for these purchases. Values in another currency than the rules' do not
    /// count: converting currencies is not care's business.
    pub fn tier_of(&self, stats: &PurchaseStats) -> Tier {
        let value = if stats.currency == self.currency || stats.order_value_minor == 0 {
            stats.order_value_minor
        } else {
            0
        };
        if value >= self.vip_min_value_minor && stats.order_count >= self.vip_min_orders {
            Tier::Vip
        } else if value >= self.potential_min_value_minor && value > 0 {
            Tier::Potential
        } else {
            Tier::Regular
        }
    }
}

/// A profile with its name and contact in clear text, as the service holds it in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub contact: Contact,
    pub region_code: String,
    pub purchases: PurchaseStats,
    pub tier: Tier,
    pub anonymised: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
}

/// The name an anonymised profile keeps.
pub const ANONYMISED_NAME: &str = "(anonymised)";

impl Customer {
    /// The name a reader without `pii:read` sees (an anonymised profile's stays as it is:
    /// it names no one).
    pub fn masked_name(&self) -> String {
        if self.anonymised {
            self.name.clone()
        } else {
            mask_name(&self.name)
        }
    }

    /// The personal fields that hold something (the ones an unmasked read discloses).
    pub fn present_fields(&self) -> Vec<&'static str> {
        let name = (!self.name.is_empty() && !self.anonymised).then_some("name");
        name.into_iter()
            .chain(self.contact.present_fields())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_value_and_frequency() {
        let rules = TierRules::default_rules();
        let stats = |orders, value| PurchaseStats {
            order_count: orders,
            order_value_minor: value,
            currency: "CNY".into(),
            ..Default::default()
        };
        assert_eq!(rules.tier_of(&stats(6, 2_500_000)), Tier::Vip);
        assert_eq!(rules.tier_of(&stats(2, 2_500_000)), Tier::Potential);
        assert_eq!(rules.tier_of(&stats(9, 100_000)), Tier::Regular);
        let mut usd = stats(6, 2_500_000);
        usd.currency = "USD".into();
        assert_eq!(rules.tier_of(&usd), Tier::Regular);
    }
}
