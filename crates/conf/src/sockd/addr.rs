//! Addresses, networks, names and numbers as written in sockd.conf; errors are messages that
//! the parser places at the offending word.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{AddrSpec, HostSpec};
use crate::services::service_port;

/// A network: `ADDR/PREFIX`, `ADDR/NETMASK`, or a bare address (a host route). Host bits
/// are cleared, as Dante masks the address it stores.
pub(super) fn parse_net(word: &str) -> Result<IpNet, String> {
    let (addr, suffix) = match word.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (word, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid IP address \"{addr}\""))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match suffix {
        None => max,
        Some(s) if s.contains(['.', ':']) => netmask_len(ip, s)?,
        Some(s) => {
            let p: u8 = digits(s).ok_or_else(|| format!("invalid prefix length \"/{s}\""))?;
            if p > max {
                return Err(format!(
                    "prefix length /{p} is too long for {addr} (at most /{max})"
                ));
            }
            p
        }
    };
    IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .map_err(|e| e.to_string())
}

/// Prefix length of a netmask written as an address of the same family.
fn netmask_len(ip: IpAddr, s: &str) -> Result<u8, String> {
    let bad = || format!("invalid netmask \"{s}\"");
    let mask: IpAddr = s.parse().map_err(|_| bad())?;
    let (ones, zeros_after) = match (ip, mask) {
        (IpAddr::V4(_), IpAddr::V4(m)) => {
            let m = u32::from(m);
            (m.leading_ones(), m.count_ones())
        }
        (IpAddr::V6(_), IpAddr::V6(m)) => {
            let m = u128::from(m);
            (m.leading_ones(), m.count_ones())
        }
        _ => {
            return Err(format!(
                "netmask \"{s}\" is not of the same family as the address"
            ))
        }
    };
    if ones != zeros_after {
        return Err(format!("netmask \"{s}\" is not contiguous"));
    }
    u8::try_from(ones).map_err(|_| bad())
}

/// Parses an all-digit string (no sign, no spaces) into any unsigned integer type.
fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A `from:`/`to:` address.
pub(super) fn parse_addr_spec(word: &str) -> Result<AddrSpec, String> {
    if word == "0/0" {
        return Ok(AddrSpec::Any);
    }
    if let Some(domain) = word.strip_prefix('.') {
        // Dante's `.` alone: every host name (no address).
        if domain.is_empty() {
            return Ok(AddrSpec::Domain(String::new()));
        }
        let d = domain.to_ascii_lowercase();
        check_name(&d, word)?;
        return Ok(AddrSpec::Domain(d));
    }
    if looks_numeric(word) {
        return parse_net(word).map(AddrSpec::Net);
    }
    let name = word.to_ascii_lowercase();
    check_name(&name, word)?;
    Ok(AddrSpec::Name(name))
}

/// An `internal:`/`external:` address or interface name (case kept: interfaces are
/// case-sensitive).
pub(super) fn parse_hostspec(word: &str) -> Result<HostSpec, String> {
    if looks_numeric(word) {
        return word
            .parse::<IpAddr>()
            .map(HostSpec::Ip)
            .map_err(|_| format!("invalid IP address \"{word}\""));
    }
    check_name(&word.to_ascii_lowercase(), word)?;
    Ok(HostSpec::Name(word.to_string()))
}

/// Whether `word` is meant as an address: IPv6 (has `:`), a network (`/`) or only digits and
/// dots (a possibly broken IPv4 address).
fn looks_numeric(word: &str) -> bool {
    word.contains([':', '/']) || word.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Host, domain and interface names: letters, digits, `.`, `_` and `-`.
fn check_name(name: &str, word: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid address or name \"{word}\""))
    }
}

/// A port: a number up to 65535 or a name from the built-in service table.
pub(super) fn parse_port(word: &str) -> Result<u16, String> {
    if word.bytes().all(|b| b.is_ascii_digit()) && !word.is_empty() {
        return match digits::<u64>(word) {
            Some(n) if n <= 65535 => Ok(n as u16),
            _ => Err(format!("port {word} is out of range (0-65535)")),
        };
    }
    service_port(word).ok_or_else(|| format!("unknown port or service name \"{word}\""))
}

/// A count or number of seconds.
pub(super) fn parse_u32(word: &str) -> Result<u32, String> {
    digits(word).ok_or_else(|| format!("invalid number \"{word}\" (expected 0 to {})", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn zero_slash_zero_is_any_but_dotted_zero_net_is_ipv4() {
        assert_eq!(parse_addr_spec("0/0"), Ok(AddrSpec::Any));
        assert_eq!(
            parse_addr_spec("0.0.0.0/0"),
            Ok(AddrSpec::Net(net("0.0.0.0/0")))
        );
    }

    #[test]
    fn netmask_and_cidr_mean_the_same() {
        assert_eq!(parse_net("10.0.0.0/255.0.0.0"), Ok(net("10.0.0.0/8")));
        assert_eq!(parse_net("10.1.2.3/8"), Ok(net("10.0.0.0/8")));
        assert_eq!(parse_net("fe80::1/ffff::"), Ok(net("fe80::/16")));
        assert!(parse_net("10.0.0.0/255.0.255.0")
            .unwrap_err()
            .contains("contiguous"));
    }

    #[test]
    fn bare_address_is_a_host_route() {
        assert_eq!(parse_net("::1"), Ok(net("::1/128")));
        assert_eq!(parse_net("192.0.2.1"), Ok(net("192.0.2.1/32")));
    }

    #[test]
    fn prefix_too_long_is_an_error() {
        assert!(parse_net("10.0.0.0/33").unwrap_err().contains("too long"));
        assert!(parse_net("::/129").unwrap_err().contains("too long"));
        assert!(parse_net("10.0.0.0/x").is_err());
    }

    #[test]
    fn names_and_domains_are_lower_cased() {
        assert_eq!(
            parse_addr_spec(".Example.COM"),
            Ok(AddrSpec::Domain("example.com".into()))
        );
        assert_eq!(parse_addr_spec("Eth0"), Ok(AddrSpec::Name("eth0".into())));
        assert!(parse_addr_spec("10.0.0").is_err());
        assert_eq!(parse_addr_spec("."), Ok(AddrSpec::Domain(String::new())));
        assert!(parse_addr_spec(".a$b").is_err());
        assert!(parse_addr_spec("a$b").is_err());
    }

    #[test]
    fn ports_by_number_and_service_name() {
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(parse_port("http"), Ok(80));
        assert!(parse_port("65536").unwrap_err().contains("out of range"));
        assert!(parse_port("99999999999999999999999").is_err());
        assert!(parse_port("gopher").is_err());
    }
}
