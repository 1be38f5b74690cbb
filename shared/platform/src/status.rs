//! Building `tonic::Status` values the same way in every service: `InvalidArgument` carries
//! a `google.rpc.BadRequest` with one violation per field, internal faults are logged here
//! and reach the caller without their details.

use std::fmt::Display;

use tonic::{Code, Status};

use crate::codes::ProtoEnum;
use tonic_types::{ErrorDetails, StatusExt};

/// One rejected field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// Collects every problem of a request before answering, so a caller fixes them in one go.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Adds a violation when `value` is empty after trimming.
    pub fn require(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(field, "is required");
        }
    }

    /// Adds a violation when `value` is longer than `max` characters.
    pub fn max_len(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// Keeps `Ok` values and records `Err` descriptions, for parse-style checks.
    pub fn check<T, E: Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// A required protobuf enum: UNSPECIFIED and unknown values are violations.
    pub fn required_enum<T: ProtoEnum>(&mut self, field: &str, value: i32) -> Option<T> {
        let parsed = T::from_proto(value);
        if parsed.is_none() {
            let description = if value == 0 {
                "is required".to_owned()
            } else {
                format!("unknown value {value}")
            };
            self.add(field, description);
        }
        parsed
    }

    /// An optional protobuf enum: UNSPECIFIED means "not given"; unknown values are violations.
    pub fn optional_enum<T: ProtoEnum>(&mut self, field: &str, value: i32) -> Option<T> {
        if value == 0 {
            return None;
        }
        self.required_enum(field, value)
    }

    /// Every entry of a repeated enum field, each required.
    pub fn enum_list<T: ProtoEnum>(&mut self, field: &str, values: &[i32]) -> Vec<T> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, value)| self.required_enum(&format!("{field}[{i}]"), *value))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }

    /// `Ok(())` when nothing was wrong, else the `InvalidArgument` status for all of it.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(self.0))
        }
    }
}

/// Violations reported at most: the message and the `BadRequest` travel in trailers, and
/// HTTP/2 peers refuse header lists past 16 KiB by default, which would turn a bad request
/// into a transport error. The rest are counted in the message.
const MAX_REPORTED: usize = 50;

/// `InvalidArgument` whose message names each field and whose details hold a `BadRequest`.
pub fn invalid_argument(mut violations: Vec<FieldViolation>) -> Status {
    let more = violations.len().saturating_sub(MAX_REPORTED);
    violations.truncate(MAX_REPORTED);
    let mut message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    let mut details = ErrorDetails::new();
    for v in &violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// `InvalidArgument` for a single field.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    invalid_argument(vec![FieldViolation {
        field: field.to_owned(),
        description: description.into(),
    }])
}

/// `Internal` for a fault the caller cannot act on; the cause is logged, not sent.
pub fn internal(context: &str, err: &dyn Display) -> Status {
    tracing::error!(error = %err, "{context}");
    Status::internal(format!("{context}: internal error"))
}

/// `Unavailable` for a dependency that is down: the caller may retry.
pub fn unavailable(context: &str, err: &dyn Display) -> Status {
    tracing::warn!(error = %err, "{context}");
    Status::unavailable(format!("{context}: temporarily unavailable, retry"))
}

/// A database failure: `Unavailable` when the database cannot be reached (the caller may
/// retry), `Internal` otherwise.
pub fn db_status(err: sea_orm::DbErr) -> Status {
    match err {
        sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_) => {
            unavailable("database", &err)
        }
        other => internal("database", &other),
    }
}

/// The field violations carried by a status, for clients and tests.
pub fn field_violations(status: &Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|br| {
            br.field_violations
                .into_iter()
                .map(|v| FieldViolation {
                    field: v.field,
                    description: v.description,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_violations_is_cut_and_counted() {
        let many = (0..200)
            .map(|i| FieldViolation {
                field: format!("lines[{i}].quantity"),
                description: "must be at least 1".into(),
            })
            .collect();
        let status = invalid_argument(many);
        assert_eq!(field_violations(&status).len(), MAX_REPORTED);
        assert!(
            status.message().ends_with("and 150 more"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn every_violation_is_in_message_and_details() {
        let mut v = Violations::new();
        v.require("customer_id", " ");
        v.max_len("subject", "abcdef", 3);
        let status = v.finish().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("customer_id: is required"));
        let fields: Vec<_> = field_violations(&status)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["customer_id", "subject"]);
    }
}
