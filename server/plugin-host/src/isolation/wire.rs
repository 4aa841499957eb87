//! The framing between the host and an isolated plugin's runner process: the protobuf messages
//! of `trellis.connector.v1` that the C ABI already carries, one per frame, over the runner's
//! standard input (requests) and standard output (answers).
//!
//! A frame is a little-endian `u32` length followed by that many bytes. A request's bytes start
//! with one operation byte ([`Op`]); an answer's start with the little-endian `i32` status of the
//! ABI (`TRELLIS_STATUS_*`), then the message: the answer on success, a `ConnectorError`
//! otherwise — exactly what the ABI function would have returned. Frames larger than
//! [`MAX_FRAME_BYTES`] are refused before they are read, so a runner that goes wrong cannot make
//! the host allocate without bound. The runner's first frame answers no request: it says whether
//! the library loaded, and on success names the protocol ([`PROTOCOL`]).

use std::io::{self, Read, Write};

/// The body of the runner's first answer, once it has loaded the library: which protocol it
/// speaks. The host refuses a runner that says anything else (one built from other sources).
pub const PROTOCOL: &[u8] = b"trellis-plugin-runner protocol 1";

/// The largest frame either side accepts: well above any batch a connector should send (a few
/// hundred records of at most 1 MiB of text each would still fit).
pub const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// What a request frame asks the runner to do. The message after the operation byte is the
/// ABI's request for that call (none for `Spec`, `ReadNext` and `ReadClose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Answered by a `SpecResponse`.
    Spec = 1,
    /// A `CheckRequest`, answered by a `CheckResponse`.
    Check = 2,
    /// A `DiscoverRequest`, answered by a `DiscoverResponse`.
    Discover = 3,
    /// A `ReadRequest`; answered by an empty message once the reader is open.
    ReadOpen = 4,
    /// Answered by the next `ReadBatch` of the open reader.
    ReadNext = 5,
    /// Closes the open reader; answered by an empty message.
    ReadClose = 6,
}

impl Op {
    pub fn from_byte(byte: u8) -> Option<Op> {
        Some(match byte {
            1 => Op::Spec,
            2 => Op::Check,
            3 => Op::Discover,
            4 => Op::ReadOpen,
            5 => Op::ReadNext,
            6 => Op::ReadClose,
            _ => return None,
        })
    }

    /// The name of the ABI call, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Spec => "spec",
            Op::Check => "check",
            Op::Discover => "discover",
            Op::ReadOpen => "read_open",
            Op::ReadNext => "read_next",
            Op::ReadClose => "read_close",
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended cleanly before a new frame began.
    #[error("the stream ended")]
    End,
    #[error("a frame of {0} bytes is larger than the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    #[error("a frame of {0} bytes is too short for its header")]
    TooShort(usize),
    #[error("the stream ended in the middle of a frame: {0}")]
    Truncated(io::Error),
    #[error("reading a frame failed: {0}")]
    Io(io::Error),
}

/// Writes one frame made of `head` then `body`, and flushes.
pub fn write_frame(out: &mut impl Write, head: &[u8], body: &[u8]) -> io::Result<()> {
    let len = head.len() + body.len();
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is larger than the limit of {MAX_FRAME_BYTES} bytes"),
        ));
    }
    let len = u32::try_from(len).expect("bounded by MAX_FRAME_BYTES");
    out.write_all(&len.to_le_bytes())?;
    out.write_all(head)?;
    out.write_all(body)?;
    out.flush()
}

/// Reads one frame's bytes. The buffer grows only as bytes arrive, never to a length the peer
/// merely announced.
pub fn read_frame(input: &mut impl Read) -> Result<Vec<u8>, FrameError> {
    let mut len = [0_u8; 4];
    let mut filled = 0;
    while filled < len.len() {
        match input.read(&mut len[filled..]) {
            Ok(0) if filled == 0 => return Err(FrameError::End),
            Ok(0) => {
                return Err(FrameError::Truncated(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(FrameError::Io(error)),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    input
        .take(len as u64)
        .read_to_end(&mut body)
        .map_err(FrameError::Truncated)?;
    if body.len() < len {
        return Err(FrameError::Truncated(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} of {len} bytes", body.len()),
        )));
    }
    Ok(body)
}

/// Splits an answer frame into its status and message.
pub fn split_answer(frame: &[u8]) -> Result<(i32, &[u8]), FrameError> {
    let Some((status, message)) = frame.split_first_chunk::<4>() else {
        return Err(FrameError::TooShort(frame.len()));
    };
    Ok((i32::from_le_bytes(*status), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, &[Op::Check as u8], b"hello").unwrap();
        write_frame(&mut buffer, &7_i32.to_le_bytes(), b"").unwrap();
        let mut input = buffer.as_slice();
        assert_eq!(read_frame(&mut input).unwrap(), b"\x02hello");
        let second = read_frame(&mut input).unwrap();
        assert_eq!(split_answer(&second).unwrap(), (7, &b""[..]));
        assert!(matches!(read_frame(&mut input), Err(FrameError::End)));
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let error = read_frame(&mut input).unwrap_err();
        assert!(
            matches!(error, FrameError::TooLarge(4_294_967_295)),
            "{error}"
        );
        assert!(
            error.to_string().contains("larger than the limit"),
            "{error}"
        );
    }

    #[test]
    fn truncated_and_short_frames_are_errors() {
        let mut input: &[u8] = &[10, 0, 0, 0, 1, 2];
        assert!(matches!(
            read_frame(&mut input),
            Err(FrameError::Truncated(_))
        ));
        let mut input: &[u8] = &[10, 0];
        assert!(matches!(
            read_frame(&mut input),
            Err(FrameError::Truncated(_))
        ));
        assert!(matches!(
            split_answer(&[1, 2]),
            Err(FrameError::TooShort(2))
        ));
    }

    #[test]
    fn operations_round_trip_through_their_byte() {
        for op in [
            Op::Spec,
            Op::Check,
            Op::Discover,
            Op::ReadOpen,
            Op::ReadNext,
            Op::ReadClose,
        ] {
            assert_eq!(Op::from_byte(op as u8), Some(op));
        }
        assert_eq!(Op::from_byte(0), None);
        assert_eq!(Op::from_byte(200), None);
    }
}
