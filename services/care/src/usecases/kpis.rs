//! Analytics over care's read model: the KPI report of a period, grouped by a dimension,
//! and the weekly quality report. Reads only; the figures themselves are computed in
//! `domain::kpi` and `domain::quality`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::{
    domain::{
        KpiDimension, SurveySubject,
        facts::{Dims, TicketFact},
        kpi::{self, JobFact, KpiGroup, KpiInput, REPEAT_WINDOW_DAYS},
        quality::{self, QualityCount},
    },
    error::CareError,
    store,
};

use super::CareCore;

#[derive(Debug, Clone)]
pub struct QualityReport {
    pub week_start: DateTime<Utc>,
    pub by_fault_type: Vec<QualityCount>,
    pub by_product_line: Vec<QualityCount>,
    pub by_region: Vec<QualityCount>,
    pub by_batch: Vec<QualityCount>,
    pub by_sku: Vec<QualityCount>,
    pub top_movers: Vec<QualityCount>,
}

impl CareCore {
    pub async fn kpis(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        by: KpiDimension,
    ) -> Result<Vec<KpiGroup>, CareError> {
        let db = self.db();
        let tickets = store::tickets_created(db, from, to).await?;
        let mut customers: Vec<String> = tickets
            .iter()
            .filter(|t| t.is_complaint())
            .map(|t| t.customer_id.clone())
            .collect();
        customers.sort();
        customers.dedup();
        let history = store::tickets_of_customers(
            db,
            &customers,
            from - Duration::days(REPEAT_WINDOW_DAYS),
            to,
        )
        .await?;
        let follow_ups = store::follow_ups_resolved(db, from, to).await?;
        let surveys = store::surveys_recorded(db, from, to).await?;
        let jobs = store::jobs_created(db, from, to).await?;
        let spot_checks = store::scored_between(db, from, to).await?;
        let met_clocks = store::clocks_met(db, from, to).await?;

        // Dimensions of the tickets that follow-ups, surveys, jobs, spot checks and met
        // clocks belong to.
        let mut linked: Vec<String> = follow_ups.iter().map(|f| f.ticket_id.clone()).collect();
        linked.extend(jobs.iter().map(|j| j.ticket_id.clone()));
        linked.extend(spot_checks.iter().map(|c| c.candidate.ticket_id.clone()));
        linked.extend(met_clocks.iter().map(|c| c.ticket_id.clone()));
        linked.extend(
            surveys
                .iter()
                .filter(|s| s.subject == SurveySubject::Ticket)
                .map(|s| s.subject_id.clone()),
        );
        linked.sort();
        linked.dedup();
        // Tickets created in the period are read already; a busy period's met clocks
        // are mostly theirs, and reading those facts again would double the report's
        // time.
        let mut dims: HashMap<String, Dims> = tickets
            .iter()
            .map(|t| (t.ticket_id.clone(), t.dims.clone()))
            .collect();
        linked.retain(|id| !dims.contains_key(id));
        dims.extend(
            store::tickets_by_id(db, &linked)
                .await?
                .into_iter()
                .map(|t| (t.ticket_id, t.dims)),
        );
        let job_ticket: HashMap<&str, &str> = jobs
            .iter()
            .map(|j| (j.job_id.as_str(), j.ticket_id.as_str()))
            .collect();
        let dims_of = |ticket_id: &str| dims.get(ticket_id).cloned().unwrap_or_default();

        let mut scores: Vec<(Dims, u8)> = surveys
            .iter()
            .map(|s| {
                let ticket = match s.subject {
                    SurveySubject::Ticket => s.subject_id.as_str(),
                    SurveySubject::RepairJob => {
                        job_ticket.get(s.subject_id.as_str()).copied().unwrap_or("")
                    }
                    SurveySubject::Return => "",
                };
                (dims_of(ticket), s.csat)
            })
            .collect();
        for f in &follow_ups {
            if let Some(score) = f.outcome.as_ref().and_then(|o| o.csat) {
                scores.push((dims_of(&f.ticket_id), score));
            }
        }
        let input = KpiInput {
            tickets,
            complaint_history: history,
            scores,
            follow_ups: follow_ups
                .iter()
                .map(|f| (dims_of(&f.ticket_id), f.within_window()))
                .collect(),
            jobs: jobs
                .iter()
                .filter(|j| j.completed_at.is_some())
                .map(|j| {
                    let mut d = dims_of(&j.ticket_id);
                    d.product_line = Some(j.product_line.clone())
                        .filter(|p| !p.is_empty())
                        .or(d.product_line);
                    d.region = Some(j.region.clone())
                        .filter(|r| !r.is_empty())
                        .or(d.region);
                    JobFact {
                        dims: d,
                        fixed: j.fixed,
                        repeated: j.repeated,
                        remote: j.remote,
                    }
                })
                .collect(),
            spot_checks: spot_checks
                .iter()
                .filter_map(|c| {
                    let score = c.score.as_ref()?.score;
                    Some((dims_of(&c.candidate.ticket_id), score))
                })
                .collect(),
            met_clocks: met_clocks
                .into_iter()
                .map(|c| (dims_of(&c.ticket_id), c))
                .collect(),
        };
        Ok(kpi::compute(&input, by))
    }

    pub async fn quality_report(
        &self,
        week_of: DateTime<Utc>,
        top: usize,
    ) -> Result<QualityReport, CareError> {
        let start = quality::week_start(week_of);
        let week = Duration::days(7);
        let complaints = |tickets: Vec<TicketFact>| -> Vec<TicketFact> {
            tickets
                .into_iter()
                .filter(TicketFact::is_complaint)
                .collect()
        };
        let this = complaints(store::tickets_created(self.db(), start, start + week).await?);
        let last = complaints(store::tickets_created(self.db(), start - week, start).await?);
        let keys = |tickets: &[TicketFact], by: KpiDimension| -> Vec<String> {
            tickets.iter().map(|t| t.dims.key(by)).collect()
        };
        let compare = |by| quality::compare(&keys(&this, by), &keys(&last, by));
        let by_fault_type = compare(KpiDimension::Category);
        let by_product_line = compare(KpiDimension::ProductLine);
        let by_region = compare(KpiDimension::Region);
        let by_batch = compare(KpiDimension::Batch);
        let by_sku = compare(KpiDimension::Sku);
        let top_movers = quality::top_movers(
            &[
                ("fault_type", &by_fault_type),
                ("product_line", &by_product_line),
                ("region", &by_region),
                ("batch", &by_batch),
                ("sku", &by_sku),
            ],
            top,
        );
        Ok(QualityReport {
            week_start: start,
            by_fault_type,
            by_product_line,
            by_region,
            by_batch,
            by_sku,
            top_movers,
        })
    }
}
