//! The session runtime: one tokio task per signer that owns the protocol `Node`, the durable
//! `Store`, the signer key and the clock, and executes the node's outputs in order —
//! persist (committed, fsync'd) before the messages it guards, then send, broadcast, record.
//! Callers talk to it through `SessionEngine` (async methods) and one event stream.

pub mod chain;
pub mod chain_task;
pub mod core;
pub mod faults;
pub mod network;
pub mod offline;
pub mod stdio;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use lotus::secp256k1::PublicKey;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use protocol::group::{Acceptance, GroupDescriptor, GroupError, GroupId};
use protocol::node::NodeError;
pub use protocol::proposal::{ReviewDigest, SessionId};
use protocol::session::Event;
use store::Store;
use tokio::sync::{broadcast, mpsc, oneshot};

use self::core::Core;
use chain::ChainLink;
use transport::Transport;

/// Milliseconds since the Unix epoch, from the injected clock.
pub trait Clock: Send + 'static {
    fn now_ms(&self) -> u64;
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Tokio's clock from a fixed base: with `tokio::time::pause()` tests run deterministically.
pub struct TokioClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn new(base_ms: u64) -> Self {
        Self {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
}

/// Session ids and election salt shares from the OS CSPRNG (the production `Entropy`).
pub struct OsEntropy;

impl protocol::Entropy for OsEntropy {
    fn fill(&mut self, out: &mut [u8]) {
        // Without a working OS generator the protocol cannot run safely: stop loudly.
        getrandom::fill(out).expect("the OS random number generator failed");
    }
}

/// What the runtime tells the UI and CLI. Public data only.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Session {
        session_id: SessionId,
        event: Event,
    },
    /// The store refused a step; the session stopped before anything unsafe left.
    StorageFailure {
        session_id: SessionId,
        error: String,
    },
    BroadcastFailed {
        session_id: SessionId,
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("this invite does not list your key: {0}")]
    NotInvited(String),
    #[error("the session engine has stopped")]
    Stopped,
    #[error("cannot start the session core's thread: {0}")]
    Thread(String),
    #[error("this proposal cannot be approved: {0}")]
    InputsRefused(String),
    #[error("the proposal's coins could not be checked, so it was not approved; try again once a chain backend answers ({0})")]
    InputsUnchecked(String),
}

type Reply<T> = oneshot::Sender<Result<T, RuntimeError>>;

enum Request {
    AddGroup {
        group: GroupDescriptor,
        reply: Reply<GroupId>,
    },
    Propose {
        group: GroupId,
        tx: Transaction,
        spent: Vec<TxOut>,
        expires_ms: u64,
        reply: Reply<[u8; 32]>,
    },
    Approve {
        session: [u8; 32],
        digest: [u8; 32],
        reply: Reply<()>,
    },
    Reject {
        session: [u8; 32],
        reason: String,
        reply: Reply<()>,
    },
    Sessions {
        reply: Reply<Vec<SessionSummary>>,
    },
    SessionDetail {
        session: [u8; 32],
        reply: Reply<Option<SessionDetail>>,
    },
    AcceptInvite {
        invite: String,
        reply: Reply<(GroupId, Acceptance)>,
    },
    AuditVerify {
        reply: Reply<store::AuditSummary>,
    },
    AuditExport {
        reply: Reply<Vec<u8>>,
    },
    Reputation {
        reply: Reply<Vec<store::SignerStats>>,
    },
    Reconnected,
    /// A message that came by hand (an imported session file), not from a connection.
    ReceiveByHand {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), protocol::gate::Rejection>>,
    },
    AppendAudit {
        event: store::AuditEvent,
        reply: Reply<()>,
    },
}

/// A session as a list row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub session_id: SessionId,
    pub group_id: GroupId,
    pub attempt: u32,
    pub approved: bool,
    pub signed_txid: Option<lotus::tx::TxId>,
    pub closed: bool,
}

/// The session screen's data. Public data only.
#[derive(Debug, Clone)]
pub struct SessionDetail {
    pub summary: SessionSummary,
    pub review: protocol::proposal::Review,
    pub phase: protocol::session::Phase,
    pub waiting_for: Vec<u16>,
    /// Whom we wait for, for what, and when each was last heard from.
    pub waiting: Vec<protocol::session::Waiting>,
    pub approvals: Vec<u16>,
    pub election: Option<protocol::election::Election>,
    /// The broadcast slots once signed.
    pub failover: Option<Vec<protocol::failover::Slot>>,
    pub outcome: Option<protocol::session::Outcome>,
    /// What the proposal spends: outpoint and the output it claims is there.
    pub inputs: Vec<(lotus::tx::OutPoint, TxOut)>,
}

/// The handle: cheap to clone, all methods async.
#[derive(Clone)]
pub struct SessionEngine {
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<EngineEvent>,
    public_key: PublicKey,
    chain: Arc<dyn ChainLink>,
}

/// Where the session core runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreThread {
    /// Its own OS thread with a single-threaded runtime: a store commit (an fsync) never
    /// blocks the caller's tokio workers. What the app, the node and the CLI use.
    Dedicated,
    /// A task on the caller's runtime: for tests on tokio's paused clock (deterministic).
    CallerRuntime,
}

/// The running core. A dedicated thread ends when every [`SessionEngine`] handle is dropped.
pub enum CoreHandle {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

impl CoreHandle {
    /// Stops a task at once; a thread stops when its handles are dropped.
    pub fn abort(&self) {
        if let Self::Task(task) = self {
            task.abort();
        }
    }

    /// After every [`SessionEngine`] handle is dropped: waits for the thread to finish its
    /// last step (its store closes cleanly), or aborts the task.
    pub fn finish(self) {
        match self {
            Self::Thread(thread) => {
                if thread.join().is_err() {
                    tracing::error!("the session core's thread panicked");
                }
            }
            Self::Task(task) => task.abort(),
        }
    }
}

impl SessionEngine {
    /// Starts the core on its own thread: restores every unfinished session from the store
    /// first.
    pub fn spawn(
        key: PrivateKey,
        store: Store,
        groups: Vec<GroupDescriptor>,
        transport: Arc<dyn Transport>,
        inbox: mpsc::Receiver<transport::Delivery>,
        chain: Arc<dyn ChainLink>,
        clock: Box<dyn Clock>,
    ) -> Result<(Self, CoreHandle), RuntimeError> {
        Self::spawn_on(
            CoreThread::Dedicated,
            key,
            store,
            groups,
            transport,
            inbox,
            chain,
            clock,
        )
    }

    /// [`SessionEngine::spawn`] with the choice of where the core runs.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn_on(
        thread: CoreThread,
        key: PrivateKey,
        store: Store,
        groups: Vec<GroupDescriptor>,
        transport: Arc<dyn Transport>,
        inbox: mpsc::Receiver<transport::Delivery>,
        chain: Arc<dyn ChainLink>,
        clock: Box<dyn Clock>,
    ) -> Result<(Self, CoreHandle), RuntimeError> {
        let public_key = key.public_key();
        let (requests, request_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(4096);
        let mut core = Core::new(key, store, transport, chain.clone(), events.clone(), clock);
        for group in groups {
            core.add_group(group)?;
        }
        core.restore()?;
        let seen = chain.subscribe();
        let handle = match thread {
            CoreThread::CallerRuntime => {
                CoreHandle::Task(tokio::spawn(run(core, request_rx, inbox, seen)))
            }
            CoreThread::Dedicated => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| RuntimeError::Thread(e.to_string()))?;
                let thread = std::thread::Builder::new()
                    .name("session-core".into())
                    .spawn(move || runtime.block_on(run(core, request_rx, inbox, seen)))
                    .map_err(|e| RuntimeError::Thread(e.to_string()))?;
                CoreHandle::Thread(thread)
            }
        };
        Ok((
            Self {
                requests,
                events,
                public_key,
                chain,
            },
            handle,
        ))
    }

    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, RuntimeError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        answer.await.map_err(|_| RuntimeError::Stopped)?
    }

    pub async fn add_group(&self, group: GroupDescriptor) -> Result<GroupId, RuntimeError> {
        self.ask(|reply| Request::AddGroup { group, reply }).await
    }

    pub async fn propose(
        &self,
        group: GroupId,
        tx: Transaction,
        spent: Vec<TxOut>,
        expires_ms: u64,
    ) -> Result<SessionId, RuntimeError> {
        self.ask(|reply| Request::Propose {
            group,
            tx,
            spent,
            expires_ms,
            reply,
        })
        .await
        .map(SessionId)
    }

    /// Approves after this member's own chain backends confirm the inputs are the group's
    /// unspent coins with the claimed amounts (without a chain, e.g. reviewing offline, the
    /// approval goes ahead unchecked).
    pub async fn approve(
        &self,
        session: SessionId,
        digest: ReviewDigest,
    ) -> Result<(), RuntimeError> {
        if let Some(check) = self.chain.check_inputs(self.inputs_of(session).await?) {
            match check.await.map_err(|_| RuntimeError::Stopped)? {
                chain::InputsCheck::Verified => {}
                chain::InputsCheck::Refused(why) => return Err(RuntimeError::InputsRefused(why)),
                chain::InputsCheck::Unreachable(why) => {
                    return Err(RuntimeError::InputsUnchecked(why))
                }
            }
        }
        self.ask(|reply| Request::Approve {
            session: session.0,
            digest: digest.0,
            reply,
        })
        .await
    }

    async fn inputs_of(
        &self,
        session: SessionId,
    ) -> Result<Vec<(lotus::tx::OutPoint, TxOut)>, RuntimeError> {
        let detail = self
            .session_detail(session)
            .await?
            .ok_or(RuntimeError::Node(NodeError::UnknownSession))?;
        Ok(detail.inputs)
    }

    pub async fn reject(&self, session: SessionId, reason: String) -> Result<(), RuntimeError> {
        self.ask(|reply| Request::Reject {
            session: session.0,
            reason,
            reply,
        })
        .await
    }

    pub async fn sessions(&self) -> Result<Vec<SessionSummary>, RuntimeError> {
        self.ask(|reply| Request::Sessions { reply }).await
    }

    /// Everything the session screen shows: the review, phase, who we wait for, election.
    pub async fn session_detail(
        &self,
        session: SessionId,
    ) -> Result<Option<SessionDetail>, RuntimeError> {
        self.ask(|reply| Request::SessionDetail {
            session: session.0,
            reply,
        })
        .await
    }

    /// Joins a group from its invite: checks membership, signs the acceptance.
    pub async fn accept_invite(
        &self,
        invite: String,
    ) -> Result<(GroupId, Acceptance), RuntimeError> {
        self.ask(|reply| Request::AcceptInvite { invite, reply })
            .await
    }

    pub async fn audit_verify(&self) -> Result<store::AuditSummary, RuntimeError> {
        self.ask(|reply| Request::AuditVerify { reply }).await
    }

    /// The audit log as JSON Lines.
    pub async fn audit_export(&self) -> Result<Vec<u8>, RuntimeError> {
        self.ask(|reply| Request::AuditExport { reply }).await
    }

    /// Adds an entry to the tamper-evident audit log (a policy co-signer's decision).
    pub async fn append_audit(&self, event: store::AuditEvent) -> Result<(), RuntimeError> {
        self.ask(|reply| Request::AppendAudit { event, reply })
            .await
    }

    /// Feeds a message the person brought by hand (an imported session file) to the core,
    /// exactly as if a co-signer had sent it: the same gate, budgets and validation. A
    /// proposal it refuses is announced as a `ProposalRefused` event.
    pub async fn receive_by_hand(
        &self,
        bytes: Vec<u8>,
    ) -> Result<Result<(), protocol::gate::Rejection>, RuntimeError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::ReceiveByHand { bytes, reply })
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        answer.await.map_err(|_| RuntimeError::Stopped)
    }

    /// A co-signer became reachable: open sessions pull what they missed.
    pub async fn reconnected(&self) {
        let _ = self.requests.send(Request::Reconnected).await;
    }

    /// Per co-signer statistics (§8.1 score inputs, blame, timeouts, blacklist).
    pub async fn reputation(&self) -> Result<Vec<store::SignerStats>, RuntimeError> {
        self.ask(|reply| Request::Reputation { reply }).await
    }
}

async fn run(
    mut core: Core,
    mut requests: mpsc::Receiver<Request>,
    mut inbox: mpsc::Receiver<transport::Delivery>,
    mut seen: broadcast::Receiver<[u8; 32]>,
) {
    loop {
        let now = core.now();
        let wait = core.next_deadline().map_or(Duration::from_secs(3600), |d| {
            Duration::from_millis(d.saturating_sub(now))
        });
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => handle(&mut core, request),
                None => break,
            },
            Some(delivery) = inbox.recv() => {
                let verdict = core.receive(&delivery.bytes, delivery.from);
                if let Some(reply) = delivery.verdict {
                    let _ = reply.send(verdict);
                }
            }
            Ok(txid) = seen.recv() => core.broadcast_observed(&txid),
            _ = tokio::time::sleep(wait) => core.tick(),
        }
    }
}

fn handle(core: &mut Core, request: Request) {
    match request {
        Request::AddGroup { group, reply } => {
            let _ = reply.send(core.add_group(group));
        }
        Request::Propose {
            group,
            tx,
            spent,
            expires_ms,
            reply,
        } => {
            let _ = reply.send(core.propose(group, tx, spent, expires_ms));
        }
        Request::Approve {
            session,
            digest,
            reply,
        } => {
            let _ = reply.send(core.approve(&session, &digest));
        }
        Request::Reject {
            session,
            reason,
            reply,
        } => {
            let _ = reply.send(core.reject(&session, &reason));
        }
        Request::SessionDetail { session, reply } => {
            let _ = reply.send(Ok(core.session_detail(&session)));
        }
        Request::AcceptInvite { invite, reply } => {
            let _ = reply.send(core.accept_invite(&invite));
        }
        Request::AuditVerify { reply } => {
            let key = core.key.public_key();
            let _ = reply.send(
                core.store()
                    .verify_audit_signed_by(&key)
                    .map_err(Into::into),
            );
        }
        Request::AuditExport { reply } => {
            let mut bytes = Vec::new();
            let result = core.store().export_audit_jsonl(&mut bytes).map(|_| bytes);
            let _ = reply.send(result.map_err(Into::into));
        }
        Request::Reputation { reply } => {
            let _ = reply.send(core.store().all_signer_stats().map_err(Into::into));
        }
        Request::Sessions { reply } => {
            let _ = reply.send(Ok(core.sessions()));
        }
        Request::Reconnected => core.reconnected(),
        Request::ReceiveByHand { bytes, reply } => {
            let _ = reply.send(core.receive(&bytes, transport::BY_HAND));
        }
        Request::AppendAudit { event, reply } => {
            let now = core.now();
            let _ = reply.send(
                core.store_mut()
                    .append(&event, now)
                    .map(drop)
                    .map_err(Into::into),
            );
        }
    }
}
