//! A signer's presence record: the signed binding "signer key → network peer id and addresses,
//! until this time". Co-signers publish it (DHT, and to members they meet) so others can find
//! them and know which network peer speaks for which member; a peer that claims a member's key
//! without this signature is refused. The network's ids and addresses are opaque bytes here
//! (this crate knows nothing of libp2p); the network layer checks they parse.

use lotus::hash::tagged_hash;
use lotus::schnorr::{self, Signature};
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;

use crate::wire::{DecodeError, Reader, Writer};

/// Record format version.
pub const VERSION: u8 = 1;
/// A libp2p peer id is at most 42 bytes (identity multihash of an ed25519 key is 38).
pub const MAX_PEER_ID: usize = 64;
/// Addresses a record may list, and the size of each (multiaddr bytes).
pub const MAX_ADDRESSES: usize = 8;
pub const MAX_ADDRESS: usize = 128;
/// The whole record's bound, checked before decoding.
pub const MAX_RECORD: usize =
    1 + 33 + 4 + MAX_PEER_ID + 2 + MAX_ADDRESSES * (4 + MAX_ADDRESS) + 16 + 64;
/// A record is valid for at most this long after it was signed (publishers refresh it).
pub const MAX_LIFETIME_MS: u64 = 48 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub signer: PublicKey,
    pub peer_id: Vec<u8>,
    pub addresses: Vec<Vec<u8>>,
    /// Increases with every new record of this signer: a newer one replaces an older one.
    pub seq: u64,
    pub expires_ms: u64,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the presence record's signature does not verify under its signer key")]
    BadSignature,
    #[error("the presence record expired")]
    Expired,
    #[error("the presence record claims a lifetime beyond the allowed 48 h")]
    TooLongLived,
    #[error("the presence record binds another peer than the one that sent it")]
    WrongPeer,
}

fn digest(
    signer: &PublicKey,
    peer_id: &[u8],
    addresses: &[Vec<u8>],
    seq: u64,
    expires_ms: u64,
) -> [u8; 32] {
    let mut w = Writer::new();
    write_body(&mut w, signer, peer_id, addresses, seq, expires_ms);
    tagged_hash("LotusCosigner/presence", &[&w.into_bytes()])
}

fn write_body(
    w: &mut Writer,
    signer: &PublicKey,
    peer_id: &[u8],
    addresses: &[Vec<u8>],
    seq: u64,
    expires_ms: u64,
) {
    w.u8(VERSION).public_key(signer).bytes(peer_id);
    w.count(addresses.len());
    for address in addresses {
        w.bytes(address);
    }
    w.u64(seq).u64(expires_ms);
}

impl Presence {
    /// Signs a record; addresses beyond [`MAX_ADDRESSES`] or longer than [`MAX_ADDRESS`] are
    /// left out (a record must always decode).
    pub fn sign(
        key: &PrivateKey,
        peer_id: Vec<u8>,
        addresses: Vec<Vec<u8>>,
        seq: u64,
        expires_ms: u64,
    ) -> Self {
        let addresses: Vec<Vec<u8>> = addresses
            .into_iter()
            .filter(|a| a.len() <= MAX_ADDRESS)
            .take(MAX_ADDRESSES)
            .collect();
        let signer = key.public_key();
        let signature = schnorr::sign(key, &digest(&signer, &peer_id, &addresses, seq, expires_ms));
        Self {
            signer,
            peer_id,
            addresses,
            seq,
            expires_ms,
            signature,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        write_body(
            &mut w,
            &self.signer,
            &self.peer_id,
            &self.addresses,
            self.seq,
            self.expires_ms,
        );
        w.raw(&self.signature.to_bytes());
        w.into_bytes()
    }

    /// Bounded decode, no curve operations besides parsing the key.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_RECORD {
            return Err(DecodeError::TooLong {
                field: "presence record",
                len: bytes.len(),
                max: MAX_RECORD,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::invalid(
                "version",
                format!("presence record version {version} is not {VERSION}"),
            ));
        }
        let signer = r.public_key("signer")?;
        let peer_id = r.bytes(MAX_PEER_ID, "peer id")?.to_vec();
        let count = r.count(MAX_ADDRESSES, 4, "addresses")?;
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            addresses.push(r.bytes(MAX_ADDRESS, "address")?.to_vec());
        }
        let record = Self {
            signer,
            peer_id,
            addresses,
            seq: r.u64("seq")?,
            expires_ms: r.u64("expires")?,
            signature: Signature::from_bytes(r.array("signature")?),
        };
        r.finish()?;
        Ok(record)
    }

    /// Signature, expiry and lifetime at `now_ms`.
    pub fn verify(&self, now_ms: u64) -> Result<(), PresenceError> {
        if self.expires_ms <= now_ms {
            return Err(PresenceError::Expired);
        }
        if self.expires_ms - now_ms > MAX_LIFETIME_MS {
            return Err(PresenceError::TooLongLived);
        }
        let message = digest(
            &self.signer,
            &self.peer_id,
            &self.addresses,
            self.seq,
            self.expires_ms,
        );
        if schnorr::verify(&self.signature, &message, &self.signer) {
            Ok(())
        } else {
            Err(PresenceError::BadSignature)
        }
    }

    /// [`Presence::verify`] plus: the record speaks for `peer_id` (the authenticated sender).
    pub fn verify_for(&self, peer_id: &[u8], now_ms: u64) -> Result<(), PresenceError> {
        if self.peer_id != peer_id {
            return Err(PresenceError::WrongPeer);
        }
        self.verify(now_ms)
    }

    /// Decode then [`Presence::verify`].
    pub fn decode_verified(bytes: &[u8], now_ms: u64) -> Result<Self, PresenceError> {
        let record = Self::decode(bytes)?;
        record.verify(now_ms)?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from_bytes(&[n; 32]).unwrap()
    }

    fn record() -> Presence {
        Presence::sign(
            &key(7),
            b"peer-id-bytes".to_vec(),
            vec![b"/ip4/127.0.0.1/tcp/1".to_vec()],
            3,
            10_000,
        )
    }

    #[test]
    fn a_signed_record_round_trips_and_verifies() {
        let record = record();
        let decoded = Presence::decode(&record.encode()).unwrap();
        assert_eq!(decoded, record);
        decoded.verify(5_000).unwrap();
        decoded.verify_for(b"peer-id-bytes", 5_000).unwrap();
    }

    #[test]
    fn a_record_claiming_another_signer_key_is_refused() {
        let mut forged = record();
        forged.signer = key(8).public_key();
        assert_eq!(forged.verify(5_000), Err(PresenceError::BadSignature));
    }

    #[test]
    fn a_record_moved_to_another_peer_or_address_is_refused() {
        let mut moved = record();
        moved.peer_id = b"attacker".to_vec();
        assert_eq!(moved.verify(5_000), Err(PresenceError::BadSignature));
        let record = record();
        assert_eq!(
            record.verify_for(b"attacker", 5_000),
            Err(PresenceError::WrongPeer)
        );
        let mut readdressed = record.clone();
        readdressed.addresses = vec![b"/ip4/6.6.6.6/tcp/1".to_vec()];
        assert_eq!(readdressed.verify(5_000), Err(PresenceError::BadSignature));
    }

    #[test]
    fn expired_and_far_future_records_are_refused() {
        assert_eq!(record().verify(10_000), Err(PresenceError::Expired));
        let long = Presence::sign(&key(7), vec![1], vec![], 1, MAX_LIFETIME_MS + 2);
        assert_eq!(long.verify(1), Err(PresenceError::TooLongLived));
    }

    #[test]
    fn oversized_and_truncated_records_do_not_decode() {
        let bytes = record().encode();
        for cut in 0..bytes.len() {
            assert!(Presence::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.extend(std::iter::repeat_n(0u8, MAX_RECORD));
        assert!(matches!(
            Presence::decode(&long),
            Err(DecodeError::TooLong { .. })
        ));
        let mut trailing = bytes;
        trailing.push(0);
        assert!(Presence::decode(&trailing).is_err());
    }
}
