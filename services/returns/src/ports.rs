//! The outside world the returns service talks to, behind ports: carriers that book
//! pickups, and payment providers that pay refunds and cash compensation. Built-in adapters: a manual carrier
//! (staff enter the courier's tracking number), and simulated carrier and payment
//! provider for development and tests.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use crate::domain::{Money, refund::PaymentOutcome};

/// What a carrier booking gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub tracking_number: String,
    pub label_ref: String,
    pub fee: Money,
}

/// A pickup request to a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupRequest {
    pub return_id: String,
    /// Given by staff for the manual carrier.
    pub tracking_number: Option<String>,
    /// Given by staff for the manual carrier; the simulated carrier charges its own.
    pub fee: Option<Money>,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    #[error("unknown carrier {0:?} (known: manual, simulated)")]
    Unknown(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The carriers this deployment can book.
#[derive(Debug, Clone)]
pub struct Carriers {
    simulated_fee_minor: i64,
}

impl Carriers {
    pub fn new(simulated_fee_minor: i64) -> Self {
        Self {
            simulated_fee_minor,
        }
    }

    pub fn book(&self, carrier: &str, request: &PickupRequest) -> Result<Booking, CarrierError> {
        match carrier {
            "manual" => {
                let tracking_number =
                    request
                        .tracking_number
                        .clone()
                        .ok_or(CarrierError::Invalid {
                            field: "tracking_number",
                            reason: "is required for the manual carrier".into(),
                        })?;
                Ok(Booking {
                    label_ref: format!("manual:{tracking_number}"),
                    tracking_number,
                    fee: request
                        .fee
                        .clone()
                        .unwrap_or_else(|| Money::new(0, &request.currency)),
                })
            }
            "simulated" => {
                let tracking_number = format!(
                    "SIM{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12].to_uppercase()
                );
                Ok(Booking {
                    label_ref: format!("label://simulated/{tracking_number}.pdf"),
                    tracking_number,
                    fee: Money::new(self.simulated_fee_minor, &request.currency),
                })
            }
            other => Err(CarrierError::Unknown(other.to_owned())),
        }
    }
}

/// The payment provider refunds and cash compensation go through.
#[derive(Debug, Clone)]
pub enum PaymentProvider {
    Simulated(SimulatedPayments),
}

impl PaymentProvider {
    /// Pays `amount` back on `order_id`. The provider dedupes on `idempotency_key`: the
    /// same key never pays twice, whoever retries it.
    pub async fn refund(
        &self,
        idempotency_key: &str,
        order_id: &str,
        amount: &Money,
    ) -> PaymentOutcome {
        match self {
            Self::Simulated(p) => p.pay(idempotency_key, order_id, amount),
        }
    }

    /// Pays a customer `amount` as cash compensation: back on `order_id`'s payment when one
    /// is named, else to the customer's account. Deduped on `idempotency_key` like a
    /// refund: the same key never pays twice.
    pub async fn compensate(
        &self,
        idempotency_key: &str,
        customer_id: &str,
        order_id: Option<&str>,
        amount: &Money,
    ) -> PaymentOutcome {
        match self {
            Self::Simulated(p) => p.pay(idempotency_key, order_id.unwrap_or(customer_id), amount),
        }
    }
}

/// An in-memory payment provider with the real one's contract: idempotent by key, and it
/// can be told to fail the next calls transiently.
#[derive(Debug, Clone, Default)]
pub struct SimulatedPayments {
    state: Arc<Mutex<PaymentsState>>,
}

#[derive(Debug, Default)]
struct PaymentsState {
    /// Key → (reference, amount paid).
    paid: HashMap<String, (String, Money)>,
    fail_transiently: u32,
    fail_permanently: u32,
    calls: u32,
}

impl SimulatedPayments {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, PaymentsState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pay(&self, key: &str, payee: &str, amount: &Money) -> PaymentOutcome {
        let mut state = self.state();
        state.calls += 1;
        if let Some((reference, paid)) = state.paid.get(key) {
            return if paid == amount {
                PaymentOutcome::Paid {
                    reference: reference.clone(),
                }
            } else {
                PaymentOutcome::Permanent(format!("key {key} was used for another amount"))
            };
        }
        if state.fail_transiently > 0 {
            state.fail_transiently -= 1;
            return PaymentOutcome::Transient("provider timed out".into());
        }
        if state.fail_permanently > 0 {
            state.fail_permanently -= 1;
            return PaymentOutcome::Permanent("account closed".into());
        }
        let reference = format!("SIMPAY-{payee}-{}", state.paid.len() + 1);
        state
            .paid
            .insert(key.to_owned(), (reference.clone(), amount.clone()));
        PaymentOutcome::Paid { reference }
    }

    /// Makes the next `n` new payments fail with a retryable error.
    pub fn fail_next_transiently(&self, n: u32) {
        self.state().fail_transiently = n;
    }

    /// Makes the next `n` new payments be refused for good.
    pub fn fail_next_permanently(&self, n: u32) {
        self.state().fail_permanently = n;
    }

    /// Money actually paid out: one entry per distinct key.
    pub fn payments(&self) -> Vec<Money> {
        self.state().paid.values().map(|(_, m)| m.clone()).collect()
    }

    /// Calls made, paid or not.
    pub fn calls(&self) -> u32 {
        self.state().calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_key_pays_once() {
        let sim = SimulatedPayments::new();
        let provider = PaymentProvider::Simulated(sim.clone());
        let amount = Money::new(500, "CNY");
        sim.fail_next_transiently(1);
        assert!(matches!(
            provider.refund("k", "o", &amount).await,
            PaymentOutcome::Transient(_)
        ));
        let first = provider.refund("k", "o", &amount).await;
        let again = provider.refund("k", "o", &amount).await;
        assert_eq!(first, again);
        assert_eq!(sim.payments().len(), 1);
        assert!(matches!(
            provider.refund("k", "o", &Money::new(1, "CNY")).await,
            PaymentOutcome::Permanent(_)
        ));
    }

    #[test]
    fn the_manual_carrier_needs_a_tracking_number() {
        let carriers = Carriers::new(1_200);
        let request = PickupRequest {
            return_id: "r".into(),
            tracking_number: None,
            fee: None,
            currency: "CNY".into(),
        };
        assert!(matches!(
            carriers.book("manual", &request),
            Err(CarrierError::Invalid {
                field: "tracking_number",
                ..
            })
        ));
        let booked = carriers.book("simulated", &request).unwrap();
        assert!(booked.tracking_number.starts_with("SIM"));
        assert_eq!(booked.fee, Money::new(1_200, "CNY"));
        assert!(matches!(
            carriers.book("pigeon", &request),
            Err(CarrierError::Unknown(_))
        ));
    }
}
