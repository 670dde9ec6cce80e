//! Payloads of the signed envelopes, one type per `MessageKind` (the proposal's own encoding
//! lives in `proposal`). All bounded by the group size: at most `MAX_INPUTS` inputs per session.

use lotus::hash::tagged_hash;
use lotus::schnorr::Signature;
use musig::{PartialSignature, PublicNonce};

use crate::audit_head::SignedHead;
use crate::wire::{DecodeError, Reader, Writer};

/// Inputs one session may sign (each is a parallel MuSig2 instance).
pub const MAX_INPUTS: usize = 256;
pub const MAX_REASON_BYTES: usize = 280;

/// Round 1: a pair of public nonces per input, this participant's election salt share, and
/// its current signed audit head (so the others can notice a log rewritten later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonces {
    pub salt_share: [u8; 32],
    pub nonces: Vec<PublicNonce>,
    pub audit_head: Option<SignedHead>,
}

impl Nonces {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.salt_share).count(self.nonces.len());
        for n in &self.nonces {
            w.raw(&n.serialize());
        }
        SignedHead::encode_optional(&self.audit_head, &mut w);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let salt_share = r.array("salt share")?;
        let count = r.count(MAX_INPUTS, 66, "nonces")?;
        let nonces = (0..count)
            .map(|_| {
                PublicNonce::from_slice(r.take(66, "public nonce")?)
                    .map_err(|e| DecodeError::invalid("public nonce", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let audit_head = SignedHead::decode_optional(&mut r)?;
        r.finish()?;
        Ok(Self {
            salt_share,
            nonces,
            audit_head,
        })
    }

    /// Round 0 commits to exactly these bytes.
    pub fn commitment(&self, session_id: &[u8; 32], attempt: u32, sender: u16) -> [u8; 32] {
        tagged_hash(
            "LotusCosigner/commitment",
            &[
                session_id,
                &attempt.to_be_bytes(),
                &sender.to_be_bytes(),
                &self.encode(),
            ],
        )
    }
}

/// Round 0: H(round-1 contribution). Revealed in round 1; a mismatch is provable misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    pub fn encode(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let hash = r.array("commitment")?;
        r.finish()?;
        Ok(Self(hash))
    }
}

/// Round 2: one partial signature per input, the election proof the sender computed, and the
/// ids of the n Nonces envelopes (member order) the partials were made with. The commitment
/// makes conflicting views visible: a receiver whose view of some member's nonces differs
/// never judges the partial against its own view (which could frame an honest signer), but
/// forwards what it holds so the member who sent two different nonce messages is caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partials {
    pub election_proof: [u8; 32],
    pub nonces_used: Vec<[u8; 32]>,
    pub partials: Vec<PartialSignature>,
    /// In a pooled attempt of a salted election: the salt share the sender's pool entry
    /// committed to (the election runs once every share is revealed).
    pub salt_share: Option<[u8; 32]>,
}

impl Partials {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.election_proof).count(self.nonces_used.len());
        for id in &self.nonces_used {
            w.raw(id);
        }
        w.count(self.partials.len());
        for p in &self.partials {
            w.raw(&p.to_bytes());
        }
        match &self.salt_share {
            Some(share) => {
                w.u8(1).raw(share);
            }
            None => {
                w.u8(0);
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let election_proof = r.array("election proof")?;
        let members = r.count(crate::group::MAX_MEMBERS, 32, "nonce ids")?;
        let nonces_used = (0..members)
            .map(|_| r.array("nonce id"))
            .collect::<Result<Vec<[u8; 32]>, _>>()?;
        let count = r.count(MAX_INPUTS, 32, "partials")?;
        let partials = (0..count)
            .map(|_| {
                PartialSignature::from_slice(r.take(32, "partial signature")?)
                    .map_err(|e| DecodeError::invalid("partial signature", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let salt_share = match r.u8("salt share flag")? {
            0 => None,
            1 => Some(r.array("salt share")?),
            other => return Err(DecodeError::invalid("salt share flag", format!("{other}"))),
        };
        r.finish()?;
        Ok(Self {
            election_proof,
            nonces_used,
            partials,
            salt_share,
        })
    }
}

/// The final signatures, one per input; anyone can check them against the sighashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    pub signatures: Vec<Signature>,
}

impl Completed {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.count(self.signatures.len());
        for s in &self.signatures {
            w.raw(&s.to_bytes());
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let count = r.count(MAX_INPUTS, 64, "signatures")?;
        let signatures = (0..count)
            .map(|_| Ok(Signature::from_bytes(r.array("signature")?)))
            .collect::<Result<Vec<_>, DecodeError>>()?;
        r.finish()?;
        Ok(Self { signatures })
    }
}

/// A signed refusal, with an optional human reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: String,
}

impl Reject {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(&self.reason);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let reason = r.string(MAX_REASON_BYTES, "reject reason")?;
        r.finish()?;
        Ok(Self { reason })
    }
}

/// Why a participant abandoned an attempt. Only reasons the others can act on: a restart
/// (its secret nonces are gone — not checkable, so followed a bounded number of times per
/// member) or evidence that the attempt cannot finish (checked by every receiver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortCode {
    /// It restarted after releasing nonces: its secret nonces are gone for good.
    Restart,
    /// It holds verified blame evidence (encoded `evidence::Evidence` records) against one
    /// member: the offence that ended this attempt, and any earlier one in the session (two
    /// offences end the session, and a member that fell behind must learn that too).
    Blamed(Vec<Vec<u8>>),
}

/// Evidence records one abort notice may carry.
pub const MAX_NOTICE_RECORDS: usize = 4;

/// Largest evidence record an abort notice carries.
pub const MAX_NOTICE_EVIDENCE: usize = 1 << 20;

impl AbortCode {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            AbortCode::Restart => {
                w.u8(1);
            }
            AbortCode::Blamed(records) => {
                w.u8(2).count(records.len());
                for record in records {
                    w.bytes(record);
                }
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let code = match r.u8("abort code")? {
            1 => AbortCode::Restart,
            2 => {
                let count = r.count(MAX_NOTICE_RECORDS, 4, "evidence records")?;
                let records = (0..count)
                    .map(|_| Ok(r.bytes(MAX_NOTICE_EVIDENCE, "evidence")?.to_vec()))
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                AbortCode::Blamed(records)
            }
            other => return Err(DecodeError::invalid("abort code", format!("code {other}"))),
        };
        r.finish()?;
        Ok(code)
    }
}

/// A member back from being offline asks for signed messages it missed. With a zero session
/// id (header) it asks for the proposals of every open session of the group; otherwise for
/// that session's messages from `since_attempt` on. Answered with the stored signed bytes, so
/// a pull reveals nothing an eavesdropper on the group could not have seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pull {
    pub since_attempt: u32,
}

impl Pull {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.since_attempt);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let since_attempt = r.u32("since attempt")?;
        r.finish()?;
        Ok(Self { since_attempt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::hash::sha256;
    use lotus::PrivateKey;
    use musig::SecretNonce;

    #[test]
    fn payloads_roundtrip_and_reject_garbage() {
        let key = PrivateKey::from_bytes(&sha256(b"k")).unwrap();
        let (_s, n) = SecretNonce::generate(&key, &key.public_key(), None).unwrap();
        let nonces = Nonces {
            salt_share: [4; 32],
            nonces: vec![n, n],
            audit_head: Some(crate::audit_head::SignedHead::sign(7, [3; 32], &key)),
        };
        assert_eq!(Nonces::decode(&nonces.encode()).unwrap(), nonces);
        let partials = Partials {
            election_proof: [1; 32],
            nonces_used: vec![[7; 32], [8; 32]],
            partials: vec![PartialSignature::from_slice(&[3; 32]).unwrap()],
            salt_share: Some([5; 32]),
        };
        assert_eq!(Partials::decode(&partials.encode()).unwrap(), partials);
        let completed = Completed {
            signatures: vec![Signature::from_bytes([9; 64])],
        };
        assert_eq!(Completed::decode(&completed.encode()).unwrap(), completed);
        let reject = Reject {
            reason: "fee too high".into(),
        };
        assert_eq!(Reject::decode(&reject.encode()).unwrap(), reject);
        for code in [
            AbortCode::Restart,
            AbortCode::Blamed(vec![vec![1, 2, 3], vec![4]]),
        ] {
            assert_eq!(AbortCode::decode(&code.encode()).unwrap(), code);
        }
        assert!(AbortCode::decode(&[3]).is_err());
        let pull = Pull { since_attempt: 4 };
        assert_eq!(Pull::decode(&pull.encode()).unwrap(), pull);
        // Out-of-range partial signatures, bad points, trailing bytes: all errors.
        let mut bad = partials.encode();
        bad[34 + 64 + 2..34 + 64 + 2 + 32].copy_from_slice(&[0xff; 32]);
        assert!(Partials::decode(&bad).is_err());
        let mut bad = nonces.encode();
        bad[34] = 7;
        assert!(Nonces::decode(&bad).is_err());
        let mut trailing = reject.encode();
        trailing.push(0);
        assert!(Reject::decode(&trailing).is_err());
        assert!(Reject::decode(
            &Reject {
                reason: "x".repeat(300)
            }
            .encode()
        )
        .is_err());
        assert_ne!(
            nonces.commitment(&[0; 32], 0, 1),
            nonces.commitment(&[0; 32], 0, 2)
        );
    }
}
