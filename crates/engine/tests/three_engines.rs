//! Three engines in one process — real keys, real SQLite stores, the in-process transport and
//! chain — sign a 2-input Lotus transaction; the signatures verify with crates/lotus. Time is
//! tokio's paused clock, so the run is deterministic and instant.

use std::sync::Arc;

use engine::runtime::chain::{ChainLink, InProcessChain};
use engine::runtime::transport::InProcessHub;
use engine::runtime::{CoreThread, EngineEvent, ReviewDigest, SessionEngine, TokioClock};
use lotus::address::Network;
use lotus::hash::sha256;
use lotus::PrivateKey;
use protocol::group::GroupDescriptor;
use protocol::session::{Event, Outcome};

const START_MS: u64 = 1_800_000_000_000;

#[tokio::test(start_paused = true)]
async fn three_engines_sign_a_two_input_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PrivateKey> = (0..3)
        .map(|i| PrivateKey::from_bytes(&sha256(&[i, 3, 3])).unwrap())
        .collect();
    let group = GroupDescriptor::new(
        "treasury",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    let hub = InProcessHub::new();
    let chain = InProcessChain::new();
    let (tx, spent) = sim::fixtures::two_input_spend(&group, b"three engines");
    chain.expect_spend(tx.txid().0, spent.clone());

    let mut engines = Vec::new();
    let mut users = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let store = store::Store::open(dir.path().join(format!("signer-{i}.sqlite"))).unwrap();
        let (transport, inbox) = hub.connect(&key.public_key());
        let key = PrivateKey::from_bytes(&key.to_bytes()).unwrap();
        let (engine, _task) = SessionEngine::spawn_on(
            CoreThread::CallerRuntime,
            key,
            store,
            vec![group.clone()],
            Arc::new(transport),
            inbox,
            Arc::new(chain.clone()) as Arc<dyn ChainLink>,
            Box::new(TokioClock::new(START_MS)),
        )
        .unwrap();
        // The "user" of this engine approves whatever it is asked to review, and reports the end.
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
    }

    let txid = tx.txid().0;
    engines[0]
        .propose(group.id(), tx, spent.clone(), START_MS + 3_600_000)
        .await
        .unwrap();
    for user in users {
        assert_eq!(user.await.unwrap(), Outcome::Confirmed { txid });
    }
    let confirmed = chain
        .confirmed(&txid)
        .expect("broadcast by the elected coordinator");
    lotus::spend::verify_transaction(&confirmed, &spent).expect("every input's signature verifies");

    // Each engine kept the session, an intact audit chain, and reputation for its co-signers.
    for (i, engine) in engines.iter().enumerate() {
        let sessions = engine.sessions().await.unwrap();
        assert_eq!(sessions.len(), 1);
        assert!(sessions[0].closed && sessions[0].approved, "engine {i}");
        let detail = engine
            .session_detail(sessions[0].session_id)
            .await
            .unwrap()
            .expect("detail");
        assert_eq!(detail.review.txid.0, txid);
        assert_eq!(detail.outcome, Some(Outcome::Confirmed { txid }));
        assert_eq!(detail.election.expect("elected").priority.len(), 3);
        // The chain verifies and records this user's approval and the confirmation (whether it
        // also shows this engine's own signing depends on whether the chain saw the transaction
        // before this engine finished aggregating).
        let audit = engine.audit_verify().await.unwrap();
        let jsonl = String::from_utf8(engine.audit_export().await.unwrap()).unwrap();
        assert_eq!(jsonl.lines().count() as u64, audit.entries);
        let kinds: Vec<String> = jsonl
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for kind in ["approved", "confirmed"] {
            assert!(
                kinds.iter().any(|k| k == kind),
                "engine {i}: no {kind} in {kinds:?}"
            );
        }
        let reputation = engine.reputation().await.unwrap();
        assert!(
            reputation.iter().any(|r| r.sessions_succeeded >= 1),
            "engine {i}: {reputation:?}"
        );
    }
    // An invite for a group that lists the key is accepted; one that doesn't is refused.
    let outsider_group = GroupDescriptor::new(
        "other",
        Network::Regtest,
        (7..9u8)
            .map(|i| PrivateKey::from_bytes(&[i; 32]).unwrap().public_key())
            .collect(),
    )
    .unwrap();
    assert!(engines[0]
        .accept_invite(outsider_group.invite())
        .await
        .is_err());
    let mut with_me = outsider_group.members.clone();
    with_me.push(keys[0].public_key());
    let joined = GroupDescriptor::new("joined", Network::Regtest, with_me).unwrap();
    let (id, acceptance) = engines[0].accept_invite(joined.invite()).await.unwrap();
    assert_eq!(id, joined.id());
    acceptance.verify(&joined).unwrap();
    drop(engines);
    for (i, key) in keys.iter().enumerate() {
        let store = store::Store::open(dir.path().join(format!("signer-{i}.sqlite"))).unwrap();
        let summary = store
            .verify_audit_signed_by(&key.public_key())
            .expect("audit chain verifies under the member's signed heads");
        assert!(summary.anchors >= 1, "the session end was signed");
        assert!(
            store.message_count().unwrap() >= 8,
            "signer {i} logged every signed message"
        );
    }
    // Defect: the audit head was an unsigned row, so cutting the log back and rewriting the
    // head passed `verify`. Someone with the file (not the key) cuts it back to before the
    // session's end, and also drops the signed heads: the member key's check catches it.
    let path = dir.path().join("signer-1.sqlite");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        let end: i64 = raw
            .query_row(
                "SELECT MIN(seq) FROM audit WHERE kind IN ('confirmed', 'session_aborted')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        raw.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit_anchors;")
            .unwrap();
        raw.execute("DELETE FROM audit WHERE seq >= ?1", [end])
            .unwrap();
        raw.execute(
            "UPDATE audit_head SET seq = ?1 - 1, hash = (SELECT hash FROM audit WHERE seq = ?1 - 1)",
            [end],
        )
        .unwrap();
    }
    let store = store::Store::open(&path).unwrap();
    store
        .verify_audit()
        .expect("the unsigned walk alone is fooled");
    let caught = store.verify_audit_signed_by(&keys[1].public_key());
    assert!(
        matches!(
            &caught,
            Err(store::Error::AuditBroken(b))
                if matches!(b.problem, store::audit::BreakKind::SessionEndUnsigned { .. })
        ),
        "{caught:?}"
    );
}
