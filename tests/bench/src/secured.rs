//! The price of trust: a second tickets server on the same database, behind TLS (a test
//! CA) and bearer JWTs from a development issuer on loopback, so GetTicket can be measured
//! with tokens and TLS on against the same run with them off.

use std::time::Duration;

use aftersales_platform::{
    CancellationToken,
    auth::{AuthMode, AuthSettings, DevIssuer, roles},
    tls::ServerTlsSettings,
};
use aftersales_testkit::tls::TestCa;
use aftersales_tickets::app::TicketsApp;
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::home::Home;

/// What the second server turns on: both for the judged figure, each alone to tell
/// which costs what.
#[derive(Debug, Clone, Copy)]
pub struct Security {
    pub tls: bool,
    pub tokens: bool,
}

/// A channel to the secured server and the bearer every call carries.
pub struct Secured {
    pub channel: Channel,
    pub bearer: Option<MetadataValue<Ascii>>,
    /// Keeps the certificate files for as long as the server may reload them.
    _ca: TestCa,
}

/// Starts a second replica (API only: the plain one runs the worker) on `home`'s database
/// with `security` on, and returns a channel to it (TLS when on) and an agent's token
/// (when tokens are on).
pub async fn start(
    home: &Home,
    security: Security,
    stop: CancellationToken,
) -> anyhow::Result<Secured> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = DevIssuer::generate(
        format!("http://{}", listener.local_addr()?),
        DevIssuer::DEFAULT_AUDIENCE,
    )?;
    {
        let issuer = issuer.clone();
        let stop = stop.clone();
        tokio::spawn(async move { issuer.serve(listener, stop).await });
    }

    let ca = TestCa::new("bench")?;
    let server_cert = ca.issue("tickets", &["localhost", "127.0.0.1"])?;
    let mut settings = home.settings();
    settings.run_worker = false;
    if security.tokens {
        settings.auth = Some(AuthSettings {
            mode: AuthMode::Oidc(issuer.settings()),
            open_health: true,
            open_reflection: true,
        });
    }
    if security.tls {
        settings.server.tls = Some(ServerTlsSettings {
            cert_file: server_cert.cert.clone(),
            key_file: server_cert.key.clone(),
            client_ca_file: None,
        });
    }
    let app = TicketsApp::build(settings, home.bus().await?, home.queue("sla").await?).await?;
    let addr = app.local_addr();
    tokio::spawn(app.run(stop));

    let endpoint = if security.tls {
        Endpoint::from_shared(format!("https://localhost:{}", addr.port()))?.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca.ca_pem()))
                .domain_name("localhost"),
        )?
    } else {
        Endpoint::from_shared(format!("http://{addr}"))?
    };
    let bearer = if security.tokens {
        let token = issuer.mint("bench-agent", &[roles::AGENT], Duration::from_secs(3_600))?;
        Some(format!("Bearer {token}").parse()?)
    } else {
        None
    };
    Ok(Secured {
        channel: endpoint.connect().await?,
        bearer,
        _ca: ca,
    })
}
