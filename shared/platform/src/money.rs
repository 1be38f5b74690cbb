//! Money as every service keeps it: integer minor units of an ISO 4217 currency, with
//! the one validation and the one conversion to and from `aftersales.common.v1.Money`.

use aftersales_protos::common::v1 as common;
use serde::{Deserialize, Serialize};

use crate::status::Violations;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: String,
}

impl Money {
    pub fn new(minor: i64, currency: &str) -> Self {
        Self {
            minor,
            currency: currency.to_owned(),
        }
    }

    pub fn to_proto(&self) -> common::Money {
        common::Money {
            minor_units: self.minor,
            currency: self.currency.clone(),
        }
    }
}

impl Violations {
    /// A required money field: a non-negative amount in a three-letter upper-case
    /// currency; violations name `field.minor_units` / `field.currency`.
    pub fn money(&mut self, field: &str, m: Option<&common::Money>) -> Option<Money> {
        let Some(m) = m else {
            self.add(field, "is required");
            return None;
        };
        if m.minor_units < 0 {
            self.add(format!("{field}.minor_units"), "must not be negative");
        }
        if m.currency.len() != 3 || !m.currency.chars().all(|c| c.is_ascii_uppercase()) {
            self.add(
                format!("{field}.currency"),
                "must be an ISO 4217 code such as CNY",
            );
            return None;
        }
        Some(Money::new(m.minor_units, &m.currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_amounts_are_named_by_their_part() {
        let mut v = Violations::new();
        let bad = common::Money {
            minor_units: -1,
            currency: "cny".into(),
        };
        assert_eq!(v.money("price", Some(&bad)), None);
        assert_eq!(v.money("fee", None), None);
        let fields: Vec<String> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, vec!["price.minor_units", "price.currency", "fee"]);
        let mut v = Violations::new();
        let good = Money::new(1_999, "CNY");
        assert_eq!(v.money("price", Some(&good.to_proto())), Some(good));
    }
}
