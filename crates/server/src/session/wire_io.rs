//! Reading whole SOCKS messages from a socket through the sans-io codec.

use hasocks_socks_wire::WireError;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why reading a message failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed before a whole message arrived.
    #[error("client closed the connection during negotiation")]
    Eof,
    /// Socket error.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid message.
    #[error("malformed request: {0}")]
    Wire(#[from] WireError),
}

/// A sans-io decoder: a message and the bytes it used, or None for "need more".
pub type Decoder<M> = fn(&[u8]) -> Result<Option<(M, usize)>, WireError>;

/// Reads until `decode` yields a message; consumed bytes leave `buf`, the rest stays
/// (a client may pipeline data after its request). `read` counts the bytes read from the
/// socket (Dante's "error after reading N bytes").
pub async fn read_msg<M>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    read: &mut usize,
    decode: Decoder<M>,
) -> Result<M, ReadError> {
    loop {
        if let Some((msg, used)) = decode(buf)? {
            buf.drain(..used);
            return Ok(msg);
        }
        // The codec bounds every field, so a message never needs more than a few hundred
        // bytes: 4 KiB of reserve is plenty and bounds what a client can make us hold.
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ReadError::Eof);
        }
        *read += n;
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > 4096 {
            return Err(ReadError::Wire(WireError::FieldTooLong));
        }
    }
}
