//! Several backends per profile (the analysis's multi-party broadcast verification): a
//! broadcast goes to every backend, and a transaction counts as *seen* only when at least
//! `seen_quorum` of them report it in their mempool or a block. Every answer is kept per
//! backend, so the UI can say which backend said what.
//!
//! Nothing here trusts a notification: [`Watcher::poll`] asks every backend afresh and reports
//! what changed since the last poll, so a missed notification only delays news, it never loses
//! a confirmation.

use std::collections::BTreeMap;
use std::sync::Arc;

use lotus::script::Script;
use lotus::tx::{Transaction, TxId};
use tokio::task::JoinSet;

use crate::{ChainBackend, ChainError, Tip, TxStatus, Utxo};

/// One backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<T> {
    pub backend: String,
    pub answer: Result<T, ChainError>,
}

#[derive(Clone)]
pub struct Chains {
    backends: Vec<Arc<dyn ChainBackend>>,
    seen_quorum: usize,
    /// The longest any one backend may take for one question (a slow backend answers
    /// "unreachable" instead of stalling everything behind it).
    deadline: std::time::Duration,
}

/// The default [`Chains`] deadline per question and backend.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// What every backend said about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub txid: TxId,
    pub reports: Vec<Report<TxStatus>>,
    /// How many backends have it in their mempool or a block.
    pub seen_by: usize,
    /// `seen_by` reached the quorum: failover slots are cancelled by this.
    pub seen: bool,
    /// The depth at least the quorum of backends report (the quorum-th deepest claim).
    pub confirmed_depth: Option<u32>,
    /// At least the quorum of backends report one of its inputs spent elsewhere.
    pub conflicted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastReport {
    pub txid: TxId,
    pub reports: Vec<Report<TxId>>,
}

impl BroadcastReport {
    pub fn accepted_by(&self) -> usize {
        self.reports.iter().filter(|r| r.answer.is_ok()).count()
    }

    /// The first refusal in a node's own words, if any backend refused.
    pub fn refusal(&self) -> Option<&ChainError> {
        self.reports
            .iter()
            .filter_map(|r| r.answer.as_ref().err())
            .find(|e| e.refusal().is_some())
    }
}

impl Chains {
    /// `seen_quorum` is clamped to 1..=backends.
    pub fn new(backends: Vec<Arc<dyn ChainBackend>>, seen_quorum: usize) -> Self {
        let seen_quorum = seen_quorum.clamp(1, backends.len().max(1));
        Self {
            backends,
            seen_quorum,
            deadline: DEFAULT_DEADLINE,
        }
    }

    pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn seen_quorum(&self) -> usize {
        self.seen_quorum
    }

    pub fn labels(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.label()).collect()
    }

    /// Asks every backend at once; answers come back in backend order.
    async fn ask_all<T, F>(&self, ask: F) -> Vec<Report<T>>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn ChainBackend>) -> futures_lite::BoxFuture<Result<T, ChainError>>,
    {
        let mut set = JoinSet::new();
        for (index, backend) in self.backends.iter().enumerate() {
            let label = backend.label();
            let future = ask(backend.clone());
            let deadline = self.deadline;
            set.spawn(async move {
                let answer = tokio::time::timeout(deadline, future)
                    .await
                    .unwrap_or_else(|_| {
                        Err(ChainError::Unreachable {
                            backend: label.clone(),
                            detail: format!("no answer within {deadline:?}"),
                        })
                    });
                (index, label, answer)
            });
        }
        let mut answers = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((index, backend, answer)) = joined {
                answers.insert(index, Report { backend, answer });
            }
        }
        answers.into_values().collect()
    }

    pub async fn broadcast(&self, tx: &Transaction) -> BroadcastReport {
        let tx = Arc::new(tx.clone());
        let reports = self
            .ask_all(move |backend| {
                let tx = tx.clone();
                Box::pin(async move { backend.broadcast(&tx).await })
            })
            .await;
        BroadcastReport {
            txid: reports_txid(&reports),
            reports,
        }
    }

    pub async fn status(&self, tx: &Transaction) -> StatusReport {
        let txid = tx.txid();
        let shared = Arc::new(tx.clone());
        let reports = self
            .ask_all(move |backend| {
                let tx = shared.clone();
                Box::pin(async move { backend.status(&tx).await })
            })
            .await;
        // Every conclusion needs the quorum: one lying (or index-less) backend can neither
        // make a transaction seen, nor deep enough to stop watching, nor conflicted.
        let statuses = || reports.iter().filter_map(|r| r.answer.as_ref().ok());
        let seen_by = statuses().filter(|s| s.is_seen()).count();
        let mut depths: Vec<u32> = statuses()
            .filter_map(|s| match s {
                TxStatus::Confirmed { depth, .. } => Some(*depth),
                _ => None,
            })
            .collect();
        depths.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed_depth = depths.get(self.seen_quorum - 1).copied();
        let conflicted =
            statuses().filter(|s| **s == TxStatus::Conflicted).count() >= self.seen_quorum;
        StatusReport {
            txid,
            seen_by,
            seen: seen_by >= self.seen_quorum,
            confirmed_depth,
            conflicted,
            reports,
        }
    }

    /// Every backend's tip.
    pub async fn tips(&self) -> Vec<Report<Tip>> {
        self.ask_all(|backend| Box::pin(async move { backend.tip().await }))
            .await
    }

    /// Unspent outputs from the first backend (in profile order) that answers; the others
    /// are asked only when it cannot be reached.
    pub async fn unspent(&self, script: &Script) -> Result<(String, Vec<Utxo>), Vec<Report<()>>> {
        let mut failures = Vec::new();
        for backend in &self.backends {
            let answer = tokio::time::timeout(self.deadline, backend.unspent(script))
                .await
                .unwrap_or_else(|_| {
                    Err(ChainError::Unreachable {
                        backend: backend.label(),
                        detail: format!("no answer within {:?}", self.deadline),
                    })
                });
            match answer {
                Ok(utxos) => return Ok((backend.label(), utxos)),
                Err(e) => failures.push(Report {
                    backend: backend.label(),
                    answer: Err(e),
                }),
            }
        }
        Err(failures)
    }
}

fn reports_txid(reports: &[Report<TxId>]) -> TxId {
    reports
        .iter()
        .find_map(|r| r.answer.as_ref().ok().copied())
        .unwrap_or_default()
}

/// A change the watcher noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// A watched transaction's combined status changed (seen, depth, conflict, or a backend's
    /// answer).
    Transaction(StatusReport),
    /// The set of unspent outputs paying a watched script changed.
    Unspent {
        script: Script,
        backend: String,
        utxos: Vec<Utxo>,
    },
}

/// Watches transactions and scripts by asking again on every poll.
pub struct Watcher {
    chains: Chains,
    transactions: BTreeMap<TxId, (Transaction, Option<StatusReport>)>,
    /// The watched transactions this member broadcast itself: only these are re-broadcast.
    /// A backup coordinator that merely watches must wait for its failover slot.
    submitted: std::collections::BTreeSet<TxId>,
    scripts: Vec<(Script, Option<Vec<Utxo>>)>,
}

impl Watcher {
    pub fn new(chains: Chains) -> Self {
        Self {
            chains,
            transactions: BTreeMap::new(),
            submitted: std::collections::BTreeSet::new(),
            scripts: Vec::new(),
        }
    }

    pub fn chains(&self) -> &Chains {
        &self.chains
    }

    /// Nudges from every backend that pushes news about the watched scripts (the groups' own:
    /// every transaction of a group touches its script, so its confirmations nudge too; a
    /// payee's busy address is never subscribed); `None` if no backend pushes.
    pub fn notifications(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let scripts: Vec<Script> = self.scripts.iter().map(|(s, _)| s.clone()).collect();
        if scripts.is_empty() {
            return None;
        }
        let receivers: Vec<_> = self
            .chains
            .backends
            .iter()
            .filter_map(|b| b.notifications(scripts.clone()))
            .collect();
        if receivers.is_empty() {
            return None;
        }
        let (nudge, merged) = tokio::sync::mpsc::channel(1);
        for mut receiver in receivers {
            let nudge = nudge.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        // Dropping the merged receiver ends this task and, with it, the
                        // backend's subscription.
                        _ = nudge.closed() => return,
                        got = receiver.recv() => match got {
                            None => return,
                            // A nudge already waiting says the same.
                            Some(()) => { let _ = nudge.try_send(()); }
                        },
                    }
                }
            });
        }
        Some(merged)
    }

    pub fn watch_transaction(&mut self, tx: Transaction) {
        self.transactions.entry(tx.txid()).or_insert((tx, None));
    }

    /// Watches `script`; `false` if it already was.
    pub fn watch_script(&mut self, script: Script) -> bool {
        if self.scripts.iter().any(|(s, _)| s == &script) {
            return false;
        }
        self.scripts.push((script, None));
        true
    }

    /// Watches `tx` as one this member broadcast (re-broadcast until it is seen).
    pub fn watch_submitted(&mut self, tx: Transaction) {
        self.submitted.insert(tx.txid());
        self.watch_transaction(tx);
    }

    pub fn forget_transaction(&mut self, txid: &TxId) {
        self.transactions.remove(txid);
        self.submitted.remove(txid);
    }

    /// Asks every backend about everything watched; returns what changed since the last poll.
    pub async fn poll(&mut self) -> Vec<ChainEvent> {
        let mut events = Vec::new();
        for (txid, (tx, last)) in self.transactions.iter_mut() {
            let report = self.chains.status(tx).await;
            if report.seen {
                // Public now: after a reorg drops it, every member may send it again.
                self.submitted.insert(*txid);
            }
            if last.as_ref() != Some(&report) {
                *last = Some(report.clone());
                events.push(ChainEvent::Transaction(report));
            }
        }
        for (script, last) in &mut self.scripts {
            let Ok((backend, mut utxos)) = self.chains.unspent(script).await else {
                continue; // nobody answered: keep the last known set, ask again next poll
            };
            utxos.sort_by_key(|u| u.outpoint);
            if last.as_ref() != Some(&utxos) {
                *last = Some(utxos.clone());
                events.push(ChainEvent::Unspent {
                    script: script.clone(),
                    backend,
                    utxos,
                });
            }
        }
        events
    }

    /// Broadcasts again to every backend a watched transaction that is not yet seen by the
    /// quorum (after its broadcast slot, every co-signer does this), unless a backend reports
    /// it conflicted (it can never confirm; sending it again is noise). Returns the reports.
    pub async fn rebroadcast_unseen(&mut self) -> Vec<BroadcastReport> {
        let mut reports = Vec::new();
        for (txid, (tx, last)) in &self.transactions {
            let settled = last.as_ref().is_some_and(|r| r.seen || r.conflicted);
            if !settled && self.submitted.contains(txid) {
                reports.push(self.chains.broadcast(tx).await);
            }
        }
        reports
    }
}

/// A boxed future without pulling in the `futures` crate.
mod futures_lite {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}
