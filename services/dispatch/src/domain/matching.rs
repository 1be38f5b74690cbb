//! Choosing who gets a job: filter the partners that can take it (coverage, skill, active,
//! insured, capacity left today, within their service radius, not offered it before),
//! then rank them by distance, current load and scorecard.

use super::partner::{GeoPoint, Partner};

/// Weights of the three ranking terms; they sum to 1 so a score lies in [0, 1].
const DISTANCE_WEIGHT: f64 = 0.4;
const LOAD_WEIGHT: f64 = 0.3;
const QUALITY_WEIGHT: f64 = 0.3;
/// The distance at which the distance term has halved.
const HALF_SCORE_KM: f64 = 10.0;
/// The distance term when either side has no coordinates: neither near nor far.
const UNKNOWN_DISTANCE_TERM: f64 = 0.5;

/// What is being placed.
#[derive(Debug, Clone)]
pub struct JobNeeds<'a> {
    pub region_code: &'a str,
    pub point: Option<GeoPoint>,
    pub product_line: &'a str,
}

/// A partner with what the store knows of its day and record.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub partner: Partner,
    /// Offers made to it today (its own time zone) that are open or accepted.
    pub taken_today: u32,
    /// Jobs it has accepted and not finished.
    pub active_jobs: u32,
    /// Its recent scorecard in [0, 1] (see `scorecard::quality`).
    pub quality: f64,
    /// It was offered this job before (and declined or let the offer lapse).
    pub offered_before: bool,
}

/// A ranked candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub partner_id: String,
    pub score: f64,
    pub distance_km: Option<f64>,
    /// Its offers taken today as ranked (read without a lock).
    pub taken_today: u32,
}

/// Why nobody could take the job, for the dispatcher who must step in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shortfall {
    pub considered: usize,
    pub inactive_or_uninsured: usize,
    pub lacking_skill: usize,
    pub out_of_range: usize,
    pub at_capacity: usize,
    pub offered_before: usize,
}

impl Shortfall {
    pub fn reason(&self, needs: &JobNeeds<'_>) -> String {
        format!(
            "no partner left for region {} and product line {}: {} cover the region \
             ({} inactive or uninsured, {} lacking the skill, {} out of range, {} at capacity, \
             {} already offered)",
            needs.region_code,
            needs.product_line,
            self.considered,
            self.inactive_or_uninsured,
            self.lacking_skill,
            self.out_of_range,
            self.at_capacity,
            self.offered_before
        )
    }
}

/// The eligible candidates, best first, or what kept every one out.
pub fn rank(needs: &JobNeeds<'_>, candidates: &[Candidate]) -> Result<Vec<Ranked>, Shortfall> {
    let mut shortfall = Shortfall::default();
    let mut ranked = Vec::new();
    for c in candidates {
        let spec = &c.partner.spec;
        if spec.area_of(needs.region_code).is_none() {
            continue;
        }
        shortfall.considered += 1;
        let distance_km = match (needs.point, spec.location) {
            (Some(job), Some(partner)) => Some(partner.distance_km(&job)),
            _ => None,
        };
        if !(spec.active && spec.insured) {
            shortfall.inactive_or_uninsured += 1;
        } else if !spec.skills.iter().any(|s| s == needs.product_line) {
            shortfall.lacking_skill += 1;
        } else if spec.service_radius_km > 0.0
            && distance_km.is_some_and(|d| d > spec.service_radius_km)
        {
            shortfall.out_of_range += 1;
        } else if c.taken_today >= spec.daily_capacity {
            shortfall.at_capacity += 1;
        } else if c.offered_before {
            shortfall.offered_before += 1;
        } else {
            ranked.push(Ranked {
                partner_id: c.partner.id.clone(),
                score: score(c, distance_km),
                distance_km,
                taken_today: c.taken_today,
            });
        }
    }
    if ranked.is_empty() {
        return Err(shortfall);
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| {
                let near = |r: &Ranked| r.distance_km.unwrap_or(f64::MAX);
                near(a).total_cmp(&near(b))
            })
            .then_with(|| a.partner_id.cmp(&b.partner_id))
    });
    Ok(ranked)
}

fn score(c: &Candidate, distance_km: Option<f64>) -> f64 {
    let distance = distance_km.map_or(UNKNOWN_DISTANCE_TERM, |d| 1.0 / (1.0 + d / HALF_SCORE_KM));
    let capacity = f64::from(c.partner.spec.daily_capacity.max(1));
    let load = 1.0 - (f64::from(c.active_jobs) / capacity).min(1.0);
    let quality = c.quality.clamp(0.0, 1.0);
    DISTANCE_WEIGHT * distance + LOAD_WEIGHT * load + QUALITY_WEIGHT * quality
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::{AreaKind, partner::tests::spec};

    fn candidate(id: &str, lat: f64, lon: f64) -> Candidate {
        let mut spec = spec("310104", AreaKind::Urban);
        spec.location = Some(GeoPoint {
            latitude: lat,
            longitude: lon,
        });
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        Candidate {
            partner: Partner {
                id: id.into(),
                spec,
                version: 1,
                created_at: at,
                updated_at: at,
            },
            taken_today: 0,
            active_jobs: 0,
            quality: 0.8,
            offered_before: false,
        }
    }

    fn needs() -> JobNeeds<'static> {
        JobNeeds {
            region_code: "310104",
            point: Some(GeoPoint {
                latitude: 31.20,
                longitude: 121.45,
            }),
            product_line: "appliance",
        }
    }

    #[test]
    fn the_nearest_equal_partner_ranks_first() {
        let near = candidate("near", 31.21, 121.45);
        let far = candidate("far", 31.40, 121.60);
        let ranked = rank(&needs(), &[far, near]).unwrap();
        assert_eq!(ranked[0].partner_id, "near");
        assert_eq!(ranked[1].partner_id, "far");
        assert!(ranked[0].distance_km.unwrap() < 2.0);
    }

    #[test]
    fn load_and_record_can_outweigh_a_short_distance() {
        let mut near = candidate("near-busy-poor", 31.21, 121.45);
        near.active_jobs = 5;
        near.quality = 0.1;
        let far = candidate("far-idle-good", 31.25, 121.50);
        let ranked = rank(&needs(), &[near, far]).unwrap();
        assert_eq!(ranked[0].partner_id, "far-idle-good");
    }

    #[test]
    fn filters_keep_out_who_cannot_take_the_job() {
        let mut inactive = candidate("inactive", 31.2, 121.45);
        inactive.partner.spec.active = false;
        let mut uninsured = candidate("uninsured", 31.2, 121.45);
        uninsured.partner.spec.insured = false;
        let mut unskilled = candidate("unskilled", 31.2, 121.45);
        unskilled.partner.spec.skills = vec!["phone".into()];
        let mut full = candidate("full", 31.2, 121.45);
        full.taken_today = 5;
        let mut far = candidate("far", 32.5, 121.45);
        far.partner.spec.service_radius_km = 50.0;
        let mut asked = candidate("asked", 31.2, 121.45);
        asked.offered_before = true;
        let mut elsewhere = candidate("elsewhere", 31.2, 121.45);
        elsewhere.partner.spec.coverage[0].region_code = "110101".into();
        let all = [inactive, uninsured, unskilled, full, far, asked, elsewhere];
        let shortfall = rank(&needs(), &all).unwrap_err();
        assert_eq!(
            shortfall,
            Shortfall {
                considered: 6,
                inactive_or_uninsured: 2,
                lacking_skill: 1,
                out_of_range: 1,
                at_capacity: 1,
                offered_before: 1,
            }
        );
        assert!(shortfall.reason(&needs()).contains("6 cover the region"));
        let ok = candidate("ok", 31.2, 121.45);
        let mut with_ok = all.to_vec();
        with_ok.push(ok);
        let ranked = rank(&needs(), &with_ok).unwrap();
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].partner_id, "ok");
    }
}
