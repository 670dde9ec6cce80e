//! Property tests over random groups of 1–100 signers: the aggregate is an ordinary Lotus
//! Schnorr signature, key order never matters, and one tampered partial is blamed on exactly
//! its signer — for plain and Taproot key-path spends. proptest prints the failing input and
//! persists its seed for replay.

use lotus::hash::sha256;
use lotus::schnorr;
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use musig::{
    AggregatedNonce, KeyAggContext, PartialSignature, PublicNonce, SecretNonce, Session, SpendPath,
};
use proptest::prelude::*;

fn keys_from_seed(seed: u64, n: usize) -> Vec<PrivateKey> {
    (0..n)
        .map(|i| {
            let mut input = seed.to_be_bytes().to_vec();
            input.extend_from_slice(&(i as u64).to_be_bytes());
            PrivateKey::from_bytes(&sha256(&input)).expect("a hash is a valid key")
        })
        .collect()
}

struct Signed {
    context: KeyAggContext,
    nonces: Vec<PublicNonce>,
    partials: Vec<PartialSignature>,
    aggregated: AggregatedNonce,
}

/// Runs a whole signing round; keys given in any order, signer positions are sorted ones.
fn sign_all(keys: &[PrivateKey], message: &[u8; 32], path: SpendPath) -> Signed {
    let public: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
    let context = KeyAggContext::new(&public).unwrap();
    // Order the private keys by sorted position.
    let mut by_position: Vec<&PrivateKey> = keys.iter().collect();
    by_position.sort_by_key(|k| k.public_key().serialize());
    let mut secrets = Vec::new();
    let mut nonces = Vec::new();
    for key in &by_position {
        let (secret, public) =
            SecretNonce::generate(key, context.aggregated_key(), Some(message)).unwrap();
        secrets.push(secret);
        nonces.push(public);
    }
    let aggregated = AggregatedNonce::sum(&nonces).unwrap();
    let session = Session::new(&context, path, &aggregated, message).unwrap();
    let partials = by_position
        .iter()
        .zip(secrets)
        .enumerate()
        .map(|(i, (key, secret))| session.sign(i, key, secret).unwrap())
        .collect();
    Signed {
        context,
        nonces,
        partials,
        aggregated,
    }
}

fn path_strategy() -> impl Strategy<Value = SpendPath> {
    prop_oneof![Just(SpendPath::Plain), Just(SpendPath::TaprootKeyPath)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn aggregate_is_a_valid_lotus_schnorr_signature(
        seed in any::<u64>(), n in 1usize..=100, message in any::<[u8; 32]>(), path in path_strategy()
    ) {
        let keys = keys_from_seed(seed, n);
        let signed = sign_all(&keys, &message, path);
        let session = Session::new(&signed.context, path, &signed.aggregated, &message).unwrap();
        prop_assert_eq!(session.verify_all(&signed.nonces, &signed.partials).unwrap(), Vec::<usize>::new());
        let signature = session.aggregate(&signed.partials).unwrap();
        let key = signed.context.signing_key(path).key;
        prop_assert!(schnorr::verify(&signature, &message, &key));
        if path == SpendPath::TaprootKeyPath {
            // The Taproot signature must not verify under the untweaked key.
            prop_assert!(!schnorr::verify(&signature, &message, signed.context.aggregated_key()));
        }
    }

    #[test]
    fn key_order_never_changes_the_aggregated_key(
        seed in any::<u64>(), n in 1usize..=100, shuffle_seed in any::<u64>()
    ) {
        let keys: Vec<PublicKey> = keys_from_seed(seed, n).iter().map(PrivateKey::public_key).collect();
        let mut shuffled = keys.clone();
        // Fisher–Yates with a small LCG so the permutation is part of the replayable input.
        let mut state = shuffle_seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let a = KeyAggContext::new(&keys).unwrap();
        let b = KeyAggContext::new(&shuffled).unwrap();
        prop_assert_eq!(a.aggregated_key(), b.aggregated_key());
        prop_assert_eq!(a.signing_key(SpendPath::TaprootKeyPath), b.signing_key(SpendPath::TaprootKeyPath));
    }

    #[test]
    fn one_tampered_partial_is_blamed_on_exactly_its_signer(
        seed in any::<u64>(), n in 1usize..=100, message in any::<[u8; 32]>(),
        victim_pick in any::<usize>(), delta in 1u8..=255, path in path_strategy()
    ) {
        let keys = keys_from_seed(seed, n);
        let mut signed = sign_all(&keys, &message, path);
        let victim = victim_pick % n;
        let mut bytes = signed.partials[victim].to_bytes();
        bytes[31] = bytes[31].wrapping_add(delta);
        // A byte change that leaves the range is refused at parse time; that is blame too.
        let Ok(tampered) = PartialSignature::from_slice(&bytes) else { return Ok(()); };
        signed.partials[victim] = tampered;
        let session = Session::new(&signed.context, path, &signed.aggregated, &message).unwrap();
        prop_assert_eq!(session.verify_all(&signed.nonces, &signed.partials).unwrap(), vec![victim]);
        let signature = session.aggregate(&signed.partials).unwrap();
        prop_assert!(!session.verify_final(&signature));
    }
}

#[test]
fn taproot_signer_zero_without_tweak_term_is_blamed() {
    // Re-signing signer 0 over the untweaked key (the lotus-sdk session-manager bug) must be
    // caught by the Taproot partial verification.
    let keys = keys_from_seed(7, 3);
    let message = sha256(b"taproot");
    let signed = sign_all(&keys, &message, SpendPath::TaprootKeyPath);
    let plain = Session::new(
        &signed.context,
        SpendPath::Plain,
        &signed.aggregated,
        &message,
    )
    .unwrap();
    let tap = Session::new(
        &signed.context,
        SpendPath::TaprootKeyPath,
        &signed.aggregated,
        &message,
    )
    .unwrap();
    assert_eq!(
        tap.verify_all(&signed.nonces, &signed.partials).unwrap(),
        Vec::<usize>::new()
    );
    assert_ne!(
        plain.verify_all(&signed.nonces, &signed.partials).unwrap(),
        Vec::<usize>::new()
    );
}

#[test]
fn duplicate_keys_aggregate_and_sign() {
    // lotus-sdk accepts [A, A, B]; sorted index 1 gets coefficient 1 only when it equals index 0.
    let keys = keys_from_seed(11, 2);
    let duplicate = PrivateKey::from_bytes(&keys[0].to_bytes()).unwrap();
    let group = vec![
        keys[0].public_key(),
        duplicate.public_key(),
        keys[1].public_key(),
    ];
    let context = KeyAggContext::new(&group).unwrap();
    let sorted = context.sorted_keys();
    let has_one =
        context.coefficient_hash(1).unwrap() == &lotus::secp256k1::Scalar::ONE.to_be_bytes();
    assert_eq!(has_one, sorted[0] == sorted[1]);

    let all = [keys[0].to_bytes(), duplicate.to_bytes(), keys[1].to_bytes()]
        .iter()
        .map(|b| PrivateKey::from_bytes(b).unwrap())
        .collect::<Vec<_>>();
    let message = sha256(b"duplicates");
    let signed = sign_all(&all, &message, SpendPath::Plain);
    let session = Session::new(
        &signed.context,
        SpendPath::Plain,
        &signed.aggregated,
        &message,
    )
    .unwrap();
    assert_eq!(
        session
            .verify_all(&signed.nonces, &signed.partials)
            .unwrap(),
        Vec::<usize>::new()
    );
    assert!(session.verify_final(&session.aggregate(&signed.partials).unwrap()));
}

#[test]
fn error_paths_are_typed() {
    use musig::MusigError;
    assert_eq!(KeyAggContext::new(&[]).unwrap_err(), MusigError::NoKeys);
    assert_eq!(
        PartialSignature::from_slice(&[0u8; 31]).unwrap_err(),
        MusigError::PartialLength(31)
    );
    assert_eq!(
        PartialSignature::from_slice(&[0xff; 32]).unwrap_err(),
        MusigError::PartialOutOfRange
    );
    assert_eq!(
        PublicNonce::from_slice(&[2u8; 65]).unwrap_err(),
        MusigError::PublicNonceLength(65)
    );
    assert_eq!(
        PublicNonce::from_slice(&[9u8; 66]).unwrap_err(),
        MusigError::PublicNoncePoint
    );

    // R1 + (−R1) is the point at infinity: a clean error, not a panic.
    let keys = keys_from_seed(3, 2);
    let context =
        KeyAggContext::new(&keys.iter().map(PrivateKey::public_key).collect::<Vec<_>>()).unwrap();
    let (_s, n1) = SecretNonce::generate(&keys[0], context.aggregated_key(), None).unwrap();
    let n2 = PublicNonce {
        r1: n1.r1.negate(),
        r2: n1.r2,
    };
    assert_eq!(
        AggregatedNonce::sum(&[n1, n2]).unwrap_err(),
        MusigError::NonceAggregateInfinity
    );

    // Signing with the wrong key for a position is refused.
    let message = [1u8; 32];
    let (s0, p0) =
        SecretNonce::generate(&keys[0], context.aggregated_key(), Some(&message)).unwrap();
    let (_s1, p1) =
        SecretNonce::generate(&keys[1], context.aggregated_key(), Some(&message)).unwrap();
    let aggregated = AggregatedNonce::sum(&[p0, p1]).unwrap();
    let session = Session::new(&context, SpendPath::Plain, &aggregated, &message).unwrap();
    let wrong_index = if context.index_of(&keys[0].public_key()) == Some(0) {
        1
    } else {
        0
    };
    assert_eq!(
        session.sign(wrong_index, &keys[0], s0).unwrap_err(),
        MusigError::KeyMismatch { index: wrong_index }
    );
}

#[test]
fn fresh_nonces_differ_every_time() {
    let keys = keys_from_seed(5, 1);
    let q = keys[0].public_key();
    let (_a, first) = SecretNonce::generate(&keys[0], &q, Some(&[0u8; 32])).unwrap();
    let (_b, second) = SecretNonce::generate(&keys[0], &q, Some(&[0u8; 32])).unwrap();
    assert_ne!(first, second);
    assert_eq!(format!("{_a:?}"), "SecretNonce(<redacted>)");
}
