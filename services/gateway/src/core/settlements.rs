//! A partner's settlements through the core: its own monthly statements from dispatch.

use aftersales_protos::{dispatch::v1 as dispatch, partner::v1 as partner};

use super::{Gateway, actor, page};
use crate::{
    auth::Partner,
    error::{GatewayError, Upstream},
};

impl Gateway {
    pub async fn list_settlements(
        &self,
        partner: &Partner,
        request: partner::ListSettlementsRequest,
    ) -> Result<partner::ListSettlementsResponse, GatewayError> {
        let page = page(request.page_size, request.page_token)?;
        let mut client = self.dispatch.clone();
        let answer = self
            .forward(
                Upstream::Dispatch,
                client.list_settlements(dispatch::ListSettlementsRequest {
                    partner_id: partner.id.clone(),
                    page: Some(page),
                    actor: Some(actor(partner)),
                }),
            )
            .await?;
        Ok(partner::ListSettlementsResponse {
            settlements: answer
                .settlements
                .into_iter()
                .filter(|s| s.partner_id == partner.id)
                .collect(),
            next_page_token: answer.page.map(|p| p.next_page_token).unwrap_or_default(),
        })
    }
}
