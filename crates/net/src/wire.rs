//! What peers say to each other directly (request-response): a hello that binds the peer to a
//! signer key, envelopes with an acknowledgement, group acceptances, and presence records.
//! Bounded decoding: every request and response fits in [`MAX_FRAME`].

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use protocol::wire::{DecodeError, Reader, Writer};

/// The direct-message protocol name (ours, so other libp2p networks never negotiate it).
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/lotus-cosigner/direct/1.0.0");
/// Largest request or response (an envelope is at most 64 KiB; a hello answer carries a few
/// presence records).
pub const MAX_FRAME: usize = 96 * 1024;
/// Presence records a hello answer may carry.
pub const MAX_RECORDS: usize = 64;
const MAX_ITEM: usize = 80 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// "I am this signer": the sender's presence record (it must name the sender's peer id).
    Hello { presence: Vec<u8> },
    /// A signed protocol envelope.
    Envelope(Vec<u8>),
    /// A member's signed acceptance of a group.
    Acceptance(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The answer to a hello: our presence record and those of members we share groups with.
    Hello {
        presence: Vec<u8>,
        members: Vec<Vec<u8>>,
    },
    /// Received (not necessarily valid: validity is the session layer's verdict).
    Ack,
    /// Not taken, and why (rate limit, unknown peer): the sender may retry later.
    Refused(String),
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Request::Hello { presence } => w.u8(0).bytes(presence),
            Request::Envelope(bytes) => w.u8(1).bytes(bytes),
            Request::Acceptance(bytes) => w.u8(2).bytes(bytes),
        };
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_size(bytes)?;
        let mut r = Reader::new(bytes);
        let request = match r.u8("request kind")? {
            0 => Request::Hello {
                presence: r.bytes(MAX_ITEM, "presence")?.to_vec(),
            },
            1 => Request::Envelope(r.bytes(MAX_ITEM, "envelope")?.to_vec()),
            2 => Request::Acceptance(r.bytes(MAX_ITEM, "acceptance")?.to_vec()),
            other => {
                return Err(DecodeError::invalid(
                    "request kind",
                    format!("unknown kind {other}"),
                ))
            }
        };
        r.finish()?;
        Ok(request)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Response::Hello { presence, members } => {
                w.u8(0).bytes(presence).count(members.len());
                for record in members {
                    w.bytes(record);
                }
            }
            Response::Ack => {
                w.u8(1);
            }
            Response::Refused(why) => {
                w.u8(2).string(why);
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_size(bytes)?;
        let mut r = Reader::new(bytes);
        let response = match r.u8("response kind")? {
            0 => {
                let presence = r.bytes(MAX_ITEM, "presence")?.to_vec();
                let count = r.count(MAX_RECORDS, 4, "members")?;
                let mut members = Vec::with_capacity(count);
                for _ in 0..count {
                    members.push(r.bytes(protocol::presence::MAX_RECORD, "member")?.to_vec());
                }
                Response::Hello { presence, members }
            }
            1 => Response::Ack,
            2 => Response::Refused(r.string(256, "reason")?),
            other => {
                return Err(DecodeError::invalid(
                    "response kind",
                    format!("unknown kind {other}"),
                ))
            }
        };
        r.finish()?;
        Ok(response)
    }
}

fn check_size(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() > MAX_FRAME {
        return Err(DecodeError::TooLong {
            field: "frame",
            len: bytes.len(),
            max: MAX_FRAME,
        });
    }
    Ok(())
}

/// One frame per stream: the writer closes its side, the reader reads at most
/// [`MAX_FRAME`] + 1 bytes (one more tells "too large" from "exactly the limit").
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io.take(MAX_FRAME as u64 + 1)
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "frame above the size limit",
        ));
    }
    Ok(bytes)
}

fn invalid(e: DecodeError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Request> {
        Request::decode(&read_frame(io).await?).map_err(invalid)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Response> {
        Response::decode(&read_frame(io).await?).map_err(invalid)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Request,
    ) -> std::io::Result<()> {
        io.write_all(&request.encode()).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> std::io::Result<()> {
        io.write_all(&response.encode()).await?;
        io.close().await
    }
}

/// The fuzz target's body: requests and responses decode to values that encode back to the
/// same bytes.
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(request) = Request::decode(data) {
        assert_eq!(request.encode(), data);
    }
    if let Ok(response) = Response::decode(data) {
        assert_eq!(response.encode(), data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip_and_reject_junk() {
        for request in [
            Request::Hello {
                presence: vec![1, 2, 3],
            },
            Request::Envelope(vec![9; 100]),
            Request::Acceptance(vec![]),
        ] {
            let bytes = request.encode();
            assert_eq!(Request::decode(&bytes).unwrap(), request);
            for cut in 0..bytes.len() {
                assert!(Request::decode(&bytes[..cut]).is_err());
            }
        }
        for response in [
            Response::Hello {
                presence: vec![1],
                members: vec![vec![2], vec![3, 4]],
            },
            Response::Ack,
            Response::Refused("rate limit".into()),
        ] {
            assert_eq!(Response::decode(&response.encode()).unwrap(), response);
        }
        assert!(Request::decode(&[7]).is_err());
        assert!(Request::decode(&vec![1; MAX_FRAME + 1]).is_err());
    }
}
