//! A partner's settlements through the core: its own monthly statements from dispatch.

use aftersales_platform::status::Violations;
use aftersales_protos::{
    common::v1::PageRequest, dispatch::v1 as dispatch, partner::v1 as partner,
};

use super::{Gateway, actor, finish};
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
        let mut v = Violations::new();
        v.max_len("page_token", &request.page_token, 1_024);
        finish(v)?;
        let mut client = self.dispatch.clone();
        let answer = self
            .forward(
                Upstream::Dispatch,
                client.list_settlements(dispatch::ListSettlementsRequest {
                    partner_id: partner.id.clone(),
                    page: Some(PageRequest {
                        page_size: request.page_size,
                        page_token: request.page_token,
                    }),
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
