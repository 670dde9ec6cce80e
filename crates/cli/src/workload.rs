//! Benchmark workloads: one signer's crypto for one MuSig2 session, in our Lotus variant and in
//! libsecp256k1's BIP327 module (the baseline), built from the same keys and message so the
//! two sides do the same work. Shared by `lotus-cosigner bench` and the criterion benches.

use lotus::hash::sha256;
use lotus::schnorr::Signature;
use lotus::secp256k1::{self, musig as bip327, Keypair, PublicKey};
use lotus::PrivateKey;
use musig::{
    AggregatedNonce, KeyAggContext, PartialSignature, PublicNonce, SecretNonce, Session, SpendPath,
};

/// The steps of one session, as one signer runs them.
pub const STEPS: [&str; 6] = [
    "key aggregation",
    "nonce generation + partial sign",
    "nonce aggregation + session",
    "verify all partials",
    "signature aggregation",
    "final verify",
];

fn os_random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS random number generator");
    bytes
}

fn keys(n: usize) -> Vec<PrivateKey> {
    (0..n)
        .map(|i| {
            PrivateKey::from_bytes(&sha256(format!("bench-signer-{i}").as_bytes()))
                .expect("hash key")
        })
        .collect()
}

/// A finished Lotus session of n signers; the measured signer is sorted index 0.
pub struct LotusFlow {
    public_keys: Vec<PublicKey>,
    my_key: PrivateKey,
    context: KeyAggContext,
    nonces: Vec<PublicNonce>,
    aggregated: AggregatedNonce,
    partials: Vec<PartialSignature>,
    signature: Signature,
    message: [u8; 32],
    path: SpendPath,
}

impl LotusFlow {
    pub fn new(n: usize, path: SpendPath) -> Self {
        let mut private = keys(n);
        private.sort_by_key(|k| k.public_key().serialize());
        let public_keys: Vec<PublicKey> = private.iter().map(PrivateKey::public_key).collect();
        let context = KeyAggContext::new(&public_keys).expect("keys aggregate");
        let message = sha256(b"bench message");
        let mut secrets = Vec::new();
        let mut nonces = Vec::new();
        for key in &private {
            let (secret, public) =
                SecretNonce::generate(key, context.aggregated_key(), Some(&message))
                    .expect("nonce");
            secrets.push(secret);
            nonces.push(public);
        }
        let aggregated = AggregatedNonce::sum(&nonces).expect("nonce aggregate");
        let session = Session::new(&context, path, &aggregated, &message).expect("session");
        let partials: Vec<PartialSignature> = private
            .iter()
            .zip(secrets)
            .enumerate()
            .map(|(i, (key, secret))| session.sign(i, key, secret).expect("partial"))
            .collect();
        let signature = session.aggregate(&partials).expect("aggregate");
        assert!(
            session.verify_final(&signature),
            "benchmark session must be valid"
        );
        let my_key = private.swap_remove(0);
        Self {
            public_keys,
            my_key,
            context,
            nonces,
            aggregated,
            partials,
            signature,
            message,
            path,
        }
    }

    fn session(&self) -> Session<'_> {
        Session::new(&self.context, self.path, &self.aggregated, &self.message).expect("session")
    }

    /// Runs step `step` of `STEPS` once.
    pub fn run_step(&self, step: usize) {
        match step {
            0 => {
                std::hint::black_box(KeyAggContext::new(&self.public_keys).expect("aggregate"));
            }
            1 => {
                // Signing costs the same whether or not this fresh nonce is in the aggregate.
                let (secret, _public) = SecretNonce::generate(
                    &self.my_key,
                    self.context.aggregated_key(),
                    Some(&self.message),
                )
                .expect("nonce");
                std::hint::black_box(self.session().sign(0, &self.my_key, secret).expect("sign"));
            }
            2 => {
                let aggregated = AggregatedNonce::sum(&self.nonces).expect("aggregate nonces");
                std::hint::black_box(
                    Session::new(&self.context, self.path, &aggregated, &self.message)
                        .expect("session"),
                );
            }
            3 => {
                let blamed = self
                    .session()
                    .verify_all(&self.nonces, &self.partials)
                    .expect("verify");
                assert!(blamed.is_empty());
            }
            4 => {
                std::hint::black_box(self.session().aggregate(&self.partials).expect("aggregate"));
            }
            5 => {
                assert!(lotus::schnorr::verify(
                    &self.signature,
                    &self.message,
                    &self.context.signing_key(self.path).key
                ));
            }
            _ => unreachable!("no such step"),
        }
    }
}

/// The same session with libsecp256k1's BIP327 MuSig2.
pub struct Bip327Flow {
    public_keys: Vec<PublicKey>,
    my_keypair: Keypair,
    cache: bip327::KeyAggCache,
    nonces: Vec<bip327::PublicNonce>,
    aggregated: bip327::AggregatedNonce,
    partials: Vec<bip327::PartialSignature>,
    signature: secp256k1::schnorr::Signature,
    message: [u8; 32],
}

impl Bip327Flow {
    pub fn new(n: usize) -> Self {
        let private = keys(n);
        let keypairs: Vec<Keypair> = private
            .iter()
            .map(|k| Keypair::from_secret_key(k.as_secp()))
            .collect();
        let public_keys: Vec<PublicKey> = keypairs.iter().map(Keypair::public_key).collect();
        let refs: Vec<&PublicKey> = public_keys.iter().collect();
        let cache = bip327::KeyAggCache::new(&refs);
        let message = sha256(b"bench message");
        let mut secrets = Vec::new();
        let mut nonces = Vec::new();
        for keypair in &keypairs {
            let rand = bip327::SessionSecretRand::assume_uniformly_random(os_random());
            let (secret, public) = cache.nonce_gen_with_uniform_randomness(
                rand,
                keypair.public_key(),
                &message,
                os_random(),
            );
            secrets.push(secret);
            nonces.push(public);
        }
        let nonce_refs: Vec<&bip327::PublicNonce> = nonces.iter().collect();
        let aggregated = bip327::AggregatedNonce::new(&nonce_refs);
        let session = bip327::Session::new(&cache, aggregated, &message);
        let partials: Vec<bip327::PartialSignature> = secrets
            .into_iter()
            .zip(&keypairs)
            .map(|(secret, keypair)| session.partial_sign(secret, keypair, &cache))
            .collect();
        let partial_refs: Vec<&bip327::PartialSignature> = partials.iter().collect();
        let signature = session
            .partial_sig_agg(&partial_refs)
            .verify(&cache.agg_pk(), &message)
            .expect("baseline session must be valid");
        Self {
            public_keys,
            my_keypair: keypairs[0],
            cache,
            nonces,
            aggregated,
            partials,
            signature,
            message,
        }
    }

    pub fn run_step(&self, step: usize) {
        match step {
            0 => {
                let refs: Vec<&PublicKey> = self.public_keys.iter().collect();
                std::hint::black_box(bip327::KeyAggCache::new(&refs));
            }
            1 => {
                let rand = bip327::SessionSecretRand::assume_uniformly_random(os_random());
                let (secret, _public) = self.cache.nonce_gen_with_uniform_randomness(
                    rand,
                    self.my_keypair.public_key(),
                    &self.message,
                    os_random(),
                );
                let session = bip327::Session::new(&self.cache, self.aggregated, &self.message);
                std::hint::black_box(session.partial_sign(secret, &self.my_keypair, &self.cache));
            }
            2 => {
                let refs: Vec<&bip327::PublicNonce> = self.nonces.iter().collect();
                let aggregated = bip327::AggregatedNonce::new(&refs);
                std::hint::black_box(bip327::Session::new(&self.cache, aggregated, &self.message));
            }
            3 => {
                let session = bip327::Session::new(&self.cache, self.aggregated, &self.message);
                for ((partial, nonce), key) in self
                    .partials
                    .iter()
                    .zip(&self.nonces)
                    .zip(&self.public_keys)
                {
                    assert!(session.partial_verify(&self.cache, partial, nonce, *key));
                }
            }
            4 => {
                let session = bip327::Session::new(&self.cache, self.aggregated, &self.message);
                let refs: Vec<&bip327::PartialSignature> = self.partials.iter().collect();
                std::hint::black_box(session.partial_sig_agg(&refs));
            }
            5 => {
                assert!(secp256k1::schnorr::verify(
                    &self.signature,
                    &self.message,
                    &self.cache.agg_pk()
                )
                .is_ok());
            }
            _ => unreachable!("no such step"),
        }
    }
}

/// Single-signature workloads: Lotus Schnorr vs BIP340, same key and message.
pub struct SingleSig {
    key: PrivateKey,
    public_key: PublicKey,
    keypair: Keypair,
    xonly: secp256k1::XOnlyPublicKey,
    message: [u8; 32],
    lotus_signature: Signature,
    bip340_signature: secp256k1::schnorr::Signature,
}

impl Default for SingleSig {
    fn default() -> Self {
        Self::new()
    }
}

impl SingleSig {
    pub fn new() -> Self {
        let key = PrivateKey::from_bytes(&sha256(b"bench single key")).expect("key");
        let keypair = Keypair::from_secret_key(key.as_secp());
        let message = sha256(b"bench single message");
        let lotus_signature = lotus::schnorr::sign(&key, &message);
        let bip340_signature = keypair.sign_schnorr_no_aux_rand(&message);
        let public_key = key.public_key();
        let (xonly, _) = keypair.x_only_public_key();
        Self {
            key,
            public_key,
            keypair,
            xonly,
            message,
            lotus_signature,
            bip340_signature,
        }
    }

    pub fn lotus_sign(&self) {
        std::hint::black_box(lotus::schnorr::sign(&self.key, &self.message));
    }

    pub fn bip340_sign(&self) {
        std::hint::black_box(self.keypair.sign_schnorr_no_aux_rand(&self.message));
    }

    pub fn lotus_verify(&self) {
        assert!(lotus::schnorr::verify(
            &self.lotus_signature,
            &self.message,
            &self.public_key
        ));
    }

    pub fn bip340_verify(&self) {
        assert!(
            secp256k1::schnorr::verify(&self.bip340_signature, &self.message, &self.xonly).is_ok()
        );
    }
}
