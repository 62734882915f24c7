//! Method negotiation: the client's greeting and the server's method selection.

use super::{check_version, VERSION};
use crate::reader::{need, Reader};
use crate::WireError;

/// Client greeting: `VER=05 | NMETHODS | METHODS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Greeting {
    /// Offered methods (1..=255 of them; see [`super::method`]).
    pub methods: Vec<u8>,
}

impl Greeting {
    /// Decodes one greeting; `Ok(None)` if more bytes are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), VERSION)?;
        let n = need!(r.u8());
        if n == 0 {
            return Err(WireError::NoMethods);
        }
        let methods = need!(r.take(usize::from(n))).to_vec();
        Ok(Some((Greeting { methods }, r.pos())))
    }

    /// Appends the encoding; only the first 255 methods fit.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let methods = self.methods.get(..255).unwrap_or(&self.methods);
        out.push(VERSION);
        out.push(u8::try_from(methods.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(methods);
    }

    /// Whether the client offered `method`.
    pub fn offers(&self, method: u8) -> bool {
        self.methods.contains(&method)
    }
}

/// Server's method selection: `VER=05 | METHOD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodSelection {
    /// Chosen method, or [`super::method::NO_ACCEPTABLE`].
    pub method: u8,
}

impl MethodSelection {
    /// Decodes one method selection; `Ok(None)` if more bytes are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), VERSION)?;
        let method = need!(r.u8());
        Ok(Some((MethodSelection { method }, r.pos())))
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[VERSION, self.method]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::method;
    use super::*;

    #[test]
    fn greeting_decodes_rfc_layout_and_leaves_following_bytes() {
        let buf = [5, 2, 0, 2, 5, 1];
        let (g, n) = Greeting::decode(&buf).unwrap().unwrap();
        assert_eq!(g.methods, vec![method::NONE, method::USERPASS]);
        assert_eq!(n, 4);
        assert!(g.offers(method::USERPASS) && !g.offers(method::GSSAPI));
        let mut out = Vec::new();
        g.encode(&mut out);
        assert_eq!(out, &buf[..4]);
    }

    #[test]
    fn truncated_greeting_asks_for_more_bytes() {
        let buf = [5, 3, 0, 1, 2];
        for k in 0..buf.len() {
            assert_eq!(Greeting::decode(&buf[..k]), Ok(None), "prefix {k}");
        }
    }

    #[test]
    fn greeting_without_methods_is_rejected() {
        assert_eq!(Greeting::decode(&[5, 0]), Err(WireError::NoMethods));
    }

    #[test]
    fn socks4_bytes_are_not_a_greeting() {
        assert_eq!(Greeting::decode(&[4, 1]), Err(WireError::BadVersion(4)));
        assert_eq!(Greeting::decode(&[4]), Err(WireError::BadVersion(4)));
    }

    #[test]
    fn greeting_encode_caps_methods_at_255() {
        let g = Greeting {
            methods: vec![0; 300],
        };
        let mut out = Vec::new();
        g.encode(&mut out);
        assert_eq!(out.len(), 257);
        assert_eq!(
            Greeting::decode(&out).unwrap().unwrap().0.methods.len(),
            255
        );
    }

    #[test]
    fn method_selection_decodes_no_acceptable() {
        assert_eq!(
            MethodSelection::decode(&[5, 0xff, 9]),
            Ok(Some((
                MethodSelection {
                    method: method::NO_ACCEPTABLE
                },
                2
            )))
        );
        assert_eq!(MethodSelection::decode(&[5]), Ok(None));
        assert_eq!(MethodSelection::decode(&[]), Ok(None));
        assert_eq!(
            MethodSelection::decode(&[1, 0]),
            Err(WireError::BadVersion(1))
        );
        let mut out = Vec::new();
        MethodSelection { method: 2 }.encode(&mut out);
        assert_eq!(out, [5, 2]);
    }
}
