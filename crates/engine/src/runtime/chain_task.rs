//! The chain task: the async side of [`ChainLink`]. It owns a `chain::multi::Watcher`,
//! broadcasts what the session core hands over, polls every backend on a timer, tells the core
//! when a transaction is *seen* (by the quorum of backends: that cancels failover slots), and
//! re-broadcasts a watched transaction that is not seen — after a backend was down, or after a
//! reorg dropped it. Nothing here blocks the core: hand-overs go through a bounded queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain::multi::{BroadcastReport, ChainEvent, Chains, StatusReport, Watcher};
use chain::Utxo;
use lotus::script::Script;
use lotus::tx::{Transaction, TxId};
use tokio::sync::{broadcast, mpsc};

use super::chain::{ChainLink, LinkError};

#[derive(Debug, Clone)]
pub struct ChainTaskConfig {
    pub poll_every: Duration,
    /// A transaction this deep in every reporting backend's chain is no longer watched.
    pub forget_at_depth: u32,
    /// Hand-overs waiting for the task (bounded: a stuck backend cannot grow memory).
    pub queue: usize,
}

impl Default for ChainTaskConfig {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_secs(15),
            forget_at_depth: 6,
            queue: 256,
        }
    }
}

/// What the chain task learned, for the engine's views and change events.
#[derive(Debug, Clone)]
pub enum ChainNews {
    Broadcast(BroadcastReport),
    /// A watched transaction not seen by the quorum was sent again.
    Rebroadcast(BroadcastReport),
    Status(StatusReport),
    Unspent {
        script: Script,
        backend: String,
        utxos: Vec<Utxo>,
    },
}

enum Command {
    CheckInputs {
        inputs: Vec<(lotus::tx::OutPoint, lotus::tx::TxOut)>,
        reply: tokio::sync::oneshot::Sender<super::chain::InputsCheck>,
    },
    Submit(Transaction),
    Watch(Transaction),
    WatchScript(Script),
    PollNow,
}

/// The handle: cheap to clone.
#[derive(Clone)]
pub struct ChainTask {
    commands: mpsc::Sender<Command>,
    seen: broadcast::Sender<[u8; 32]>,
    news: broadcast::Sender<ChainNews>,
    statuses: Arc<Mutex<BTreeMap<TxId, StatusReport>>>,
    labels: Vec<String>,
}

impl ChainTask {
    pub fn spawn(chains: Chains, config: ChainTaskConfig) -> (Self, tokio::task::JoinHandle<()>) {
        let (commands, receiver) = mpsc::channel(config.queue.max(1));
        let (seen, _) = broadcast::channel(1024);
        let (news, _) = broadcast::channel(1024);
        let task = Self {
            commands,
            seen,
            news,
            statuses: Arc::default(),
            labels: chains.labels(),
        };
        let join = tokio::spawn(run(Watcher::new(chains), receiver, task.clone(), config));
        (task, join)
    }

    pub fn news(&self) -> broadcast::Receiver<ChainNews> {
        self.news.subscribe()
    }

    /// The last combined status of a watched transaction (every backend's answer inside).
    pub fn status(&self, txid: &TxId) -> Option<StatusReport> {
        self.statuses
            .lock()
            .expect("status lock")
            .get(txid)
            .cloned()
    }

    /// The backends, as labels without passwords.
    pub fn backends(&self) -> &[String] {
        &self.labels
    }

    pub fn watch_script(&self, script: Script) -> Result<(), LinkError> {
        self.enqueue(Command::WatchScript(script))
    }

    /// Polls at once instead of waiting for the timer (after a hint such as a notification).
    pub fn poll_now(&self) -> Result<(), LinkError> {
        self.enqueue(Command::PollNow)
    }

    fn enqueue(&self, command: Command) -> Result<(), LinkError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                LinkError::Unreachable("the chain task is busy; try again shortly".into())
            }
            mpsc::error::TrySendError::Closed(_) => {
                LinkError::Unreachable("the chain task has stopped".into())
            }
        })
    }
}

impl ChainLink for ChainTask {
    fn submit(&self, tx: &Transaction) -> Result<(), LinkError> {
        self.enqueue(Command::Submit(tx.clone()))
    }

    fn watch(&self, tx: &Transaction) -> Result<(), LinkError> {
        self.enqueue(Command::Watch(tx.clone()))
    }

    fn check_inputs(
        &self,
        inputs: Vec<(lotus::tx::OutPoint, lotus::tx::TxOut)>,
    ) -> Option<tokio::sync::oneshot::Receiver<super::chain::InputsCheck>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.enqueue(Command::CheckInputs { inputs, reply }) {
            Ok(()) => Some(answer),
            Err(e) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let _ = reply.send(super::chain::InputsCheck::Unreachable(e.to_string()));
                Some(answer)
            }
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        self.seen.subscribe()
    }
}

async fn run(
    mut watcher: Watcher,
    mut commands: mpsc::Receiver<Command>,
    task: ChainTask,
    config: ChainTaskConfig,
) {
    let mut ticker = tokio::time::interval(config.poll_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut announced: BTreeSet<TxId> = BTreeSet::new();
    // Backends that push news (Chronik's WebSocket) nudge a poll between ticks, at most one
    // per NUDGE_SPACING: a backend streaming frames cannot make us hammer the others.
    let mut nudges = watcher.notifications();
    let mut last_nudged = tokio::time::Instant::now() - NUDGE_SPACING;
    let mut deferred: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            Some(()) = next_nudge(&mut nudges) => {
                let due = last_nudged + NUDGE_SPACING;
                if tokio::time::Instant::now() >= due {
                    last_nudged = tokio::time::Instant::now();
                    poll_status(&mut watcher, &task, &mut announced, &config).await;
                } else {
                    deferred = Some(due);
                }
            }
            _ = sleep_until(deferred) => {
                deferred = None;
                last_nudged = tokio::time::Instant::now();
                poll_status(&mut watcher, &task, &mut announced, &config).await;
            }
            command = commands.recv() => match command {
                None => break,
                Some(Command::Submit(tx)) => {
                    watcher.watch_submitted(tx.clone());
                    let report = watcher.chains().broadcast(&tx).await;
                    for r in report.reports.iter().filter(|r| r.answer.is_err()) {
                        tracing::warn!(backend = %r.backend, txid = %tx.txid(), error = ?r.answer, "broadcast failed on a backend");
                    }
                    let _ = task.news.send(ChainNews::Broadcast(report));
                    poll(&mut watcher, &task, &mut announced, &config).await;
                }
                Some(Command::Watch(tx)) => {
                    watcher.watch_transaction(tx);
                    poll(&mut watcher, &task, &mut announced, &config).await;
                }
                Some(Command::WatchScript(script)) => {
                    if watcher.watch_script(script) {
                        // One subscription per backend for all scripts: renewed only when the
                        // set grows.
                        nudges = watcher.notifications();
                    }
                    poll(&mut watcher, &task, &mut announced, &config).await;
                }
                Some(Command::PollNow) => poll(&mut watcher, &task, &mut announced, &config).await,
                Some(Command::CheckInputs { inputs, reply }) => {
                    let _ = reply.send(check_inputs(watcher.chains(), &inputs).await);
                }
            },
            _ = ticker.tick() => poll(&mut watcher, &task, &mut announced, &config).await,
        }
    }
}

/// The least time between two polls caused by notifications.
const NUDGE_SPACING: Duration = Duration::from_secs(2);

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next nudge, or never when no backend pushes news.
async fn next_nudge(nudges: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match nudges {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// A timer's poll: statuses and coins, then re-broadcast what is still not seen.
async fn poll(
    watcher: &mut Watcher,
    task: &ChainTask,
    announced: &mut BTreeSet<TxId>,
    config: &ChainTaskConfig,
) {
    poll_status(watcher, task, announced, config).await;
    for report in watcher.rebroadcast_unseen().await {
        tracing::info!(txid = %report.txid, accepted_by = report.accepted_by(), "re-broadcast a transaction not seen by the backends");
        let _ = task.news.send(ChainNews::Rebroadcast(report));
    }
}

/// Asks every backend about what is watched and tells what changed (no re-broadcast: a
/// notification is not a reason to send transactions again).
async fn poll_status(
    watcher: &mut Watcher,
    task: &ChainTask,
    announced: &mut BTreeSet<TxId>,
    config: &ChainTaskConfig,
) {
    for event in watcher.poll().await {
        match event {
            ChainEvent::Transaction(report) => {
                let txid = report.txid;
                if report.seen {
                    if announced.insert(txid) {
                        let _ = task.seen.send(txid.0);
                    }
                } else {
                    announced.remove(&txid);
                }
                // Deep enough, or conflicted by the quorum (it can never confirm, or a node
                // without a transaction index sees it confirmed and spent): nothing more to do.
                if report.conflicted
                    || report
                        .confirmed_depth
                        .is_some_and(|d| d >= config.forget_at_depth)
                {
                    watcher.forget_transaction(&txid);
                }
                task.statuses
                    .lock()
                    .expect("status lock")
                    .insert(txid, report.clone());
                let _ = task.news.send(ChainNews::Status(report));
            }
            ChainEvent::Unspent {
                script,
                backend,
                utxos,
            } => {
                let _ = task.news.send(ChainNews::Unspent {
                    script,
                    backend,
                    utxos,
                });
            }
        }
    }
}

/// Each input must be in its script's unspent set, as one of this member's backends reports
/// it, with the amount the proposal claims.
pub async fn check_inputs(
    chains: &Chains,
    inputs: &[(lotus::tx::OutPoint, lotus::tx::TxOut)],
) -> super::chain::InputsCheck {
    use super::chain::InputsCheck;
    let mut scripts: Vec<&Script> = Vec::new();
    for (_, output) in inputs {
        if !scripts.contains(&&output.script_pubkey) {
            scripts.push(&output.script_pubkey);
        }
    }
    let mut known: Vec<Utxo> = Vec::new();
    for script in scripts {
        match chains.unspent(script).await {
            Ok((_, utxos)) => known.extend(utxos),
            Err(failures) => {
                let why: Vec<String> = failures
                    .iter()
                    .filter_map(|r| r.answer.as_ref().err().map(|e| e.to_string()))
                    .collect();
                return InputsCheck::Unreachable(format!(
                    "no chain backend could list the group's coins: {}",
                    why.join("; ")
                ));
            }
        }
    }
    for (index, (outpoint, claimed)) in inputs.iter().enumerate() {
        let place = format!("input {} ({}:{})", index + 1, outpoint.txid, outpoint.vout);
        match known.iter().find(|u| u.outpoint == *outpoint) {
            None => {
                return InputsCheck::Refused(format!(
                    "{place} is not an unspent output of this group: it was spent, or never existed"
                ))
            }
            Some(u) if u.output.value != claimed.value => {
                return InputsCheck::Refused(format!(
                    "{place} holds {} satoshis on the chain, but the proposal says {}",
                    u.output.value, claimed.value
                ))
            }
            Some(_) => {}
        }
    }
    InputsCheck::Verified
}
