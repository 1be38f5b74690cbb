//! A partner's scorecard over a period, from its offer and job history: acceptance,
//! on-time visits, first-time fixes, remote resolutions, time to complete and cost per
//! job. The same figures
//! feed the ranking of candidates (`quality`).

use chrono::{DateTime, Utc};

use super::{Money, OfferStatus};

/// What a ranking assumes of a partner with no history yet in a figure: a fair record,
/// neither the best nor the worst.
const NEUTRAL_PRIOR: f64 = 0.8;

/// One job of the partner, as the scorecard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFact {
    pub accepted_at: Option<DateTime<Utc>>,
    /// `Some(true)` on time, `Some(false)` late, `None` not decided yet.
    pub visit_on_time: Option<bool>,
    pub completed_at: Option<DateTime<Utc>>,
    pub first_time_fix: bool,
    /// Approved quote totals, in the partner's currency.
    pub approved_minor: i64,
    /// Closed by remote diagnosis, without a visit.
    pub remote: bool,
}

/// One offer made to the partner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfferFact {
    pub offered_at: DateTime<Utc>,
    pub status: OfferStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    pub partner_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub offers: u32,
    pub offers_accepted: u32,
    pub acceptance_rate: f64,
    pub visits: u32,
    pub visits_on_time: u32,
    pub on_time_visit_rate: f64,
    pub jobs_completed: u32,
    pub first_time_fixes: u32,
    pub first_time_fix_rate: f64,
    pub mean_hours_to_complete: f64,
    pub cost_per_job: Money,
    /// Completed jobs closed by remote diagnosis, and their share of completed jobs.
    pub remote_resolutions: u32,
    pub remote_resolution_rate: f64,
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// Offers count by when they were made; visits by when the job was accepted; completions
/// by when they happened — each within `[from, to)`.
pub fn compute(
    partner_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    currency: &str,
    offers: &[OfferFact],
    jobs: &[JobFact],
) -> Scorecard {
    let within = |t: DateTime<Utc>| t >= from && t < to;
    let offers: Vec<&OfferFact> = offers.iter().filter(|o| within(o.offered_at)).collect();
    let accepted = offers
        .iter()
        .filter(|o| o.status == OfferStatus::Accepted)
        .count() as u32;
    // Open offers are undecided and withdrawn ones were never the partner's to answer.
    let answered = offers
        .iter()
        .filter(|o| {
            matches!(
                o.status,
                OfferStatus::Accepted | OfferStatus::Declined | OfferStatus::Expired
            )
        })
        .count() as u32;

    let visits: Vec<bool> = jobs
        .iter()
        .filter(|j| j.accepted_at.is_some_and(within))
        .filter_map(|j| j.visit_on_time)
        .collect();
    let visits_on_time = visits.iter().filter(|on_time| **on_time).count() as u32;

    let completed: Vec<&JobFact> = jobs
        .iter()
        .filter(|j| j.completed_at.is_some_and(within))
        .collect();
    let jobs_completed = completed.len() as u32;
    let first_time_fixes = completed.iter().filter(|j| j.first_time_fix).count() as u32;
    let remote_resolutions = completed.iter().filter(|j| j.remote).count() as u32;
    let hours: Vec<f64> = completed
        .iter()
        .filter_map(|j| {
            let (accepted, done) = (j.accepted_at?, j.completed_at?);
            Some((done - accepted).num_seconds() as f64 / 3_600.0)
        })
        .collect();
    let mean_hours = if hours.is_empty() {
        0.0
    } else {
        hours.iter().sum::<f64>() / hours.len() as f64
    };
    let cost: i64 = completed.iter().map(|j| j.approved_minor).sum();
    let cost_per_job = if jobs_completed == 0 {
        0
    } else {
        // Rounded half away from zero to the minor unit.
        let n = i64::from(jobs_completed);
        (2 * cost + n).div_euclid(2 * n)
    };

    Scorecard {
        partner_id: partner_id.to_owned(),
        from,
        to,
        offers: offers.len() as u32,
        offers_accepted: accepted,
        acceptance_rate: ratio(accepted, answered),
        visits: visits.len() as u32,
        visits_on_time,
        on_time_visit_rate: ratio(visits_on_time, visits.len() as u32),
        jobs_completed,
        first_time_fixes,
        first_time_fix_rate: ratio(first_time_fixes, jobs_completed),
        mean_hours_to_complete: mean_hours,
        cost_per_job: Money::new(cost_per_job, currency),
        remote_resolutions,
        remote_resolution_rate: ratio(remote_resolutions, jobs_completed),
    }
}

/// The record a ranking uses, in [0, 1]: the mean of acceptance, on-time and first-time-fix
/// rates, each replaced by a neutral prior while it has nothing to stand on.
pub fn quality(card: &Scorecard) -> f64 {
    let or_prior = |rate: f64, n: u32| if n == 0 { NEUTRAL_PRIOR } else { rate };
    (or_prior(card.acceptance_rate, card.offers)
        + or_prior(card.on_time_visit_rate, card.visits)
        + or_prior(card.first_time_fix_rate, card.jobs_completed))
        / 3.0
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
    }

    #[test]
    fn figures_from_a_known_history() {
        let offers = [
            OfferFact {
                offered_at: t(1),
                status: OfferStatus::Accepted,
            },
            OfferFact {
                offered_at: t(2),
                status: OfferStatus::Accepted,
            },
            OfferFact {
                offered_at: t(3),
                status: OfferStatus::Declined,
            },
            OfferFact {
                offered_at: t(4),
                status: OfferStatus::Expired,
            },
            OfferFact {
                offered_at: t(5),
                status: OfferStatus::Open,
            },
            OfferFact {
                offered_at: t(6),
                status: OfferStatus::Withdrawn,
            },
            OfferFact {
                offered_at: t(-1),
                status: OfferStatus::Accepted,
            }, // before the period
        ];
        let jobs = [
            JobFact {
                accepted_at: Some(t(1)),
                visit_on_time: Some(true),
                completed_at: Some(t(11)),
                first_time_fix: true,
                approved_minor: 10_000,
                remote: true,
            },
            JobFact {
                accepted_at: Some(t(2)),
                visit_on_time: Some(false),
                completed_at: Some(t(32)),
                first_time_fix: false,
                approved_minor: 5_001,
                remote: false,
            },
            JobFact {
                accepted_at: Some(t(3)),
                visit_on_time: None,
                completed_at: None,
                first_time_fix: false,
                approved_minor: 0,
                remote: false,
            },
        ];
        let card = compute("P", t(0), t(24 * 30), "CNY", &offers, &jobs);
        assert_eq!(card.offers, 6);
        assert_eq!(card.offers_accepted, 2);
        assert_eq!(card.acceptance_rate, 0.5); // 2 of accepted+declined+expired = 4
        assert_eq!((card.visits, card.visits_on_time), (2, 1));
        assert_eq!(card.on_time_visit_rate, 0.5);
        assert_eq!((card.jobs_completed, card.first_time_fixes), (2, 1));
        assert_eq!(card.first_time_fix_rate, 0.5);
        assert_eq!(card.mean_hours_to_complete, 20.0); // (10 + 30) / 2
        assert_eq!(card.cost_per_job, Money::new(7_501, "CNY")); // 15,001 / 2 rounded
        assert_eq!(card.remote_resolutions, 1, "the first job, closed remotely");
        assert_eq!(card.remote_resolution_rate, 0.5); // 1 of 2 completed
        assert!((quality(&card) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn an_empty_history_is_neutral_not_perfect() {
        let card = compute("P", t(0), t(1), "CNY", &[], &[]);
        assert_eq!(card.acceptance_rate, 0.0);
        assert_eq!(card.cost_per_job, Money::new(0, "CNY"));
        assert!((quality(&card) - NEUTRAL_PRIOR).abs() < 1e-9);
    }
}
