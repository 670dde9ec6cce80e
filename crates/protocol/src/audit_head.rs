//! A member's signed audit head (the sequence number and hash of the last entry of its
//! tamper-evident log, signed with its member key). Round-1 messages carry the sender's current
//! head and the others keep it, so a member whose log is rewritten after the fact is caught by
//! its co-signers: its later heads disagree with the ones they hold.

use lotus::hash::tagged_hash;
use lotus::schnorr::{self, Signature};
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;

use crate::wire::{DecodeError, Reader, Writer};

const TAG: &str = "LotusCosigner/audit-anchor";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHead {
    pub seq: u64,
    pub hash: [u8; 32],
    pub signature: [u8; 64],
}

/// What the member key signs for a head.
pub fn head_message(seq: u64, hash: &[u8; 32]) -> [u8; 32] {
    tagged_hash(TAG, &[&seq.to_be_bytes(), hash])
}

impl SignedHead {
    pub fn sign(seq: u64, hash: [u8; 32], key: &PrivateKey) -> Self {
        Self {
            seq,
            hash,
            signature: schnorr::sign(key, &head_message(seq, &hash)).to_bytes(),
        }
    }

    pub fn verify(&self, key: &PublicKey) -> bool {
        schnorr::verify(
            &Signature::from_bytes(self.signature),
            &head_message(self.seq, &self.hash),
            key,
        )
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.seq).raw(&self.hash).raw(&self.signature);
    }

    /// A flag byte, then the head if there is one (how messages carry an optional head).
    pub(crate) fn encode_optional(head: &Option<Self>, w: &mut Writer) {
        match head {
            Some(head) => {
                w.u8(1);
                head.encode(w);
            }
            None => {
                w.u8(0);
            }
        }
    }

    pub(crate) fn decode_optional(r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError> {
        match r.u8("audit head flag")? {
            0 => Ok(None),
            1 => Ok(Some(Self::decode(r)?)),
            other => Err(DecodeError::invalid("audit head flag", format!("{other}"))),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: r.u64("audit head seq")?,
            hash: r.array("audit head hash")?,
            signature: r.array("audit head signature")?,
        })
    }
}
