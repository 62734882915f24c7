//! Word lists: relayd's reserved words, the relayd keywords hasocks refuses, port service
//! names, and number/port/hex/key readers shared by the parser.

use super::HashKey;

/// relayd's keywords (parse.y `lookup()`, 2019 and later) plus ours: they cannot be macro
/// names, host names or bare hash keys.
const RESERVED: &str = "\
    agentx all append backlog backup binary block buffer ca cache cert change changes check \
    checks ciphers code connection context cookie demote destination digest disable ecdhe \
    edh error errors expect external file filter forward from hash header headerlen host \
    http https icmp include inet inet6 interface interval ip key keypair label least-states \
    listen loadbalance log lookup mark marked match method mode nat no nodelay nothing on \
    params parent pass password path port prefork priority protocol query quick random real \
    redirect relay remove request response retry return roundrobin route router rtable \
    rtlabel sack script send session snmp socket source-hash splice ssl state sticky-address \
    style table tag tagged tcp timeout tls to transparent trap ttl updates url value virtual \
    websockets with";

/// True for a word that cannot be a macro name, host or bare key.
pub(crate) fn is_reserved(w: &str) -> bool {
    RESERVED.split_ascii_whitespace().any(|r| r == w)
}

/// True for a relayd keyword that hasocks refuses with "not supported".
pub(crate) fn is_unsupported(w: &str) -> bool {
    super::keywords::UNSUPPORTED.contains(&w)
}

pub(crate) use crate::error::not_supported;

/// A port: a number 1-65535 or a service name.
pub(crate) fn port(s: &str) -> Result<u16, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("port {s} is out of range (1-65535)")),
        };
    }
    crate::services::service_port(s).ok_or_else(|| {
        format!("unknown port \"{s}\": give a number or a service name such as socks")
    })
}

/// A decimal number within `min..=max`; `what` names it in the message.
pub(crate) fn number(s: &str, what: &str, min: u32, max: u32) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} needs a number, found \"{s}\""));
    }
    match s.parse::<u64>() {
        Ok(n) if n >= u64::from(min) && n <= u64::from(max) => {
            u32::try_from(n).map_err(|_| String::new())
        }
        _ => Err(format!("{what} {s} is out of range ({min}-{max})")),
    }
}

/// Bytes from hex digits (even count); `what` names them in the message.
pub(crate) fn hex(s: &str, what: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("{what} must be an even number of hex digits, found \"{s}\"");
    if s.len() & 1 == 1 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// A hash key: `0x` + 32 hex digits, or any other string hashed with [`super::key_from_str`].
pub(crate) fn hash_key(s: &str) -> Result<HashKey, String> {
    let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return Ok(super::key_from_str(s));
    };
    let msg = || format!("a hex hash key is 0x followed by 32 hex digits, found \"{s}\"");
    if digits.len() != 32 {
        return Err(msg());
    }
    let bytes = hex(digits, "a hash key").map_err(|_| msg())?;
    bytes.try_into().map_err(|_| msg())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_numbers_or_services() {
        assert_eq!(port("1090"), Ok(1090));
        assert_eq!(port("socks"), Ok(1080));
        assert_eq!(port("https"), Ok(443));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("99999999999999999999").is_err());
        assert!(port("nosuch").is_err());
    }

    #[test]
    fn numbers_are_range_checked() {
        assert_eq!(number("10", "interval", 1, 100), Ok(10));
        assert!(number("0", "interval", 1, 100)
            .unwrap_err()
            .contains("out of range"));
        assert!(number("-1", "interval", 1, 100)
            .unwrap_err()
            .contains("needs a number"));
        assert!(number("", "interval", 1, 100).is_err());
    }

    #[test]
    fn hex_needs_pairs_of_digits() {
        assert_eq!(hex("0501aF", "x"), Ok(vec![5, 1, 0xaf]));
        assert!(hex("050", "x").is_err());
        assert!(hex("zz", "x").is_err());
        assert!(hex("é1", "x").is_err());
    }

    #[test]
    fn hex_keys_need_32_digits_and_strings_are_hashed() {
        let k = hash_key("0x000102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(k, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert!(hash_key("0x0001").is_err());
        assert!(hash_key("0x000102030405060708090a0b0c0d0e0g").is_err());
        assert_eq!(
            hash_key("secret").unwrap(),
            super::super::key_from_str("secret")
        );
    }

    #[test]
    fn reserved_words_include_relayd_keywords_and_unsupported_ones_are_named() {
        assert!(is_reserved("table"));
        assert!(is_reserved("timeout"));
        assert!(!is_reserved("sockdhosts"));
        assert!(is_unsupported("router"));
        assert!(!is_unsupported("relay"));
        assert_eq!(
            not_supported("router"),
            "keyword \"router\" is not supported by hasocks"
        );
    }
}
