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
    // A real coin on a devnet, so the app's status question has a chain to ask.
    let devnet = devnet(dir.path(), vec![(script.clone(), 30 * XPI)]).await;
    let spec = devnet.chain_spec();
    let observer = backend(&spec);
    let funded = observer.unspent(&script).await.unwrap();
    let coin = (funded[0].outpoint, funded[0].output.value);
    assert_eq!(coin.1, 30 * XPI);
    let tx = lotus::tx::Transaction {
        version: 2,
        inputs: vec![lotus::tx::TxIn {
            prev_out: coin.0,
            script_sig: Script::new(),
            sequence: u32::MAX,
        }],
        // A fee below the relay floor: every broadcast of it is refused, so it is never
        // seen (what a cancel is for: the coin goes back to the group at a proper fee).
        outputs: vec![lotus::tx::TxOut::new(
            30 * XPI - 10,
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
        format!("{}:{}", coin.0.txid.to_display_hex(), coin.0.vout)
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
    drop(profile);

    // The same through the app's engine, with the devnet as its chain: the Session screen
    // asks the chain, offers the cancel only for a transaction nobody has, and proposes it.
    let app = |member: usize, custody: Custody, chain: Vec<String>| {
        std::fs::create_dir_all(dir.path().join(format!("exports{member}"))).unwrap();
        engine::Engine::start(engine::EngineConfig {
            data_dir: Some(dir.path().join(format!("p{member}"))),
            key: Some(Arc::new(custody)),
            chain,
            backup_dir: Some(dir.path().join(format!("exports{member}"))),
            ..engine::EngineConfig::default()
        })
    };
    let first = app(0, custody, vec![spec.clone()]);
    let id = session.to_string();
    let status = first.transaction_status(&id).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.can_cancel),
        ("not_seen", true),
        "{status:?}"
    );
    let cancel = first.cancel_unseen(&id).await.unwrap();
    assert_eq!(cancel.payment.inputs.len(), 1);
    assert_eq!(cancel.payment.outputs[0].address, group.address().unwrap());

    // The other member, who cannot be reached, imports the cancel from a session file and
    // reviews exactly what the proposer proposed.
    let key_file = dir.path().join("k1.key");
    engine::key_file::write(
        &key_file,
        &keys[1],
        "a long enough passphrase",
        Default::default(),
    )
    .unwrap();
    let second = app(
        1,
        Custody::open_file(&key_file, "a long enough passphrase").unwrap(),
        vec![],
    );
    let file = first.save_session_file(&cancel.session_id).unwrap();
    let text = std::fs::read_to_string(&file.path).unwrap();
    let imported = second.import_session_file(&text).await.unwrap();
    let proposed = first.session(&cancel.session_id).await.unwrap();
    assert_eq!(imported.session_id, cancel.session_id);
    assert_eq!(imported.review_digest, proposed.review_digest);
    assert_eq!(imported.outputs, proposed.outputs);
    assert!(
        !imported.approved_by_me,
        "an import is reviewed, never approved by itself"
    );
    assert_eq!(
        second.waiting_for_me().await.unwrap(),
        1,
        "it waits in the Inbox"
    );
    // Again: the same session, opened.
    let again = second.import_session_file(&text).await.unwrap();
    assert_eq!(again.review_digest, imported.review_digest);

    // Without a chain to ask, nobody can tell it was never seen: no cancel is offered.
    let status = second.transaction_status(&id).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.can_cancel),
        ("offline", false),
        "{status:?}"
    );
    let refused = second.cancel_unseen(&id).await.unwrap_err();
    assert_eq!(refused.title, "This transaction cannot be cancelled now");
    devnet.shutdown();
}

/// Two members' app engines on one devnet funding their group with 30 XPI.
async fn two_apps(
    dir: &std::path::Path,
    seed: u8,
) -> (
    server::RunningDevnet,
    GroupDescriptor,
    Vec<PrivateKey>,
    Vec<engine::Engine>,
) {
    let keys: Vec<PrivateKey> = (0..2)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i, seed, seed])).unwrap())
        .collect();
    let group = GroupDescriptor::new(
        "pair",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    let script = group.script_pubkey().unwrap();
    let devnet = devnet(dir, vec![(script.clone(), 30 * XPI)]).await;
    let apps: Vec<engine::Engine> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| app_engine(dir, &format!("p{i}"), key, &group, &devnet))
        .collect();
    (devnet, group, keys, apps)
}

/// An app engine on its own data folder `name` in `dir`, holding `key` and `group`.
fn app_engine(
    dir: &std::path::Path,
    name: &str,
    key: &PrivateKey,
    group: &GroupDescriptor,
    devnet: &server::RunningDevnet,
) -> engine::Engine {
    use engine::custody::Custody;
    let data = dir.join(name);
    let mut profile = engine::profile::Profile::open(Some(data.clone())).unwrap();
    profile.save_group(group, &[]).unwrap();
    drop(profile);
    let exports = dir.join(format!("{name}-exports"));
    std::fs::create_dir_all(&exports).unwrap();
    let key_file = dir.join(format!("{name}.key"));
    engine::key_file::write(
        &key_file,
        key,
        "a long enough passphrase",
        Default::default(),
    )
    .unwrap();
    engine::Engine::start(engine::EngineConfig {
        data_dir: Some(data),
        key: Some(Arc::new(
            Custody::open_file(&key_file, "a long enough passphrase").unwrap(),
        )),
        chain: vec![devnet.chain_spec()],
        backup_dir: Some(exports),
        ..engine::EngineConfig::default()
    })
}

/// `proposer` proposes paying `xpi` XPI (at `fee_rate` sat/kB, or the default); answers the
/// session id and its session file's text.
async fn propose_by_file(
    proposer: &engine::Engine,
    group: &GroupDescriptor,
    keys: &[PrivateKey],
    xpi: &str,
    fee_rate: Option<i64>,
) -> (String, String) {
    let form: engine::payment_form::PaymentForm = serde_json::from_value(json!({
        "group": group.id().to_string(),
        "recipients": [{
            "address": lotus::address::p2pkh_address(&keys[0].public_key(), Network::Regtest),
            "amount": xpi,
        }],
        "fee_rate_per_kb": fee_rate,
        "expires_minutes": null,
        "allow_unconfirmed": true,
    }))
    .unwrap();
    let proposal = proposer.propose_payment(&form).await.unwrap();
    let path = proposer
        .save_session_file(&proposal.session_id)
        .unwrap()
        .path;
    (proposal.session_id, std::fs::read_to_string(path).unwrap())
}

/// A session file is checked like a message from the network: altered, foreign or not a
/// session file at all, it is refused with a reason, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_session_file_that_was_altered_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, group, keys, apps) = two_apps(dir.path(), 9).await;
    let (session_id, text) = propose_by_file(&apps[0], &group, &keys, "5", None).await;

    // One byte of the signed proposal changed: its signature no longer holds.
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut proposal_hex = file["proposal"].as_str().unwrap().to_owned();
    let at = proposal_hex.len() - 10;
    let flipped = if &proposal_hex[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    proposal_hex.replace_range(at..at + 1, flipped);
    file["proposal"] = json!(proposal_hex);
    let altered = apps[1]
        .import_session_file(&file.to_string())
        .await
        .unwrap_err();
    assert_eq!(
        altered.title, "The proposal in the file was not accepted",
        "{altered:?}"
    );
    assert!(altered.message.contains("signature"), "{altered:?}");
    // A file naming this session but carrying another proposal.
    let (_, other) = propose_by_file(&apps[0], &group, &keys, "6", None).await;
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    let mut swapped: serde_json::Value = serde_json::from_str(&text).unwrap();
    swapped["proposal"] = other["proposal"].clone();
    let swapped = apps[1]
        .import_session_file(&swapped.to_string())
        .await
        .unwrap_err();
    assert_eq!(swapped.title, "Not a session file", "{swapped:?}");
    assert!(swapped.message.contains("not the session"), "{swapped:?}");
    let huge = apps[1]
        .import_session_file(&" ".repeat(2 << 20))
        .await
        .unwrap_err();
    assert!(
        huge.message.contains("larger than any session file"),
        "{huge:?}"
    );
    // Not a session file at all, and one for a group this profile is not in.
    let junk = apps[1]
        .import_session_file("{\"hello\": 1}")
        .await
        .unwrap_err();
    assert_eq!(junk.title, "Not a session file", "{junk:?}");
    let mut foreign: serde_json::Value = serde_json::from_str(&text).unwrap();
    foreign["group_id"] = json!("00".repeat(32));
    let foreign = apps[1]
        .import_session_file(&foreign.to_string())
        .await
        .unwrap_err();
    assert_eq!(foreign.title, "Not a session file", "{foreign:?}");
    assert!(
        apps[1].sessions().await.unwrap().is_empty(),
        "nothing refused was stored"
    );
    // The file as written is taken.
    let taken = apps[1].import_session_file(&text).await.unwrap();
    assert_eq!(taken.session_id, session_id);
    devnet.shutdown();
}

/// Above the limit a member set, a payment is approved only with the code the proposer's app
/// shows (read out on a call): a stolen proposer key used from elsewhere cannot supply it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_payment_is_not_approved_without_the_proposers_code() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, group, keys, apps) = two_apps(dir.path(), 10).await;
    // A_proposal_signed_with_my_key_elsewhere_shows_no_code_and_warns: the key of member 0,
    // stolen and used from another profile (before member 0 proposed anything: a thief who
    // knows its sequence). Member 0's own app shows no code for it.
    let thief = app_engine(dir.path(), "thief", &keys[0], &group, &devnet);
    let (stolen, text) = propose_by_file(&thief, &group, &keys, "7", None).await;
    let view = apps[0].import_session_file(&text).await.unwrap();
    assert_eq!(view.session_id, stolen);
    assert_eq!(view.confirmation_code, None, "{view:?}");
    assert_eq!(
        view.warnings.first().map(String::as_str),
        Some(engine::views::FOREIGN_PROPOSAL_WARNING)
    );
    let limit = |xpi: &str| engine::views::SettingsForm {
        chain: vec![],
        seen_quorum: 1,
        fee_rate_per_kb: 1_000,
        bootstrap: vec![],
        confirm_above_xpi: xpi.into(),
        notifications: true,
    };
    let refused = apps[1].save_settings(&limit("lots")).unwrap_err();
    assert_eq!(
        refused.title, "These settings cannot be saved",
        "{refused:?}"
    );
    assert_eq!(
        apps[1]
            .save_settings(&limit("10"))
            .unwrap()
            .confirm_above_sats,
        Some(10 * XPI)
    );

    // 5 XPI is under the limit: approved as always.
    let (small, text) = propose_by_file(&apps[0], &group, &keys, "5", None).await;
    let view = apps[1].import_session_file(&text).await.unwrap();
    assert!(!view.needs_confirmation_code && view.confirmation_code.is_none());
    apps[1]
        .approve(&small, &view.review_digest, None)
        .await
        .unwrap();

    // 12 XPI is over it: no code, a wrong code and another payment's code are refused.
    let (large, text) = propose_by_file(&apps[0], &group, &keys, "12", None).await;
    let view = apps[1].import_session_file(&text).await.unwrap();
    assert!(view.needs_confirmation_code, "{view:?}");
    assert_eq!(
        view.confirmation_code, None,
        "the approver is never shown the code"
    );
    let code = apps[0]
        .session(&large)
        .await
        .unwrap()
        .confirmation_code
        .expect("the proposer's screen shows the code");
    let small_code = apps[0]
        .session(&small)
        .await
        .unwrap()
        .confirmation_code
        .unwrap();
    for (typed, title) in [
        (None, "This payment needs the proposer's confirmation code"),
        (
            Some("0000 0000 0000"),
            "That is not this payment's confirmation code",
        ),
        (
            Some(small_code.as_str()),
            "That is not this payment's confirmation code",
        ),
    ] {
        let refused = apps[1]
            .approve(&large, &view.review_digest, typed)
            .await
            .unwrap_err();
        assert_eq!(refused.title, title, "{typed:?}");
    }
    assert!(!apps[1].session(&large).await.unwrap().approved_by_me);
    let approved = apps[1]
        .approve(&large, &view.review_digest, Some(&code.replace(' ', "-")))
        .await
        .unwrap();
    assert!(approved.approved_by_me);

    // A fee-heavy payment: 2 XPI sent is under the limit, but with its fee more leaves.
    apps[1].save_settings(&limit("2.1")).unwrap();
    let (heavy, text) = propose_by_file(&apps[0], &group, &keys, "2", Some(2_000_000)).await;
    let view = apps[1].import_session_file(&text).await.unwrap();
    assert!(
        view.sent_sats <= 21 * XPI / 10 && view.fee_sats > XPI / 10,
        "{view:?}"
    );
    assert!(view.needs_confirmation_code, "the fee leaves the group too");
    assert!(apps[1]
        .approve(&heavy, &view.review_digest, None)
        .await
        .is_err());

    devnet.shutdown();
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
