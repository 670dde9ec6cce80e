//! Several backends per profile, with faults: one down during a broadcast, notifications
//! missed, two that disagree. Real devnets over HTTP; the state must end correct and every
//! report must say which backend said what.

mod common;

use std::sync::Arc;

use chain::multi::{ChainEvent, Chains, Watcher};
use chain::{ChainBackend, ChainError, TxStatus};
use common::{mine, start_on, twin_chains, Wallet, XPI};
use lotus::tx::TxOut;

fn chains(backends: &[&chain::rpc::RpcBackend], quorum: usize) -> Chains {
    Chains::new(
        backends
            .iter()
            .map(|b| Arc::new((*b).clone()) as Arc<dyn ChainBackend>)
            .collect(),
        quorum,
    )
}

fn only_transaction_event(events: Vec<ChainEvent>) -> chain::multi::StatusReport {
    match events.as_slice() {
        [ChainEvent::Transaction(report)] => report.clone(),
        other => panic!("expected one transaction event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_down_during_broadcast_is_reported_and_reached_by_the_rebroadcast() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let alice = Wallet::new(11);
    twin_chains(&a_dir, &b_dir, vec![(alice.script(), 10 * XPI)]);
    let (_a, a) = start_on(&a_dir, "127.0.0.1:0".parse().unwrap()).await;
    let (b_devnet, b) = start_on(&b_dir, "127.0.0.1:0".parse().unwrap()).await;
    let b_address = b_devnet.address;
    let coin = a.unspent(&alice.script()).await.unwrap()[0].clone();
    let tx = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(10 * XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );

    b_devnet.shutdown();
    let mut watcher = Watcher::new(chains(&[&a, &b], 2));
    watcher.watch_submitted(tx.clone());
    let sent = watcher.chains().broadcast(&tx).await;
    assert_eq!(sent.accepted_by(), 1);
    assert!(
        matches!(sent.reports[1].answer, Err(ChainError::Unreachable { .. })),
        "{:?}",
        sent.reports[1]
    );
    assert_eq!(sent.reports[1].backend, b.label());

    let report = only_transaction_event(watcher.poll().await);
    assert_eq!(
        (report.seen_by, report.seen),
        (1, false),
        "one of two is not the quorum of 2"
    );
    assert_eq!(report.reports[0].answer, Ok(TxStatus::Mempool));
    assert!(report.reports[1].answer.is_err());

    // The backend comes back on the same address; the slot's re-broadcast reaches it.
    let (_b, _) = start_on(&b_dir, b_address).await;
    let again = watcher.rebroadcast_unseen().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].accepted_by(), 2);
    let report = only_transaction_event(watcher.poll().await);
    assert_eq!((report.seen_by, report.seen), (2, true));
    assert!(
        watcher.rebroadcast_unseen().await.is_empty(),
        "seen: nothing more to send"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_notifications_do_not_lose_a_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let alice = Wallet::new(12);
    twin_chains(&a_dir, &b_dir, vec![(alice.script(), 10 * XPI)]);
    let (_a, a) = start_on(&a_dir, "127.0.0.1:0".parse().unwrap()).await;
    let (_b, b) = start_on(&b_dir, "127.0.0.1:0".parse().unwrap()).await;
    let coin = a.unspent(&alice.script()).await.unwrap()[0].clone();
    let tx = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(10 * XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );
    let mut watcher = Watcher::new(chains(&[&a, &b], 2));
    watcher.watch_transaction(tx.clone());
    watcher.watch_script(alice.script());
    assert_eq!(watcher.chains().broadcast(&tx).await.accepted_by(), 2);
    let first = watcher.poll().await;
    assert_eq!(
        first.len(),
        2,
        "the transaction and alice's outputs: {first:?}"
    );

    // Two blocks on each backend while nobody listens: every notification is missed.
    mine(&a, 2, &alice.address()).await;
    mine(&b, 2, &alice.address()).await;
    let events = watcher.poll().await;
    let report = events
        .iter()
        .find_map(|e| match e {
            ChainEvent::Transaction(r) => Some(r.clone()),
            _ => None,
        })
        .expect("the confirmation is reported on the next poll");
    assert_eq!(report.confirmed_depth, Some(2));
    assert!(report.seen);
    assert!(events.iter().any(|e| matches!(e, ChainEvent::Unspent { utxos, .. } if utxos.iter().all(|u| u.height.is_some()))));
    assert!(watcher.poll().await.is_empty(), "nothing changed since");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_that_disagree_are_both_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let alice = Wallet::new(13);
    let mallory = Wallet::new(14);
    twin_chains(&a_dir, &b_dir, vec![(alice.script(), 10 * XPI)]);
    let (_a, a) = start_on(&a_dir, "127.0.0.1:0".parse().unwrap()).await;
    let (_b, b) = start_on(&b_dir, "127.0.0.1:0".parse().unwrap()).await;
    let coin = a.unspent(&alice.script()).await.unwrap()[0].clone();
    let ours = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(10 * XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );
    let theirs = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(10 * XPI - 2_000, mallory.script())],
        0,
        u32::MAX,
    );
    a.broadcast(&ours).await.unwrap();
    b.broadcast(&theirs).await.unwrap();

    let lenient = chains(&[&a, &b], 1).status(&ours).await;
    assert_eq!((lenient.seen_by, lenient.seen), (1, true));
    assert!(lenient.conflicted, "one backend is the quorum of 1");
    let strict = chains(&[&a, &b], 2).status(&ours).await;
    assert_eq!((strict.seen_by, strict.seen), (1, false));
    assert!(
        !strict.conflicted,
        "one backend's word is not the quorum of 2"
    );
    assert_eq!(strict.reports[0].backend, a.label());
    assert_eq!(strict.reports[0].answer, Ok(TxStatus::Mempool));
    assert_eq!(strict.reports[1].backend, b.label());
    assert_eq!(strict.reports[1].answer, Ok(TxStatus::Conflicted));

    // Broadcasting ours to both: b refuses with its own reason, a already has it.
    let sent = chains(&[&a, &b], 2).broadcast(&ours).await;
    assert_eq!(sent.accepted_by(), 1);
    assert!(sent
        .refusal()
        .unwrap()
        .refusal()
        .unwrap()
        .contains("txn-mempool-conflict"));
}

/// A backend that lies about every transaction's status (an attacker's, or a lotusd without a
/// transaction index that mistakes a spent confirmed transaction for a conflicted one).
struct Liar {
    inner: chain::rpc::RpcBackend,
    claim: TxStatus,
}

#[async_trait::async_trait]
impl ChainBackend for Liar {
    fn label(&self) -> String {
        format!("liar({})", self.inner.label())
    }
    async fn tip(&self) -> Result<chain::Tip, ChainError> {
        self.inner.tip().await
    }
    async fn unspent(
        &self,
        script: &lotus::script::Script,
    ) -> Result<Vec<chain::Utxo>, ChainError> {
        self.inner.unspent(script).await
    }
    async fn status(&self, _tx: &lotus::tx::Transaction) -> Result<TxStatus, ChainError> {
        Ok(self.claim)
    }
    async fn test_accept(
        &self,
        tx: &lotus::tx::Transaction,
    ) -> Result<chain::Acceptance, ChainError> {
        self.inner.test_accept(tx).await
    }
    async fn broadcast(&self, tx: &lotus::tx::Transaction) -> Result<lotus::tx::TxId, ChainError> {
        self.inner.broadcast(tx).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lying_backend_cannot_settle_or_forget_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let alice = Wallet::new(15);
    twin_chains(&a_dir, &b_dir, vec![(alice.script(), 10 * XPI)]);
    let (_a, a) = start_on(&a_dir, "127.0.0.1:0".parse().unwrap()).await;
    let (_b, b) = start_on(&b_dir, "127.0.0.1:0".parse().unwrap()).await;
    let coin = a.unspent(&alice.script()).await.unwrap()[0].clone();
    let tx = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(10 * XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );
    let chains_with = |claim| {
        let liar = Liar {
            inner: b.clone(),
            claim,
        };
        Chains::new(
            vec![Arc::new(a.clone()) as Arc<dyn ChainBackend>, Arc::new(liar)],
            2,
        )
    };
    for claim in [
        TxStatus::Confirmed {
            height: 1,
            depth: 99,
        },
        TxStatus::Conflicted,
        TxStatus::Mempool,
    ] {
        let report = chains_with(claim).status(&tx).await;
        assert_eq!(
            report.confirmed_depth, None,
            "{claim:?}: one claim is not the quorum"
        );
        assert!(!report.conflicted && !report.seen, "{claim:?}");
    }
    // So the watcher still sends it (the honest backend never saw it).
    for claim in [
        TxStatus::Confirmed {
            height: 1,
            depth: 99,
        },
        TxStatus::Conflicted,
    ] {
        // A backup coordinator that only watches waits for its slot: never re-broadcasts.
        let mut backup = Watcher::new(chains_with(claim));
        backup.watch_transaction(tx.clone());
        backup.poll().await;
        assert!(backup.rebroadcast_unseen().await.is_empty(), "{claim:?}");
        let mut watcher = Watcher::new(chains_with(claim));
        watcher.watch_submitted(tx.clone());
        watcher.poll().await;
        let sent = watcher.rebroadcast_unseen().await;
        assert_eq!(sent.len(), 1, "{claim:?}");
    }
    assert!(matches!(a.status(&tx).await.unwrap(), TxStatus::Mempool));
}

/// A backend that never answers (an attacker's, or a node stuck in a long scan).
struct Stall;

#[async_trait::async_trait]
impl ChainBackend for Stall {
    fn label(&self) -> String {
        "stall".into()
    }
    async fn tip(&self) -> Result<chain::Tip, ChainError> {
        std::future::pending().await
    }
    async fn unspent(
        &self,
        _script: &lotus::script::Script,
    ) -> Result<Vec<chain::Utxo>, ChainError> {
        std::future::pending().await
    }
    async fn status(&self, _tx: &lotus::tx::Transaction) -> Result<TxStatus, ChainError> {
        std::future::pending().await
    }
    async fn test_accept(
        &self,
        _tx: &lotus::tx::Transaction,
    ) -> Result<chain::Acceptance, ChainError> {
        std::future::pending().await
    }
    async fn broadcast(&self, _tx: &lotus::tx::Transaction) -> Result<lotus::tx::TxId, ChainError> {
        std::future::pending().await
    }
}

/// One stalled backend used to hold the chain task (and every hand-over queued behind it)
/// forever; now it answers "unreachable" at the deadline.
#[tokio::test(start_paused = true)]
async fn a_backend_that_never_answers_is_unreachable_at_the_deadline() {
    let alice = Wallet::new(16);
    let tx = alice.spend(
        &[(lotus::tx::OutPoint::new(lotus::tx::TxId([1; 32]), 0), XPI)],
        vec![TxOut::new(XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );
    let chains = Chains::new(vec![Arc::new(Stall) as Arc<dyn ChainBackend>], 1)
        .with_deadline(std::time::Duration::from_secs(5));
    let report = chains.status(&tx).await;
    assert!(
        matches!(&report.reports[0].answer, Err(ChainError::Unreachable { detail, .. }) if detail.contains("5s")),
        "{report:?}"
    );
    assert!(chains.broadcast(&tx).await.reports[0].answer.is_err());
    assert!(chains.unspent(&alice.script()).await.is_err());
}
