//! A bounds-checked cursor: every read returns `None` at the end of input
//! instead of panicking, which is how decoders detect "need more bytes".

/// Cursor over an input buffer.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The unread rest of the input.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Next byte, if present.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Next big-endian u16, if present.
    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    /// Next fixed-size array, if present.
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// Next `n` bytes, if all present.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Reads a NUL-terminated field of at most `max` bytes (NUL excluded),
    /// consuming the NUL. `Ok(None)`: no NUL yet and still within bounds.
    pub(crate) fn nul_terminated(
        &mut self,
        max: usize,
    ) -> Result<Option<&'a [u8]>, crate::WireError> {
        let rest = self.rest();
        match rest.iter().position(|&b| b == 0) {
            Some(n) if n <= max => {
                let field = rest.get(..n).unwrap_or(&[]);
                self.pos += n + 1;
                Ok(Some(field))
            }
            Some(_) => Err(crate::WireError::FieldTooLong),
            // Without a NUL, more than `max` bytes already proves the field too long.
            None if rest.len() > max => Err(crate::WireError::FieldTooLong),
            None => Ok(None),
        }
    }
}

/// Unwraps an `Option` from a [`Reader`] read, or returns `Ok(None)`
/// ("need more bytes") from the enclosing decoder.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}
pub(crate) use need;
