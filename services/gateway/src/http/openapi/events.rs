//! The document's top-level `webhooks` section (OpenAPI 3.1): one `post` per event type a
//! partner's endpoint may receive, with the envelope `{type, timestamp, data}` as body,
//! `data` in the proto3 JSON mapping of the event (lowerCamelCase names, int64 as string,
//! Timestamps as RFC 3339), and the three Standard Webhooks headers. utoipa 5 has no
//! `webhooks`, so the section is JSON added to the generated document; the tests hold
//! each event's fields against the generated `aftersales.events.v1` messages.

use serde_json::{Map, Value, json};

/// The JSON type of one event field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Bool,
    Uint32,
    /// `google.protobuf.Timestamp`.
    Instant,
    /// `aftersales.common.v1.Money`.
    Money,
}

/// One field of an event: its proto3 JSON name, its type, what it says.
struct Field(&'static str, Kind, &'static str);

/// One event type a partner may subscribe to.
struct Event {
    name: &'static str,
    summary: &'static str,
    fields: &'static [Field],
}

const PARTNER_ID: Field = Field("partnerId", Kind::String, "Your partner id");

/// The partner catalogue, in `aftersales.events.v1` field order.
const EVENTS: &[Event] = &[
    Event {
        name: "dispatch.JobOffered",
        summary: "A job was offered to you: accept or decline it before `expiresAt`",
        fields: &[
            Field("jobId", Kind::String, "The job offered"),
            Field("offerId", Kind::String, "The offer"),
            PARTNER_ID,
            Field(
                "expiresAt",
                Kind::Instant,
                "Until when the offer may be accepted; then it goes to the next partner",
            ),
            Field("attempt", Kind::Uint32, "1 for the first offer of the job"),
        ],
    },
    Event {
        name: "dispatch.OfferWithdrawn",
        summary: "An open offer to you was taken back before you answered (the job was cancelled)",
        fields: &[
            Field("jobId", Kind::String, "The job"),
            Field("offerId", Kind::String, "The offer withdrawn"),
            PARTNER_ID,
            Field("reason", Kind::String, "Why, in dispatch's own words"),
        ],
    },
    Event {
        name: "dispatch.JobCancelled",
        summary: "A job offered or assigned to you was cancelled",
        fields: &[
            Field("jobId", Kind::String, "The job cancelled"),
            Field("reason", Kind::String, "Why"),
            PARTNER_ID,
        ],
    },
    Event {
        name: "dispatch.QuoteReviewed",
        summary: "A quote of yours that waited for review was approved or rejected",
        fields: &[
            Field("jobId", Kind::String, "The job quoted"),
            Field("quoteId", Kind::String, "The quote"),
            PARTNER_ID,
            Field(
                "approved",
                Kind::Bool,
                "Approved; false (or absent): rejected",
            ),
            Field("total", Kind::Money, "The quote's total"),
        ],
    },
    Event {
        name: "dispatch.SettlementIssued",
        summary: "Your monthly settlement was issued (again after a dispute, too)",
        fields: &[
            Field("settlementId", Kind::String, "The settlement"),
            PARTNER_ID,
            Field("month", Kind::String, "`YYYY-MM`, in your time zone"),
            Field("total", Kind::Money, "What the statement comes to"),
            Field("issuedAt", Kind::Instant, "When it was issued"),
        ],
    },
    Event {
        name: "dispatch.JobPartsReady",
        summary: "Every part a job of yours waited for has arrived: it is accepted again and can be scheduled",
        fields: &[
            Field("jobId", Kind::String, "The job"),
            PARTNER_ID,
            Field("ticketId", Kind::String, "The ticket the job is for"),
        ],
    },
];

fn schema(kind: Kind, description: &str) -> Value {
    match kind {
        Kind::String => json!({"type": "string", "description": description}),
        Kind::Bool => json!({"type": "boolean", "description": description}),
        Kind::Uint32 => json!({
            "type": "integer", "format": "int32", "minimum": 0, "description": description
        }),
        Kind::Instant => json!({
            "type": "string", "format": "date-time", "description": description
        }),
        Kind::Money => json!({
            "type": "object",
            "description": description,
            "properties": {
                "minorUnits": {
                    "type": "string",
                    "pattern": "^-?[0-9]+$",
                    "description": "Integer minor units (fen, cents): an int64, as a string"
                },
                "currency": {
                    "type": "string",
                    "pattern": "^[A-Z]{3}$",
                    "examples": ["CNY"],
                    "description": "ISO 4217 code"
                }
            }
        }),
    }
}

/// The three Standard Webhooks headers every delivery carries.
fn headers() -> Value {
    json!([
        {
            "name": "webhook-id",
            "in": "header",
            "required": true,
            "description": "The event's id: the same on every attempt and replay of it, so \
                process each id once",
            "schema": {"type": "string"}
        },
        {
            "name": "webhook-timestamp",
            "in": "header",
            "required": true,
            "description": "When this attempt was signed, in unix seconds; refuse one far \
                from your clock (e.g. more than 5 minutes), so a captured request stops \
                working",
            "schema": {"type": "string", "pattern": "^[0-9]+$", "examples": ["1796205600"]}
        },
        {
            "name": "webhook-signature",
            "in": "header",
            "required": true,
            "description": "Space-separated list of `v1,<base64 HMAC-SHA256>` signatures of \
                `<webhook-id>.<webhook-timestamp>.<raw body>`, keyed with the base64-decoded \
                part of your secret after `whsec_`. During a secret rotation's overlap both \
                secrets sign; accept the request when any signature matches (compare in \
                constant time)",
            "schema": {
                "type": "string",
                "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$",
                "examples": ["v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="]
            }
        }
    ])
}

/// The `post` operation describing deliveries of `event`.
fn operation(event: &Event) -> Value {
    let properties: Map<String, Value> = event
        .fields
        .iter()
        .map(|Field(name, kind, description)| ((*name).to_owned(), schema(*kind, description)))
        .collect();
    let body = json!({
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"type": "string", "const": event.name},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the event happened (RFC 3339)"
            },
            "data": {
                "type": "object",
                "description": "The event in the proto3 JSON mapping: a field at its default \
                    (empty, 0, false) may be absent, and fields added later may appear",
                "properties": properties
            }
        }
    });
    json!({
        "post": {
            "operationId": format!("webhook_{}", event.name.replace('.', "_")),
            "summary": event.summary,
            "description": format!(
                "Posted to each of your enabled endpoints subscribed to `{}`. Answer 2xx \
                 within a few seconds; anything else (or no answer) is retried with back-off, \
                 and an endpoint failing for days is disabled.",
                event.name
            ),
            "tags": ["webhooks"],
            "security": [],
            "parameters": headers(),
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": body}}
            },
            "responses": {
                "2XX": {"description": "Received; a repeat of a `webhook-id` is answered the same"}
            }
        }
    })
}

/// The `webhooks` section: one entry per event type of the partner catalogue.
pub fn webhooks() -> Value {
    Value::Object(
        EVENTS
            .iter()
            .map(|event| (event.name.to_owned(), operation(event)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use aftersales_protos::events::v1 as events;

    use super::*;

    fn fields(name: &str) -> Vec<&'static str> {
        let event = EVENTS.iter().find(|e| e.name == name).unwrap();
        event.fields.iter().map(|f| f.0).collect()
    }

    /// Each destructuring names every field of the generated message (no `..`): a field
    /// added to or renamed in `events.proto` stops this from compiling, and the table must
    /// follow.
    #[test]
    fn the_catalogue_has_the_fields_of_the_events() {
        let events::JobOffered {
            job_id: _,
            offer_id: _,
            partner_id: _,
            expires_at: _,
            attempt: _,
        } = events::JobOffered::default();
        assert_eq!(
            fields("dispatch.JobOffered"),
            ["jobId", "offerId", "partnerId", "expiresAt", "attempt"]
        );
        let events::OfferWithdrawn {
            job_id: _,
            offer_id: _,
            partner_id: _,
            reason: _,
        } = events::OfferWithdrawn::default();
        assert_eq!(
            fields("dispatch.OfferWithdrawn"),
            ["jobId", "offerId", "partnerId", "reason"]
        );
        let events::JobCancelled {
            job_id: _,
            reason: _,
            partner_id: _,
        } = events::JobCancelled::default();
        assert_eq!(
            fields("dispatch.JobCancelled"),
            ["jobId", "reason", "partnerId"]
        );
        let events::QuoteReviewed {
            job_id: _,
            quote_id: _,
            partner_id: _,
            approved: _,
            total: _,
        } = events::QuoteReviewed::default();
        assert_eq!(
            fields("dispatch.QuoteReviewed"),
            ["jobId", "quoteId", "partnerId", "approved", "total"]
        );
        let events::SettlementIssued {
            settlement_id: _,
            partner_id: _,
            month: _,
            total: _,
            issued_at: _,
        } = events::SettlementIssued::default();
        assert_eq!(
            fields("dispatch.SettlementIssued"),
            ["settlementId", "partnerId", "month", "total", "issuedAt"]
        );
        let events::JobPartsReady {
            job_id: _,
            partner_id: _,
            ticket_id: _,
        } = events::JobPartsReady::default();
        assert_eq!(
            fields("dispatch.JobPartsReady"),
            ["jobId", "partnerId", "ticketId"]
        );
    }

    #[test]
    fn each_event_is_a_signed_post_of_its_envelope() {
        let section = webhooks();
        let names: Vec<&String> = section.as_object().unwrap().keys().collect();
        assert_eq!(names.len(), 6);
        let offered = &section["dispatch.JobOffered"]["post"];
        let headers: Vec<&str> = offered["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
        let body = &offered["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["type"]["const"], "dispatch.JobOffered");
        assert_eq!(body["properties"]["timestamp"]["format"], "date-time");
        let data = &body["properties"]["data"]["properties"];
        assert_eq!(data["expiresAt"]["format"], "date-time");
        assert_eq!(data["attempt"]["type"], "integer");
        let total = &section["dispatch.QuoteReviewed"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["data"]["properties"]["total"];
        assert_eq!(total["properties"]["minorUnits"]["type"], "string");
        assert_eq!(total["properties"]["currency"]["type"], "string");
    }
}
