//! Where an endpoint may point. A partner's URL must be `https` and every address its
//! host resolves to must be public: no loopback, private, shared (CGNAT), link-local
//! (cloud metadata at 169.254.169.254), unique-local, multicast or unspecified address,
//! IPv4-mapped or not. An allow-list of networks and host names (for tests and internal
//! subscribers) lifts both rules for what it names. The same check runs on every address
//! a delivery connects to, so a name that re-resolves inside is refused then too.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{DomainError, invalid};

/// The longest URL accepted.
pub const MAX_URL: usize = 2_048;

/// Networks and host names exempt from the rules.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    pub networks: Vec<IpNet>,
    pub hosts: Vec<String>,
}

impl AllowList {
    /// Parses `WEBHOOKS_ALLOWED_TARGETS`: comma-separated networks (`127.0.0.0/8`),
    /// addresses or host names.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                list.networks.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                list.networks.push(IpNet::from(ip));
            } else if item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                list.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!("{item:?} is no network, address or host name"));
            }
        }
        Ok(list)
    }

    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }
}

/// A URL that passed the static checks: its host (and whether the allow-list names it),
/// still to be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// A literal address in the URL.
    pub ip: Option<IpAddr>,
    pub allowed_host: bool,
}

/// The static checks of `url` (`field` names it in errors): parsed, http(s), no user
/// info, `https` unless allow-listed, a literal address public unless allow-listed.
pub fn check_url(url: &str, allow: &AllowList, field: &str) -> Result<Target, DomainError> {
    if url.len() > MAX_URL {
        return Err(invalid(field, format!("at most {MAX_URL} characters")));
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid(field, format!("not a URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(field, "must not carry user name or password"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid(field, "must not carry a fragment"));
    }
    let (host, ip) = match parsed.host() {
        Some(url::Host::Domain(d)) => (d.to_ascii_lowercase(), None),
        Some(url::Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
        Some(url::Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        None => return Err(invalid(field, "has no host")),
    };
    let allowed_host = allow.allows_host(&host) || ip.is_some_and(|ip| allow.allows_ip(ip));
    match parsed.scheme() {
        "https" => {}
        "http" if allowed_host => {}
        "http" => return Err(invalid(field, "must use https")),
        other => return Err(invalid(field, format!("scheme {other:?}: must use https"))),
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    if let Some(ip) = ip
        && !allowed_host
        && !is_public(ip)
    {
        return Err(invalid(
            field,
            format!("{ip} is not a public address (loopback, private, link-local or metadata)"),
        ));
    }
    Ok(Target {
        host,
        port,
        ip,
        allowed_host,
    })
}

/// Whether a delivery may connect to `ip` for a target: public, or allow-listed.
pub fn may_connect(target_allowed: bool, ip: IpAddr, allow: &AllowList) -> bool {
    target_allowed || allow.allows_ip(ip) || is_public(ip)
}

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 of anything
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(url, &AllowList::default(), "url").is_err()
    }

    #[test]
    fn inside_addresses_and_plain_http_are_refused() {
        for url in [
            "http://example.com/hook",
            "https://127.0.0.1/hook",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://user:pw@example.com/",
            "ftp://example.com/",
            "not a url",
        ] {
            assert!(refused(url), "{url}");
        }
        assert!(!refused("https://example.com/hook"));
        assert!(!refused("https://93.184.215.14:8443/hook"));
    }

    #[test]
    fn the_allow_list_lifts_the_rules_for_what_it_names() {
        let allow = AllowList::parse("127.0.0.0/8, receiver.test").unwrap();
        let t = check_url("http://127.0.0.1:9000/hook", &allow, "url").unwrap();
        assert!(t.allowed_host);
        assert!(check_url("http://receiver.test/hook", &allow, "url").is_ok());
        assert!(check_url("http://10.0.0.1/hook", &allow, "url").is_err());
        assert!(may_connect(false, "127.0.0.2".parse().unwrap(), &allow));
        assert!(!may_connect(false, "10.0.0.2".parse().unwrap(), &allow));
        assert!(AllowList::parse("not a/host").is_err());
    }
}
