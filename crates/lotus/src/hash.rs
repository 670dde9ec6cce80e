//! The hash functions Lotus uses. All are plain byte-in, 32/20-byte-out functions.

use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Double SHA-256 (`CHash256` / `SHA256d` in lotusd).
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    sha256(&sha256(data))
}

/// RIPEMD160(SHA256(data)), the P2PKH key hash.
pub fn hash160(data: &[u8]) -> [u8; 20] {
    Ripemd160::digest(sha256(data)).into()
}

/// BIP340-style tagged hash: SHA256(SHA256(tag) || SHA256(tag) || parts...).
/// Used by lotus-sdk MuSig2 and by Lotus Taproot.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = tagged_hasher(tag);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A SHA-256 state that has absorbed SHA256(tag) || SHA256(tag): exactly one 64-byte block, so
/// the hot tags are computed once and cloned (saving two compressions per tagged hash).
fn tagged_hasher(tag: &str) -> Sha256 {
    use std::sync::OnceLock;
    const HOT_TAGS: [&str; 7] = [
        "KeyAgg list",
        "KeyAgg coefficient",
        "MuSig/noncecoef",
        "MuSig/aux",
        "MuSig/nonce",
        "TapTweak",
        "LotusCosigner/envelope",
    ];
    static PREFIXED: OnceLock<Vec<Sha256>> = OnceLock::new();
    let fresh = |tag: &str| {
        let tag_hash = sha256(tag.as_bytes());
        let mut hasher = Sha256::new();
        hasher.update(tag_hash);
        hasher.update(tag_hash);
        hasher
    };
    match HOT_TAGS.iter().position(|t| *t == tag) {
        Some(i) => PREFIXED.get_or_init(|| HOT_TAGS.iter().map(|t| fresh(t)).collect())[i].clone(),
        None => fresh(tag),
    }
}

/// Incremental SHA256d for callers that stream a preimage.
#[derive(Default, Clone)]
pub struct Sha256dWriter(Sha256);

impl Sha256dWriter {
    pub fn new() -> Self {
        Self(Sha256::new())
    }
    pub fn write(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }
    pub fn finish(self) -> [u8; 32] {
        sha256(&self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(sha256d(b"hello")),
            "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
        );
        assert_eq!(
            hex::encode(hash160(b"")),
            "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"
        );
        let mut w = Sha256dWriter::new();
        w.write(b"hel").write(b"lo");
        assert_eq!(w.finish(), sha256d(b"hello"));
    }

    #[test]
    fn tagged_hash_matches_definition() {
        let t = sha256(b"TapTweak");
        let mut pre = t.to_vec();
        pre.extend_from_slice(&t);
        pre.extend_from_slice(b"abc");
        assert_eq!(tagged_hash("TapTweak", &[b"a", b"bc"]), sha256(&pre));
    }
}
