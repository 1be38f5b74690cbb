//! A partner's monthly settlement statements and their pages.

use aftersales_platform::codes::ProtoEnum;
use aftersales_protos::{dispatch::v1 as dispatch, partner::v1 as partner};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Money, Payer, SettlementStatus, instant};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettlementLine {
    pub job_id: String,
    pub quote_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

/// Your statement for one month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Settlement {
    pub id: String,
    /// `YYYY-MM`, in your time zone.
    pub month: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SettlementStatus>,
    pub lines: Vec<SettlementLine>,
    /// What the company owes you (warranty jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_total: Option<Money>,
    /// What you collected from customers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_total: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    pub dispute_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<dispatch::Settlement> for Settlement {
    fn from(s: dispatch::Settlement) -> Self {
        Self {
            id: s.id,
            month: s.month,
            status: SettlementStatus::from_proto(s.status),
            lines: s
                .lines
                .into_iter()
                .map(|l| SettlementLine {
                    job_id: l.job_id,
                    quote_id: l.quote_id,
                    completed_at: instant(l.completed_at),
                    payer: Payer::from_proto(l.payer),
                    amount: l.amount.map(Money::from),
                })
                .collect(),
            company_total: s.company_total.map(Money::from),
            customer_total: s.customer_total.map(Money::from),
            total: s.total.map(Money::from),
            dispute_reason: s.dispute_reason,
            generated_at: instant(s.generated_at),
            updated_at: instant(s.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettlementPage {
    pub settlements: Vec<Settlement>,
    pub next_page_token: String,
}

impl From<partner::ListSettlementsResponse> for SettlementPage {
    fn from(r: partner::ListSettlementsResponse) -> Self {
        Self {
            settlements: r.settlements.into_iter().map(Settlement::from).collect(),
            next_page_token: r.next_page_token,
        }
    }
}
