//! Signed envelopes: every protocol message is header + payload, signed by the sender's member
//! key (Lotus Schnorr) over TH("LotusCosigner/envelope", header || payload).
//!
//! Version 2 binds every message to the review digest of the proposal it belongs to (the
//! `proposal` header field), so a message can never be read as part of another proposal that
//! reuses its session id — not by a co-signer, and not by a third party checking evidence.
//!
//! Decoding is bounded and does no curve operation; the signature is checked over the exact
//! received bytes (re-encoding is canonical, so a decoded envelope re-encodes identically —
//! a test enforces it). Callers run the cheap checks (`gate`) before `verify_signature`.

use lotus::hash::{sha256, tagged_hash};
use lotus::schnorr::{self, Signature};
use lotus::PrivateKey;

use crate::group::{GroupDescriptor, GroupId};
use crate::wire::{DecodeError, Reader, Writer};

pub const PROTOCOL_VERSION: u8 = 2;
pub const HEADER_LEN: usize = 1 + 1 + 32 + 32 + 32 + 4 + 2 + 8 + 8;
/// Header, payload length, signature.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + 4 + 64;

/// What a message is; each kind has a fixed place in an attempt, which fixes its sequence
/// number: a second, different message of the same kind from one sender is equivocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    Proposal,
    /// Round 0: hash commitment to the round-1 contribution.
    Commitment,
    /// Round 1: public nonces (one pair per input) and the election salt share.
    Nonces,
    /// Round 2: partial signatures (one per input) and the sender's election proof.
    Partials,
    /// The finished signatures, so a participant that missed a partial can still finish.
    Completed,
    Reject,
    /// The sender abandoned an attempt (it restarted and lost its secret nonces, or it holds
    /// evidence that the attempt cannot finish).
    AttemptAborted,
    /// The sender's user approved the proposal (carries no secret; lets the others show who
    /// they are still waiting for).
    Approved,
    /// A request for signed messages the sender missed while offline (see `messages::Pull`).
    Pull,
    /// Public nonces published ahead of any proposal (see `pool`); group-wide, session id zero.
    NoncePool,
}

impl MessageKind {
    pub const ALL: [MessageKind; 10] = [
        MessageKind::Proposal,
        MessageKind::Commitment,
        MessageKind::Nonces,
        MessageKind::Partials,
        MessageKind::Completed,
        MessageKind::Reject,
        MessageKind::AttemptAborted,
        MessageKind::Approved,
        MessageKind::Pull,
        MessageKind::NoncePool,
    ];

    pub fn code(self) -> u8 {
        match self {
            MessageKind::Proposal => 1,
            MessageKind::Commitment => 2,
            MessageKind::Nonces => 3,
            MessageKind::Partials => 4,
            MessageKind::Completed => 5,
            MessageKind::Reject => 6,
            MessageKind::AttemptAborted => 7,
            MessageKind::Approved => 8,
            MessageKind::Pull => 9,
            MessageKind::NoncePool => 10,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The sequence number a message of this kind must carry within its attempt.
    pub fn sequence(self) -> u64 {
        self.code() as u64
    }

    /// Kinds where two different signed messages in one slot prove misbehaviour. Notices
    /// (abort, reject, approval, pull) are not: an honest member may legitimately send two
    /// different ones for one attempt (e.g. a timeout, then a restart after a crash).
    pub fn has_exclusive_slot(self) -> bool {
        matches!(
            self,
            MessageKind::Proposal
                | MessageKind::Commitment
                | MessageKind::Nonces
                | MessageKind::Partials
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub kind: MessageKind,
    pub group_id: GroupId,
    pub session_id: [u8; 32],
    /// Review digest of the proposal this message belongs to (for a proposal: its own; for a
    /// group-wide pull: zero).
    pub proposal: [u8; 32],
    pub attempt: u32,
    pub sender: u16,
    pub sequence: u64,
    pub timestamp_ms: u64,
}

impl Header {
    pub fn new(
        kind: MessageKind,
        group_id: GroupId,
        session_id: [u8; 32],
        proposal: [u8; 32],
        attempt: u32,
        sender: u16,
        now_ms: u64,
    ) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            kind,
            group_id,
            session_id,
            proposal,
            attempt,
            sender,
            sequence: kind.sequence(),
            timestamp_ms: now_ms,
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(self.version)
            .u8(self.kind.code())
            .raw(&self.group_id.0)
            .raw(&self.session_id)
            .raw(&self.proposal)
            .u32(self.attempt)
            .u16(self.sender)
            .u64(self.sequence)
            .u64(self.timestamp_ms);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("version")?;
        let code = r.u8("message kind")?;
        let kind = MessageKind::from_code(code)
            .ok_or_else(|| DecodeError::invalid("message kind", format!("code {code}")))?;
        Ok(Self {
            version,
            kind,
            group_id: GroupId(r.array("group id")?),
            session_id: r.array("session id")?,
            proposal: r.array("proposal digest")?,
            attempt: r.u32("attempt")?,
            sender: r.u16("sender")?,
            sequence: r.u64("sequence")?,
            timestamp_ms: r.u64("timestamp")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub header: Header,
    pub payload: Vec<u8>,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("sender {0} is not a member of the group")]
    UnknownSender(u16),
    #[error("the signature does not verify under sender {0}'s key")]
    BadSignature(u16),
    #[error("the envelope is for another group")]
    WrongGroup,
}

fn signing_digest(header: &Header, payload: &[u8]) -> [u8; 32] {
    let mut w = Writer::new();
    header.encode(&mut w);
    w.bytes(payload);
    tagged_hash("LotusCosigner/envelope", &[&w.into_bytes()])
}

impl Envelope {
    pub fn sign(header: Header, payload: Vec<u8>, key: &PrivateKey) -> Self {
        let signature = schnorr::sign(key, &signing_digest(&header, &payload));
        Self {
            header,
            payload,
            signature,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.header.encode(&mut w);
        w.bytes(&self.payload).raw(&self.signature.to_bytes());
        w.into_bytes()
    }

    /// Bounded decode: `max_len` is checked before anything else; no curve operations.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_len {
            return Err(DecodeError::TooLong {
                field: "envelope",
                len: bytes.len(),
                max: max_len,
            });
        }
        let mut r = Reader::new(bytes);
        let header = Header::decode(&mut r)?;
        let payload = r.bytes(max_len, "payload")?.to_vec();
        let signature = Signature::from_bytes(r.array("signature")?);
        r.finish()?;
        Ok(Self {
            header,
            payload,
            signature,
        })
    }

    /// Hash of the wire bytes: the dedup key and the envelope's identity in evidence.
    pub fn id(&self) -> [u8; 32] {
        sha256(&self.encode())
    }

    /// The one curve operation: the sender must be a member and must have signed exactly this.
    pub fn verify_signature(&self, group: &GroupDescriptor) -> Result<(), EnvelopeError> {
        if self.header.group_id != group.id() {
            return Err(EnvelopeError::WrongGroup);
        }
        let sender = self.header.sender;
        let key = group
            .members
            .get(sender as usize)
            .ok_or(EnvelopeError::UnknownSender(sender))?;
        if schnorr::verify(
            &self.signature,
            &signing_digest(&self.header, &self.payload),
            key,
        ) {
            Ok(())
        } else {
            Err(EnvelopeError::BadSignature(sender))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::address::Network;

    fn setup() -> (GroupDescriptor, Vec<PrivateKey>) {
        let keys: Vec<PrivateKey> = (0..3)
            .map(|i| PrivateKey::from_bytes(&sha256(&[i, 2])).unwrap())
            .collect();
        let group = GroupDescriptor::new(
            "g",
            Network::Regtest,
            keys.iter().map(|k| k.public_key()).collect(),
        )
        .unwrap();
        (group, keys)
    }

    #[test]
    fn roundtrip_verify_and_tamper() {
        let (group, keys) = setup();
        let header = Header::new(
            MessageKind::Nonces,
            group.id(),
            [1; 32],
            [3; 32],
            0,
            2,
            1000,
        );
        let env = Envelope::sign(header, b"payload".to_vec(), &keys[2]);
        let bytes = env.encode();
        assert_eq!(bytes.len(), ENVELOPE_OVERHEAD + 7);
        let decoded = Envelope::decode(&bytes, 1 << 16).unwrap();
        assert_eq!(decoded, env);
        assert_eq!(
            decoded.encode(),
            bytes,
            "canonical: decode∘encode is the identity"
        );
        decoded.verify_signature(&group).unwrap();

        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            if let Ok(e) = Envelope::decode(&flipped, 1 << 16) {
                assert!(
                    e.verify_signature(&group).is_err(),
                    "byte {i} flip must not verify"
                );
            }
        }
        // Signed by a member, but claiming to be another member.
        let forged = Envelope::sign(
            Header {
                sender: 1,
                ..header
            },
            b"payload".to_vec(),
            &keys[2],
        );
        assert_eq!(
            forged.verify_signature(&group).unwrap_err(),
            EnvelopeError::BadSignature(1)
        );
        let outsider = Envelope::sign(
            Header {
                sender: 7,
                ..header
            },
            vec![],
            &keys[0],
        );
        assert_eq!(
            outsider.verify_signature(&group).unwrap_err(),
            EnvelopeError::UnknownSender(7)
        );
        assert!(matches!(
            Envelope::decode(&bytes, 100),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
