//! The client's address: the socket peer, or — only when the peer is one of
//! `MIMOTO_TRUSTED_PROXIES` — the right-most hop of the configured forwarding header that is
//! not itself a trusted proxy. Everything left of that hop was written by the client and is
//! ignored, so a client cannot choose its own address by sending the header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use app::AppState;

/// The client's address, for per-client rate limits and audit rows.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        let ip = match peer {
            Some(peer) => {
                let forwarded = app.config.trusted_proxy_header == app::config::ProxyHeader::Forwarded;
                client_address(peer, &parts.headers, &app.trusted_proxies, forwarded).to_string()
            }
            None => "unknown".to_string(),
        };
        Ok(ClientIp(ip))
    }
}

/// The client address of a request from `peer` carrying `headers`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet], forwarded: bool) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = if forwarded {
        headers
            .get_all("forwarded")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .map(forwarded_for)
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .map(|hop| parse_hop(hop.trim()))
            .collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // A hop that is not an address (garbage, `unknown`, an obfuscated name) ends the
        // walk: the last address a trusted proxy vouched for stands.
        let Some(ip) = hop else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The `for=` node of one RFC 7239 element (`for=192.0.2.1;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| parse_hop(value.trim().trim_matches('"'))).flatten()
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &str) -> Vec<ipnet::IpNet> {
        app::config::Config { trusted_proxies: list.into(), ..Default::default() }.trusted_proxies().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=198.51.100.8")]);
        assert_eq!(client_address(ip("203.0.113.9"), &h, &[], false), ip("203.0.113.9"));
        assert_eq!(client_address(ip("203.0.113.9"), &h, &nets("10.0.0.0/8"), false), ip("203.0.113.9"));
        assert_eq!(client_address(ip("203.0.113.9"), &h, &nets("10.0.0.0/8"), true), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets("10.0.0.0/8");
        // The client wrote "1.1.1.1" itself; the edge proxy appended the real peer; an inner
        // proxy appended the edge proxy.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, false), ip("198.51.100.7"));
        // Several header lines are one list.
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, false), ip("198.51.100.7"));
        // Only the configured header counts.
        let h = headers(&[("forwarded", "for=1.1.1.1"), ("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, false), ip("198.51.100.7"));
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, true), ip("1.1.1.1"));
    }

    #[test]
    fn forwarded_elements_with_ports_and_brackets() {
        let trusted = nets("10.0.0.0/8");
        let h = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::17]:4711";proto=https, for=10.0.0.2"#)]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, true), ip("2001:db8::17"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, false), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_or_missing_headers_leave_the_last_trusted_hop() {
        let trusted = nets("10.0.0.0/8");
        assert_eq!(client_address(ip("10.0.0.3"), &HeaderMap::new(), &trusted, false), ip("10.0.0.3"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.2")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, false), ip("10.0.0.2"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, true), ip("10.0.0.3"));
        // Every hop trusted: the left-most is as far as anyone vouches.
        let h = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
        assert_eq!(client_address(ip("10.0.0.3"), &h, &trusted, false), ip("10.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_address(ip("::ffff:127.0.0.1"), &h, &nets("127.0.0.1"), false), ip("198.51.100.7"));
    }
}
