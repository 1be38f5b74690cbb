//! A repair partner (service outlet): where it works, what it repairs, how much it takes
//! on per day, and the fee schedule its quotes are checked against.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{AreaKind, DomainError, Money};

/// Where the partner's day begins when it names no zone.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

impl GeoPoint {
    /// Great-circle distance in kilometres (haversine on a spherical Earth: metres of
    /// error over a city, which is all ranking needs).
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6_371.0;
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.longitude - self.longitude).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }

    pub fn validate(&self, field: &str) -> Result<(), DomainError> {
        if !(-90.0..=90.0).contains(&self.latitude) {
            return Err(DomainError::invalid(
                format!("{field}.latitude"),
                "must lie in [-90, 90]",
            ));
        }
        if !(-180.0..=180.0).contains(&self.longitude) {
            return Err(DomainError::invalid(
                format!("{field}.longitude"),
                "must lie in [-180, 180]",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub region_code: String,
    pub area: AreaKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FeeSchedule {
    /// Labour price per product line.
    pub labour: Vec<(String, Money)>,
    /// Part price per part code.
    pub parts: Vec<(String, Money)>,
    pub call_out_fee: Option<Money>,
}

impl FeeSchedule {
    pub fn labour_for(&self, product_line: &str) -> Option<&Money> {
        self.labour
            .iter()
            .find(|(line, _)| line == product_line)
            .map(|(_, price)| price)
    }

    pub fn part(&self, code: &str) -> Option<&Money> {
        self.parts
            .iter()
            .find(|(part, _)| part == code)
            .map(|(_, price)| price)
    }

    /// The one currency the schedule is written in (quotes and settlements use it).
    pub fn currency(&self) -> Option<&str> {
        self.call_out_fee
            .iter()
            .chain(self.labour.iter().map(|(_, m)| m))
            .chain(self.parts.iter().map(|(_, m)| m))
            .map(|m| m.currency.as_str())
            .next()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerSpec {
    pub name: String,
    pub coverage: Vec<Coverage>,
    pub location: Option<GeoPoint>,
    /// 0 means the coverage regions alone decide.
    pub service_radius_km: f64,
    pub skills: Vec<String>,
    pub daily_capacity: u32,
    pub active: bool,
    pub insured: bool,
    pub fees: FeeSchedule,
    pub time_zone: String,
}

impl PartnerSpec {
    /// Checks what the request decoder cannot: consistency across fields.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.name.trim().is_empty() {
            return Err(DomainError::invalid("spec.name", "is required"));
        }
        if self.coverage.is_empty() {
            return Err(DomainError::invalid(
                "spec.coverage",
                "must name at least one region",
            ));
        }
        for (i, c) in self.coverage.iter().enumerate() {
            if c.region_code.trim().is_empty() {
                return Err(DomainError::invalid(
                    format!("spec.coverage[{i}].region_code"),
                    "is required",
                ));
            }
            if self.coverage[..i]
                .iter()
                .any(|other| other.region_code == c.region_code)
            {
                return Err(DomainError::invalid(
                    format!("spec.coverage[{i}].region_code"),
                    "is listed twice",
                ));
            }
        }
        if self.skills.is_empty() {
            return Err(DomainError::invalid(
                "spec.skills",
                "must name at least one product line",
            ));
        }
        if let Some(location) = &self.location {
            location.validate("spec.location")?;
        }
        if !self.service_radius_km.is_finite() || self.service_radius_km < 0.0 {
            return Err(DomainError::invalid(
                "spec.service_radius_km",
                "must be a non-negative number",
            ));
        }
        if self.service_radius_km > 0.0 && self.location.is_none() {
            return Err(DomainError::invalid(
                "spec.location",
                "is required when a service radius is set",
            ));
        }
        if let Some(currency) = self.fees.currency() {
            let all = self
                .fees
                .call_out_fee
                .iter()
                .chain(self.fees.labour.iter().map(|(_, m)| m))
                .chain(self.fees.parts.iter().map(|(_, m)| m));
            if all.into_iter().any(|m| m.currency != currency) {
                return Err(DomainError::invalid(
                    "spec.fees",
                    "every price must be in one currency",
                ));
            }
        }
        self.tz()?;
        Ok(())
    }

    pub fn tz(&self) -> Result<Tz, DomainError> {
        let zone = if self.time_zone.is_empty() {
            DEFAULT_TIME_ZONE
        } else {
            &self.time_zone
        };
        zone.parse()
            .map_err(|_| DomainError::invalid("spec.time_zone", "is not an IANA time zone"))
    }

    pub fn area_of(&self, region_code: &str) -> Option<AreaKind> {
        self.coverage
            .iter()
            .find(|c| c.region_code == region_code)
            .map(|c| c.area)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: String,
    pub spec: PartnerSpec,
    pub version: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn spec(region: &str, area: AreaKind) -> PartnerSpec {
        PartnerSpec {
            name: "Outlet".into(),
            coverage: vec![Coverage {
                region_code: region.into(),
                area,
            }],
            location: Some(GeoPoint {
                latitude: 31.2304,
                longitude: 121.4737,
            }),
            service_radius_km: 0.0,
            skills: vec!["appliance".into()],
            daily_capacity: 5,
            active: true,
            insured: true,
            fees: FeeSchedule {
                labour: vec![("appliance".into(), Money::new(10_000, "CNY"))],
                parts: vec![("PUMP-1".into(), Money::new(5_000, "CNY"))],
                call_out_fee: Some(Money::new(3_000, "CNY")),
            },
            time_zone: String::new(),
        }
    }

    #[test]
    fn distances_are_great_circle_kilometres() {
        let shanghai = GeoPoint {
            latitude: 31.2304,
            longitude: 121.4737,
        };
        let beijing = GeoPoint {
            latitude: 39.9042,
            longitude: 116.4074,
        };
        let d = shanghai.distance_km(&beijing);
        assert!((1_060.0..1_075.0).contains(&d), "{d}");
        assert_eq!(shanghai.distance_km(&shanghai), 0.0);
    }

    #[test]
    fn a_spec_is_checked_field_by_field() {
        assert!(spec("310104", AreaKind::Urban).validate().is_ok());
        let mut s = spec("310104", AreaKind::Urban);
        s.coverage.push(s.coverage[0].clone());
        assert_eq!(
            s.validate().unwrap_err(),
            DomainError::invalid("spec.coverage[1].region_code", "is listed twice")
        );
        let mut s = spec("310104", AreaKind::Urban);
        s.fees.parts.push(("X".into(), Money::new(1, "USD")));
        assert!(
            matches!(s.validate(), Err(DomainError::Invalid { field, .. }) if field == "spec.fees")
        );
        let mut s = spec("310104", AreaKind::Urban);
        s.time_zone = "Mars/Olympus".into();
        assert!(s.validate().is_err());
        let mut s = spec("310104", AreaKind::Urban);
        s.location = None;
        s.service_radius_km = 10.0;
        assert!(s.validate().is_err());
    }
}
