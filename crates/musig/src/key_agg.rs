//! lotus-sdk key aggregation (`musigKeyAgg`), bit-exact.
//!
//! Keys are sorted bytewise on their 33-byte encodings; L = TH("KeyAgg list", keys);
//! a_i = TH("KeyAgg coefficient", L || P_i), except a_1 = 1 when sorted P_1 == P_0;
//! Q = Σ a_i·P_i as a full point. Signer indices everywhere are positions in the sorted list.

use lotus::curve::reduce_to_scalar;
use lotus::hash::tagged_hash;
use lotus::secp256k1::{PublicKey, Scalar};
use lotus::taproot;

use std::sync::OnceLock;

use crate::MusigError;

/// The largest group this crate aggregates; the protocol limits groups to 100 signers.
pub const MAX_SIGNERS: usize = 1000;

/// Which key the final signature is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendPath {
    /// The aggregated key Q itself (e.g. P2PKH of hash160(Q)).
    Plain,
    /// Lotus Taproot key path: C = Q + t·G with the zero merkle root; C replaces Q in the nonce
    /// coefficient and the challenge, and the signer at sorted index 0 adds e·t.
    TaprootKeyPath,
}

/// The key every signature of a session is made under, with the Taproot tweak if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningKey {
    pub key: PublicKey,
    pub tweak: Option<Scalar>,
}

#[derive(Debug, Clone)]
pub struct KeyAggContext {
    sorted_keys: Vec<PublicKey>,
    coefficient_hashes: Vec<[u8; 32]>,
    coefficients: Vec<Scalar>,
    list_hash: [u8; 32],
    aggregated_key: PublicKey,
    // Computed on first use: the commitment costs a scalar multiplication, and every Taproot
    // session asks for it.
    taproot_key: OnceLock<SigningKey>,
}

impl PartialEq for KeyAggContext {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is derived from the sorted keys.
        self.sorted_keys == other.sorted_keys
    }
}

impl Eq for KeyAggContext {}

fn one_as_bytes() -> [u8; 32] {
    Scalar::ONE.to_be_bytes()
}

impl KeyAggContext {
    /// Aggregates the keys in any order (they are sorted here, as lotus-sdk does).
    pub fn new(keys: &[PublicKey]) -> Result<Self, MusigError> {
        if keys.is_empty() {
            return Err(MusigError::NoKeys);
        }
        if keys.len() > MAX_SIGNERS {
            return Err(MusigError::TooManyKeys {
                max: MAX_SIGNERS,
                got: keys.len(),
            });
        }
        let mut pairs: Vec<([u8; 33], PublicKey)> =
            keys.iter().map(|k| (k.serialize(), *k)).collect();
        pairs.sort_unstable_by_key(|pair| pair.0);
        let (encoded, sorted_keys): (Vec<[u8; 33]>, Vec<PublicKey>) = pairs.into_iter().unzip();

        let concatenated: Vec<u8> = encoded.concat();
        let list_hash = tagged_hash("KeyAgg list", &[&concatenated]);

        // The Lotus rule is the inverse of BIP327's: coefficient 1 only for a duplicate of key 0.
        let second_is_duplicate = encoded.len() > 1 && encoded[1] == encoded[0];
        let coefficient_hashes: Vec<[u8; 32]> = encoded
            .iter()
            .enumerate()
            .map(|(i, key)| {
                if i == 1 && second_is_duplicate {
                    one_as_bytes()
                } else {
                    tagged_hash("KeyAgg coefficient", &[&list_hash, key])
                }
            })
            .collect();
        let coefficients: Vec<Scalar> = coefficient_hashes.iter().map(reduce_to_scalar).collect();

        let mut terms = Vec::with_capacity(sorted_keys.len());
        for (key, coefficient) in sorted_keys.iter().zip(&coefficients) {
            // A zero coefficient would need a hash to hit n exactly; such a term is just absent.
            if let Ok(term) = key.mul_tweak(coefficient) {
                terms.push(term);
            }
        }
        let term_refs: Vec<&PublicKey> = terms.iter().collect();
        let aggregated_key =
            PublicKey::combine_keys(&term_refs).map_err(|_| MusigError::AggregateKeyInfinity)?;
        Ok(Self {
            sorted_keys,
            coefficient_hashes,
            coefficients,
            list_hash,
            aggregated_key,
            taproot_key: OnceLock::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.sorted_keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_keys.is_empty()
    }

    pub fn sorted_keys(&self) -> &[PublicKey] {
        &self.sorted_keys
    }

    /// The first sorted position of a key (duplicates share a key; callers that allow them
    /// track positions themselves).
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.sorted_keys.iter().position(|k| k == key)
    }

    /// L, the hash of the sorted key list.
    pub fn list_hash(&self) -> &[u8; 32] {
        &self.list_hash
    }

    /// The raw coefficient hash of signer `index` (or 1), as lotus-sdk prints it.
    pub fn coefficient_hash(&self, index: usize) -> Option<&[u8; 32]> {
        self.coefficient_hashes.get(index)
    }

    /// a_i reduced mod n.
    pub fn coefficient(&self, index: usize) -> Option<&Scalar> {
        self.coefficients.get(index)
    }

    /// Q, the untweaked aggregated key (also the key nonce generation commits to).
    pub fn aggregated_key(&self) -> &PublicKey {
        &self.aggregated_key
    }

    /// The key the session signs under for the given spend path.
    pub fn signing_key(&self, path: SpendPath) -> SigningKey {
        match path {
            SpendPath::Plain => SigningKey {
                key: self.aggregated_key,
                tweak: None,
            },
            SpendPath::TaprootKeyPath => *self.taproot_key.get_or_init(|| SigningKey {
                key: taproot::commitment(&self.aggregated_key),
                tweak: Some(taproot::tweak(
                    &self.aggregated_key,
                    &taproot::KEY_PATH_ONLY_ROOT,
                )),
            }),
        }
    }

    pub(crate) fn signer(&self, index: usize) -> Result<(&PublicKey, &Scalar), MusigError> {
        match (self.sorted_keys.get(index), self.coefficients.get(index)) {
            (Some(key), Some(coefficient)) => Ok((key, coefficient)),
            _ => Err(MusigError::SignerIndex {
                index,
                size: self.len(),
            }),
        }
    }
}
