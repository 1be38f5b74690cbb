//! The caller's address, for the failed-attempt budget: the connection's peer (axum's
//! `ConnectInfo` on the HTTP face, tonic's `remote_addr` on the gRPC face). Headers are
//! believed only from proxies named in `GATEWAY_TRUSTED_PROXIES`: then the client is the
//! last `X-Forwarded-For` entry that is not itself a trusted proxy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// Stands for every caller whose address is unknown (never the case behind a TCP
/// listener); they share one budget.
const UNKNOWN: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The proxies whose `X-Forwarded-For` is believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8,192.168.1.7,fd00::/8`: networks or single addresses.
    pub fn parse(spec: &str) -> Result<Self, String> {
        spec.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry} is neither an address nor a network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The address the request came from.
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
            return UNKNOWN;
        };
        if !self.trusts(peer) {
            return peer;
        }
        // Each proxy appends the address it was reached from: read from the right, past
        // our own proxies, to the first hop nobody here vouches for.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(addr) = parse_hop(hop) else {
                // Unreadable: nothing left of it can be believed.
                return peer;
            };
            if !self.trusts(addr) {
                return addr;
            }
        }
        peer
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|addr| addr.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    fn peer(addr: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(addr.parse().unwrap(), 40_000))
    }

    #[test]
    fn headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let headers = forwarded("203.0.113.9");
        assert_eq!(
            none.client(peer("198.51.100.1"), &headers),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap();
        assert_eq!(
            proxies.client(peer("198.51.100.1"), &headers),
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "not from a proxy: the header is the caller's own claim"
        );
        assert_eq!(
            proxies.client(peer("10.1.2.3"), &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(proxies.client(None, &headers), UNKNOWN);
    }

    #[test]
    fn the_client_is_the_last_hop_no_trusted_proxy_vouches_for() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The caller wrote a spoofed first entry; our proxies appended the real ones.
        let headers = forwarded("1.1.1.1, 203.0.113.9, 10.0.0.5");
        assert_eq!(
            proxies.client(peer("10.0.0.6"), &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let ported = forwarded("[2001:db8::1]:443");
        assert_eq!(
            proxies.client(peer("10.0.0.6"), &ported),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Nothing readable: the proxy itself.
        assert_eq!(
            proxies.client(peer("10.0.0.6"), &forwarded("garbage")),
            "10.0.0.6".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            proxies.client(peer("10.0.0.6"), &HeaderMap::new()),
            "10.0.0.6".parse::<IpAddr>().unwrap()
        );
        // An IPv4 peer seen through an IPv6 socket is the same peer.
        assert_eq!(
            proxies.client(peer("::ffff:10.0.0.6"), &forwarded("203.0.113.9")),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TrustedProxies::parse("10.0.0.0/8,proxy.local").unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
    }
}
