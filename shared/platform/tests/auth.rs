#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Identity against a real OpenID provider: oauth2-mock-server, installed by
//! `tests/setup/tools-oidc.sh` (`make tools`) and started per test on a free loopback port
//! by `tests/setup/oidc/provider.mjs`, which issues client-credentials tokens, serves
//! discovery and JWKS, and rotates its signing key when told to. Tokens are verified as a
//! service would (settings from the environment, keys from discovery), refused tokens are
//! tried one by one, service tokens are fetched, cached and renewed on a manual clock, and
//! the server layer guards a real tonic server on port 0.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use aftersales_platform::{
    CancellationToken,
    auth::{
        AuthError, AuthLayer, AuthMode, AuthSettings, Caller, DevIssuer, OidcSettings, Permissions,
        TokenError, TokenSource, Verifier,
    },
    clock::ManualClock,
    config::Env,
    server::{self, GrpcServices, ServerSettings},
};
use aftersales_protos::{
    bench::v1::{
        echo_client::EchoClient,
        echo_server::{Echo, EchoServer},
    },
    tickets::v1::Ticket,
};
use aftersales_testkit::oidc;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::{Code, Request, Response, Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::ServiceBuilder;

const AUDIENCE: &str = "aftersales";
const ECHO: &str = "/aftersales.bench.v1.Echo/Echo";

/// The provider, with the clients these tests use: `agent-console` (role `agent`),
/// `analyst-app` (`analyst`), `care` (`svc:care`).
struct Provider(oidc::Provider);

impl std::ops::Deref for Provider {
    type Target = oidc::Provider;
    fn deref(&self) -> &oidc::Provider {
        &self.0
    }
}

impl Provider {
    async fn start() -> Self {
        let clients = json!({
            "agent-console": {"secret": "agent-console-secret", "roles": ["agent"]},
            "analyst-app": {"secret": "analyst-app-secret", "roles": ["analyst"]},
            "care": {"secret": "care-secret", "roles": ["svc:care"]},
        });
        Self(oidc::Provider::start(AUDIENCE, &clients).await.unwrap())
    }

    async fn rotate(&mut self, alg: &str) -> String {
        self.0.rotate(alg).await.unwrap()
    }

    async fn token(&self, client: &str, extra: &[(&str, &str)], claims: Value) -> String {
        self.0.token(client, extra, claims).await.unwrap()
    }

    fn env(&self, more: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            ("AUTH_ISSUER".to_owned(), self.issuer.clone()),
            ("AUTH_AUDIENCE".to_owned(), AUDIENCE.to_owned()),
        ];
        pairs.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Env::from_pairs(pairs)
    }

    /// Settings as a service reads them (keys from discovery).
    fn settings(&self) -> OidcSettings {
        match AuthSettings::from_env(&self.env(&[])).unwrap().mode {
            AuthMode::Oidc(oidc) => oidc,
            AuthMode::Disabled => unreachable!(),
        }
    }
}

fn now() -> i64 {
    Utc::now().timestamp()
}

fn roles(caller: &Caller) -> Vec<&str> {
    caller.roles.iter().map(String::as_str).collect()
}

/// A P-256 key nobody trusts.
fn foreign_ec_key() -> EncodingKey {
    let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .unwrap()
        .to_pkcs8v1()
        .unwrap();
    EncodingKey::from_ec_der(pkcs8.as_ref())
}

fn valid_claims(provider: &Provider) -> Value {
    json!({
        "iss": provider.issuer, "aud": AUDIENCE, "sub": "mallory", "roles": ["admin"],
        "iat": now(), "exp": now() + 600,
    })
}

fn refused_as_unauthenticated(err: AuthError) -> AuthError {
    assert_eq!(Status::from(err).code(), Code::Unauthenticated, "{err:?}");
    err
}

#[tokio::test]
async fn a_provider_token_is_accepted_with_roles_from_roles_and_scope() {
    let provider = Provider::start().await;
    let verifier = Verifier::new(provider.settings()).unwrap();
    assert_eq!(verifier.load_keys().await.unwrap(), 1);

    let token = provider
        .token(
            "agent-console",
            &[("scope", "pii:read reports")],
            Value::Null,
        )
        .await;
    let caller = verifier.verify(&token).await.unwrap();
    assert_eq!(caller.subject, "agent-console");
    assert_eq!(caller.client_id.as_deref(), Some("agent-console"));
    assert_eq!(roles(&caller), ["agent", "pii:read", "reports"]);

    // The same through the header, and with the key set named directly.
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(verifier.verify_headers(&headers).await.unwrap(), caller);
    let jwks_url = format!("{}/jwks", provider.issuer);
    let env = provider.env(&[("AUTH_JWKS_URL", &jwks_url)]);
    let AuthMode::Oidc(direct) = AuthSettings::from_env(&env).unwrap().mode else {
        unreachable!()
    };
    assert_eq!(direct.jwks_url.as_deref(), Some(jwks_url.as_str()));
    let direct = Verifier::new(direct).unwrap();
    assert_eq!(direct.verify(&token).await.unwrap(), caller);

    // An audience among several is enough; an `exp` inside the leeway too.
    let several = provider
        .token(
            "agent-console",
            &[],
            json!({"aud": ["billing", AUDIENCE], "exp": now() - 5}),
        )
        .await;
    assert!(verifier.verify(&several).await.is_ok());
}

#[tokio::test]
async fn refused_tokens_are_unauthenticated_and_say_why_in_a_word() {
    let provider = Provider::start().await;
    let verifier = Verifier::new(provider.settings()).unwrap();
    let refused =
        |result: Result<Caller, AuthError>| refused_as_unauthenticated(result.unwrap_err());

    assert_eq!(
        refused(verifier.verify_headers(&http::HeaderMap::new()).await),
        AuthError::Missing
    );
    let expired = provider
        .token(
            "agent-console",
            &[],
            json!({"iat": now() - 4000, "nbf": now() - 4000, "exp": now() - 120}),
        )
        .await;
    assert_eq!(refused(verifier.verify(&expired).await), AuthError::Expired);
    let early = provider
        .token("agent-console", &[], json!({"nbf": now() + 600}))
        .await;
    assert_eq!(
        refused(verifier.verify(&early).await),
        AuthError::NotYetValid
    );
    let elsewhere = provider
        .token("agent-console", &[], json!({"aud": "billing"}))
        .await;
    assert_eq!(
        refused(verifier.verify(&elsewhere).await),
        AuthError::WrongAudience
    );
    let impostor = provider
        .token("agent-console", &[], json!({"iss": "http://127.0.0.1:1"}))
        .await;
    assert_eq!(
        refused(verifier.verify(&impostor).await),
        AuthError::WrongIssuer
    );

    // Claims changed after signing.
    let genuine = provider.token("agent-console", &[], Value::Null).await;
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        refused(verifier.verify(&forged).await),
        AuthError::BadSignature
    );

    // Signed by a key the provider never published.
    let outsider = DevIssuer::generate(&provider.issuer, AUDIENCE).unwrap();
    let foreign = outsider
        .mint("mallory", &["admin"], Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        refused(verifier.verify(&foreign).await),
        AuthError::UnknownKey
    );

    // `alg: none`, and HMAC keyed with the provider's public key, both under its kid.
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": provider.kid});
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none_header.to_string()),
        URL_SAFE_NO_PAD.encode(valid_claims(&provider).to_string())
    );
    assert!(matches!(
        refused(verifier.verify(&unsigned).await),
        AuthError::Malformed | AuthError::DisallowedAlgorithm
    ));
    let jwks: Value = provider
        .http
        .get(format!("{}/jwks", provider.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_n = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(provider.kid.clone());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &valid_claims(&provider),
        &EncodingKey::from_secret(&public_n),
    )
    .unwrap();
    assert_eq!(
        refused(verifier.verify(&confused).await),
        AuthError::DisallowedAlgorithm
    );
    // An algorithm outside the allow-list, with a key that would fit it.
    let settings = provider.settings().with_algorithms(vec![Algorithm::ES256]);
    let strict = Verifier::new(settings).unwrap();
    assert_eq!(
        refused(strict.verify(&genuine).await),
        AuthError::DisallowedAlgorithm
    );
}

#[tokio::test]
async fn a_key_rotation_at_the_provider_is_picked_up_without_restart() {
    let mut provider = Provider::start().await;
    let clock = ManualClock::at(Utc::now());
    let verifier = Verifier::builder(provider.settings())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let before = provider.token("agent-console", &[], Value::Null).await;
    assert!(verifier.verify(&before).await.is_ok());

    let new_kid = provider.rotate("ES256").await;
    assert_ne!(new_kid, provider.kid);
    let after = provider.token("agent-console", &[], Value::Null).await;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    // The keys were fetched a moment ago: an unknown kid does not refetch yet…
    assert_eq!(verifier.verify(&after).await, Err(AuthError::UnknownKey));
    // …ten seconds later it does, and the new key is used without a restart.
    clock.advance(chrono::Duration::seconds(10));
    let caller = verifier.verify(&after).await.unwrap();
    assert_eq!(caller.subject, "agent-console");
    // The old key is still published, so tokens signed before the rotation still pass.
    assert!(verifier.verify(&before).await.is_ok());

    // A foreign P-256 key claiming the new kid fails on the signature.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(new_kid);
    let forged =
        jsonwebtoken::encode(&header, &valid_claims(&provider), &foreign_ec_key()).unwrap();
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn client_credentials_tokens_are_fetched_cached_and_renewed() {
    let provider = Provider::start().await;
    let verifier = Verifier::new(provider.settings()).unwrap();
    let dir = std::env::temp_dir().join(format!("aftersales-auth-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("care-secret");
    std::fs::write(&secret, "care-secret\n").unwrap();
    let secret_path = secret.to_str().unwrap().to_owned();
    let env = provider.env(&[
        ("CARE_CLIENT_ID", "care"),
        ("CARE_CLIENT_SECRET_FILE", &secret_path),
    ]);
    let clock = ManualClock::at(Utc::now());
    let source = TokenSource::from_env(&env, "CARE")
        .unwrap()
        .with_clock(Arc::new(clock.clone()));

    let first = source.token().await.unwrap();
    let caller = verifier.verify(&first).await.unwrap();
    assert_eq!(caller.subject, "care");
    assert_eq!(roles(&caller), ["svc:care"]);
    assert_eq!(source.token().await.unwrap(), first, "cached");
    // The provider's tokens live 3600 s: renewed once 2880 s (80 %) have passed.
    clock.advance(chrono::Duration::seconds(2879));
    assert_eq!(
        source.token().await.unwrap(),
        first,
        "still cached at 79.97 %"
    );
    clock.advance(chrono::Duration::seconds(2));
    let second = source.token().await.unwrap();
    assert_ne!(second, first, "renewed after 80 %");
    assert!(verifier.verify(&second).await.is_ok());

    // A renewal the provider refuses leaves the current token in service until shortly
    // before it expires; then the failure shows.
    std::fs::write(&secret, "rotated-away").unwrap();
    clock.advance(chrono::Duration::seconds(2881));
    assert_eq!(source.token().await.unwrap(), second);
    clock.advance(chrono::Duration::seconds(715));
    let err = source.token().await.unwrap_err();
    assert!(matches!(err, TokenError::Endpoint(_)), "{err}");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!err.to_string().contains("rotated-away"), "{err}");
    // The file is read again at each renewal: the right secret works at once.
    std::fs::write(&secret, "care-secret").unwrap();
    let third = source.token().await.unwrap();
    assert!(verifier.verify(&third).await.is_ok());

    // An explicit token URL instead of discovery.
    let token_url = format!("{}/token", provider.issuer);
    let explicit = Env::from_pairs([
        ("AUTH_TOKEN_URL", token_url.as_str()),
        ("CARE_CLIENT_ID", "care"),
        ("CARE_CLIENT_SECRET", "care-secret"),
    ]);
    let direct = TokenSource::from_env(&explicit, "CARE").unwrap();
    assert!(
        verifier
            .verify(&direct.token().await.unwrap())
            .await
            .is_ok()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Answers with who called: the subject as the ticket id, the roles as its assignee.
struct WhoAmI;

#[tonic::async_trait]
impl Echo for WhoAmI {
    async fn echo(&self, request: Request<Ticket>) -> Result<Response<Ticket>, Status> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(Ticket {
            id: caller.subject.clone(),
            assignee: caller.roles.iter().cloned().collect::<Vec<_>>().join(" "),
            ..Ticket::default()
        }))
    }
}

/// Serves Echo (and health, reflection) through the server kit with `auth`.
async fn serve_echo(auth: AuthLayer, stop: CancellationToken) -> Channel {
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(
        listener,
        ServerSettings::for_tests(),
        GrpcServices::new()
            .with_descriptors(aftersales_protos::BENCH_DESCRIPTOR_SET)
            .with(EchoServer::new(WhoAmI))
            .with_auth(auth),
        stop,
    ));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn the_layer_guards_a_real_tonic_server() {
    let provider = Provider::start().await;
    let stop = CancellationToken::new();
    let table = || Permissions::new(&[(ECHO, &["agent"])]);
    let verifier = Verifier::new(provider.settings()).unwrap();
    let channel = serve_echo(AuthLayer::new(verifier.clone(), table()), stop.clone()).await;
    let mut echo = EchoClient::new(channel.clone());

    // Probes need no token.
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await;
    assert!(health.is_ok(), "{health:?}");

    let status = echo.echo(Ticket::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "missing bearer token");

    let expired = provider
        .token("agent-console", &[], json!({"exp": now() - 600}))
        .await;
    let status = echo
        .echo(with_token(Ticket::default(), &expired))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unauthenticated, "token expired")
    );

    let analyst = provider.token("analyst-app", &[], Value::Null).await;
    let status = echo
        .echo(with_token(Ticket::default(), &analyst))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "requires the role agent");

    // A client with the service-token layer: the handler sees the verified caller.
    let agent = TokenSource::from_env(
        &provider.env(&[
            ("CONSOLE_CLIENT_ID", "agent-console"),
            ("CONSOLE_CLIENT_SECRET", "agent-console-secret"),
        ]),
        "CONSOLE",
    )
    .unwrap();
    let mut as_agent = EchoClient::new(
        ServiceBuilder::new()
            .layer(agent.layer())
            .service(channel.clone()),
    );
    let answer = as_agent.echo(Ticket::default()).await.unwrap().into_inner();
    assert_eq!(answer.id, "agent-console");
    assert_eq!(answer.assignee, "agent");

    // Probes closed: health is a method like any other, and has no row.
    let closed = serve_echo(
        AuthLayer::new(verifier, table()).open_health(false),
        stop.clone(),
    )
    .await;
    let mut health = HealthClient::new(closed.clone());
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let agent_token = agent.token().await.unwrap();
    let status = health
        .check(with_token(HealthCheckRequest::default(), &agent_token))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, "method not permitted")
    );

    // Disabled: anyone, as the unrestricted caller.
    let open = serve_echo(AuthLayer::disabled(table()), stop.clone()).await;
    let answer = EchoClient::new(open)
        .echo(Ticket::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.id, "anonymous");
    assert_eq!(answer.assignee, "*");
    stop.cancel();
}

#[tokio::test]
async fn a_dev_issuer_serves_discovery_to_verifiers_in_other_processes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&issuer_url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn({
        let issuer = issuer.clone();
        let stop = stop.clone();
        async move { issuer.serve(listener, stop).await }
    });
    let env = Env::from_pairs([
        ("AUTH_ISSUER", issuer_url.as_str()),
        ("AUTH_AUDIENCE", DevIssuer::DEFAULT_AUDIENCE),
        ("AUTH_ALGORITHMS", "ES256"),
    ]);
    let AuthMode::Oidc(settings) = AuthSettings::from_env(&env).unwrap().mode else {
        unreachable!()
    };
    let verifier = Verifier::new(settings).unwrap();
    let token = issuer
        .mint("agent-7", &["agent", "pii:read"], Duration::from_secs(60))
        .unwrap();
    let caller = verifier.verify(&token).await.unwrap();
    assert_eq!(caller.subject, "agent-7");
    assert_eq!(
        caller.roles,
        BTreeSet::from(["agent".to_owned(), "pii:read".to_owned()])
    );
    // Service tokens from the same issuer, for in-process wiring.
    let source = TokenSource::dev(&issuer, "svc-care", &["svc:care"], Duration::from_secs(60));
    let service = verifier
        .verify(&source.token().await.unwrap())
        .await
        .unwrap();
    assert_eq!(service.subject, "svc-care");
    stop.cancel();
}
