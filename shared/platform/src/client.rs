//! gRPC client channels that spread calls over every pod of a service. HTTP/2 keeps one
//! connection open for a long time, so a plain channel to a Kubernetes Service would send
//! every call to the pod it first reached. Given a name (a headless Service), the channel
//! resolves it periodically and balances calls over all addresses, adding and dropping
//! pods as they come and go. An IP literal gets a plain channel.

use std::{collections::HashSet, net::SocketAddr, time::Duration};

use tonic::transport::{Channel, Endpoint, channel::Change};

/// How often a balanced channel resolves its service name again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(15);

/// A channel to `url`; `configure` sets timeouts and limits on each endpoint it opens.
pub fn balanced(
    url: &str,
    refresh: Duration,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = configure(Endpoint::from_shared(url.to_owned())?);
    let uri = endpoint.uri().clone();
    let host = uri
        .host()
        .unwrap_or("")
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let scheme = uri.scheme_str().unwrap_or("http").to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(endpoint.connect_lazy());
    }
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
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
                        let Ok(endpoint) = Endpoint::from_shared(format!("{scheme}://{new}"))
                        else {
                            continue;
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
        assert!(balanced("not a url", DEFAULT_REFRESH, |e| e).is_err());
        let (_reporter, health) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        // `localhost` (a name, not the literal) goes through resolution and the balancer.
        let channel = balanced(&format!("http://localhost:{port}"), DEFAULT_REFRESH, |e| {
            e.connect_timeout(Duration::from_secs(1))
        })
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
