//! The spot-check RPCs of the care service: requests decoded and checked field by field,
//! the use case called, the spot check encoded.

use aftersales_platform::{
    auth::Caller,
    caller::actor_of,
    codes::{instant, timestamp},
    paging::page_size,
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::care::v1 as pb;
use tonic::{Request, Response, Status};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::CareApi;
use crate::{
    domain::spot_check::{MAX_SCORE, SpotCheck},
    usecases::spot_checks::{ScoreInput, SpotCheckFilter},
};

const MAX_NOTE: usize = 4_000;
/// Spot checks page by ticket id, which (unlike the suite's own ids) need not be a UUID,
/// so their tokens are their own: the prefix tells a token of ours from any other.
const CURSOR_PREFIX: &str = "spot-check:";

fn encode_cursor(ticket_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{ticket_id}"))
}

fn decode_cursor(v: &mut Violations, token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX).map(str::to_owned));
    if decoded.is_none() {
        v.add("page_token", "is not a token from an earlier page");
    }
    decoded
}

pub(super) fn spot_check(c: &SpotCheck) -> pb::SpotCheck {
    let score = c.score.as_ref();
    pb::SpotCheck {
        id: c.id(),
        ticket_id: c.candidate.ticket_id.clone(),
        week_start: Some(timestamp(c.week_start)),
        agent_id: c.candidate.agent_id.clone(),
        group_id: c.candidate.group_id.clone(),
        resolved_at: Some(timestamp(c.candidate.resolved_at)),
        state: if score.is_some() {
            pb::SpotCheckState::Scored
        } else {
            pb::SpotCheckState::Pending
        } as i32,
        score: score.map_or(0, |s| s.score),
        note: score.map(|s| s.note.clone()).unwrap_or_default(),
        scored_by: score.map(|s| s.scored_by.clone()).unwrap_or_default(),
        scored_at: score.map(|s| timestamp(s.scored_at)),
    }
}

impl CareApi {
    pub(super) async fn spot_checks(
        &self,
        request: Request<pb::ListSpotChecksRequest>,
    ) -> Result<Response<pb::ListSpotChecksResponse>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        let week_of = match r.week_of.as_ref() {
            None => {
                v.add("week_of", "is required");
                None
            }
            Some(t) => {
                let at = instant(t);
                if at.is_none() {
                    v.add("week_of", "is not a valid instant");
                }
                at
            }
        };
        v.optional_id("agent_id", &r.agent_id);
        v.optional_id("group_id", &r.group_id);
        let scored = match pb::SpotCheckState::try_from(r.state) {
            Ok(pb::SpotCheckState::Unspecified) => None,
            Ok(pb::SpotCheckState::Pending) => Some(false),
            Ok(pb::SpotCheckState::Scored) => Some(true),
            Err(_) => {
                v.add("state", format!("unknown value {}", r.state));
                None
            }
        };
        let p = r.page.clone().unwrap_or_default();
        let cursor = decode_cursor(&mut v, &p.page_token);
        let size = page_size(p.page_size);
        v.finish()?;
        let Some(week_of) = week_of else {
            return Err(Status::invalid_argument("week_of: is required"));
        };
        let filter = SpotCheckFilter {
            week_of,
            agent_id: non_empty(&r.agent_id),
            group_id: non_empty(&r.group_id),
            scored,
        };
        let (page, next) = self
            .core
            .list_spot_checks(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListSpotChecksResponse {
            spot_checks: page.iter().map(spot_check).collect(),
            page: Some(aftersales_protos::common::v1::PageResponse {
                next_page_token: next.as_deref().map(encode_cursor).unwrap_or_default(),
            }),
            rate_percent: self.core.spot_check_rate(),
        }))
    }

    pub(super) async fn score_spot_check(
        &self,
        request: Request<pb::RecordSpotCheckScoreRequest>,
    ) -> Result<Response<pb::SpotCheck>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.get_ref();
        let mut v = Violations::new();
        let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
        v.id("spot_check_id", &r.spot_check_id);
        if r.score > MAX_SCORE {
            v.add("score", "must be 0 to 100");
        }
        v.required_text("note", &r.note, MAX_NOTE);
        v.finish()?;
        let reviewer = actor_of(&caller, None)?;
        let input = ScoreInput {
            spot_check_id: r.spot_check_id.clone(),
            score: r.score,
            note: r.note.clone(),
            reviewer: reviewer.id,
        };
        let check = self
            .core
            .record_spot_check_score(input, idem.as_ref())
            .await?;
        Ok(Response::new(spot_check(&check)))
    }
}
