//! `aftersales.audit.v1.AuditService` over a service's own records: validate, list, page.
//! Who may call it is the permission table's business (`admin` in every service).

use aftersales_protos::audit::v1::{
    self as pb,
    audit_service_server::{AuditService, AuditServiceServer},
};
use tonic::{Request, Response, Status};

use super::{AuditFilter, AuditLog, AuditRecord};
use crate::{
    codes::{instant, timestamp},
    paging::{decode_cursor, encode_cursor, page_size},
    status::{Violations, db_status},
};

/// The longest filter value accepted.
const MAX_FILTER: usize = 256;

/// Serves a service's [`AuditLog`].
#[derive(Debug, Clone)]
pub struct AuditApi {
    log: AuditLog,
}

impl AuditApi {
    pub fn new(log: AuditLog) -> Self {
        Self { log }
    }

    pub fn into_server(self) -> AuditServiceServer<Self> {
        AuditServiceServer::new(self)
    }
}

fn proto(record: AuditRecord) -> pb::AuditRecord {
    pb::AuditRecord {
        id: record.id,
        at: Some(timestamp(record.at)),
        subject: record.subject,
        on_behalf_of: record.on_behalf_of.unwrap_or_default(),
        roles: record.roles,
        client_id: record.client_id.unwrap_or_default(),
        rpc: record.rpc,
        target: record.target.unwrap_or_default(),
        outcome: record.outcome,
        detail: if record.detail.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(record.detail).to_string()
        },
    }
}

/// The filter a request asks for; every problem named at once.
fn filter(r: &pb::ListAuditRecordsRequest) -> Result<(AuditFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    let text = |v: &mut Violations, field: &str, value: &str| {
        v.max_len(field, value, MAX_FILTER);
        Some(value.trim().to_owned()).filter(|s| !s.is_empty())
    };
    let at = |v: &mut Violations, field: &str, t: &Option<prost_types::Timestamp>| {
        t.as_ref().and_then(|t| {
            let at = instant(t);
            if at.is_none() {
                v.add(field, "is not a valid timestamp");
            }
            at
        })
    };
    let filter = AuditFilter {
        subject: text(&mut v, "subject", &r.subject),
        rpc: text(&mut v, "rpc", &r.rpc),
        target: text(&mut v, "target", &r.target),
        since: at(&mut v, "since", &r.since),
        until: at(&mut v, "until", &r.until),
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && until <= since
    {
        v.add("until", "must be after since");
    }
    let before = decode_cursor(&mut v, &r.page_token);
    v.finish()?;
    Ok((filter, before, page_size(r.page_size)))
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_records(
        &self,
        request: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        let (filter, before, size) = filter(request.get_ref())?;
        let mut page = self
            .log
            .list(&filter, before.as_deref(), size + 1)
            .await
            .map_err(db_status)?;
        let more = u64::try_from(page.len()).unwrap_or(u64::MAX) > size;
        page.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match page.last() {
            Some(last) if more => encode_cursor(&last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAuditRecordsResponse {
            records: page.into_iter().map(proto).collect(),
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn bad_filters_are_named_together() {
        let err = filter(&pb::ListAuditRecordsRequest {
            since: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            until: Some(prost_types::Timestamp {
                seconds: 5,
                nanos: 0,
            }),
            page_token: "nope!".into(),
            subject: "s".repeat(300),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let fields: Vec<String> = crate::status::field_violations(&err)
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["subject", "until", "page_token"]);
        let (filter, before, size) = filter(&pb::ListAuditRecordsRequest {
            rpc: " ResolveReturn ".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(filter.rpc.as_deref(), Some("ResolveReturn"));
        assert_eq!((before, size), (None, crate::paging::DEFAULT_PAGE_SIZE));
    }
}
