//! The synchronous heart of the runtime: the protocol `Node`, the `Store`, the key and the
//! clock, and the one place that executes the node's outputs in order. The tokio runtime and
//! the crash-injection child process both drive this same code.

use std::collections::BTreeMap;
use std::sync::Arc;

use lotus::secp256k1::PublicKey;
use lotus::tx::Transaction;
use lotus::PrivateKey;
use protocol::audit_head::SignedHead;
use protocol::group::{Acceptance, GroupDescriptor, GroupId};
use protocol::input::{Context, Handled, Input};
use protocol::node::{Node, NodeConfig, NodeError, Output, Peer, Restore};
use protocol::proposal::SessionId;
use protocol::session::{Action, Durable, Event, Recipient};
use protocol::Entropy;
use store::Store;
use tokio::sync::broadcast;

use super::chain::ChainLink;
use super::transport::Transport;
use super::{Clock, EngineEvent, OsEntropy, RuntimeError, SessionDetail, SessionSummary};

/// Runs after each committed durable step.
pub type PersistHook = Box<dyn FnMut(&Durable) + Send>;

pub struct Core {
    pub(crate) node: Node,
    pub(crate) key: PrivateKey,
    pub(crate) store: Store,
    transport: Arc<dyn Transport>,
    chain: Arc<dyn ChainLink>,
    events: broadcast::Sender<EngineEvent>,
    clock: Box<dyn Clock>,
    /// Session ids and election salt shares (never key material: MuSig2 nonces come from the
    /// OS generator inside musig).
    entropy: Box<dyn Entropy + Send>,
    /// group → member keys other than ours, for addressing sends.
    members: BTreeMap<GroupId, Vec<PublicKey>>,
    session_group: BTreeMap<[u8; 32], GroupId>,
    /// Called after each durable step commits (the crash-injection harness pauses here).
    persist_hook: Option<PersistHook>,
}

impl Core {
    pub fn new(
        key: PrivateKey,
        store: Store,
        transport: Arc<dyn Transport>,
        chain: Arc<dyn ChainLink>,
        events: broadcast::Sender<EngineEvent>,
        clock: Box<dyn Clock>,
    ) -> Self {
        Self {
            node: Node::new(key.public_key(), NodeConfig::default()),
            key,
            store,
            transport,
            chain,
            events,
            clock,
            entropy: Box::new(OsEntropy),
            members: BTreeMap::new(),
            session_group: BTreeMap::new(),
            persist_hook: None,
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Replaces the OS generator for session ids and salt shares (test harnesses, for replay).
    pub fn set_entropy(&mut self, entropy: Box<dyn Entropy + Send>) {
        self.entropy = entropy;
    }

    pub fn set_persist_hook(&mut self, hook: PersistHook) {
        self.persist_hook = Some(hook);
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.node.next_deadline()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Adds a group; one the node holds already is left as it is (accepting an invite twice
    /// must not reset the group's sequence numbers and limits).
    pub fn add_group(&mut self, group: GroupDescriptor) -> Result<GroupId, RuntimeError> {
        if self.node.group(&group.id()).is_some() {
            return Ok(group.id());
        }
        let others: Vec<PublicKey> = group
            .members
            .iter()
            .copied()
            .filter(|k| *k != self.key.public_key())
            .collect();
        let id = self.node.add_group(group)?;
        self.members.insert(id, others);
        Ok(id)
    }

    /// The store's blacklist reaches the node's gate: a blacklisted signer's messages are
    /// refused before any signature check.
    pub fn load_blacklist(&mut self) -> Result<usize, RuntimeError> {
        let mut loaded = 0;
        for entry in self.store.blacklist_entries()? {
            let Ok(key) = PublicKey::from_slice(&entry.signer) else {
                continue;
            };
            match self.node.blacklist_mut().insert(key, &entry.reason) {
                Ok(()) => loaded += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "a blacklist entry does not fit the node's list")
                }
            }
        }
        Ok(loaded)
    }

    /// Evidence records against this group's other members, from the store, newest first, for
    /// a reputation-aware election (the only method that reads them; others would ignore it).
    fn evidence_for(&self, group: &GroupId) -> Vec<Vec<u8>> {
        use protocol::proposal::{MAX_EVIDENCE_RECORDS, MAX_EVIDENCE_RECORD_BYTES};
        let Some(descriptor) = self.node.group(group) else {
            return Vec::new();
        };
        if descriptor.election != protocol::election::ElectionMethod::ReputationAware {
            return Vec::new();
        }
        let me = self.key.public_key();
        let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
        for member in descriptor.members.iter().filter(|k| **k != me) {
            let Ok(found) = self.store.evidence_against(&member.serialize()) else {
                continue;
            };
            for evidence in found {
                let of_this_group = self
                    .store
                    .session(&evidence.session_id)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.group_id == group.0);
                if of_this_group && evidence.bytes.len() <= MAX_EVIDENCE_RECORD_BYTES {
                    records.push((evidence.recorded_ms, evidence.bytes));
                }
            }
        }
        records.sort_by_key(|(ms, _)| std::cmp::Reverse(*ms));
        records.dedup_by(|a, b| a.1 == b.1);
        records
            .into_iter()
            .take(MAX_EVIDENCE_RECORDS)
            .map(|(_, bytes)| bytes)
            .collect()
    }

    /// Every unfinished session comes back above the last attempt it took part in.
    pub fn restore(&mut self) -> Result<usize, RuntimeError> {
        self.load_blacklist()?;
        let now = self.now();
        // Attempts whose secret nonces died with the last process can never sign: close them in
        // the store first, so even a bug above could not get a signing mark for them.
        let abandoned = self.store.abort_unfinished_attempts(now)?;
        if !abandoned.is_empty() {
            tracing::info!(
                count = abandoned.len(),
                "aborted attempts interrupted by a restart"
            );
        }
        // Every proposer's sequence must keep increasing across the restart.
        for session in self.store.sessions(None)? {
            if let Err(e) = self.node.remember_proposal(&session.proposal_envelope) {
                tracing::warn!(error = %e, "a stored proposal no longer decodes");
            }
        }
        let mut out = Vec::new();
        let mut restored = 0;
        for session in self.store.sessions_to_restore()? {
            let signed_tx = session
                .signed_tx
                .as_deref()
                .and_then(|b| Transaction::decode(b).ok());
            // Full validation again, and the approval only if its digest is this proposal's.
            let restore = Restore {
                proposal_envelope: &session.proposal_envelope,
                last_active_attempt: session.last_active_attempt,
                approved_digest: session.approval.map(|a| a.digest),
                signed_before: session.signed_before,
                signed_tx,
            };
            let entropy: &mut dyn Entropy = &mut *self.entropy;
            match self
                .node
                .restore_session(restore, now, &self.key, entropy, &mut out)
            {
                Ok(id) => {
                    restored += 1;
                    self.watch_signed(&id);
                    if let Some(group) = self.node.session(&id).map(|s| s.group_id()) {
                        self.session_group.insert(id, group);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not restore a session"),
            }
        }
        self.execute(out);
        // Sign the head: it covers every session that ended before the restart, even one whose
        // own signed head was lost to the crash.
        self.sign_audit_head(now);
        Ok(restored)
    }

    /// Hands one input to the node at the clock's time and carries out what it produced.
    fn handle(&mut self, input: Input<'_>) -> Result<Handled, NodeError> {
        let now = self.now();
        let mut out = Vec::new();
        let ctx = Context {
            now,
            key: &self.key,
            entropy: &mut *self.entropy,
        };
        let handled = self.node.handle(input, ctx, &mut out);
        self.learn_sessions(&out);
        self.execute(out);
        handled
    }

    /// Bytes delivered by transport connection `from` (budgets are charged to it).
    /// Answers the node's verdict (refusals are counted in its statistics).
    pub fn receive(&mut self, bytes: &[u8], from: Peer) -> Result<(), protocol::gate::Rejection> {
        match self.handle(Input::Receive { bytes, from }) {
            Ok(Handled::Refused(rejection)) => {
                tracing::debug!(reason = rejection.label(), "dropped a message");
                Err(rejection)
            }
            _ => Ok(()),
        }
    }

    /// Connectivity to a co-signer came back: pull what open sessions missed.
    pub fn reconnected(&mut self) {
        let _always_done = self.handle(Input::Reconnected);
    }

    pub fn tick(&mut self) {
        let _always_done = self.handle(Input::Tick);
    }

    pub fn broadcast_observed(&mut self, txid: &[u8; 32]) {
        let _always_done = self.handle(Input::BroadcastObserved { txid: *txid });
    }

    pub fn propose(
        &mut self,
        group: GroupId,
        tx: Transaction,
        spent: Vec<lotus::tx::TxOut>,
        expires_ms: u64,
    ) -> Result<[u8; 32], RuntimeError> {
        let evidence = self.evidence_for(&group);
        match self.handle(Input::Propose {
            group,
            tx,
            spent_outputs: spent,
            expires_ms,
            evidence,
        })? {
            Handled::Proposed(id) => {
                self.session_group.insert(id, group);
                Ok(id)
            }
            other => unreachable!("a proposal is answered with its session, not {other:?}"),
        }
    }

    /// The user's decision is made durable before the node even hears of it, so nothing it
    /// unlocks can exist without it (the store also checks the digest is the session's).
    pub fn approve(&mut self, session: &[u8; 32], digest: &[u8; 32]) -> Result<(), RuntimeError> {
        let now = self.now();
        self.node.check_approval(session, digest)?;
        self.store.record_approval(*session, *digest, now)?;
        self.handle(Input::Approve {
            session: *session,
            digest: *digest,
        })?;
        Ok(())
    }

    pub fn reject(&mut self, session: &[u8; 32], reason: &str) -> Result<(), RuntimeError> {
        self.handle(Input::Reject {
            session: *session,
            reason,
        })?;
        Ok(())
    }

    pub fn sessions(&self) -> Vec<SessionSummary> {
        self.node
            .sessions()
            .map(|s| SessionSummary {
                session_id: SessionId(s.session_id()),
                group_id: s.group_id(),
                attempt: s.attempt(),
                approved: s.is_approved(),
                signed_txid: s.signed_tx().map(|tx| tx.txid()),
                closed: s.is_closed(),
            })
            .collect()
    }

    pub fn session_detail(&self, id: &[u8; 32]) -> Option<SessionDetail> {
        let s = self.node.session(id)?;
        Some(SessionDetail {
            summary: SessionSummary {
                session_id: SessionId(s.session_id()),
                group_id: s.group_id(),
                attempt: s.attempt(),
                approved: s.is_approved(),
                signed_txid: s.signed_tx().map(|tx| tx.txid()),
                closed: s.is_closed(),
            },
            review: s.review().clone(),
            phase: s.phase(),
            waiting_for: s.waiting_for(),
            waiting: self.node.waiting(id).unwrap_or_default(),
            approvals: s.approvals().iter().copied().collect(),
            election: s.election().cloned(),
            failover: s.failover_schedule(),
            outcome: s.outcome().cloned(),
            inputs: s
                .proposal()
                .tx
                .inputs
                .iter()
                .map(|i| i.prev_out)
                .zip(s.proposal().spent_outputs.iter().cloned())
                .collect(),
        })
    }

    pub fn accept_invite(&mut self, invite: &str) -> Result<(GroupId, Acceptance), RuntimeError> {
        let group = GroupDescriptor::from_invite(invite)?;
        let acceptance = Acceptance::sign(&group, &self.key)
            .map_err(|e| RuntimeError::NotInvited(e.to_string()))?;
        let id = self.add_group(group)?;
        Ok((id, acceptance))
    }

    fn learn_sessions(&mut self, out: &[Output]) {
        for o in out {
            if o.session_id != [0; 32] {
                self.session_group.entry(o.session_id).or_insert(o.group_id);
            }
        }
    }

    /// Runs outputs in order. A failed persist stops that session's remaining outputs in this
    /// batch and suspends the session in the node (nothing it guarded leaves the process, not
    /// even by a later resend); a reused nonce closes it for good.
    pub fn execute(&mut self, outputs: Vec<Output>) {
        let mut halted: Vec<[u8; 32]> = Vec::new();
        for Output {
            group_id,
            session_id,
            action,
        } in outputs
        {
            if halted.contains(&session_id) {
                continue;
            }
            match action {
                Action::Persist(durable) => {
                    let now = self.now();
                    let applied = self.store.apply(&durable, now);
                    if applied.is_ok() {
                        if let Some(hook) = self.persist_hook.as_mut() {
                            hook(&durable);
                        }
                    }
                    if let Err(error) = applied {
                        halted.push(session_id);
                        let reuse = error.is_nonce_conflict();
                        let _ = self.events.send(EngineEvent::StorageFailure {
                            session_id: SessionId(session_id),
                            error: error.to_string(),
                        });
                        if reuse {
                            let mut out = Vec::new();
                            let entropy: &mut dyn Entropy = &mut *self.entropy;
                            self.node.nonce_conflict(
                                &session_id,
                                now,
                                &self.key,
                                entropy,
                                &mut out,
                            );
                            // Only its closing events: the session sends nothing more.
                            for o in out {
                                if let Action::Event(event) = o.action {
                                    self.record(o.session_id, event);
                                }
                            }
                        } else {
                            self.node.persist_failed(&session_id);
                        }
                    }
                }
                Action::Send { to, bytes } => {
                    let group = group_id;
                    let recipients: Vec<PublicKey> = match to {
                        Recipient::Members => self.members.get(&group).cloned().unwrap_or_default(),
                        Recipient::Member(index) => self
                            .node
                            .group(&group)
                            .and_then(|g| g.members.get(index as usize).copied())
                            .into_iter()
                            .collect(),
                    };
                    self.transport.send(&recipients, &bytes);
                }
                Action::Broadcast { tx } => {
                    if let Err(e) = self.chain.submit(&tx) {
                        let _ = self.events.send(EngineEvent::BroadcastFailed {
                            session_id: SessionId(session_id),
                            error: e.to_string(),
                        });
                    }
                }
                Action::Event(event) => {
                    if matches!(event, Event::Signed { .. }) {
                        self.watch_signed(&session_id);
                    }
                    self.record(session_id, event)
                }
            }
        }
    }

    /// Every member watches the signed transaction, not only the one whose slot broadcasts it.
    fn watch_signed(&self, session_id: &[u8; 32]) {
        let signed = self.node.session(session_id).and_then(|s| s.signed_tx());
        if let Some(tx) = signed {
            if let Err(e) = self.chain.watch(tx) {
                tracing::warn!(error = %e, "cannot watch a signed transaction");
            }
        }
    }

    /// Signs the audit head with the member key; our round-1 messages carry it from now on.
    fn sign_audit_head(&mut self, now: u64) {
        match self.store.anchor_audit(&self.key, now) {
            Ok(Some(anchor)) => self.node.set_audit_head(Some(SignedHead {
                seq: anchor.seq,
                hash: anchor.hash,
                signature: anchor.signature,
            })),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not sign the audit head"),
        }
    }

    /// Audit first (the tamper-evident log), then the live event stream.
    fn record(&mut self, session_id: [u8; 32], event: Event) {
        let now = self.now();
        let group = self
            .session_group
            .get(&session_id)
            .and_then(|g| self.node.group(g))
            .cloned();
        if let Some(group) = &group {
            if let Err(e) = self.store.record_event(group, session_id, &event, now) {
                tracing::error!(error = %e, "audit append failed");
            }
        }
        // Every session end is signed into the log, so cutting the log back is detected.
        if matches!(event, Event::Closed { .. }) {
            self.sign_audit_head(now);
        }
        if let (Event::PeerAuditHead { member, head }, Some(group)) = (&event, &group) {
            if let Some(signer) = group.members.get(*member as usize) {
                match self.store.record_peer_head(&signer.serialize(), head, now) {
                    Ok(true) => tracing::warn!(
                        member = *member,
                        seq = head.seq,
                        "a co-signer signed two different audit heads at one position: its log was rewritten"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "could not keep a co-signer's audit head"),
                }
            }
        }
        let _ = self.events.send(EngineEvent::Session {
            session_id: SessionId(session_id),
            event,
        });
    }
}
