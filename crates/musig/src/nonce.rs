//! MuSig2 nonces.
//!
//! `SecretNonce` is the one value whose reuse leaks a signing key, so its type makes reuse
//! impossible: it is not `Clone`/`Copy`, has no serialization, is consumed by signing and is
//! erased on drop. Production nonces come only from `SecretNonce::generate`, which mixes 32
//! bytes from the OS CSPRNG into lotus-sdk's derivation
//! aux = TH("MuSig/aux", x || Q || m || extra), k_j = TH("MuSig/nonce", aux || j) mod n.

use lotus::curve::reduce_to_scalar;
use lotus::hash::tagged_hash;
use lotus::secp256k1::{self, PublicKey};
use lotus::PrivateKey;
use zeroize::Zeroizing;

use crate::MusigError;

/// The misuse this type rules out at compile time:
///
/// ```compile_fail
/// fn needs_clone<T: Clone>() {}
/// needs_clone::<musig::SecretNonce>(); // not Clone
/// ```
///
/// ```compile_fail
/// fn needs_copy<T: Copy>() {}
/// needs_copy::<musig::SecretNonce>(); // not Copy
/// ```
///
/// ```compile_fail
/// # use musig::*;
/// # fn twice(session: &Session, key: &lotus::PrivateKey, nonce: SecretNonce) {
/// let first = session.sign(0, key, nonce);
/// let second = session.sign(0, key, nonce); // use after move: a nonce signs once
/// # }
/// ```
pub struct SecretNonce {
    k1: secp256k1::SecretKey,
    k2: secp256k1::SecretKey,
}

impl SecretNonce {
    /// Fresh nonces for one signature by `key` under aggregated key `aggregated_key` (always the
    /// untweaked Q) over `message` if already known. Randomness from the OS CSPRNG.
    pub fn generate(
        key: &PrivateKey,
        aggregated_key: &PublicKey,
        message: Option<&[u8; 32]>,
    ) -> Result<(SecretNonce, PublicNonce), MusigError> {
        let mut extra = Zeroizing::new([0u8; 32]);
        getrandom::fill(extra.as_mut()).map_err(|e| MusigError::Randomness(e.to_string()))?;
        Ok(Self::derive(key, aggregated_key, message, &extra))
    }

    /// Builds the nonce lotus-sdk derives from a KNOWN extra input. Only for checking signing
    /// against published vectors: anyone who knows `extra_input` and the message can recompute
    /// the nonce and, from one partial signature, the private key.
    #[cfg(feature = "dangerous-known-nonces")]
    pub fn dangerous_from_known_extra_input(
        key: &PrivateKey,
        aggregated_key: &PublicKey,
        message: Option<&[u8; 32]>,
        extra_input: &[u8; 32],
    ) -> (SecretNonce, PublicNonce) {
        Self::derive(key, aggregated_key, message, extra_input)
    }

    fn derive(
        key: &PrivateKey,
        aggregated_key: &PublicKey,
        message: Option<&[u8; 32]>,
        extra: &[u8; 32],
    ) -> (SecretNonce, PublicNonce) {
        let secret = key.to_bytes();
        let aux = Zeroizing::new(tagged_hash(
            "MuSig/aux",
            &[
                &secret[..],
                &aggregated_key.serialize(),
                message.unwrap_or(&[0u8; 32]),
                extra,
            ],
        ));
        let k1 = nonce_scalar(&aux, 1);
        let k2 = nonce_scalar(&aux, 2);
        let public = PublicNonce {
            r1: PublicKey::from_secret_key(&k1),
            r2: PublicKey::from_secret_key(&k2),
        };
        (SecretNonce { k1, k2 }, public)
    }

    /// Consumes the nonce into its two scalars for signing. Crate-private: only `sign` calls it.
    pub(crate) fn into_scalars(mut self) -> (secp256k1::SecretKey, secp256k1::SecretKey) {
        let scalars = (self.k1, self.k2);
        // `self` is dropped (and erased) here; the caller erases the copies it received.
        self.k1.non_secure_erase();
        self.k2.non_secure_erase();
        scalars
    }
}

/// k_j = TH("MuSig/nonce", aux || j) mod n; lotus-sdk replaces a zero result with 1.
fn nonce_scalar(aux: &[u8; 32], j: u8) -> secp256k1::SecretKey {
    let hash = Zeroizing::new(tagged_hash("MuSig/nonce", &[aux, &[j]]));
    let reduced = Zeroizing::new(reduce_to_scalar(&hash).to_be_bytes());
    secp256k1::SecretKey::from_secret_bytes(*reduced).unwrap_or_else(|_| {
        secp256k1::SecretKey::from_secret_bytes(secp256k1::Scalar::ONE.to_be_bytes())
            .expect("1 is a valid key")
    })
}

impl Drop for SecretNonce {
    fn drop(&mut self) {
        self.k1.non_secure_erase();
        self.k2.non_secure_erase();
    }
}

impl std::fmt::Debug for SecretNonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretNonce(<redacted>)")
    }
}

/// A signer's public nonce (R1, R2), 66 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicNonce {
    pub r1: PublicKey,
    pub r2: PublicKey,
}

impl PublicNonce {
    pub fn serialize(&self) -> [u8; 66] {
        let mut out = [0u8; 66];
        out[..33].copy_from_slice(&self.r1.serialize());
        out[33..].copy_from_slice(&self.r2.serialize());
        out
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, MusigError> {
        if bytes.len() != 66 {
            return Err(MusigError::PublicNonceLength(bytes.len()));
        }
        let point = |b: &[u8]| PublicKey::from_slice(b).map_err(|_| MusigError::PublicNoncePoint);
        Ok(Self {
            r1: point(&bytes[..33])?,
            r2: point(&bytes[33..])?,
        })
    }
}

/// (Σ R1_i, Σ R2_i). Either sum being the point at infinity is a clean error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatedNonce {
    pub r1: PublicKey,
    pub r2: PublicKey,
}

impl AggregatedNonce {
    pub fn sum(nonces: &[PublicNonce]) -> Result<Self, MusigError> {
        let r1: Vec<&PublicKey> = nonces.iter().map(|n| &n.r1).collect();
        let r2: Vec<&PublicKey> = nonces.iter().map(|n| &n.r2).collect();
        if nonces.is_empty() {
            return Err(MusigError::NonceCount {
                expected: 1,
                got: 0,
            });
        }
        let sum = |points: &[&PublicKey]| {
            PublicKey::combine_keys(points).map_err(|_| MusigError::NonceAggregateInfinity)
        };
        Ok(Self {
            r1: sum(&r1)?,
            r2: sum(&r2)?,
        })
    }

    pub fn serialize(&self) -> [u8; 66] {
        PublicNonce {
            r1: self.r1,
            r2: self.r2,
        }
        .serialize()
    }
}
