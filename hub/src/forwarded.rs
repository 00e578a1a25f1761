//! The client's address behind a reverse proxy (`--trusted-proxy`).
//!
//! Behind Caddy every connection comes from Caddy's address; the client's
//! own is in `X-Forwarded-For`, which Caddy's `reverse_proxy` appends to.
//! Anyone can send that header, so it is believed only when the TCP peer is
//! a proxy the operator named, and then read from the right: each trusted
//! proxy appends the address it was reached from, so the right-most
//! address that is not itself a trusted proxy is the first one no trusted
//! party vouches beyond. Everything to its left was written by the client.
//! An entry that is not an IP address ends the walk (nothing left of it can
//! be trusted); the last address read is then the answer.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// The header a proxy names the client in (the de facto standard; RFC 7239's
/// `Forwarded` is not what Caddy sends).
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// An IP address, or a block of them (`10.0.0.0/8`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the block.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an IP address or a CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let net = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Who a request came from, as the audit log and the logs name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// The TCP peer itself.
    Direct(SocketAddr),
    /// A client behind a trusted proxy: its address from `X-Forwarded-For`.
    Forwarded {
        /// The client.
        client: IpAddr,
        /// The proxy the connection came from.
        proxy: SocketAddr,
    },
}

impl Peer {
    /// The proxy in between, if any.
    #[must_use]
    pub fn proxy(&self) -> Option<SocketAddr> {
        match self {
            Self::Direct(_) => None,
            Self::Forwarded { proxy, .. } => Some(*proxy),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct(addr) => write!(f, "{addr}"),
            Self::Forwarded { client, .. } => write!(f, "{client}"),
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    trusted: Vec<Cidr>,
}

impl Proxies {
    /// Believes the proxies in `trusted` (none: the header is never read).
    #[must_use]
    pub fn new(trusted: Vec<Cidr>) -> Self {
        Self { trusted }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// Who sent a request that came from `tcp` with `headers`.
    #[must_use]
    pub fn peer(&self, tcp: SocketAddr, headers: &HeaderMap) -> Peer {
        if !self.trusts(tcp.ip()) {
            return Peer::Direct(tcp);
        }
        let hops =
            headers.get_all(X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).rev();
        let mut client = None;
        for hop in hops {
            let hop = hop.trim();
            let hop = hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(hop);
            let Ok(ip) = hop.parse::<IpAddr>() else { break };
            client = Some(ip.to_canonical());
            if !self.trusts(ip) {
                break;
            }
        }
        match client {
            Some(client) => Peer::Forwarded { client, proxy: tcp },
            None => Peer::Direct(tcp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn cidrs(list: &[&str]) -> Proxies {
        Proxies::new(list.iter().map(|c| c.parse().unwrap()).collect())
    }

    #[test]
    fn blocks() {
        let lan: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(lan.contains("10.9.8.7".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        assert!(lan.contains("::ffff:10.1.2.3".parse().unwrap()), "IPv4-mapped addresses are IPv4");
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()) && !one.contains("127.0.0.2".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!("fd00::/8".parse::<Cidr>().unwrap().contains("fd12::1".parse().unwrap()));
        for bad in ["", "localhost", "10.0.0.0/33", "::1/129", "10.0.0.0/x", "1.2.3.4:80"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let proxies = cidrs(&["127.0.0.1"]);
        let spoofed = headers(&["203.0.113.9"]);
        let stranger: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert_eq!(proxies.peer(stranger, &spoofed), Peer::Direct(stranger));
        let caddy: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            proxies.peer(caddy, &spoofed),
            Peer::Forwarded { client: "203.0.113.9".parse().unwrap(), proxy: caddy }
        );
        assert_eq!(proxies.peer(caddy, &HeaderMap::new()), Peer::Direct(caddy));
        assert_eq!(Proxies::default().peer(caddy, &spoofed), Peer::Direct(caddy));
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let proxies = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let caddy: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let client = |values: &[&str]| proxies.peer(caddy, &headers(values)).to_string();
        // What the client wrote itself (left) is not believed.
        assert_eq!(client(&["1.1.1.1, 198.51.100.7"]), "198.51.100.7");
        // Trusted hops on the right are skipped, across several headers.
        assert_eq!(client(&["1.1.1.1, 198.51.100.7", "10.1.1.1"]), "198.51.100.7");
        // Garbage ends the walk at the last address read.
        assert_eq!(client(&["198.51.100.7, junk, 10.1.1.1"]), "10.1.1.1");
        assert_eq!(client(&["junk"]), "127.0.0.1:6000");
        // Every hop trusted: the left-most.
        assert_eq!(client(&["10.2.2.2, 10.1.1.1"]), "10.2.2.2");
        assert_eq!(client(&["[2001:db8::1]"]), "2001:db8::1");
    }
}
