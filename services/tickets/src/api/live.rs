//! The gRPC face of the live desk (`DeskService`): checks what is watched and the cursor,
//! then relays the stream the use case produces, decoding each outbox row's envelope.

use std::pin::Pin;

use aftersales_platform::status::Violations;
use aftersales_protos::{
    events::v1::EventEnvelope,
    tickets::v1::{self as pb, desk_service_server::DeskService},
};
use futures::{Stream, StreamExt};
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    domain::live::{Token, Watched},
    usecases::{
        TicketsCore,
        live::{Ended, LiveDesk, Sent},
    },
};

pub use pb::desk_service_server::DeskServiceServer;

type DeskStream = Pin<Box<dyn Stream<Item = Result<pb::DeskEvent, Status>> + Send>>;

pub struct DeskApi {
    core: std::sync::Arc<TicketsCore>,
    live: LiveDesk,
}

impl DeskApi {
    pub fn new(core: std::sync::Arc<TicketsCore>, live: LiveDesk) -> Self {
        Self { core, live }
    }

    pub fn into_server(self) -> DeskServiceServer<Self> {
        DeskServiceServer::new(self)
    }

    async fn watch(&self, watched: Watched, after: Option<Token>) -> Result<DeskStream, Status> {
        let Some(rx) = self.live.open(watched, after).await? else {
            return Err(Status::resource_exhausted(
                "this replica serves as many desk streams as it may; try another or later",
            ));
        };
        Ok(Box::pin(ReceiverStream::new(rx).map(|item| match item {
            Ok(sent) => desk_event(sent),
            Err(Ended::ShuttingDown) => Err(Status::unavailable(
                "the replica is shutting down; reconnect with the last cursor",
            )),
            Err(Ended::Failed(why)) => Err(Status::unavailable(why)),
        })))
    }
}

fn desk_event(sent: Sent) -> Result<pb::DeskEvent, Status> {
    let event = match sent.payload {
        None => None,
        Some(bytes) => Some(EventEnvelope::decode(bytes.as_slice()).map_err(|err| {
            tracing::error!(error = %err, "an outbox row holds no event envelope");
            Status::internal("an event could not be read")
        })?),
    };
    Ok(pb::DeskEvent {
        cursor: sent.token.to_string(),
        event,
    })
}

/// The id and cursor of a watch request, checked.
fn checked(field: &str, id: &str, after: &str) -> Result<Option<Token>, Status> {
    let mut v = Violations::new();
    v.id(field, id);
    let token = match after.trim() {
        "" => None,
        text => match Token::parse("after", text) {
            Ok(token) => Some(token),
            Err(_) => {
                v.add("after", "is no cursor this service handed out");
                None
            }
        },
    };
    v.finish()?;
    Ok(token)
}

#[tonic::async_trait]
impl DeskService for DeskApi {
    type WatchTicketStream = DeskStream;
    type WatchGroupStream = DeskStream;

    async fn watch_ticket(
        &self,
        request: Request<pb::WatchTicketRequest>,
    ) -> Result<Response<Self::WatchTicketStream>, Status> {
        let r = request.into_inner();
        let after = checked("ticket_id", &r.ticket_id, &r.after)?;
        self.core.get_ticket(&r.ticket_id).await?;
        Ok(Response::new(
            self.watch(Watched::Ticket(r.ticket_id), after).await?,
        ))
    }

    async fn watch_group(
        &self,
        request: Request<pb::WatchGroupRequest>,
    ) -> Result<Response<Self::WatchGroupStream>, Status> {
        let r = request.into_inner();
        let after = checked("group_id", &r.group_id, &r.after)?;
        self.core.group(&r.group_id).await?;
        Ok(Response::new(
            self.watch(Watched::Group(r.group_id), after).await?,
        ))
    }
}
