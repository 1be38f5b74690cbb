//! The gRPC face of the care service: decode and validate (`request`), call the use
//! case, encode (`crate::proto`); errors become statuses in `status`.

mod incidents;
pub mod permissions;
mod request;
mod spot_checks;
mod status;

use std::sync::Arc;

use aftersales_platform::{
    audit,
    auth::{Caller, roles::PII_READ},
};
use aftersales_platform::{codes::timestamp, paging::encode_cursor};
use aftersales_protos::{
    care::v1::{self as pb, care_service_server::CareService},
    common::v1 as common,
};
use tonic::{Request, Response, Status};

pub use pb::care_service_server::CareServiceServer;

use crate::{
    domain::customer::TierRules,
    proto,
    usecases::{CareCore, Shown},
};

pub struct CareApi {
    core: Arc<CareCore>,
}

impl CareApi {
    pub fn new(core: Arc<CareCore>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> CareServiceServer<Self> {
        CareServiceServer::new(self)
    }
}

fn next_token(next: Option<String>) -> Option<common::PageResponse> {
    Some(common::PageResponse {
        next_page_token: next.as_deref().map(encode_cursor).unwrap_or_default(),
    })
}

fn shown(s: &Shown) -> Response<pb::Customer> {
    Response::new(proto::customer(&s.customer, &s.contact, s.unmasked))
}

fn tier_rules(r: &TierRules) -> pb::TierRules {
    let money = |minor_units| {
        Some(common::Money {
            minor_units,
            currency: r.currency.clone(),
        })
    };
    pb::TierRules {
        vip_min_value: money(r.vip_min_value_minor),
        vip_min_orders: r.vip_min_orders,
        potential_min_value: money(r.potential_min_value_minor),
        version: r.version,
    }
}

#[tonic::async_trait]
impl CareService for CareApi {
    async fn upsert_customer(
        &self,
        request: Request<pb::UpsertCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let (input, idem) = request::upsert_customer(request.get_ref())?;
        Ok(shown(
            &self.core.upsert_customer(input, idem.as_ref()).await?,
        ))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (id, phone) = request::get_customer(&r)?;
        // Whether a number belongs to a customer is itself personal data.
        if phone.is_some() && !caller.has_role(PII_READ) {
            return Err(Status::permission_denied(
                "looking a customer up by phone requires the role pii:read",
            ));
        }
        let reader = request::reader(&caller, r.reader.as_ref())?;
        let customer = self
            .core
            .get_customer(id.as_deref(), phone.as_deref(), &reader)
            .await?;
        Ok(shown(&customer))
    }

    async fn erase_customer(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let r = request.get_ref();
        let idem = request::erase_customer(r)?;
        let customer = self
            .core
            .erase_customer(&r.customer_id, idem.as_ref())
            .await?;
        // Nothing personal is left to show; masked like any answer to a non-reader.
        Ok(Response::new(proto::customer(
            &customer,
            &customer.contact,
            false,
        )))
    }

    async fn get_customer_timeline(
        &self,
        request: Request<pb::GetCustomerTimelineRequest>,
    ) -> Result<Response<pb::GetCustomerTimelineResponse>, Status> {
        let r = request.into_inner();
        let (cursor, size) = request::timeline(&r)?;
        let (entries, next) = self
            .core
            .timeline(&r.customer_id, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::GetCustomerTimelineResponse {
            entries: entries.iter().map(proto::timeline_entry).collect(),
            page: next_token(next),
        }))
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        let (filter, cursor, size) = request::list_follow_ups(request.get_ref())?;
        let (page, next) = self
            .core
            .list_follow_ups(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListFollowUpsResponse {
            follow_ups: page.iter().map(proto::follow_up).collect(),
            page: next_token(next),
        }))
    }

    async fn record_follow_up(
        &self,
        request: Request<pb::RecordFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (outcome, idem) = request::record_follow_up(&caller, &r)?;
        let follow_up = self
            .core
            .record_follow_up(&r.follow_up_id, outcome, idem.as_ref())
            .await?;
        Ok(Response::new(proto::follow_up(&follow_up)))
    }

    async fn record_survey(
        &self,
        request: Request<pb::RecordSurveyRequest>,
    ) -> Result<Response<pb::Survey>, Status> {
        let (input, idem) = request::record_survey(request.get_ref())?;
        let survey = self.core.record_survey(input, idem.as_ref()).await?;
        Ok(Response::new(proto::survey(&survey)))
    }

    async fn upsert_warranty(
        &self,
        request: Request<pb::UpsertWarrantyRequest>,
    ) -> Result<Response<pb::Warranty>, Status> {
        let (warranty, idem) = request::upsert_warranty(request.get_ref())?;
        let warranty = self.core.upsert_warranty(warranty, idem.as_ref()).await?;
        Ok(Response::new(proto::warranty(&warranty)))
    }

    async fn list_care_tasks(
        &self,
        request: Request<pb::ListCareTasksRequest>,
    ) -> Result<Response<pb::ListCareTasksResponse>, Status> {
        let (filter, cursor, size) = request::list_tasks(request.get_ref())?;
        let (page, next) = self
            .core
            .list_tasks(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListCareTasksResponse {
            tasks: page.iter().map(proto::task).collect(),
            page: next_token(next),
        }))
    }

    async fn broadcast_notice(
        &self,
        request: Request<pb::BroadcastNoticeRequest>,
    ) -> Result<Response<pb::BroadcastNoticeResponse>, Status> {
        let r = request.into_inner();
        let idem = request::broadcast(&r)?;
        let result = self
            .core
            .broadcast_notice(&r.region_code, &r.reason, &r.message, idem.as_ref())
            .await?;
        Ok(Response::new(pb::BroadcastNoticeResponse {
            notice_id: result.notice_id,
            tasks_created: result.customer_ids.len() as u32,
            customer_ids: result.customer_ids,
        }))
    }

    async fn get_kpis(
        &self,
        request: Request<pb::GetKpisRequest>,
    ) -> Result<Response<pb::KpiReport>, Status> {
        let (from, to, by) = request::kpis(request.get_ref())?;
        let groups = self.core.kpis(from, to, by).await?;
        Ok(Response::new(pb::KpiReport {
            from: Some(timestamp(from)),
            to: Some(timestamp(to)),
            group_by: proto::dimension(by),
            groups: groups.iter().map(proto::kpi_group).collect(),
        }))
    }

    async fn get_cost_report(
        &self,
        request: Request<pb::GetCostReportRequest>,
    ) -> Result<Response<pb::CostReport>, Status> {
        let q = request::cost_report(request.get_ref())?;
        let report = self.core.cost_report(&q).await?;
        Ok(Response::new(pb::CostReport {
            from: Some(timestamp(q.from)),
            to: Some(timestamp(q.to)),
            group_by: proto::cost_dimension(q.by),
            period: proto::cost_period(q.period),
            groups: report.groups.iter().map(proto::cost_group).collect(),
            parts: report
                .parts
                .iter()
                .map(|(part_id, t)| pb::PartTurnover {
                    part_id: part_id.clone(),
                    turnover: Some(proto::turnover(t)),
                })
                .collect(),
        }))
    }

    async fn get_quality_report(
        &self,
        request: Request<pb::GetQualityReportRequest>,
    ) -> Result<Response<pb::QualityReport>, Status> {
        let (week_of, top) = request::quality(request.get_ref())?;
        let report = self.core.quality_report(week_of, top).await?;
        let rows = |rows: &[crate::domain::quality::QualityCount]| {
            rows.iter().map(proto::quality_count).collect()
        };
        Ok(Response::new(pb::QualityReport {
            week_start: Some(timestamp(report.week_start)),
            by_fault_type: rows(&report.by_fault_type),
            by_product_line: rows(&report.by_product_line),
            by_region: rows(&report.by_region),
            by_batch: rows(&report.by_batch),
            by_sku: rows(&report.by_sku),
            top_movers: rows(&report.top_movers),
        }))
    }

    async fn export_customer_data(
        &self,
        request: Request<pb::ExportCustomerDataRequest>,
    ) -> Result<Response<pb::CustomerExport>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("customer_id", &r.customer_id)?;
        let reader = request::reader(&caller, r.reader.as_ref())?;
        let data = self.core.export(&r.customer_id, &reader).await?;
        Ok(Response::new(pb::CustomerExport {
            customer: Some(proto::customer(
                &data.customer,
                &data.customer.contact,
                true,
            )),
            timeline: data.timeline.iter().map(proto::timeline_entry).collect(),
            follow_ups: data.follow_ups.iter().map(proto::follow_up).collect(),
            surveys: data.surveys.iter().map(proto::survey).collect(),
            warranties: data.warranties.iter().map(proto::warranty).collect(),
            tasks: data.tasks.iter().map(proto::task).collect(),
            access_log: data.access_log.iter().map(proto::audit_entry).collect(),
            exported_at: Some(timestamp(data.exported_at)),
            spot_checks: data
                .spot_checks
                .iter()
                .map(spot_checks::spot_check)
                .collect(),
        }))
    }

    async fn upsert_tier_rules(
        &self,
        request: Request<pb::UpsertTierRulesRequest>,
    ) -> Result<Response<pb::TierRules>, Status> {
        let rules = request::tier_rules(request.get_ref())?;
        audit::target("tier_rules");
        let rules = self.core.upsert_tier_rules(rules).await?;
        Ok(Response::new(tier_rules(&rules)))
    }

    async fn declare_incident(
        &self,
        request: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.declare(request).await
    }

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.get(request).await
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        self.list(request).await
    }

    async fn list_incident_tickets(
        &self,
        request: Request<pb::ListIncidentTicketsRequest>,
    ) -> Result<Response<pb::ListIncidentTicketsResponse>, Status> {
        self.tickets(request).await
    }

    async fn link_incident_tickets(
        &self,
        request: Request<pb::LinkIncidentTicketsRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.link(request).await
    }

    async fn record_incident_action(
        &self,
        request: Request<pb::RecordIncidentActionRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.record(request).await
    }

    async fn update_incident_tickets(
        &self,
        request: Request<pb::UpdateIncidentTicketsRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.update_tickets(request).await
    }

    async fn list_spot_checks(
        &self,
        request: Request<pb::ListSpotChecksRequest>,
    ) -> Result<Response<pb::ListSpotChecksResponse>, Status> {
        self.spot_checks(request).await
    }

    async fn record_spot_check_score(
        &self,
        request: Request<pb::RecordSpotCheckScoreRequest>,
    ) -> Result<Response<pb::SpotCheck>, Status> {
        self.score_spot_check(request).await
    }

    async fn close_incident(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.close(request).await
    }
}
