//! gRPC client channels that spread calls over every pod of a service. HTTP/2 keeps one
//! connection open for a long time, so a plain channel to a Kubernetes Service would send
//! every call to the pod it first reached. Given a name (a headless Service), the channel
//! resolves it periodically and balances calls over all addresses, adding and dropping
//! pods as they come and go. An IP literal gets a plain channel.
//!
//! An `https://` URL is called over TLS, its certificate checked against the name in the
//! URL (also when the channel connects to one of its addresses); the channel has no way to
//! send such a call in plaintext: tonic refuses an `https://` connection without TLS.

use std::{collections::HashSet, net::SocketAddr, time::Duration};

use tonic::transport::{Channel, Endpoint, channel::Change};

use crate::tls::UpstreamTls;

/// How often a balanced channel resolves its service name again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(15);

/// An endpoint for `url`, over TLS checked by `tls` when the URL is `https://`.
pub fn endpoint(url: &str, tls: &UpstreamTls) -> Result<Endpoint, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_owned())?;
    let host = host_of(endpoint.uri());
    secured(endpoint, &host, tls)
}

/// `endpoint` with TLS for the server named `host` when its scheme is `https`.
fn secured(
    endpoint: Endpoint,
    host: &str,
    tls: &UpstreamTls,
) -> Result<Endpoint, tonic::transport::Error> {
    if endpoint.uri().scheme_str() == Some("https") {
        endpoint.tls_config(tls.client_config(host))
    } else {
        Ok(endpoint)
    }
}

fn host_of(uri: &http::Uri) -> String {
    uri.host()
        .unwrap_or("")
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned()
}

/// A channel to `url`; `configure` sets timeouts and limits on each endpoint it opens,
/// `tls` checks `https://` upstreams.
pub fn balanced(
    url: &str,
    refresh: Duration,
    tls: &UpstreamTls,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = configure(endpoint(url, tls)?);
    let uri = endpoint.uri().clone();
    let host = host_of(&uri);
    let scheme = uri.scheme_str().unwrap_or("http").to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(endpoint.connect_lazy());
    }
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    let tls = tls.clone();
    tokio::spawn(async move {
        let mut current: HashSet<SocketAddr> = HashSet::new();
        while !changes.is_closed() {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => {
                    let found: HashSet<SocketAddr> = found.collect();
                    for gone in current.difference(&found) {
                        if changes.send(Change::Remove(*gone)).await.is_err() {
                            return;
                        }
                    }
                    for new in found.difference(&current) {
                        let endpoint = Endpoint::from_shared(format!("{scheme}://{new}"))
                            .and_then(|endpoint| secured(endpoint, &host, &tls));
                        let endpoint = match endpoint {
                            Ok(endpoint) => endpoint,
                            Err(err) => {
                                tracing::warn!(%host, address = %new, error = %err, "upstream address skipped");
                                continue;
                            }
                        };
                        if changes
                            .send(Change::Insert(*new, configure(endpoint)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    if found != current {
                        tracing::info!(%host, pods = found.len(), "upstream addresses changed");
                    }
                    current = found;
                }
                // Keep the last known pods; the name may be back on the next round.
                Err(err) => tracing::warn!(%host, error = %err, "resolving an upstream failed"),
            }
            tokio::time::sleep(if current.is_empty() {
                Duration::from_secs(1)
            } else {
                refresh
            })
            .await;
        }
    });
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_is_resolved_and_calls_reach_the_pods_behind_it() {
        let tls = UpstreamTls::default();
        assert!(balanced("not a url", DEFAULT_REFRESH, &tls, |e| e).is_err());
        let (_reporter, health) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        // `localhost` (a name, not the literal) goes through resolution and the balancer.
        let channel = balanced(
            &format!("http://localhost:{port}"),
            DEFAULT_REFRESH,
            &tls,
            |e| e.connect_timeout(Duration::from_secs(1)),
        )
        .unwrap();
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let call = client.check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        });
        let answer = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("an answer within 10 s");
        assert!(answer.is_ok(), "{answer:?}");
    }
}
