//! Lotus Taproot commitments (lotus-sdk key-path convention).
//!
//! t = TH("TapTweak", P33 || merkle_root32), C = P + t·G — full points, no x-only parity games.
//! A key-path-only output uses a merkle root of 32 zero bytes (lotus-sdk's convention, which
//! lotus-web-wallet shared wallets use; NOT BIP341's "no root" variant).

use secp256k1::{PublicKey, Scalar};

use crate::curve::reduce_to_scalar;
use crate::hash::tagged_hash;

/// The merkle root lotus-sdk uses for key-path-only outputs.
pub const KEY_PATH_ONLY_ROOT: [u8; 32] = [0u8; 32];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaprootError {
    #[error("the tweaked key is the point at infinity")]
    Infinity,
}

/// The raw tweak hash TH("TapTweak", P33 || root), as lotus-sdk and the vectors print it.
pub fn tweak_hash(internal_key: &PublicKey, merkle_root: &[u8; 32]) -> [u8; 32] {
    tagged_hash("TapTweak", &[&internal_key.serialize(), merkle_root])
}

/// The tweak t as a scalar (the hash reduced mod n).
pub fn tweak(internal_key: &PublicKey, merkle_root: &[u8; 32]) -> Scalar {
    reduce_to_scalar(&tweak_hash(internal_key, merkle_root))
}

/// C = P + t·G for the given merkle root.
pub fn commitment_with_root(
    internal_key: &PublicKey,
    merkle_root: &[u8; 32],
) -> Result<PublicKey, TaprootError> {
    internal_key
        .add_exp_tweak(&tweak(internal_key, merkle_root))
        .map_err(|_| TaprootError::Infinity)
}

/// The key-path-only commitment C = P + TH("TapTweak", P || 0^32)·G.
///
/// Failing would need P = −t·G with t derived from P itself — a hash preimage — so this
/// never fails for a real key; the `Result` form exists in `commitment_with_root`.
pub fn commitment(internal_key: &PublicKey) -> PublicKey {
    commitment_with_root(internal_key, &KEY_PATH_ONLY_ROOT)
        .expect("C = infinity would require a SHA-256 preimage")
}

/// P + t·G for a raw 32-byte big-endian scalar (lotusd `CPubKey::AddScalar`).
pub fn add_scalar(point: &PublicKey, scalar: &[u8; 32]) -> Result<PublicKey, TaprootError> {
    let t = Scalar::from_be_bytes(*scalar).map_err(|_| TaprootError::Infinity)?;
    point.add_exp_tweak(&t).map_err(|_| TaprootError::Infinity)
}
