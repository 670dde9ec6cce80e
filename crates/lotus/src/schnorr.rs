//! Lotus Schnorr: the Bitcoin Cash 2019 scheme lotusd verifies (not BIP340).
//!
//! e = SHA256(r || P33 || m) mod n; valid iff s < n, r < p, R = s·G − e·P is finite,
//! x(R) = r and y(R) is a quadratic residue.

use hmac::{Hmac, Mac};
use secp256k1::{PublicKey, Scalar};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::curve::{
    has_square_y, is_below_field_prime, is_below_order, mul_add_generator, reduce_to_scalar,
    scalar_negate, x_coordinate,
};
use crate::key::PrivateKey;

/// A 64-byte Lotus Schnorr signature r || s. Parsing does no range checks: verification does,
/// so an out-of-range signature is simply invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    pub fn from_parts(r: &[u8; 32], s: &[u8; 32]) -> Self {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(r);
        bytes[32..].copy_from_slice(s);
        Self(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    pub fn r(&self) -> &[u8; 32] {
        self.0[..32].try_into().expect("32 bytes")
    }

    pub fn s(&self) -> &[u8; 32] {
        self.0[32..].try_into().expect("32 bytes")
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature(")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// e = SHA256(r || compressed(P) || m) mod n.
pub fn challenge(r: &[u8; 32], public_key: &PublicKey, message: &[u8; 32]) -> Scalar {
    let mut hasher = Sha256::new();
    hasher.update(r);
    hasher.update(public_key.serialize());
    hasher.update(message);
    reduce_to_scalar(&hasher.finalize().into())
}

/// Verifies with lotusd's exact rules. The message is used as given (no hashing, no reversal).
pub fn verify(signature: &Signature, message: &[u8; 32], public_key: &PublicKey) -> bool {
    let (r, s) = (signature.r(), signature.s());
    if !is_below_order(s) || !is_below_field_prime(r) {
        return false;
    }
    let e = challenge(r, public_key, message);
    let s = Scalar::from_be_bytes(*s).expect("checked below n");
    match nonce_point(&s, &e, public_key) {
        Some(point) => x_coordinate(&point) == *r && has_square_y(&point),
        None => false,
    }
}

/// R = s·G − e·P, or `None` for the point at infinity. Public data only.
pub(crate) fn nonce_point(s: &Scalar, e: &Scalar, public_key: &PublicKey) -> Option<PublicKey> {
    mul_add_generator(public_key, &scalar_negate(e), s)
}

/// The 16-byte algorithm tag lotusd passes to its RFC6979 nonce function for Schnorr.
const RFC6979_ALGO: &[u8; 16] = b"Schnorr+SHA256  ";

/// Signs deterministically exactly as lotusd `CKey::SignSchnorr` (RFC6979 HMAC-SHA256 nonce with
/// the "Schnorr+SHA256  " tag, k negated when y(k·G) is not a quadratic residue).
pub fn sign(key: &PrivateKey, message: &[u8; 32]) -> Signature {
    let public_key = key.public_key();
    let mut nonces = Rfc6979::new(&key.to_bytes(), message, RFC6979_ALGO);
    loop {
        let candidate = nonces.next_nonce();
        // Invalid nonce candidates (zero or >= n) move on to the next DRBG output, as lotusd does.
        let Ok(mut k) = secp256k1::SecretKey::from_secret_bytes(*candidate) else {
            continue;
        };
        let nonce = PublicKey::from_secret_key(&k);
        if !has_square_y(&nonce) {
            k = k.negate();
        }
        let r = x_coordinate(&nonce);
        let e = challenge(&r, &public_key, message);
        if let Some(s) = sign_with_nonce(key, &k, &e) {
            k.non_secure_erase();
            return Signature::from_parts(&r, &s);
        }
        k.non_secure_erase();
    }
}

/// s = k + e·x mod n, in libsecp256k1's constant-time arithmetic. `None` only in the
/// negligible cases e·x = 0 or s = 0, which the caller answers with another nonce.
fn sign_with_nonce(key: &PrivateKey, k: &secp256k1::SecretKey, e: &Scalar) -> Option<[u8; 32]> {
    let ex = key.as_secp().mul_tweak(e).ok()?;
    let k_scalar = Zeroizing::new(k.to_secret_bytes());
    let s = ex.add_tweak(&Scalar::from_be_bytes(*k_scalar).ok()?).ok()?;
    Some(s.to_secret_bytes())
}

/// RFC6979 HMAC-SHA256 DRBG as libsecp256k1 implements it (`secp256k1_rfc6979_hmac_sha256`),
/// seeded with key32 || msg32 || algo16.
struct Rfc6979 {
    k: Zeroizing<[u8; 32]>,
    v: Zeroizing<[u8; 32]>,
    retry: bool,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Rfc6979 {
    fn new(key: &[u8; 32], message: &[u8; 32], algo: &[u8; 16]) -> Self {
        let mut seed = Zeroizing::new([0u8; 80]);
        seed[..32].copy_from_slice(key);
        seed[32..64].copy_from_slice(message);
        seed[64..].copy_from_slice(algo);
        let mut k = Zeroizing::new([0u8; 32]);
        let mut v = Zeroizing::new([1u8; 32]);
        *k = hmac(&k, &[&v[..], &[0x00], &seed[..]]);
        *v = hmac(&k, &[&v[..]]);
        *k = hmac(&k, &[&v[..], &[0x01], &seed[..]]);
        *v = hmac(&k, &[&v[..]]);
        Self { k, v, retry: false }
    }

    fn next_nonce(&mut self) -> Zeroizing<[u8; 32]> {
        if self.retry {
            *self.k = hmac(&self.k, &[&self.v[..], &[0x00]]);
            *self.v = hmac(&self.k, &[&self.v[..]]);
        }
        *self.v = hmac(&self.k, &[&self.v[..]]);
        self.retry = true;
        Zeroizing::new(*self.v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        for seed in 1u8..20 {
            let key = PrivateKey::from_bytes(&crate::hash::sha256(&[seed])).unwrap();
            let message = crate::hash::sha256(&[seed, 1]);
            let signature = sign(&key, &message);
            assert!(verify(&signature, &message, &key.public_key()));
            let mut other = message;
            other[0] ^= 1;
            assert!(!verify(&signature, &other, &key.public_key()));
            let mut bytes = signature.to_bytes();
            bytes[63] ^= 1;
            assert!(!verify(
                &Signature::from_bytes(bytes),
                &message,
                &key.public_key()
            ));
        }
    }
}
