//! Reading whole SOCKS messages from a socket through the sans-io codec.

use socks_wire::WireError;
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

type Decoder<M> = fn(&[u8]) -> Result<Option<(M, usize)>, WireError>;

/// Reads until `decode` yields a message; consumed bytes leave `buf`, the rest stays
/// (a client may pipeline data after its request).
pub async fn read_msg<M>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
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
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 4096 {
            return Err(ReadError::Wire(WireError::FieldTooLong));
        }
    }
}
