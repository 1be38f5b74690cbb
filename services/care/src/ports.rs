//! The tickets service as care sees it: one call, `ReopenTicket`, for follow-ups whose
//! customer is not helped. An enum of adapters (only gRPC today) rather than a trait, so
//! tests point it at a real tickets service spawned in-process.

use aftersales_platform::{
    auth::{Bearer, BearerLayer, TokenSource},
    client,
    tls::UpstreamTls,
};
use aftersales_protos::{
    common::v1 as common,
    tickets::v1::{ReopenTicketRequest, ticket_service_client::TicketServiceClient},
};
use tonic::{Code, transport::Channel};

/// How a reopen request ended, as far as retrying goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reopen {
    /// The ticket is reopened now.
    Done,
    /// Already reopened (an earlier attempt went through) or gone: nothing left to do.
    Settled(String),
}

#[derive(Debug, thiserror::Error)]
#[error("tickets service: {0}")]
pub struct TicketsUnavailable(pub String);

#[derive(Debug, Clone)]
pub enum TicketsPort {
    Grpc(TicketServiceClient<Bearer<Channel>>),
}

impl TicketsPort {
    /// A client for `url` that connects on first use, so care starts while tickets is
    /// down. Needs a Tokio runtime.
    /// Calls carry care's service token when it has one; an `https://` URL is called over
    /// TLS checked by `tls`.
    pub fn grpc(url: &str, tls: &UpstreamTls, token: Option<TokenSource>) -> Result<Self, String> {
        let endpoint = client::endpoint(url, tls).map_err(|e| e.to_string())?;
        let channel = tower::ServiceBuilder::new()
            .layer(BearerLayer::optional(token))
            .service(endpoint.connect_lazy());
        Ok(Self::Grpc(TicketServiceClient::new(channel)))
    }

    pub async fn reopen(
        &self,
        ticket_id: &str,
        reason: &str,
    ) -> Result<Reopen, TicketsUnavailable> {
        match self {
            Self::Grpc(client) => {
                let request = ReopenTicketRequest {
                    ticket_id: ticket_id.to_owned(),
                    reason: reason.to_owned(),
                    actor: Some(common::Actor {
                        id: "care".into(),
                        role: common::ActorRole::System as i32,
                    }),
                };
                match client.clone().reopen_ticket(request).await {
                    Ok(_) => Ok(Reopen::Done),
                    Err(status) => match status.code() {
                        Code::FailedPrecondition | Code::NotFound => {
                            Ok(Reopen::Settled(status.message().to_owned()))
                        }
                        _ => Err(TicketsUnavailable(status.to_string())),
                    },
                }
            }
        }
    }
}
