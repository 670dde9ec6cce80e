//! Benchmark (not a test): proposal → final signature for n co-signers whose engines talk over
//! the real libp2p stack on loopback (TCP, Noise, yamux, request-response), each with its own
//! SQLite store; beside it, the same session run by the bare protocol in one process (no
//! network, no store), and the ratio. Then the rejection rate of invalid envelopes through the
//! real network stack. Run: `cargo run -p cli --release --example network_bench [-- 3 10 20]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::runtime::chain::{ChainLink, InProcessChain};
use engine::runtime::network::{inbox_from, NetTransport};
use engine::runtime::{EngineEvent, ReviewDigest, SessionEngine, SystemClock};
use lotus::address::Network;
use lotus::hash::sha256;
use lotus::PrivateKey;
use protocol::group::GroupDescriptor;
use protocol::session::Event;
use sim::lossless::{Decision, Lossless};

const RUNS: usize = 7;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The same session without network or store: the protocol and its crypto only.
fn bare(n: usize) -> Duration {
    let mut world = Lossless::new(n, |_| {});
    let start = Instant::now();
    world
        .propose(0, &mut |_, _| Decision::Approve)
        .expect("proposed");
    start.elapsed()
}

struct Member {
    engine: SessionEngine,
    net: net::Network,
}

async fn members(
    n: usize,
    run: usize,
    dir: &std::path::Path,
    budgets: net::PeerBudgetConfig,
) -> (Vec<Member>, GroupDescriptor, InProcessChain) {
    let keys: Vec<PrivateKey> = (0..n)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i as u8, run as u8, 0xBE])).unwrap())
        .collect();
    let group = GroupDescriptor::new(
        "bench",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    let chain = InProcessChain::new();
    let mut out = Vec::new();
    let mut first: Option<net::Multiaddr> = None;
    for (i, key) in keys.iter().enumerate() {
        let config = net::NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: first.iter().cloned().collect(),
            upnp: false,
            budgets,
            ..net::NetConfig::default()
        };
        let (network, inbound, _events) =
            net::spawn(config, PrivateKey::from_bytes(&key.to_bytes()).unwrap()).unwrap();
        network.set_groups(vec![group.clone()]);
        if first.is_none() {
            let address = network.listening().await.unwrap()[0].clone();
            first = Some(address.with_p2p(network.peer_id()).unwrap());
        }
        let store =
            store::Store::open(dir.join(format!("n{n}-run{run}-member{i}.sqlite"))).unwrap();
        let (engine, _core) = SessionEngine::spawn(
            PrivateKey::from_bytes(&key.to_bytes()).unwrap(),
            store,
            vec![group.clone()],
            Arc::new(NetTransport(network.clone())),
            inbox_from(inbound),
            Arc::new(chain.clone()) as Arc<dyn ChainLink>,
            Box::new(SystemClock),
        )
        .unwrap();
        out.push(Member {
            engine,
            net: network,
        });
    }
    // Everyone reachable before the clock starts (discovery is not what is measured).
    for (i, member) in out.iter().enumerate() {
        let mut waited = 0;
        loop {
            let reachable = member.net.status().await.unwrap().members_reachable;
            if reachable >= n - 1 {
                break;
            }
            waited += 1;
            if waited % 500 == 0 {
                eprintln!("member {i} reaches {reachable} of {} co-signers", n - 1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (out, group, chain)
}

/// One session over the network: proposal until every member holds the final signatures (or
/// saw the transaction confirm first); and how many members learnt it from the chain.
async fn over_network(n: usize, run: usize, dir: &std::path::Path) -> (Duration, usize) {
    let (members, group, chain) = members(n, run, dir, net::PeerBudgetConfig::default()).await;
    let (tx, spent) = sim::fixtures::two_input_spend(&group, format!("bench {run}").as_bytes());
    chain.expect_spend(tx.txid().0, spent.clone());
    let mut done = Vec::new();
    for member in &members {
        let mut events = member.engine.events();
        let engine = member.engine.clone();
        done.push(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(EngineEvent::Session {
                        session_id,
                        event: Event::ReviewReady { review },
                    }) => {
                        if let Err(e) = engine
                            .approve(session_id, ReviewDigest(review.digest))
                            .await
                        {
                            eprintln!("approval refused: {e}");
                        }
                    }
                    Ok(EngineEvent::Session {
                        event: Event::Signed { .. },
                        ..
                    }) => return true,
                    // The transaction confirmed before this member had every partial.
                    Ok(EngineEvent::Session {
                        event: Event::Closed { .. },
                        ..
                    }) => return false,
                    Ok(_) => {}
                    Err(e) => panic!("events ended: {e}"),
                }
            }
        }));
    }
    let start = Instant::now();
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    members[0]
        .engine
        .propose(group.id(), tx, spent, expires)
        .await
        .unwrap();
    let mut from_chain = 0;
    for task in done {
        match tokio::time::timeout(Duration::from_secs(60), task).await {
            Ok(signed) => from_chain += usize::from(!signed.unwrap()),
            Err(_) => panic!("n = {n}, run {run}: a member saw no end after 60 s"),
        }
    }
    (start.elapsed(), from_chain)
}

/// Invalid envelopes (a member's key, a broken signature) sent through the real stack: how many
/// the receiver refuses per second. The receiver's budgets are lifted for this, or it would
/// (rightly) cut the sender off after 20 and the rest would never reach the checks measured.
async fn rejection_rate(dir: &std::path::Path) -> f64 {
    let unlimited = net::PeerBudgetConfig {
        bytes_per_second: 1 << 40,
        burst_bytes: 1 << 40,
        invalid_messages: u32::MAX,
        throttled_requests: u32::MAX,
        ..net::PeerBudgetConfig::default()
    };
    let (members, group, _chain) = members(2, 250, dir, unlimited).await;
    let count = 2_000;
    let key = PrivateKey::from_bytes(&sha256(&[0u8, 250, 0xBE])).unwrap();
    let header = protocol::envelope::Header::new(
        protocol::envelope::MessageKind::Nonces,
        group.id(),
        [7; 32],
        [8; 32],
        0,
        0,
        // Fresh, so the signature check is what refuses it (a stale one is only ignored).
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    // Each one different (a repeat would only be ignored as already seen), each with a
    // broken signature.
    let forged: Vec<Vec<u8>> = (0..count)
        .map(|i: usize| {
            let payload = i.to_be_bytes().repeat(12);
            let mut bytes = protocol::envelope::Envelope::sign(header, payload, &key).encode();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            bytes
        })
        .collect();
    let target = [group.members[1]];
    let refused = || async {
        let status = members[1].net.status().await.unwrap();
        status.rejected.values().sum::<u64>() + status.rate_limited + status.ignored
    };
    // In batches a connection's stream limit takes (libp2p drops streams beyond it).
    const BATCH: usize = 50;
    let start = Instant::now();
    let mut sent = 0;
    while sent < count {
        for bytes in &forged[sent..sent + BATCH] {
            members[0].net.send(&target, bytes);
        }
        sent += BATCH;
        let deadline = Instant::now() + Duration::from_secs(5);
        while refused().await < sent as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let total = refused().await;
    let status = members[1].net.status().await.unwrap();
    println!(
        "invalid envelopes: {sent} sent, {total} set aside ({:?} rejected, {} ignored over the \
         verification budget or as repeats, {} dropped over the queue)",
        status.rejected, status.ignored, status.rate_limited
    );
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![3, 10, 20]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().unwrap();
    println!("n   network p50  network p99  bare p50   ratio (p50)  ended by the chain");
    for n in sizes {
        let mut network: Vec<Duration> = Vec::new();
        let mut from_chain = 0;
        for run in 0..RUNS {
            let (took, chain) = over_network(n, run, dir.path()).await;
            network.push(took);
            from_chain += chain;
        }
        let mut crypto: Vec<Duration> = (0..RUNS).map(|_| bare(n)).collect();
        network.sort();
        crypto.sort();
        let (p50, p99, base) = (
            percentile(&network, 0.5),
            percentile(&network, 0.99),
            percentile(&crypto, 0.5),
        );
        println!(
            "{n:<3} {:>9.1} ms {:>9.1} ms {:>8.1} ms {:>8.1}x    {from_chain} of {}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            base.as_secs_f64() * 1e3,
            p50.as_secs_f64() / base.as_secs_f64(),
            n * RUNS
        );
    }
    println!(
        "invalid envelopes refused through the network stack: {:.0}/s",
        rejection_rate(dir.path()).await
    );
}
