//! Protocol benches, each against a baseline in the same process:
//! - cheap-check rejection: invalid messages dropped by `Node::receive` before any curve
//!   operation, vs. one envelope signature verification (the first curve op a message costs);
//! - one full honest 3-of-3, 2-input session through the real state machines (proposal,
//!   rounds 0–2, aggregation, finalisation), vs. the bare MuSig2 crypto of that session;
//! - the same session signed with pooled nonces published beforehand (attempt 0 without
//!   rounds 0–1, the asynchronous path), vs. the same baseline.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lotus::address::Network;
use lotus::hash::sha256;
use lotus::tx::Transaction;
use lotus::PrivateKey;
use musig::{AggregatedNonce, KeyAggContext, SecretNonce, Session, SpendPath};
use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::node::{NodeConfig, Peer};
use sim::lossless::{Decision, Lossless, NOW};
use sim::rng::SimRng;

fn keys(n: usize) -> Vec<PrivateKey> {
    (0..n)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i as u8, 77])).unwrap())
        .collect()
}

fn group(keys: &[PrivateKey]) -> GroupDescriptor {
    GroupDescriptor::new(
        "bench",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap()
}

/// One session to completion through every node's state machine (lossless, instant network),
/// interactive rounds only (no pools published before or after).
fn honest_session() -> Transaction {
    let config = NodeConfig {
        nonce_pools: false,
        ..NodeConfig::default()
    };
    let mut net = Lossless::with_config(3, |_| {}, config);
    net.propose(0, &mut |_, _| Decision::Approve).unwrap();
    net.broadcast_tx().expect("the session completes").clone()
}

/// A group whose members already published their pools (not timed).
fn pooled_net() -> Lossless {
    let mut net = Lossless::new(3, |_| {});
    net.publish_pools();
    net
}

/// One session signed with the pooled nonces.
fn pooled_session(mut net: Lossless) -> Transaction {
    net.propose(0, &mut |_, _| Decision::Approve).unwrap();
    net.broadcast_tx().expect("the session completes").clone()
}

/// The same session's cryptography alone: key aggregation, nonces, signing, verification.
fn bare_crypto(keys: &[PrivateKey], group: &GroupDescriptor) {
    let context = KeyAggContext::new(&group.members).unwrap();
    let mut sorted: Vec<&PrivateKey> = keys.iter().collect();
    sorted.sort_by_key(|k| k.public_key().serialize());
    for input in 0..2u8 {
        let message = sha256(&[input]);
        let mut secrets = Vec::new();
        let mut publics = Vec::new();
        for k in &sorted {
            let (s, p) =
                SecretNonce::generate(k, context.aggregated_key(), Some(&message)).unwrap();
            secrets.push(s);
            publics.push(p);
        }
        let aggregated = AggregatedNonce::sum(&publics).unwrap();
        // Every participant verifies everything, as in the protocol.
        let session =
            Session::new(&context, SpendPath::TaprootKeyPath, &aggregated, &message).unwrap();
        let partials: Vec<_> = sorted
            .iter()
            .zip(secrets)
            .enumerate()
            .map(|(i, (k, s))| session.sign(i, k, s).unwrap())
            .collect();
        for _participant in 0..keys.len() {
            assert!(session.verify_all(&publics, &partials).unwrap().is_empty());
            assert!(session.verify_final(&session.aggregate(&partials).unwrap()));
        }
    }
}

fn cheap_checks(c: &mut Criterion) {
    let keys = keys(3);
    let group = group(&keys);
    let mut node = sim::fixtures::member_node(&keys[1].public_key(), &group);
    let header = Header::new(MessageKind::Nonces, group.id(), [5; 32], [6; 32], 0, 0, NOW);
    let valid = Envelope::sign(header, vec![0; 100], &keys[0]);
    // Replay protection no longer rests on recency (co-signers may be offline for hours), so
    // the clock check that fails cheaply is a message from the future.
    let stale = Envelope::sign(
        Header {
            timestamp_ms: NOW + 3_600_000,
            ..header
        },
        vec![0; 100],
        &keys[0],
    )
    .encode();
    let wrong_sequence = Envelope::sign(
        Header {
            sequence: 99,
            ..header
        },
        vec![0; 100],
        &keys[0],
    )
    .encode();
    let unknown_group = Envelope::sign(
        Header {
            group_id: protocol::group::GroupId([9; 32]),
            ..header
        },
        vec![0; 100],
        &keys[0],
    )
    .encode();
    let outsider = Envelope::sign(
        Header {
            sender: 40,
            ..header
        },
        vec![0; 100],
        &keys[0],
    )
    .encode();
    let oversized = vec![0u8; 70_000];
    let junk = vec![0x17u8; 300];
    let rejected = [
        stale,
        wrong_sequence,
        unknown_group,
        outsider,
        oversized,
        junk,
    ];
    let mut rng = SimRng::new(1);
    let mut out = Vec::new();
    let mut g = c.benchmark_group("cheap_checks");
    g.bench_function("reject 6 invalid messages (no curve op)", |b| {
        b.iter(|| {
            for bytes in &rejected {
                assert!(node
                    .receive(bytes, Peer(0), NOW, &keys[1], &mut rng, &mut out)
                    .is_err());
            }
        })
    });
    g.bench_function("baseline: 6 envelope signature verifications", |b| {
        b.iter(|| {
            for _ in 0..rejected.len() {
                valid.verify_signature(&group).unwrap();
            }
        })
    });
    g.finish();
}

fn full_session(c: &mut Criterion) {
    let keys = keys(3);
    let group = group(&keys);
    let mut g = c.benchmark_group("session_3_of_3_2_inputs");
    g.sample_size(20);
    g.bench_function(
        "protocol: proposal to signed tx, all 3 state machines",
        |b| b.iter(honest_session),
    );
    g.bench_function(
        "protocol: the same session with pooled nonces (published beforehand)",
        |b| b.iter_batched(pooled_net, pooled_session, BatchSize::LargeInput),
    );
    g.bench_function("baseline: bare MuSig2 crypto of the same session", |b| {
        b.iter(|| bare_crypto(&keys, &group))
    });
    g.finish();
}

criterion_group!(benches, cheap_checks, full_session);
criterion_main!(benches);
