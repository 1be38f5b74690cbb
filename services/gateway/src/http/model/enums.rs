//! The enums of the partner JSON as lower-case strings, each tied to its gRPC enum:
//! job, offer, quote, completion, settlement and tracking states and kinds, and the states
//! of webhook endpoints and deliveries.

use aftersales_platform::{proto_enum, text_enum};
use aftersales_protos::{
    dispatch::v1 as dispatch, returns::v1 as returns, webhooks::v1 as webhooks,
};
use utoipa::ToSchema;

text_enum! {
    #[derive(ToSchema)]
    JobStatus {
        PendingDispatch = "pending_dispatch",
        Offered = "offered",
        Accepted = "accepted",
        Scheduled = "scheduled",
        OnSite = "on_site",
        Completed = "completed",
        CannotComplete = "cannot_complete",
        Cancelled = "cancelled",
        Unassigned = "unassigned",
        WaitingForParts = "waiting_for_parts",
    }
}
proto_enum!(JobStatus => dispatch::JobStatus {
    PendingDispatch => PendingDispatch,
    Offered => Offered,
    Accepted => Accepted,
    Scheduled => Scheduled,
    OnSite => OnSite,
    Completed => Completed,
    CannotComplete => CannotComplete,
    Cancelled => Cancelled,
    Unassigned => Unassigned,
    WaitingForParts => WaitingForParts,
});

text_enum! {
    #[derive(ToSchema)]
    Urgency { Normal = "normal", Urgent = "urgent" }
}
proto_enum!(Urgency => dispatch::Urgency { Normal => Normal, Urgent => Urgent });

text_enum! {
    /// Urban: on site within 24 h of acceptance; county: within 48 h.
    #[derive(ToSchema)]
    AreaKind { Urban = "urban", County = "county" }
}
proto_enum!(AreaKind => dispatch::AreaKind { Urban => Urban, County => County });

text_enum! {
    #[derive(ToSchema)]
    OfferStatus {
        Open = "open",
        Accepted = "accepted",
        Declined = "declined",
        Expired = "expired",
        Withdrawn = "withdrawn",
    }
}
proto_enum!(OfferStatus => dispatch::OfferStatus {
    Open => Open,
    Accepted => Accepted,
    Declined => Declined,
    Expired => Expired,
    Withdrawn => Withdrawn,
});

text_enum! {
    #[derive(ToSchema)]
    QuoteLineKind { Labour = "labour", Part = "part", CallOut = "call_out" }
}
proto_enum!(QuoteLineKind => dispatch::QuoteLineKind {
    Labour => Labour,
    Part => Part,
    CallOut => CallOut,
});

text_enum! {
    #[derive(ToSchema)]
    QuoteStatus {
        PendingReview = "pending_review",
        Approved = "approved",
        Rejected = "rejected",
    }
}
proto_enum!(QuoteStatus => dispatch::QuoteStatus {
    PendingReview => PendingReview,
    Approved => Approved,
    Rejected => Rejected,
});

text_enum! {
    /// Warranty jobs charge the company, others the customer.
    #[derive(ToSchema)]
    Payer { Customer = "customer", Company = "company" }
}
proto_enum!(Payer => dispatch::Payer { Customer => Customer, Company => Company });

text_enum! {
    #[derive(ToSchema)]
    CompletionOutcome {
        Fixed = "fixed",
        NotFixed = "not_fixed",
        NeedsParts = "needs_parts",
        Replaced = "replaced",
    }
}
proto_enum!(CompletionOutcome => dispatch::CompletionOutcome {
    Fixed => Fixed,
    NotFixed => NotFixed,
    NeedsParts => NeedsParts,
    Replaced => Replaced,
});

text_enum! {
    #[derive(ToSchema)]
    CompletionMode {
        OnSite = "on_site",
        Remote = "remote",
    }
}
proto_enum!(CompletionMode => dispatch::CompletionMode {
    OnSite => OnSite,
    Remote => Remote,
});

text_enum! {
    #[derive(ToSchema)]
    SettlementStatus {
        Draft = "draft",
        Issued = "issued",
        Disputed = "disputed",
        Paid = "paid",
    }
}
proto_enum!(SettlementStatus => dispatch::SettlementStatus {
    Draft => Draft,
    Issued => Issued,
    Disputed => Disputed,
    Paid => Paid,
});

text_enum! {
    #[derive(ToSchema)]
    TrackingKind {
        PickedUp = "picked_up",
        InTransit = "in_transit",
        DeliveredToWarehouse = "delivered_to_warehouse",
        Exception = "exception",
    }
}
proto_enum!(TrackingKind => returns::TrackingKind {
    PickedUp => PickedUp,
    InTransit => InTransit,
    DeliveredToWarehouse => DeliveredToWarehouse,
    Exception => Exception,
});

text_enum! {
    /// Paused by you: nothing is delivered until you enable it again. Disabled: failing
    /// for too long, so the suite stopped delivering (enable it to start again).
    #[derive(ToSchema)]
    EndpointState { Enabled = "enabled", Paused = "paused", Disabled = "disabled" }
}
proto_enum!(EndpointState => webhooks::EndpointState {
    Enabled => Enabled,
    Paused => Paused,
    Disabled => Disabled,
});

text_enum! {
    /// The states you may set on an endpoint; enabling a disabled one clears its failures.
    #[derive(ToSchema)]
    EndpointStateChange { Enabled = "enabled", Paused = "paused" }
}
proto_enum!(EndpointStateChange => webhooks::EndpointState {
    Enabled => Enabled,
    Paused => Paused,
});

text_enum! {
    /// Pending: waiting for its next attempt. Failed: given up, because the endpoint was
    /// disabled, paused or deleted before it succeeded.
    #[derive(ToSchema)]
    DeliveryState { Pending = "pending", Delivered = "delivered", Failed = "failed" }
}
proto_enum!(DeliveryState => webhooks::DeliveryState {
    Pending => Pending,
    Delivered => Delivered,
    Failed => Failed,
});

text_enum! {
    /// Open: held (in whole or in part) for the job; consumed by its fix; released when
    /// the job ended otherwise.
    #[derive(ToSchema)]
    ReservationStatus { Open = "open", Consumed = "consumed", Released = "released" }
}
proto_enum!(ReservationStatus => dispatch::ReservationStatus {
    Open => Open,
    Consumed => Consumed,
    Released => Released,
});
