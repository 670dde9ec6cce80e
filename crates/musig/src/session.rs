//! One MuSig2 signature: nonce coefficient, effective nonce, challenge, partial signing,
//! partial verification with blame, and aggregation (lotus-sdk `musigPartialSign`,
//! `musigPartialSigVerify`, `musigSigAgg`, and their Taproot key-path variants).

use lotus::curve::{
    has_square_y, is_below_order, mul_add_generator, reduce_to_scalar, scalar_add, scalar_mul,
    scalar_negate, x_coordinate,
};
use lotus::hash::tagged_hash;
use lotus::schnorr::{self, Signature};
use lotus::secp256k1::{self, PublicKey, Scalar};
use lotus::PrivateKey;
use zeroize::Zeroizing;

use crate::key_agg::{KeyAggContext, SigningKey, SpendPath};
use crate::nonce::{AggregatedNonce, PublicNonce, SecretNonce};
use crate::MusigError;

/// A partial signature s_i, checked to be below n when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialSignature(Scalar);

impl PartialSignature {
    /// Strict parse: exactly 32 bytes and s_i < n (lotus-sdk reduces instead; we reject).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, MusigError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| MusigError::PartialLength(bytes.len()))?;
        Scalar::from_be_bytes(array)
            .map(Self)
            .map_err(|_| MusigError::PartialOutOfRange)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes()
    }
}

/// Everything the signers of one message share once all public nonces are known.
#[derive(Debug, Clone)]
pub struct Session<'a> {
    key_agg: &'a KeyAggContext,
    signing_key: SigningKey,
    message: [u8; 32],
    nonce_coefficient_hash: [u8; 32],
    b: Scalar,
    nonce_point: PublicKey,
    negate_nonce: bool,
    e: Scalar,
}

impl<'a> Session<'a> {
    pub fn new(
        key_agg: &'a KeyAggContext,
        path: SpendPath,
        aggregated_nonce: &AggregatedNonce,
        message: &[u8; 32],
    ) -> Result<Self, MusigError> {
        let signing_key = key_agg.signing_key(path);
        let nonce_coefficient_hash = tagged_hash(
            "MuSig/noncecoef",
            &[
                &signing_key.key.serialize(),
                &aggregated_nonce.r1.serialize(),
                &aggregated_nonce.r2.serialize(),
                message,
            ],
        );
        let b = reduce_to_scalar(&nonce_coefficient_hash);
        // R = R1 + b·R2; b·R2 is undefined for b = 0, where R = R1.
        let nonce_point = match aggregated_nonce.r2.mul_tweak(&b) {
            Ok(b_r2) => aggregated_nonce
                .r1
                .combine(&b_r2)
                .map_err(|_| MusigError::NonceAggregateInfinity)?,
            Err(_) => aggregated_nonce.r1,
        };
        let negate_nonce = !has_square_y(&nonce_point);
        let e = schnorr::challenge(&x_coordinate(&nonce_point), &signing_key.key, message);
        Ok(Self {
            key_agg,
            signing_key,
            message: *message,
            nonce_coefficient_hash,
            b,
            nonce_point,
            negate_nonce,
            e,
        })
    }

    /// The key the final signature verifies under (Q, or the Taproot commitment C).
    pub fn signing_key(&self) -> &PublicKey {
        &self.signing_key.key
    }

    /// The raw nonce coefficient hash b, as lotus-sdk prints it.
    pub fn nonce_coefficient_hash(&self) -> &[u8; 32] {
        &self.nonce_coefficient_hash
    }

    /// R = R1 + b·R2 before any negation; its x is the signature's r.
    pub fn nonce_point(&self) -> &PublicKey {
        &self.nonce_point
    }

    /// True when y(R) is not a quadratic residue, so every signer negates its nonce.
    pub fn nonce_negated(&self) -> bool {
        self.negate_nonce
    }

    /// e = SHA256(x(R) || K || m) mod n.
    pub fn challenge(&self) -> &Scalar {
        &self.e
    }

    /// e·t, the Taproot term signer 0 adds (zero for a plain spend).
    pub fn tweak_term(&self) -> Scalar {
        self.signing_key
            .tweak
            .map_or(Scalar::ZERO, |t| scalar_mul(&self.e, &t))
    }

    /// R1_i + b·R2_i, signer i's effective nonce before the shared negation.
    pub fn effective_nonce(&self, nonce: &PublicNonce) -> Result<PublicKey, MusigError> {
        match nonce.r2.mul_tweak(&self.b) {
            Ok(b_r2) => nonce.r1.combine(&b_r2).map_err(|_| MusigError::Degenerate),
            Err(_) => Ok(nonce.r1),
        }
    }

    /// s_i = k + e·a_i·x_i (+ e·t for sorted signer 0 on the Taproot path). Consumes the
    /// secret nonce: it cannot be used again, whatever happens here.
    pub fn sign(
        &self,
        signer_index: usize,
        key: &PrivateKey,
        nonce: SecretNonce,
    ) -> Result<PartialSignature, MusigError> {
        let (mut k1, mut k2) = nonce.into_scalars();
        let result = self.sign_with_scalars(signer_index, key, &k1, &k2);
        k1.non_secure_erase();
        k2.non_secure_erase();
        result
    }

    fn sign_with_scalars(
        &self,
        signer_index: usize,
        key: &PrivateKey,
        k1: &secp256k1::SecretKey,
        k2: &secp256k1::SecretKey,
    ) -> Result<PartialSignature, MusigError> {
        let (public_key, coefficient) = self.key_agg.signer(signer_index)?;
        if key.public_key() != *public_key {
            return Err(MusigError::KeyMismatch {
                index: signer_index,
            });
        }
        // All arithmetic on secrets below is libsecp256k1's constant-time scalar code.
        let k1_scalar = Zeroizing::new(Scalar::from(*k1).to_be_bytes());
        let mut k = match k2.mul_tweak(&self.b) {
            Ok(b_k2) => b_k2
                .add_tweak(&Scalar::from_be_bytes(*k1_scalar).map_err(|_| MusigError::Degenerate)?)
                .map_err(|_| MusigError::Degenerate)?,
            Err(_) => *k1,
        };
        if self.negate_nonce {
            k = k.negate();
        }
        let e_a = scalar_mul(&self.e, coefficient);
        let mut s = key
            .as_secp()
            .mul_tweak(&e_a)
            .map_err(|_| MusigError::Degenerate)?;
        let k_scalar = Zeroizing::new(Scalar::from(k).to_be_bytes());
        k.non_secure_erase();
        s = s
            .add_tweak(&Scalar::from_be_bytes(*k_scalar).map_err(|_| MusigError::Degenerate)?)
            .map_err(|_| MusigError::Degenerate)?;
        if signer_index == 0 && self.signing_key.tweak.is_some() {
            s = s
                .add_tweak(&self.tweak_term())
                .map_err(|_| MusigError::Degenerate)?;
        }
        let partial = PartialSignature(Scalar::from(s));
        s.non_secure_erase();
        Ok(partial)
    }

    /// Checks s_i·G == ±(R1_i + b·R2_i) + e·a_i·P_i (+ e·t·G for Taproot signer 0).
    pub fn verify_partial(
        &self,
        signer_index: usize,
        nonce: &PublicNonce,
        partial: &PartialSignature,
    ) -> bool {
        self.check_partial(signer_index, nonce, partial)
            .unwrap_or(false)
    }

    fn check_partial(
        &self,
        signer_index: usize,
        nonce: &PublicNonce,
        partial: &PartialSignature,
    ) -> Result<bool, MusigError> {
        let (public_key, coefficient) = self.key_agg.signer(signer_index)?;
        let mut effective = self.effective_nonce(nonce)?;
        if self.negate_nonce {
            effective = effective.negate();
        }
        let mut s = partial.0;
        if signer_index == 0 && self.signing_key.tweak.is_some() {
            s = scalar_add(&s, &scalar_negate(&self.tweak_term()));
        }
        // e·a_i·P_i − s_i·G must equal −R'_i: one multiplication, then a comparison.
        let e_a = scalar_mul(&self.e, coefficient);
        Ok(
            match mul_add_generator(public_key, &e_a, &scalar_negate(&s)) {
                Some(lhs) => lhs == effective.negate(),
                None => false,
            },
        )
    }

    /// Blame: the sorted indices whose partial signature does not verify. Empty means every
    /// partial is valid (and the aggregate will verify).
    pub fn verify_all(
        &self,
        nonces: &[PublicNonce],
        partials: &[PartialSignature],
    ) -> Result<Vec<usize>, MusigError> {
        let n = self.key_agg.len();
        if nonces.len() != n {
            return Err(MusigError::NonceCount {
                expected: n,
                got: nonces.len(),
            });
        }
        if partials.len() != n {
            return Err(MusigError::PartialCount {
                expected: n,
                got: partials.len(),
            });
        }
        Ok((0..n)
            .filter(|&i| !self.verify_partial(i, &nonces[i], &partials[i]))
            .collect())
    }

    /// (x(R), Σ s_i mod n). Does not verify; callers verify partials first (or the result).
    pub fn aggregate(&self, partials: &[PartialSignature]) -> Result<Signature, MusigError> {
        let n = self.key_agg.len();
        if partials.len() != n {
            return Err(MusigError::PartialCount {
                expected: n,
                got: partials.len(),
            });
        }
        let s = partials
            .iter()
            .fold(Scalar::ZERO, |sum, p| scalar_add(&sum, &p.0));
        if s == Scalar::ZERO {
            return Err(MusigError::ZeroSignature);
        }
        debug_assert!(is_below_order(&s.to_be_bytes()));
        Ok(Signature::from_parts(
            &x_coordinate(&self.nonce_point),
            &s.to_be_bytes(),
        ))
    }

    /// Verifies a final signature as an ordinary Lotus Schnorr signature under the signing key.
    pub fn verify_final(&self, signature: &Signature) -> bool {
        schnorr::verify(signature, &self.message, &self.signing_key.key)
    }
}
