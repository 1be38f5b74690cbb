//! The OpenAPI 3.1 document, generated from the routes' annotations (`routes::ApiDoc`)
//! and built once: the security schemes and the error answers every route shares, and the
//! `webhooks` section describing the events partners' endpoints receive (`events`).

mod events;

use std::{collections::BTreeMap, sync::OnceLock};

use utoipa::{
    IntoResponses, Modify, OpenApi,
    openapi::{
        self, Content, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::http::routes::ApiDoc;

/// The document as JSON, built on first use.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| build().unwrap_or_else(|err| format!(r#"{{"error":"openapi: {err}"}}"#)))
}

/// The generated document with the `webhooks` section added.
fn build() -> Result<String, serde_json::Error> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    if let Some(doc) = doc.as_object_mut() {
        doc.insert("webhooks".to_owned(), events::webhooks());
    }
    serde_json::to_string_pretty(&doc)
}

/// `bearer` (`Authorization: Bearer <key>`) and `api_key` (`X-API-Key: <key>`).
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Your partner API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Your partner API key",
            ))),
        );
    }
}

fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

fn unauthorized(description: &str) -> Response {
    error(description)
        .header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(String::schema_ref())
                .description(Some("Bearer"))
                .build(),
        )
        .build()
}

fn common(out: &mut BTreeMap<String, RefOr<Response>>) {
    let mut add = |code: &str, response: Response| {
        out.insert(code.to_owned(), RefOr::T(response));
    };
    add(
        "400",
        error("A field could not be read or is invalid (named in field_violations)").build(),
    );
    add(
        "404",
        error("No such job, webhook endpoint or delivery of yours").build(),
    );
    add(
        "408",
        error("The request was not received within the request timeout").build(),
    );
    add(
        "409",
        error("The job or endpoint is not in a state that allows this").build(),
    );
    add("413", error("The body is larger than the limit").build());
    add(
        "503",
        error("An upstream service is unavailable; retry").build(),
    );
    add(
        "504",
        error("An upstream service did not answer in time").build(),
    );
}

/// The error answers of every partner route.
pub struct Failures;

impl IntoResponses for Failures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut out = BTreeMap::new();
        common(&mut out);
        out.insert(
            "401".into(),
            RefOr::T(unauthorized("Missing, invalid, revoked or expired API key")),
        );
        out.insert(
            "429".into(),
            RefOr::T(
                error(
                    "Your key's rate limit is spent, or your address made too many failed \
                     key attempts",
                )
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(u64::schema_ref())
                        .description(Some("Seconds to wait"))
                        .build(),
                )
                .build(),
            ),
        );
        out
    }
}

/// The error answers of the carrier webhook.
pub struct CarrierFailures;

impl IntoResponses for CarrierFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut out = BTreeMap::new();
        common(&mut out);
        out.insert(
            "401".into(),
            RefOr::T(unauthorized(
                "Unknown carrier, bad signature, or a missing, malformed or stale \
                 X-Carrier-Timestamp",
            )),
        );
        out
    }
}

/// A primitive's inline schema.
trait SchemaRef {
    fn schema_ref() -> RefOr<openapi::schema::Schema>;
}

impl<T: utoipa::PartialSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<openapi::schema::Schema> {
        T::schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_and_both_key_schemes() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/v1/offers",
            "/v1/jobs",
            "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}/accept",
            "/v1/jobs/{job_id}/decline",
            "/v1/jobs/{job_id}/schedule",
            "/v1/jobs/{job_id}/visit",
            "/v1/jobs/{job_id}/quotes",
            "/v1/jobs/{job_id}/complete",
            "/v1/jobs/{job_id}/resolve-remotely",
            "/v1/jobs/{job_id}/parts-requests",
            "/v1/settlements",
            "/v1/carriers/{carrier}/tracking",
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints/{endpoint_id}",
            "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            "/v1/webhook-endpoints/{endpoint_id}/deliveries",
            "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
            "/v1/webhook-event-types",
            "/openapi.json",
            "/healthz",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, 24);
        let endpoint = doc["paths"]["/v1/webhook-endpoints/{endpoint_id}"]
            .as_object()
            .unwrap();
        let mut methods: Vec<&String> = endpoint.keys().collect();
        methods.sort();
        assert_eq!(methods, ["delete", "get", "patch"]);
        assert!(doc["webhooks"]["dispatch.JobOffered"]["post"].is_object());
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["api_key"]["name"], "X-API-Key");
        assert_eq!(
            doc["components"]["schemas"]["JobStatus"]["enum"][4],
            "on_site"
        );
        assert!(
            doc["paths"]["/v1/jobs"]["get"]["responses"]["429"]["headers"]["Retry-After"]
                .is_object()
        );
        let webhook = &doc["paths"]["/v1/carriers/{carrier}/tracking"]["post"];
        let headers: Vec<&str> = webhook["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(headers, ["X-Carrier-Timestamp", "X-Signature"]);
        let signature = webhook["parameters"][2]["description"].as_str().unwrap();
        assert!(
            signature.contains("<X-Carrier-Timestamp>.<raw body>"),
            "{signature}"
        );
    }
}
