//! The whole path on a real chain: a group funded on the devnet, a payment built by the wallet
//! from the coins the lotusd RPC backend reports, three engines sign it, the elected
//! coordinator broadcasts over HTTP, every member's chain task sees it, a block confirms it,
//! and a reorg that drops it is noticed and the signed transaction is broadcast again.
//! Real clock, real sockets: waits are on events, each bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use chain::devnet::server::{self, DevnetConfig};
use chain::multi::Chains;
use chain::rpc::{RpcBackend, RpcClient};
use chain::{ChainBackend, ChainSpec, TxStatus};
use engine::runtime::chain::ChainLink;
use engine::runtime::chain_task::{ChainNews, ChainTask, ChainTaskConfig};
use engine::runtime::transport::InProcessHub;
use engine::runtime::{Clock, EngineEvent, ReviewDigest, SessionEngine, SystemClock};
use lotus::address::Network;
use lotus::hash::sha256;
use lotus::script::Script;
use lotus::PrivateKey;
use protocol::group::GroupDescriptor;
use protocol::session::{Event, Outcome};
use serde_json::json;
use wallet::{build_payment, Amount, Coin, PaymentRequest, Recipient, SpendKind};

const XPI: i64 = 1_000_000;
const PATIENCE: Duration = Duration::from_secs(60);

/// A devnet in `dir/devnet` on any free loopback port, funding `fund` at start.
async fn devnet(dir: &std::path::Path, fund: Vec<(Script, i64)>) -> server::RunningDevnet {
    server::start(DevnetConfig {
        data_dir: dir.join("devnet"),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_interval: None,
        fund,
        limits: Default::default(),
    })
    .await
    .unwrap()
}

fn backend(spec: &str) -> RpcBackend {
    RpcBackend::new(RpcClient::from_spec(&ChainSpec::parse(spec).unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_engines_pay_from_a_funded_group_and_survive_a_reorg() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PrivateKey> = (0..3)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i, 8, 8])).unwrap())
        .collect();
    let group = GroupDescriptor::new(
        "treasury",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    let group_script = group.script_pubkey().unwrap();
    let devnet = devnet(
        dir.path(),
        vec![
            (group_script.clone(), 30 * XPI),
            (group_script.clone(), 20 * XPI),
        ],
    )
    .await;
    let spec = devnet.chain_spec();
    let observer = backend(&spec);

    // The proposer's wallet builds the payment from the coins the backend reports.
    let coins: Vec<Coin> = observer
        .unspent(&group_script)
        .await
        .unwrap()
        .into_iter()
        .map(|u| Coin {
            kind: SpendKind::of(&u.output.script_pubkey).unwrap(),
            confirmed: u.height.is_some(),
            outpoint: u.outpoint,
            output: u.output,
        })
        .collect();
    let shop = Script::p2pkh(&[0x5a; 20]);
    let payment = build_payment(
        &PaymentRequest {
            recipients: vec![Recipient {
                script: shop.clone(),
                amount: Amount::Sats(25 * XPI),
            }],
            fee_rate_per_kb: 1_000,
            change_script: group_script.clone(),
            allow_unconfirmed: false,
        },
        &coins,
    )
    .unwrap();

    let hub = InProcessHub::new();
    let mut engines = Vec::new();
    let mut users = Vec::new();
    let mut tasks = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let store = store::Store::open(dir.path().join(format!("signer-{i}.sqlite"))).unwrap();
        let (transport, inbox) = hub.connect(&key.public_key());
        let chains = Chains::new(vec![Arc::new(backend(&spec)) as Arc<dyn ChainBackend>], 1);
        let (task, _join) = ChainTask::spawn(
            chains,
            ChainTaskConfig {
                poll_every: Duration::from_millis(200),
                ..Default::default()
            },
        );
        let (engine, _run) = SessionEngine::spawn(
            PrivateKey::from_bytes(&key.to_bytes()).unwrap(),
            store,
            vec![group.clone()],
            Arc::new(transport),
            inbox,
            Arc::new(task.clone()) as Arc<dyn ChainLink>,
            Box::new(SystemClock),
        )
        .unwrap();
        let mut events = engine.events();
        let user_engine = engine.clone();
        users.push(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(EngineEvent::Session {
                        session_id,
                        event: Event::ReviewReady { review },
                    }) => {
                        user_engine
                            .approve(session_id, ReviewDigest(review.digest))
                            .await
                            .unwrap();
                    }
                    Ok(EngineEvent::Session {
                        event: Event::Closed { outcome },
                        ..
                    }) => return outcome,
                    Ok(_) => {}
                    Err(e) => panic!("event stream ended: {e}"),
                }
            }
        }));
        engines.push(engine);
        tasks.push(task);
    }

    let txid = payment.tx.txid();
    let expires = SystemClock.now_ms() + 3_600_000;
    engines[0]
        .propose(
            group.id(),
            payment.tx.clone(),
            payment.spent_outputs.clone(),
            expires,
        )
        .await
        .unwrap();
    for (i, user) in users.into_iter().enumerate() {
        let Ok(outcome) = tokio::time::timeout(PATIENCE, user).await else {
            // Say where each member stands before failing.
            let mut states = Vec::new();
            for (j, engine) in engines.iter().enumerate() {
                for summary in engine.sessions().await.unwrap() {
                    let detail = engine.session_detail(summary.session_id).await.unwrap();
                    states.push(format!(
                        "member {j}: {summary:?} phase {:?} waiting {:?} outcome {:?} chain {:?}",
                        detail.as_ref().map(|d| d.phase),
                        detail.as_ref().map(|d| d.waiting.clone()),
                        detail.as_ref().map(|d| d.outcome.clone()),
                        tasks[j].status(&txid),
                    ));
                }
            }
            panic!("member {i}'s session did not end:\n{}", states.join("\n"));
        };
        assert_eq!(outcome.unwrap(), Outcome::Confirmed { txid: txid.0 });
    }
    let signed = match observer.status(&payment.tx).await.unwrap() {
        TxStatus::Mempool => tasks[0].status(&txid).expect("watched by every member"),
        other => panic!("expected the devnet's mempool, got {other:?}"),
    };
    assert!(signed.seen);

    observer
        .client()
        .call(
            "generatetoaddress",
            json!([
                1,
                lotus::address::XAddress::for_script(&shop, Network::Regtest).encode()
            ]),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        observer.status(&payment.tx).await.unwrap(),
        TxStatus::Confirmed { depth: 1, .. }
    ));
    let paid: i64 = observer
        .unspent(&shop)
        .await
        .unwrap()
        .iter()
        .filter(|u| u.output.value == 25 * XPI)
        .count() as i64;
    assert_eq!(paid, 1);

    // A reorg drops the transaction from the chain; the members' chain tasks notice and send
    // the signed transaction again. Whichever polls first does it (the others then find it in
    // the mempool again), so every member's news is heard.
    let (rebroadcasts, mut heard) = tokio::sync::mpsc::unbounded_channel();
    for task in &tasks {
        let mut news = task.news();
        let rebroadcasts = rebroadcasts.clone();
        tokio::spawn(async move {
            while let Ok(item) = news.recv().await {
                if let ChainNews::Rebroadcast(report) = item {
                    if report.txid == txid && rebroadcasts.send(report).is_err() {
                        return;
                    }
                }
            }
        });
    }
    let reorg = observer
        .client()
        .call("reorg", json!([1, false]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reorg["dropped"], json!([txid.to_display_hex()]));
    tasks[1].poll_now().unwrap();
    let rebroadcast = tokio::time::timeout(PATIENCE, heard.recv())
        .await
        .expect("the dropped transaction is broadcast again")
        .expect("the news forwarders run");
    assert_eq!(rebroadcast.accepted_by(), 1);
    assert_eq!(
        observer.status(&payment.tx).await.unwrap(),
        TxStatus::Mempool
    );
}

/// A proposal spending coins the group does not have (made up, already spent, or with a
/// different amount) is refused at approval by each co-signer's own chain backend, with the
/// reason, instead of wasting a signing session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_spending_coins_the_group_does_not_have_cannot_be_approved() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PrivateKey> = (0..2)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i, 9, 9])).unwrap())
        .collect();
    let group = GroupDescriptor::new(
        "pair",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    let group_script = group.script_pubkey().unwrap();
    let devnet = devnet(dir.path(), vec![(group_script.clone(), 30 * XPI)]).await;
    let spec = devnet.chain_spec();
    let real = backend(&spec).unspent(&group_script).await.unwrap()[0].clone();

    let hub = InProcessHub::new();
    let mut engines = Vec::new();
    let mut reviews = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let store = store::Store::open(dir.path().join(format!("member-{i}.sqlite"))).unwrap();
        let (transport, inbox) = hub.connect(&key.public_key());
        let chains = Chains::new(vec![Arc::new(backend(&spec)) as Arc<dyn ChainBackend>], 1);
        let (task, _join) = ChainTask::spawn(chains, ChainTaskConfig::default());
        let (engine, _core) = SessionEngine::spawn(
            PrivateKey::from_bytes(&key.to_bytes()).unwrap(),
            store,
            vec![group.clone()],
            Arc::new(transport),
            inbox,
            Arc::new(task) as Arc<dyn ChainLink>,
            Box::new(SystemClock),
        )
        .unwrap();
        reviews.push(engine.events());
        engines.push(engine);
    }
    let next_review = |events: &mut tokio::sync::broadcast::Receiver<EngineEvent>| {
        let mut events = events.resubscribe();
        async move {
            loop {
                if let Ok(EngineEvent::Session {
                    session_id,
                    event: Event::ReviewReady { review },
                }) = events.recv().await
                {
                    return (session_id, ReviewDigest(review.digest));
                }
            }
        }
    };

    // Made-up coins (the fixture's inputs exist nowhere).
    let (made_up, spent) = sim::fixtures::two_input_spend(&group, b"no such coins");
    let waiting = next_review(&mut reviews[1]);
    engines[0]
        .propose(group.id(), made_up, spent, SystemClock.now_ms() + 3_600_000)
        .await
        .unwrap();
    let (session, digest) = tokio::time::timeout(PATIENCE, waiting).await.unwrap();
    let err = engines[1].approve(session, digest).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is not an unspent output of this group"),
        "{err}"
    );
    let detail = engines[1].session_detail(session).await.unwrap().unwrap();
    assert!(!detail.summary.approved, "nothing was approved");

    // A real coin with a claimed amount that is not on the chain.
    let inflated = lotus::tx::TxOut::new(real.output.value + XPI, group_script.clone());
    let tx = lotus::tx::Transaction {
        version: 2,
        inputs: vec![lotus::tx::TxIn {
            prev_out: real.outpoint,
            script_sig: Script::new(),
            sequence: u32::MAX,
        }],
        outputs: vec![lotus::tx::TxOut::new(30 * XPI, Script::p2pkh(&[1; 20]))],
        lock_time: 0,
    };
    let waiting = next_review(&mut reviews[1]);
    engines[0]
        .propose(
            group.id(),
            tx,
            vec![inflated.clone()],
            SystemClock.now_ms() + 3_600_000,
        )
        .await
        .unwrap();
    let (session, digest) = tokio::time::timeout(PATIENCE, waiting).await.unwrap();
    let err = engines[1].approve(session, digest).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("holds 30000000 satoshis on the chain, but the proposal says 31000000"),
        "{err}"
    );
}

/// A payment signed but never seen (no backend took it) can be cancelled: the wallet proposes
/// spending its first coin back to the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_payment_never_seen_can_be_cancelled_by_spending_its_coin_back() {
    use engine::custody::Custody;
    use engine::profile::Profile;
    use engine::runtime::offline::Offline;
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PrivateKey> = (0..2)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i, 7, 7])).unwrap())
        .collect();
    let group = GroupDescriptor::new(
        "pair",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    let script = group.script_pubkey().unwrap();
    let coin = (
        lotus::tx::OutPoint::new(lotus::tx::TxId([3; 32]), 1),
        30 * XPI,
    );
    let tx = lotus::tx::Transaction {
        version: 2,
        inputs: vec![lotus::tx::TxIn {
            prev_out: coin.0,
            script_sig: Script::new(),
            sequence: u32::MAX,
        }],
        outputs: vec![lotus::tx::TxOut::new(
            30 * XPI - 1_000,
            Script::p2pkh(&[2; 20]),
        )],
        lock_time: 0,
    };
    let spent = vec![lotus::tx::TxOut::new(coin.1, script.clone())];

    let hub = InProcessHub::new();
    let mut engines = Vec::new();
    let mut cores = Vec::new();
    let mut users = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let mut profile = Profile::open(Some(dir.path().join(format!("p{i}")))).unwrap();
        profile.save_group(&group, &[]).unwrap();
        let store = store::Store::open(profile.data_dir().database_file()).unwrap();
        let (transport, inbox) = hub.connect(&key.public_key());
        let (engine, core) = SessionEngine::spawn(
            PrivateKey::from_bytes(&key.to_bytes()).unwrap(),
            store,
            vec![group.clone()],
            Arc::new(transport),
            inbox,
            Arc::new(Offline),
            Box::new(SystemClock),
        )
        .unwrap();
        let mut events = engine.events();
        let user = engine.clone();
        users.push(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(EngineEvent::Session {
                        session_id,
                        event: Event::ReviewReady { review },
                    }) => {
                        user.approve(session_id, ReviewDigest(review.digest))
                            .await
                            .unwrap();
                    }
                    Ok(EngineEvent::Session {
                        session_id,
                        event: Event::Signed { .. },
                    }) => return session_id,
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
        engines.push(engine);
        cores.push(core);
    }
    engines[0]
        .propose(group.id(), tx, spent, SystemClock.now_ms() + 3_600_000)
        .await
        .unwrap();
    let mut session = engine::runtime::SessionId([0; 32]);
    for user in users {
        session = tokio::time::timeout(PATIENCE, user).await.unwrap().unwrap();
    }
    drop(engines);
    for core in cores {
        core.finish();
    }

    let key_file = dir.path().join("k0.key");
    engine::key_file::write(
        &key_file,
        &keys[0],
        "a long enough passphrase",
        Default::default(),
    )
    .unwrap();
    let custody = Custody::open_file(&key_file, "a long enough passphrase").unwrap();
    let mut profile = Profile::open(Some(dir.path().join("p0"))).unwrap();
    let cancel = engine::proposals::propose_cancel(&mut profile, &custody, &session.0, 1_000, 60)
        .await
        .unwrap();
    let payment = &cancel.payment;
    assert_eq!(payment.inputs.len(), 1);
    assert_eq!(
        payment.inputs[0].outpoint,
        format!("{}:1", lotus::tx::TxId([3; 32]).to_display_hex())
    );
    assert_eq!(payment.outputs.len(), 1);
    assert_eq!(
        payment.outputs[0].address,
        group.address().unwrap(),
        "back to the group"
    );
    assert_eq!(payment.outputs[0].amount_sats, 30 * XPI - payment.fee_sats);
    // A session that was never signed has nothing to cancel.
    let unsigned =
        engine::proposals::propose_cancel(&mut profile, &custody, &[7; 32], 1_000, 60).await;
    assert!(unsigned.is_err());
}

/// With a Chronik backend, news comes over its WebSocket: the chain task polls when nudged,
/// long before its timer (an hour here) would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chronik_backend_pushes_news_that_the_chain_task_follows_between_polls() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::from_bytes(&sha256(b"chronik news")).unwrap();
    let script = Script::p2pkh_for_key(&key.public_key());
    let address = lotus::address::XAddress::for_script(&script, Network::Regtest).encode();
    let devnet = devnet(dir.path(), vec![(script.clone(), 3 * XPI)]).await;
    let spec = ChainSpec::parse(&devnet.chronik_spec()).unwrap();
    let chains = Chains::new(vec![chain::backend(&spec).unwrap()], 1);
    let (task, _join) = ChainTask::spawn(
        chains,
        ChainTaskConfig {
            poll_every: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    let mut news = task.news();
    let coins_seen = |news: &mut tokio::sync::broadcast::Receiver<ChainNews>, count: usize| {
        let mut news = news.resubscribe();
        async move {
            tokio::time::timeout(PATIENCE, async {
                loop {
                    if let Ok(ChainNews::Unspent { utxos, backend, .. }) = news.recv().await {
                        if utxos.len() == count {
                            return backend;
                        }
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{count} coins reported"))
        }
    };
    let first = coins_seen(&mut news, 1);
    task.watch_script(script.clone()).unwrap();
    assert!(first.await.starts_with("chronik+http://127.0.0.1:"));

    let second = coins_seen(&mut news, 2);
    backend(&devnet.chain_spec())
        .client()
        .call("generatetoaddress", json!([1, address]))
        .await
        .unwrap()
        .unwrap();
    second.await;
}
