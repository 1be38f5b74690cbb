//! Spot checks: a week's sample of resolved tickets per agent (computed from the ticket
//! facts by `domain::spot_check`, so it needs no clock, no draw and no queue) merged
//! with the scores reviewers gave, and recording a score (keyed by the caller's
//! idempotency key; a spot check scores once). The note stays in care: no event
//! carries it.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::{
    domain::{
        DomainError,
        spot_check::{self, Score, SpotCheck},
    },
    error::{CareError, not_found},
    store,
};

use super::{CareCore, paged, replayed};

const RECORD_SPOT_CHECK_SCORE_SCOPE: &str = "care.RecordSpotCheckScore";

/// Which spot checks of a week to list (`None`: all).
#[derive(Debug, Clone)]
pub struct SpotCheckFilter {
    pub week_of: DateTime<Utc>,
    pub agent_id: Option<String>,
    pub group_id: Option<String>,
    /// `Some(true)`: scored only; `Some(false)`: pending only.
    pub scored: Option<bool>,
}

/// A reviewer's score of one spot check.
#[derive(Debug, Clone)]
pub struct ScoreInput {
    pub spot_check_id: String,
    pub score: u32,
    pub note: String,
    pub reviewer: String,
}

impl CareCore {
    /// The sampling rate in percent.
    pub fn spot_check_rate(&self) -> u32 {
        self.rules.spot_check_rate_percent
    }

    /// The week's spot checks (of one agent, `""` for nobody's, when given): the sample,
    /// each with its score if given, plus any scored one a later resolution pushed out
    /// of the sample; in ticket id order.
    async fn week_spot_checks<C: ConnectionTrait>(
        &self,
        conn: &C,
        week_start: DateTime<Utc>,
        agent: Option<&str>,
    ) -> Result<Vec<SpotCheck>, CareError> {
        let end = week_start + chrono::Duration::days(7);
        let resolved = store::tickets_resolved(conn, week_start, end, agent).await?;
        let mut checks: Vec<SpotCheck> =
            spot_check::draw(&resolved, week_start, self.spot_check_rate())
                .into_iter()
                .map(|candidate| SpotCheck {
                    week_start,
                    candidate,
                    score: None,
                })
                .collect();
        let scored = store::scored_in_week(conn, week_start).await?;
        for scored in scored
            .into_iter()
            .filter(|c| agent.is_none_or(|a| a == c.candidate.agent_id))
        {
            match checks
                .iter_mut()
                .find(|c| c.candidate.ticket_id == scored.candidate.ticket_id)
            {
                Some(check) => *check = scored,
                None => checks.push(scored),
            }
        }
        checks.sort_by(|a, b| a.candidate.ticket_id.cmp(&b.candidate.ticket_id));
        Ok(checks)
    }

    /// A page of the week's spot checks after ticket id `cursor`.
    pub async fn list_spot_checks(
        &self,
        filter: &SpotCheckFilter,
        cursor: Option<&str>,
        size: u64,
    ) -> Result<(Vec<SpotCheck>, Option<String>), CareError> {
        let (start, _) = spot_check::week_of(filter.week_of);
        let page: Vec<SpotCheck> = self
            .week_spot_checks(self.db(), start, filter.agent_id.as_deref())
            .await?
            .into_iter()
            .filter(|c| cursor.is_none_or(|after| c.candidate.ticket_id.as_str() > after))
            .filter(|c| {
                filter
                    .group_id
                    .as_ref()
                    .is_none_or(|g| *g == c.candidate.group_id)
            })
            .filter(|c| filter.scored.is_none_or(|s| s == c.score.is_some()))
            .take(size as usize + 1)
            .collect();
        Ok(paged(page, size, |c| c.candidate.ticket_id.clone()))
    }

    pub async fn record_spot_check_score(
        &self,
        input: ScoreInput,
        idem: Option<&Idempotency>,
    ) -> Result<SpotCheck, CareError> {
        self.pipeline
            .keyed(idem, || self.try_record_spot_check_score(&input, idem))
            .await
    }

    async fn try_record_spot_check_score(
        &self,
        input: &ScoreInput,
        idem: Option<&Idempotency>,
    ) -> Result<SpotCheck, CareError> {
        let (week_start, ticket_id) = spot_check::parse_spot_check_id(&input.spot_check_id)?;
        spot_check::check_score(input.score, &input.note)?;
        let cmd = match self
            .pipeline
            .begin(RECORD_SPOT_CHECK_SCORE_SCOPE, idem)
            .await?
        {
            Begun::Replay(remembered) => {
                let id = replayed(&remembered)?;
                return store::get_spot_check(self.db(), id)
                    .await?
                    .ok_or_else(|| not_found("spot check", id));
            }
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        // Only the agent's own tickets of the week decide whether this one is drawn.
        let Some(agent) = store::resolved_agent(cmd.txn(), &ticket_id).await? else {
            return Err(not_found("spot check", &input.spot_check_id));
        };
        let Some(mut check) = self
            .week_spot_checks(cmd.txn(), week_start, Some(&agent))
            .await?
            .into_iter()
            .find(|c| c.candidate.ticket_id == ticket_id)
        else {
            return Err(not_found("spot check", &input.spot_check_id));
        };
        if check.score.is_some() {
            return Err(already_scored(&input.spot_check_id));
        }
        check.score = Some(Score {
            score: input.score,
            note: input.note.trim().to_owned(),
            scored_by: input.reviewer.clone(),
            scored_at: now,
        });
        // Another reviewer's concurrent score may have landed since the read.
        if !store::insert_spot_check_score(cmd.txn(), &check).await? {
            return Err(already_scored(&input.spot_check_id));
        }
        cmd.commit(&self.pipeline, &Remembered::id(check.id()))
            .await?;
        Ok(check)
    }
}

fn already_scored(id: &str) -> CareError {
    DomainError::Precondition(format!("spot check {id} is scored already")).into()
}
