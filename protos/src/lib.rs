//! The suite's gRPC contracts: generated prost messages and tonic stubs, one module per
//! protobuf package, plus the descriptor set that servers hand to gRPC reflection.
//! Generated code, plus the event type names every publisher and consumer agree on;
//! conversions to domain types live in each service.

pub mod text;

/// Encoded `FileDescriptorSet` of the production contracts, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/aftersales_descriptor.bin"));

/// The bench harness's contract alone (its server registers it beside the production set).
pub const BENCH_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bench_descriptor.bin"));

include!(concat!(env!("OUT_DIR"), "/text_fields.rs"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("aftersales.common.v1");
    }
}

pub mod tickets {
    pub mod v1 {
        tonic::include_proto!("aftersales.tickets.v1");
    }
}

pub mod returns {
    pub mod v1 {
        tonic::include_proto!("aftersales.returns.v1");
    }
}

pub mod dispatch {
    pub mod v1 {
        tonic::include_proto!("aftersales.dispatch.v1");
    }
}

pub mod care {
    pub mod v1 {
        tonic::include_proto!("aftersales.care.v1");
    }
}

pub mod audit {
    pub mod v1 {
        tonic::include_proto!("aftersales.audit.v1");
    }
}

pub mod partner {
    pub mod v1 {
        tonic::include_proto!("aftersales.partner.v1");
    }
}

pub mod webhooks {
    pub mod v1 {
        tonic::include_proto!("aftersales.webhooks.v1");
    }
}

pub mod bench {
    pub mod v1 {
        tonic::include_proto!("aftersales.bench.v1");
    }
}

pub mod events {
    // Envelopes are built once and encoded; boxing the large payloads buys nothing.
    #[allow(clippy::large_enum_variant)]
    pub mod v1 {
        tonic::include_proto!("aftersales.events.v1");

        use event_envelope::Payload;

        /// The `type` of an envelope carrying `payload`: `<source>.<Message>`.
        pub fn type_name(payload: &Payload) -> &'static str {
            match payload {
                Payload::TicketCreated(_) => "tickets.TicketCreated",
                Payload::TicketStatusChanged(_) => "tickets.TicketStatusChanged",
                Payload::TicketEscalated(_) => "tickets.TicketEscalated",
                Payload::SlaWarning(_) => "tickets.SlaWarning",
                Payload::SlaBreached(_) => "tickets.SlaBreached",
                Payload::TicketResolved(_) => "tickets.TicketResolved",
                Payload::TicketReopened(_) => "tickets.TicketReopened",
                Payload::TicketAssigned(_) => "tickets.TicketAssigned",
                Payload::SlaClockMet(_) => "tickets.SlaClockMet",
                Payload::ReturnRequested(_) => "returns.ReturnRequested",
                Payload::ReturnApproved(_) => "returns.ReturnApproved",
                Payload::ReturnRejected(_) => "returns.ReturnRejected",
                Payload::ReturnReceived(_) => "returns.ReturnReceived",
                Payload::ReturnInspected(_) => "returns.ReturnInspected",
                Payload::RefundSucceeded(_) => "returns.RefundSucceeded",
                Payload::RefundFailed(_) => "returns.RefundFailed",
                Payload::ReturnStepOverdue(_) => "returns.ReturnStepOverdue",
                Payload::ExchangeShipmentRequested(_) => "returns.ExchangeShipmentRequested",
                Payload::RepairJobRequested(_) => "returns.RepairJobRequested",
                Payload::ThirdPartyInspectionRequested(_) => {
                    "returns.ThirdPartyInspectionRequested"
                }
                Payload::ThirdPartyResultRecorded(_) => "returns.ThirdPartyResultRecorded",
                Payload::CompensationRequested(_) => "returns.CompensationRequested",
                Payload::CompensationApproved(_) => "returns.CompensationApproved",
                Payload::CompensationRejected(_) => "returns.CompensationRejected",
                Payload::CompensationPaid(_) => "returns.CompensationPaid",
                Payload::CompensationGranted(_) => "returns.CompensationGranted",
                Payload::CompensationPaymentFailed(_) => "returns.CompensationPaymentFailed",
                Payload::PickupBooked(_) => "returns.PickupBooked",
                Payload::JobCreated(_) => "dispatch.JobCreated",
                Payload::JobOffered(_) => "dispatch.JobOffered",
                Payload::JobAccepted(_) => "dispatch.JobAccepted",
                Payload::JobDeclined(_) => "dispatch.JobDeclined",
                Payload::JobUnassigned(_) => "dispatch.JobUnassigned",
                Payload::VisitLate(_) => "dispatch.VisitLate",
                Payload::JobCompleted(_) => "dispatch.JobCompleted",
                Payload::QuoteNeedsReview(_) => "dispatch.QuoteNeedsReview",
                Payload::JobCancelled(_) => "dispatch.JobCancelled",
                Payload::OfferWithdrawn(_) => "dispatch.OfferWithdrawn",
                Payload::QuoteReviewed(_) => "dispatch.QuoteReviewed",
                Payload::SettlementIssued(_) => "dispatch.SettlementIssued",
                Payload::PartLowStock(_) => "dispatch.PartLowStock",
                Payload::JobPartsReady(_) => "dispatch.JobPartsReady",
                Payload::RepairCosted(_) => "dispatch.RepairCosted",
                Payload::StockLevelChanged(_) => "dispatch.StockLevelChanged",
                Payload::CustomerTierChanged(_) => "care.CustomerTierChanged",
                Payload::FollowUpRecorded(_) => "care.FollowUpRecorded",
                Payload::FollowUpOverdue(_) => "care.FollowUpOverdue",
                Payload::CustomerAnonymised(_) => "care.CustomerAnonymised",
                Payload::IncidentOpened(_) => "care.IncidentOpened",
                Payload::IncidentDeclared(_) => "care.IncidentDeclared",
                Payload::IncidentClockWarning(_) => "care.IncidentClockWarning",
                Payload::IncidentClockBreached(_) => "care.IncidentClockBreached",
                Payload::IncidentTicketLinked(_) => "care.IncidentTicketLinked",
                Payload::IncidentClosed(_) => "care.IncidentClosed",
                Payload::IncidentTicketsUpdated(_) => "care.IncidentTicketsUpdated",
                Payload::EndpointDisabled(_) => "webhooks.EndpointDisabled",
            }
        }

        /// Every `type` an envelope may carry: the catalogue, in [`type_name`]'s order.
        pub const EVENT_TYPES: &[&str] = &[
            "tickets.TicketCreated",
            "tickets.TicketStatusChanged",
            "tickets.TicketEscalated",
            "tickets.SlaWarning",
            "tickets.SlaBreached",
            "tickets.TicketResolved",
            "tickets.TicketReopened",
            "tickets.TicketAssigned",
            "tickets.SlaClockMet",
            "returns.ReturnRequested",
            "returns.ReturnApproved",
            "returns.ReturnRejected",
            "returns.ReturnReceived",
            "returns.ReturnInspected",
            "returns.RefundSucceeded",
            "returns.RefundFailed",
            "returns.ReturnStepOverdue",
            "returns.ExchangeShipmentRequested",
            "returns.RepairJobRequested",
            "returns.ThirdPartyInspectionRequested",
            "returns.ThirdPartyResultRecorded",
            "returns.CompensationRequested",
            "returns.CompensationApproved",
            "returns.CompensationRejected",
            "returns.CompensationPaid",
            "returns.CompensationGranted",
            "returns.CompensationPaymentFailed",
            "returns.PickupBooked",
            "dispatch.JobCreated",
            "dispatch.JobOffered",
            "dispatch.JobAccepted",
            "dispatch.JobDeclined",
            "dispatch.JobUnassigned",
            "dispatch.VisitLate",
            "dispatch.JobCompleted",
            "dispatch.QuoteNeedsReview",
            "dispatch.JobCancelled",
            "dispatch.OfferWithdrawn",
            "dispatch.QuoteReviewed",
            "dispatch.SettlementIssued",
            "dispatch.PartLowStock",
            "dispatch.JobPartsReady",
            "dispatch.RepairCosted",
            "dispatch.StockLevelChanged",
            "care.CustomerTierChanged",
            "care.FollowUpRecorded",
            "care.FollowUpOverdue",
            "care.CustomerAnonymised",
            "care.IncidentOpened",
            "care.IncidentDeclared",
            "care.IncidentClockWarning",
            "care.IncidentClockBreached",
            "care.IncidentTicketLinked",
            "care.IncidentClosed",
            "care.IncidentTicketsUpdated",
            "webhooks.EndpointDisabled",
        ];

        #[cfg(test)]
        mod tests {
            use std::collections::HashSet;

            use prost::{
                Message,
                encoding::{WireType, encode_key},
            };
            use prost_types::FileDescriptorSet;

            use super::{EVENT_TYPES, EventEnvelope, type_name};

            /// The oneof fields of `EventEnvelope.payload`, as the contract declares them.
            fn payload_fields() -> Vec<prost_types::FieldDescriptorProto> {
                let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
                let file = set
                    .file
                    .iter()
                    .find(|f| f.package() == "aftersales.events.v1")
                    .unwrap();
                let envelope = file
                    .message_type
                    .iter()
                    .find(|m| m.name() == "EventEnvelope")
                    .unwrap();
                let payload = envelope
                    .oneof_decl
                    .iter()
                    .position(|o| o.name() == "payload")
                    .unwrap();
                envelope
                    .field
                    .iter()
                    .filter(|f| f.oneof_index == Some(payload as i32))
                    .cloned()
                    .collect()
            }

            /// An envelope carrying an empty payload in the oneof field numbered `tag`.
            fn envelope_with(tag: u32) -> EventEnvelope {
                let mut bytes = Vec::new();
                encode_key(tag, WireType::LengthDelimited, &mut bytes);
                bytes.push(0);
                EventEnvelope::decode(bytes.as_slice()).unwrap()
            }

            #[test]
            fn the_catalogue_lists_every_payload_once_in_type_names_order() {
                let unique: HashSet<&str> = EVENT_TYPES.iter().copied().collect();
                assert_eq!(unique.len(), EVENT_TYPES.len(), "a type listed twice");
                let mut fields = payload_fields();
                fields.sort_by_key(|f| f.number());
                let named: Vec<&str> = fields
                    .iter()
                    .map(|field| {
                        let payload = envelope_with(field.number() as u32).payload.unwrap();
                        let name = type_name(&payload);
                        let message = field.type_name().rsplit('.').next().unwrap();
                        assert_eq!(name.split_once('.').unwrap().1, message, "{name}");
                        name
                    })
                    .collect();
                assert_eq!(EVENT_TYPES, named.as_slice());
            }
        }
    }
}
