//! One participant's protocol instance: its groups and sessions, the cheap-check gate, DoS
//! policy, and message routing. Sans-IO like `Session`: the driver (engine or simulator)
//! feeds bytes and time in and executes the returned outputs in order.
//!
//! Driving contract: call one input method (`receive`, `tick`, `propose`, `approve`, …), then
//! execute every returned `Output` in order. If a `Persist` fails, stop executing that
//! session's outputs and call `persist_failed` (or `nonce_conflict` for a reused nonce) before
//! anything else: the session is dropped from memory, so nothing its failed step guarded ever
//! leaves, and it comes back only through `restore_session` after a restart.
//!
//! Inbound order: cheap checks (size, decode, version, slot, timestamp bound, group, sender,
//! routing binding, early-buffer room) → dedup of authenticated ids → the verification budget
//! of the delivering peer → one signature check → authenticated dedup entry → routing. A
//! message reaches a session only if its header names the session's group.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lotus::secp256k1::PublicKey;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use musig::{KeyAggContext, SecretNonce};

use crate::audit_head::SignedHead;
use crate::early::{EarlyBuffer, EarlyLimits};
use crate::envelope::{Envelope, Header, MessageKind};
use crate::failover::Millis;
use crate::gate::{precheck, Rejection, SeenSet, Window};
use crate::group::{Admission, GroupDescriptor, GroupError, GroupId};
use crate::messages::Pull;
use crate::policy::{
    check_admission_work, mine_pow, Blacklist, PolicyError, ProposalRateLimit, SessionCapacity,
    VerificationBudget, DEFAULT_BUDGET_TRACKED_PEERS, DEFAULT_VERIFICATIONS_PER_WINDOW,
    DEFAULT_WINDOW_MS,
};
use crate::pool::{
    salt_commitment, slice_len, KnownPool, NoncePool, OwnPool, PoolRef, POOLS_KEPT_PER_MEMBER,
    POOL_REFRESH_MS,
};
use crate::proposal::{
    required_hash_type, Proposal, ProposalError, Review, SessionId, UnsignedProposal,
};
use crate::session::{
    Action, Durable, Event, Recipient, Session, SessionError, SessionSetup, Step, Waiting,
};
use crate::Entropy;

/// Largest message any group may configure (group validation caps it at 1 MiB).
const MAX_ANY_MESSAGE: usize = 1 << 20;
/// How far past a proposer's previous sequence its next proposal may jump (a member may have
/// missed a proposal or two of it; a larger jump would let the proposer pick the round-robin
/// coordinator freely, or run the counter into overflow).
pub const MAX_SEQUENCE_SKIP: u64 = 2;
/// How far behind a proposer's highest sequence a proposal may still arrive (reordering, a
/// member catching up); each sequence is accepted once.
pub const SEQUENCE_WINDOW: u64 = 64;

/// The transport peer that delivered a message: budgets are charged to it, never to the
/// sender a message merely claims. The driver assigns it (a libp2p connection's peer, or one
/// number per in-process inbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer(pub u64);

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub window: Window,
    pub seen_capacity: usize,
    /// Signature verifications per delivering peer per minute.
    pub verifications_per_minute: usize,
    pub early: EarlyLimits,
    /// Publish nonce pools and name them in our proposals. Off only to exercise (and
    /// benchmark) an interactive attempt 0.
    pub nonce_pools: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            window: Window::default(),
            seen_capacity: crate::policy::DEFAULT_SEEN_CAPACITY,
            verifications_per_minute: DEFAULT_VERIFICATIONS_PER_WINDOW,
            early: EarlyLimits::default(),
            nonce_pools: true,
        }
    }
}

/// An action tagged with the group and session it belongs to. A group-wide message (a pull
/// for every session) carries a zero session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub group_id: GroupId,
    pub session_id: [u8; 32],
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("unknown group")]
    UnknownGroup,
    #[error("unknown session")]
    UnknownSession,
    #[error("this key is not a member of the group")]
    NotAMember,
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("the proposal's session, proposer or digest differs from its envelope's")]
    ProposalEnvelopeMismatch,
    #[error(
        "sequence {got} is refused for this proposer (its highest so far: {highest:?}): \
         a sequence is used once, at most {} above the highest and at most {} below it",
        MAX_SEQUENCE_SKIP + 1,
        SEQUENCE_WINDOW
    )]
    Sequence { got: u64, highest: Option<u64> },
}

struct GroupEntry {
    descriptor: Arc<GroupDescriptor>,
    /// Each group's own session table and proposal rate: another group (which may be run by
    /// someone else) can never evict this group's pending sessions or use up its rate.
    capacity: SessionCapacity<[u8; 32]>,
    proposal_rate: ProposalRateLimit<PublicKey>,
    key_agg: Arc<KeyAggContext>,
    me: u16,
    /// Proposal sequences accepted per proposer (the recent window): per proposer, not per
    /// group, so two members proposing at once never refuse each other; a set, so proposals
    /// that arrive out of order (loss, a member catching up) are still accepted once each.
    sequences: BTreeMap<u16, BTreeSet<u64>>,
    /// When each member's last group-wide pull was answered.
    pulls_answered: BTreeMap<u16, Millis>,
    /// Each member's newest nonce pools (oldest first), ours included.
    pools: BTreeMap<u16, Vec<KnownPool>>,
    /// Our own pools with the secrets no session has taken yet (oldest first).
    own_pools: Vec<OwnPool>,
}

impl GroupEntry {
    fn uses_pools(&self) -> bool {
        slice_len(self.descriptor.members.len()) > 0
    }

    fn known_pool(&self, member: u16, id: &[u8; 32]) -> Option<&KnownPool> {
        self.pools
            .get(&member)?
            .iter()
            .find(|p| p.envelope.id() == *id)
    }

    /// Keeps a member's pool (if new), at most `POOLS_KEPT_PER_MEMBER`, newest last.
    fn remember_pool(&mut self, envelope: Envelope) -> bool {
        let Ok(pool) = NoncePool::decode(&envelope.payload) else {
            return false;
        };
        let kept = self.pools.entry(envelope.header.sender).or_default();
        if kept.iter().any(|p| p.envelope.id() == envelope.id()) {
            return false;
        }
        kept.push(KnownPool::new(
            envelope,
            pool.nonces.len(),
            self.descriptor.members.len(),
        ));
        kept.sort_by_key(|p| p.envelope.header.timestamp_ms);
        if kept.len() > POOLS_KEPT_PER_MEMBER {
            kept.remove(0);
        }
        true
    }

    /// For a proposal with `inputs` inputs: each member's newest pool with enough entries
    /// no proposal we know of has named yet. None unless every member has one.
    fn name_pools(&self, inputs: usize) -> Option<Vec<PoolRef>> {
        let me = self.me;
        (0..self.descriptor.members.len() as u16)
            .map(|m| {
                let pool = self
                    .pools
                    .get(&m)?
                    .iter()
                    .rev()
                    .find(|p| p.free(me) >= inputs)?;
                Some(PoolRef {
                    pool: pool.envelope.id(),
                    first: u16::try_from(pool.next_free(me)).ok()?,
                })
            })
            .collect()
    }

    /// A proposal named these entries: our own proposals avoid them from now on, and our own
    /// entry's secrets are taken out for this session (None if already taken or unknown).
    fn bind_pools(
        &mut self,
        refs: &[PoolRef],
        proposer: u16,
        inputs: usize,
    ) -> Option<(Vec<SecretNonce>, [u8; 32])> {
        for (member, r) in refs.iter().enumerate() {
            if let Some(kept) = self.pools.get_mut(&(member as u16)) {
                if let Some(pool) = kept.iter_mut().find(|p| p.envelope.id() == r.pool) {
                    pool.mark_named(proposer, usize::from(r.first) + inputs);
                }
            }
        }
        let own = refs.get(self.me as usize)?;
        self.own_pools
            .iter_mut()
            .find(|p| p.id == own.pool)?
            .take(usize::from(own.first), inputs)
    }

    /// The named pools this node holds, for a new session.
    fn named_pool_envelopes(&self, refs: &[PoolRef]) -> Vec<Envelope> {
        refs.iter()
            .enumerate()
            .filter_map(|(m, r)| self.known_pool(m as u16, &r.pool))
            .map(|p| p.envelope.clone())
            .collect()
    }

    /// When our newest pool is due for replacement by age (now, if we hold none).
    fn pool_due(&self) -> Millis {
        let newest = self.pools.get(&self.me).and_then(|k| k.last());
        match newest {
            Some(pool)
                if self
                    .own_pools
                    .iter()
                    .any(|own| own.id == pool.envelope.id()) =>
            {
                pool.envelope.header.timestamp_ms + POOL_REFRESH_MS + 1
            }
            _ => 0,
        }
    }

    /// Whether our newest pool must be replaced: none yet, old, or some proposer's slice
    /// mostly named.
    fn needs_pool(&self, now: Millis) -> bool {
        let Some(newest) = self.pools.get(&self.me).and_then(|k| k.last()) else {
            return true;
        };
        let fresh = self
            .own_pools
            .iter()
            .any(|own| own.id == newest.envelope.id());
        let members = self.descriptor.members.len() as u16;
        !fresh
            || now.saturating_sub(newest.envelope.header.timestamp_ms) > POOL_REFRESH_MS
            || (0..members).any(|p| newest.free(p) * 2 < newest.slice)
    }
}

/// What a restarted node restores for one session (from the store).
#[derive(Debug, Clone)]
pub struct Restore<'a> {
    /// The proposal envelope this node accepted (the only one the store keeps).
    pub proposal_envelope: &'a [u8],
    /// The last attempt this node took part in (released nonces or sent any message).
    pub last_active_attempt: Option<u32>,
    /// The review digest the user approved, if any.
    pub approved_digest: Option<[u8; 32]>,
    /// Whether our partial signatures left in some attempt.
    pub signed_before: bool,
    pub signed_tx: Option<Transaction>,
}

pub struct Node {
    public_key: PublicKey,
    config: NodeConfig,
    groups: BTreeMap<GroupId, GroupEntry>,
    sessions: BTreeMap<[u8; 32], Session>,
    /// Sessions whose durable step failed: silent until a restart restores them.
    suspended: BTreeSet<[u8; 32]>,
    early: EarlyBuffer,
    seen: SeenSet,
    budget: VerificationBudget<Peer>,
    blacklist: Blacklist<PublicKey>,
    /// (group, member) → when its last authenticated message arrived.
    last_heard: BTreeMap<(GroupId, u16), Millis>,
    /// Dropped messages by reason, for monitoring.
    rejections: BTreeMap<&'static str, u64>,
    /// Our current signed audit head (the driver signs one at every session end).
    audit_head: Option<SignedHead>,
}

impl Node {
    pub fn new(public_key: PublicKey, config: NodeConfig) -> Self {
        Self {
            public_key,
            seen: SeenSet::new(config.window, config.seen_capacity),
            budget: VerificationBudget::new(
                config.verifications_per_minute,
                DEFAULT_WINDOW_MS,
                DEFAULT_BUDGET_TRACKED_PEERS,
            ),
            early: EarlyBuffer::new(config.early),
            config,
            groups: BTreeMap::new(),
            sessions: BTreeMap::new(),
            suspended: BTreeSet::new(),
            blacklist: Blacklist::default(),
            last_heard: BTreeMap::new(),
            rejections: BTreeMap::new(),
            audit_head: None,
        }
    }

    pub fn add_group(&mut self, descriptor: GroupDescriptor) -> Result<GroupId, NodeError> {
        descriptor.validate()?;
        let me = descriptor
            .member_index(&self.public_key)
            .ok_or(NodeError::NotAMember)?;
        let key_agg = Arc::new(descriptor.key_agg()?);
        let id = descriptor.id();
        self.groups.insert(
            id,
            GroupEntry {
                capacity: SessionCapacity::from_limits(&descriptor.limits),
                proposal_rate: ProposalRateLimit::from_limits(&descriptor.limits),
                descriptor: Arc::new(descriptor),
                key_agg,
                me,
                sequences: BTreeMap::new(),
                pulls_answered: BTreeMap::new(),
                pools: BTreeMap::new(),
                own_pools: Vec::new(),
            },
        );
        Ok(id)
    }

    pub fn group(&self, id: &GroupId) -> Option<&GroupDescriptor> {
        self.groups.get(id).map(|g| g.descriptor.as_ref())
    }

    pub fn session(&self, id: &[u8; 32]) -> Option<&Session> {
        self.sessions.get(id)
    }

    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn blacklist_mut(&mut self) -> &mut Blacklist<PublicKey> {
        &mut self.blacklist
    }

    pub fn rejections(&self) -> &BTreeMap<&'static str, u64> {
        &self.rejections
    }

    pub fn early_buffer(&self) -> &EarlyBuffer {
        &self.early
    }

    pub fn is_suspended(&self, id: &[u8; 32]) -> bool {
        self.suspended.contains(id)
    }

    /// The driver signed a new audit head: our round-1 messages carry it from now on.
    pub fn set_audit_head(&mut self, head: Option<SignedHead>) {
        self.audit_head = head;
        for session in self.sessions.values_mut() {
            session.set_audit_head(head);
        }
    }

    /// When a member of a group was last heard from (any authenticated message).
    pub fn last_heard(&self, group: &GroupId, member: u16) -> Option<Millis> {
        self.last_heard.get(&(*group, member)).copied()
    }

    /// Whom a session waits for and for what.
    pub fn waiting(&self, id: &[u8; 32]) -> Option<Vec<Waiting>> {
        let session = self.sessions.get(id)?;
        let group = session.group_id();
        Some(session.waiting(|m| self.last_heard(&group, m)))
    }

    /// The earliest deadline of any session or nonce pool, for the driver's single timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        let pools = self
            .groups
            .values()
            .filter(|g| self.config.nonce_pools && g.uses_pools())
            .map(GroupEntry::pool_due);
        self.sessions
            .values()
            .filter_map(Session::next_deadline)
            .chain(pools)
            .min()
    }

    /// Creates, signs and sends a proposal; returns its session id.
    #[allow(clippy::too_many_arguments)]
    pub fn propose(
        &mut self,
        group_id: &GroupId,
        tx: Transaction,
        spent_outputs: Vec<TxOut>,
        expires_ms: Millis,
        evidence: Vec<Vec<u8>>,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<[u8; 32], NodeError> {
        let entry = self.groups.get(group_id).ok_or(NodeError::UnknownGroup)?;
        let tx_inputs = tx.inputs.len();
        let mut session_id = [0u8; 32];
        entropy.fill(&mut session_id);
        let sequence = match entry
            .sequences
            .get(&entry.me)
            .and_then(|used| used.last().copied())
        {
            None => 0,
            Some(s) => s.checked_add(1).ok_or(NodeError::Sequence {
                got: s,
                highest: Some(s),
            })?,
        };
        let unsigned = UnsignedProposal {
            group_id: *group_id,
            session_id: SessionId(session_id),
            proposer: entry.me,
            tx,
            spent_outputs,
            hash_type: required_hash_type(entry.descriptor.output),
            created_ms: now,
            expires_ms,
            sequence,
            evidence,
            pools: if self.config.nonce_pools && entry.uses_pools() {
                entry.name_pools(tx_inputs).unwrap_or_default()
            } else {
                Vec::new()
            },
        };
        let proposal = Proposal::sign(unsigned, key)?;
        let review = proposal.validate(&entry.descriptor, now)?;
        // Open groups ask proposals for proof-of-work (analysis §6.1); invite-only groups don't.
        let pow_nonce = match entry.descriptor.admission {
            Admission::Open { pow_bits } => mine_pow(&proposal.review_digest(), pow_bits, 0)?,
            Admission::InviteOnly => 0,
        };
        let header = Header::new(
            MessageKind::Proposal,
            *group_id,
            session_id,
            review.digest,
            0,
            entry.me,
            now,
        );
        let envelope = Envelope::sign(header, proposal_payload(&proposal, pow_nonce), key);
        let bytes = envelope.encode();
        self.seen.insert(envelope.id(), now);
        let tag = |action| Output {
            group_id: *group_id,
            session_id,
            action,
        };
        out.push(tag(Action::Persist(Durable::SessionAccepted {
            session_id,
            envelope: bytes.clone(),
            outgoing: true,
        })));
        out.push(tag(Action::Send {
            to: Recipient::Members,
            bytes,
        }));
        out.push(tag(Action::Event(Event::ReviewReady {
            review: Box::new(review.clone()),
        })));
        let pools: Vec<Vec<u8>> = entry
            .named_pool_envelopes(&proposal.pools)
            .iter()
            .map(Envelope::encode)
            .collect();
        for bytes in pools {
            // The pools it names travel with it, for members who missed one.
            out.push(tag(Action::Send {
                to: Recipient::Members,
                bytes,
            }));
        }
        self.start_session(
            group_id, proposal, review, envelope, 0, now, key, entropy, out,
        )?;
        self.refresh_pools(now, key, entropy, out);
        Ok(session_id)
    }

    /// Opens the session in memory. The caller has already pushed the durable record of the
    /// proposal (`SessionAccepted`), so every output below runs only after it committed.
    #[allow(clippy::too_many_arguments)]
    fn start_session(
        &mut self,
        group_id: &GroupId,
        proposal: Proposal,
        review: Review,
        proposal_envelope: Envelope,
        first_attempt: u32,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<&mut Session, NodeError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(NodeError::UnknownGroup)?;
        note_sequence(&mut entry.sequences, proposal.proposer, proposal.sequence);
        let session_id = proposal.session_id.0;
        if let Some(evicted) = entry.capacity.admit_pending(session_id)? {
            if let Some(mut old) = self.sessions.remove(&evicted) {
                let mut step = Step::new(now, key, entropy);
                old.evict(&mut step);
                tag(old.group_id(), evicted, step.actions, out);
            }
        }
        let sighashes = proposal.sighashes(&entry.descriptor)?;
        let pool_secrets = entry.bind_pools(&proposal.pools, proposal.proposer, sighashes.len());
        let pools = entry.named_pool_envelopes(&proposal.pools);
        let setup = SessionSetup {
            group: entry.descriptor.clone(),
            key_agg: entry.key_agg.clone(),
            me: entry.me,
            proposal,
            proposal_envelope,
            review,
            sighashes,
            audit_head: self.audit_head,
            pool_secrets,
            pools,
        };
        let mut step = Step::new(now, key, entropy);
        let session = Session::start(setup, first_attempt, &mut step);
        tag(*group_id, session_id, step.actions, out);
        self.sessions.insert(session_id, session);
        Ok(self.sessions.get_mut(&session_id).expect("just inserted"))
    }

    /// Messages that outran the proposal, now that the session exists.
    fn replay_early(
        &mut self,
        group_id: GroupId,
        session_id: [u8; 32],
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        for envelope in self.early.take(group_id, session_id) {
            self.deliver(envelope, now, key, entropy, out);
        }
    }

    fn reject_message(&mut self, rejection: Rejection) -> Rejection {
        *self.rejections.entry(rejection.label()).or_default() += 1;
        rejection
    }

    /// Bytes from the network, delivered by transport peer `from`. Cheap checks first; one
    /// signature verification; then routing.
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &mut self,
        bytes: &[u8],
        from: Peer,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        match self.admit(bytes, from, now) {
            Ok(envelope) => {
                self.route(envelope, bytes.len(), now, key, entropy, out);
                Ok(())
            }
            Err(rejection) => Err(self.reject_message(rejection)),
        }
    }

    /// Everything up to and including the signature check.
    fn admit(&mut self, bytes: &[u8], from: Peer, now: Millis) -> Result<Envelope, Rejection> {
        let envelope = precheck(bytes, MAX_ANY_MESSAGE, now, self.config.window)?;
        let header = envelope.header;
        let entry = self
            .groups
            .get(&header.group_id)
            .ok_or(Rejection::UnknownGroup)?;
        let group = entry.descriptor.clone();
        if bytes.len() > group.limits.max_message_bytes as usize {
            return Err(Rejection::TooLarge {
                len: bytes.len(),
                max: group.limits.max_message_bytes as usize,
            });
        }
        let sender_key = *group
            .members
            .get(header.sender as usize)
            .ok_or(Rejection::NotAMember(header.sender))?;
        if self.blacklist.check(&sender_key).is_err() {
            return Err(Rejection::Blacklisted);
        }
        let group_wide = header.session_id == [0; 32]
            && matches!(header.kind, MessageKind::Pull | MessageKind::NoncePool);
        if header.kind == MessageKind::NoncePool && !group_wide {
            return Err(Rejection::UnknownSession);
        }
        if !group_wide {
            self.check_routing(&header, &sender_key, bytes.len(), now)?;
        }
        let id = envelope.id();
        if self.seen.contains(&id, now) {
            if header.kind == MessageKind::NoncePool && group_wide {
                // Authenticated before (the id covers every byte, signature included): a
                // session that names it may not have it yet (kept pools are bounded), so it
                // is filed again, never re-verified and never kept twice.
                return Ok(envelope);
            }
            return Err(Rejection::Duplicate);
        }
        self.budget
            .spend(&from, 1, now)
            .map_err(|e| Rejection::RateLimited(e.to_string()))?;
        envelope
            .verify_signature(&group)
            .map_err(|e| Rejection::Signature(e.to_string()))?;
        self.seen.insert(id, now);
        self.last_heard
            .insert((header.group_id, header.sender), now);
        Ok(envelope)
    }

    /// Where the message would go, before any curve operation: a known session of the same
    /// group that is still open, a new proposal, or the early buffer if it has room.
    fn check_routing(
        &mut self,
        header: &Header,
        sender_key: &PublicKey,
        len: usize,
        now: Millis,
    ) -> Result<(), Rejection> {
        if self.suspended.contains(&header.session_id) {
            return Err(Rejection::Suspended);
        }
        match self.sessions.get(&header.session_id) {
            Some(session) if session.group_id() != header.group_id => Err(Rejection::CrossGroup),
            // A pull is answered for a finished session too (a member may need `Completed`).
            Some(_) if header.kind == MessageKind::Pull => Ok(()),
            Some(session)
                if session.is_closed()
                    || now > session.proposal().expires_ms + self.config.window.future_ms =>
            {
                Err(Rejection::SessionClosed)
            }
            Some(_) => Ok(()),
            None if header.kind == MessageKind::Proposal => Ok(()),
            None if header.kind == MessageKind::Pull => Err(Rejection::UnknownSession),
            None => self.early.check_room(sender_key, len, now),
        }
    }

    fn route(
        &mut self,
        envelope: Envelope,
        len: usize,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        let header = envelope.header;
        if header.kind == MessageKind::Pull {
            return self.answer_pull(&envelope, now, key, entropy, out);
        }
        if header.kind == MessageKind::NoncePool {
            return self.on_pool(envelope, now, key, entropy, out);
        }
        if self.sessions.contains_key(&header.session_id) {
            return self.deliver(envelope, now, key, entropy, out);
        }
        if header.kind == MessageKind::Proposal {
            if let Err(error) = self.accept_proposal(&envelope, now, key, entropy, out) {
                emit(
                    out,
                    header.group_id,
                    header.session_id,
                    Action::Event(Event::ProposalRefused {
                        member: header.sender,
                        error: error.to_string(),
                    }),
                );
            }
            return;
        }
        let sender_key = self.groups[&header.group_id].descriptor.members[header.sender as usize];
        self.early
            .insert(header.group_id, envelope, len, sender_key, now);
    }

    /// An authenticated message for a session we hold: logged durably if it belongs to this
    /// session's proposal, then handed to the session.
    fn deliver(
        &mut self,
        envelope: Envelope,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        let header = envelope.header;
        let Some(session) = self.sessions.get_mut(&header.session_id) else {
            return;
        };
        if session.group_id() != header.group_id || session.is_closed() {
            return;
        }
        let group_id = session.group_id();
        let mut step = Step::new(now, key, entropy);
        // Logged: the contributions and outcomes of this proposal. Notices (approval, abort,
        // pull) are not, so a member can't fill the disk with distinct notices.
        let logged = matches!(
            header.kind,
            MessageKind::Commitment
                | MessageKind::Nonces
                | MessageKind::Partials
                | MessageKind::Completed
                | MessageKind::Reject
        );
        if header.proposal == session.digest() && logged {
            step.actions.push(Action::Persist(Durable::Message {
                session_id: header.session_id,
                bytes: envelope.encode(),
                outgoing: false,
            }));
        }
        session.on_envelope(envelope, &mut step);
        tag(group_id, header.session_id, step.actions, out);
    }

    fn accept_proposal(
        &mut self,
        envelope: &Envelope,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let header = envelope.header;
        let group_id = header.group_id;
        let entry = self.groups.get(&group_id).ok_or(NodeError::UnknownGroup)?;
        let group = entry.descriptor.clone();
        let used = entry
            .sequences
            .get(&header.sender)
            .cloned()
            .unwrap_or_default();
        let proposer_key = group.members[header.sender as usize];
        self.groups
            .get_mut(&group_id)
            .expect("looked up above")
            .proposal_rate
            .check(&proposer_key, now)?;
        let proposal = decode_proposal(envelope, &group)?;
        check_sequence(proposal.sequence, &used)?;
        let review = proposal.validate(&group, now)?;
        let session_id = header.session_id;
        // Durable first: the session row holds exactly the proposal accepted here.
        emit(
            out,
            group_id,
            session_id,
            Action::Persist(Durable::SessionAccepted {
                session_id,
                envelope: envelope.encode(),
                outgoing: false,
            }),
        );
        emit(
            out,
            group_id,
            session_id,
            Action::Event(Event::ReviewReady {
                review: Box::new(review.clone()),
            }),
        );
        self.start_session(
            &group_id,
            proposal,
            review,
            envelope.clone(),
            0,
            now,
            key,
            entropy,
            out,
        )?;
        self.replay_early(group_id, session_id, now, key, entropy, out);
        self.refresh_pools(now, key, entropy, out);
        // A proposal that reaches us late (we were offline, or it came in a pull answer): the
        // others' messages of this session may be long gone, so ask for them.
        let resend_interval = (group.timeouts.round_ms / 4).max(1);
        let created = self.sessions[&session_id].proposal().created_ms;
        if now.saturating_sub(created) > resend_interval {
            let me = self.groups[&group_id].me;
            let digest = self.sessions[&session_id].digest();
            let header = Header::new(MessageKind::Pull, group_id, session_id, digest, 0, me, now);
            let pull = Envelope::sign(header, Pull { since_attempt: 0 }.encode(), key);
            emit(
                out,
                group_id,
                session_id,
                Action::Send {
                    to: Recipient::Members,
                    bytes: pull.encode(),
                },
            );
        }
        Ok(())
    }

    /// A member asks for what it missed: every open session's proposal (group-wide pull), or
    /// one session's signed messages.
    fn answer_pull(
        &mut self,
        envelope: &Envelope,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        let header = envelope.header;
        let Ok(pull) = Pull::decode(&envelope.payload) else {
            return;
        };
        let Some(entry) = self.groups.get_mut(&header.group_id) else {
            return;
        };
        if header.session_id != [0; 32] {
            if let Some(session) = self.sessions.get_mut(&header.session_id) {
                let mut step = Step::new(now, key, entropy);
                session.answer_pull(header.sender, pull.since_attempt, &mut step);
                tag(header.group_id, header.session_id, step.actions, out);
            }
            return;
        }
        let interval = (entry.descriptor.timeouts.round_ms / 4).max(1);
        if entry
            .pulls_answered
            .get(&header.sender)
            .is_some_and(|&at| now < at + interval)
        {
            return;
        }
        entry.pulls_answered.insert(header.sender, now);
        // Every member's newest pool we hold: the requester may propose next.
        for kept in entry.pools.values() {
            if let Some(pool) = kept.last() {
                emit(
                    out,
                    header.group_id,
                    [0; 32],
                    Action::Send {
                        to: Recipient::Member(header.sender),
                        bytes: pool.envelope.encode(),
                    },
                );
            }
        }
        for session in self.sessions.values() {
            if session.group_id() == header.group_id
                && !session.is_closed()
                && now < session.proposal().expires_ms
            {
                emit(
                    out,
                    header.group_id,
                    session.session_id(),
                    Action::Send {
                        to: Recipient::Member(header.sender),
                        bytes: session.proposal_envelope().to_vec(),
                    },
                );
            }
        }
    }

    /// The driver's connectivity came back (a laptop woke, a network returned): ask the
    /// members for every open session's proposal and for what each open session missed.
    pub fn reconnected(
        &mut self,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        self.refresh_pools(now, key, entropy, out);
        for (group_id, entry) in &self.groups {
            let pull = |session_id: [u8; 32], proposal: [u8; 32], since_attempt: u32| {
                let header = Header::new(
                    MessageKind::Pull,
                    *group_id,
                    session_id,
                    proposal,
                    0,
                    entry.me,
                    now,
                );
                Envelope::sign(header, Pull { since_attempt }.encode(), key).encode()
            };
            emit(
                out,
                *group_id,
                [0; 32],
                Action::Send {
                    to: Recipient::Members,
                    bytes: pull([0; 32], [0; 32], 0),
                },
            );
            for session in self.sessions.values() {
                if session.group_id() == *group_id && session.is_running() {
                    emit(
                        out,
                        *group_id,
                        session.session_id(),
                        Action::Send {
                            to: Recipient::Members,
                            bytes: pull(session.session_id(), session.digest(), session.attempt()),
                        },
                    );
                }
            }
        }
    }

    /// Publishes a fresh nonce pool for every group whose newest one is missing, old or
    /// mostly named (see `pool`). Secrets stay in memory only.
    pub fn refresh_pools(
        &mut self,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        if !self.config.nonce_pools {
            return;
        }
        let audit_head = self.audit_head;
        for (group_id, entry) in self.groups.iter_mut() {
            if !entry.uses_pools() || !entry.needs_pool(now) {
                continue;
            }
            let aggregated = *entry.key_agg.aggregated_key();
            let size = slice_len(entry.descriptor.members.len()) * entry.descriptor.members.len();
            let mut secrets = Vec::with_capacity(size);
            let mut nonces = Vec::with_capacity(size);
            let mut shares = Vec::with_capacity(size);
            for _ in 0..size {
                let mut share = [0u8; 32];
                entropy.fill(&mut share);
                shares.push(share);
                // No message yet: MuSig2's round 1 may run before it is known.
                let Ok((secret, public)) = SecretNonce::generate(key, &aggregated, None) else {
                    return; // the OS random generator failed: publish nothing
                };
                secrets.push(secret);
                nonces.push(public);
            }
            let header = Header::new(
                MessageKind::NoncePool,
                *group_id,
                [0; 32],
                [0; 32],
                0,
                entry.me,
                now,
            );
            let payload = NoncePool {
                nonces,
                salt_commitments: shares.iter().map(salt_commitment).collect(),
                audit_head,
            }
            .encode();
            let envelope = Envelope::sign(header, payload, key);
            let bytes = envelope.encode();
            self.seen.insert(envelope.id(), now);
            entry
                .own_pools
                .push(OwnPool::new(&envelope, secrets, shares));
            entry.remember_pool(envelope);
            if entry.own_pools.len() > POOLS_KEPT_PER_MEMBER {
                entry.own_pools.remove(0); // its secrets are erased on drop
            }
            emit(
                out,
                *group_id,
                [0; 32],
                Action::Send {
                    to: Recipient::Members,
                    bytes,
                },
            );
        }
    }

    /// A member's nonce pool (signature checked): kept for our proposals, and filed in every
    /// open session whose attempt 0 names it.
    fn on_pool(
        &mut self,
        envelope: Envelope,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        let group_id = envelope.header.group_id;
        let Some(entry) = self.groups.get_mut(&group_id) else {
            return;
        };
        if !entry.uses_pools() {
            return;
        }
        entry.remember_pool(envelope.clone());
        for (id, session) in self.sessions.iter_mut() {
            if session.group_id() == group_id && session.is_running() {
                let mut step = Step::new(now, key, entropy);
                session.on_pool(&envelope, &mut step);
                tag(group_id, *id, step.actions, out);
            }
        }
    }

    /// Checks an approval without recording it, so the driver can make it durable first.
    pub fn check_approval(
        &self,
        session_id: &[u8; 32],
        digest: &[u8; 32],
    ) -> Result<(), NodeError> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or(NodeError::UnknownSession)?;
        Ok(session.check_approval(digest)?)
    }

    /// The user approved (the driver has already recorded it durably).
    pub fn approve(
        &mut self,
        session_id: &[u8; 32],
        digest: &[u8; 32],
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let session = self
            .sessions
            .get_mut(session_id)
            .ok_or(NodeError::UnknownSession)?;
        let mut step = Step::new(now, key, entropy);
        session.approve(digest, &mut step)?;
        let group_id = session.group_id();
        tag(group_id, *session_id, step.actions, out);
        // Approved sessions no longer count as pending (never evicted).
        if let Some(entry) = self.groups.get_mut(&group_id) {
            let _full_active_table_keeps_it_pending = entry.capacity.promote(session_id);
        }
        Ok(())
    }

    pub fn reject(
        &mut self,
        session_id: &[u8; 32],
        reason: &str,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let session = self
            .sessions
            .get_mut(session_id)
            .ok_or(NodeError::UnknownSession)?;
        let mut step = Step::new(now, key, entropy);
        session.reject(reason, &mut step)?;
        tag(session.group_id(), *session_id, step.actions, out);
        Ok(())
    }

    pub fn tick(
        &mut self,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        self.early.prune(now);
        self.refresh_pools(now, key, entropy, out);
        for (id, session) in self.sessions.iter_mut() {
            if session.next_deadline().is_some_and(|d| d <= now) {
                let mut step = Step::new(now, key, entropy);
                session.tick(&mut step);
                tag(session.group_id(), *id, step.actions, out);
            }
        }
        let closed: Vec<[u8; 32]> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            let group_id = self.sessions[&id].group_id();
            if let Some(entry) = self.groups.get_mut(&group_id) {
                entry.capacity.remove(&id);
            }
            // Closed sessions live on in the store; in memory until their proposal expires
            // (so late messages for them are refused, not taken for early ones).
            let expired = self.sessions[&id].proposal().expires_ms + self.config.window.future_ms;
            if now > expired {
                self.sessions.remove(&id);
            }
        }
    }

    pub fn broadcast_observed(
        &mut self,
        txid: &[u8; 32],
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        for (id, session) in self.sessions.iter_mut() {
            let mut step = Step::new(now, key, entropy);
            session.broadcast_observed(txid, &mut step);
            tag(session.group_id(), *id, step.actions, out);
        }
    }

    /// Rebuilds a session after a restart from what the store kept: the proposal envelope the
    /// node accepted (validated again in full, at `now`), the last attempt this node took part
    /// in (its secret nonces died with the process, so it is announced as aborted and the
    /// session resumes at the next attempt), the user's approval — applied only if its digest
    /// is this proposal's — and the signed transaction if signing had finished.
    pub fn restore_session(
        &mut self,
        restore: Restore<'_>,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<[u8; 32], NodeError> {
        let envelope = Envelope::decode(restore.proposal_envelope, MAX_ANY_MESSAGE)
            .map_err(|e| NodeError::Proposal(ProposalError::Decode(e)))?;
        let group_id = envelope.header.group_id;
        let entry = self.groups.get(&group_id).ok_or(NodeError::UnknownGroup)?;
        let group = entry.descriptor.clone();
        if envelope.header.kind != MessageKind::Proposal {
            return Err(NodeError::ProposalEnvelopeMismatch);
        }
        envelope
            .verify_signature(&group)
            .map_err(|_| NodeError::ProposalEnvelopeMismatch)?;
        let proposal = decode_proposal(&envelope, &group)?;
        // A signed transaction is restored for its failover schedule even after expiry; an
        // unsigned session must still be valid now.
        let at = match &restore.signed_tx {
            Some(_) => now.min(proposal.expires_ms.saturating_sub(1)),
            None => now,
        };
        let review = proposal.validate(&group, at)?;
        let session_id = proposal.session_id.0;
        self.seen.insert(envelope.id(), now);
        let first_attempt = restore.last_active_attempt.map_or(0, |a| a + 1);
        let mut own = Vec::new();
        let session = self.start_session(
            &group_id,
            proposal,
            review.clone(),
            envelope,
            first_attempt,
            now,
            key,
            entropy,
            &mut own,
        )?;
        let mut step = Step::new(now, key, entropy);
        if let Some(abandoned) = restore.last_active_attempt {
            session.announce_restart(abandoned, &mut step);
        }
        if restore.signed_before {
            session.restore_signed_before();
        }
        let approved = restore.approved_digest == Some(review.digest);
        if let Some(tx) = restore.signed_tx {
            session.restore_signed(tx, &mut step);
        } else if approved {
            session.approve(&review.digest, &mut step)?;
        } else {
            // Still waiting for this user's decision (or the stored approval was for another
            // digest, which never counts): show it again.
            step.actions.push(Action::Event(Event::ReviewReady {
                review: Box::new(review),
            }));
        }
        // The restart notice goes first: the new attempt's messages make sense after it.
        let notice_and_state = std::mem::take(&mut step.actions);
        tag(group_id, session_id, notice_and_state, out);
        out.extend(own);
        if approved {
            if let Some(entry) = self.groups.get_mut(&group_id) {
                let _ = entry.capacity.promote(&session_id);
            }
        }
        Ok(session_id)
    }

    /// After a restart: a proposal this node accepted earlier (closed or not), so the
    /// proposer's sequence keeps strictly increasing across the restart. Call for every stored
    /// session before restoring the unfinished ones.
    pub fn remember_proposal(&mut self, proposal_envelope: &[u8]) -> Result<(), NodeError> {
        let envelope = Envelope::decode(proposal_envelope, MAX_ANY_MESSAGE)
            .map_err(|e| NodeError::Proposal(ProposalError::Decode(e)))?;
        let entry = self
            .groups
            .get_mut(&envelope.header.group_id)
            .ok_or(NodeError::UnknownGroup)?;
        let proposal = decode_proposal(&envelope, &entry.descriptor)?;
        note_sequence(&mut entry.sequences, proposal.proposer, proposal.sequence);
        Ok(())
    }

    /// The store refused a nonce (it was released before): abort that session for good.
    pub fn nonce_conflict(
        &mut self,
        session_id: &[u8; 32],
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        if let Some(session) = self.sessions.get_mut(session_id) {
            let mut step = Step::new(now, key, entropy);
            session.nonce_conflict(&mut step);
            tag(session.group_id(), *session_id, step.actions, out);
        }
    }

    /// A durable step of the session failed (busy, I/O, a refused transition): the session
    /// leaves memory with everything it would have sent, and messages for it are refused
    /// until a restart restores it from what did commit.
    pub fn persist_failed(&mut self, session_id: &[u8; 32]) {
        if let Some(session) = self.sessions.remove(session_id) {
            if let Some(entry) = self.groups.get_mut(&session.group_id()) {
                entry.capacity.remove(session_id);
            }
            self.suspended.insert(*session_id);
        }
    }
}

/// The proposal inside a proposal envelope, checked against the envelope: same session,
/// proposer and digest, and the group's proof-of-work. No curve operation.
fn decode_proposal(envelope: &Envelope, group: &GroupDescriptor) -> Result<Proposal, NodeError> {
    let (pow_nonce, proposal_bytes) = split_proposal_payload(&envelope.payload)?;
    let proposal = Proposal::decode(proposal_bytes, group.limits.max_message_bytes as usize)
        .map_err(|e| NodeError::Proposal(ProposalError::Decode(e)))?;
    check_admission_work(&group.admission, &proposal.review_digest(), Some(pow_nonce))?;
    let header = &envelope.header;
    if proposal.session_id.0 != header.session_id
        || proposal.proposer != header.sender
        || proposal.review_digest() != header.proposal
        || proposal.group_id != header.group_id
    {
        return Err(NodeError::ProposalEnvelopeMismatch);
    }
    Ok(proposal)
}

/// A proposer's sequence is accepted once, at most `MAX_SEQUENCE_SKIP + 1` above its highest
/// so far (so a proposer can't pick the round-robin coordinator by a far jump, or overflow the
/// counter) and at most `SEQUENCE_WINDOW` below it (late or reordered proposals).
pub fn check_sequence(got: u64, used: &BTreeSet<u64>) -> Result<(), NodeError> {
    let highest = used.last().copied();
    let ok = !used.contains(&got)
        && match highest {
            None => got <= MAX_SEQUENCE_SKIP,
            Some(h) => {
                got <= h.saturating_add(MAX_SEQUENCE_SKIP + 1)
                    && got.saturating_add(SEQUENCE_WINDOW) > h
            }
        };
    if ok {
        Ok(())
    } else {
        Err(NodeError::Sequence { got, highest })
    }
}

fn note_sequence(sequences: &mut BTreeMap<u16, BTreeSet<u64>>, proposer: u16, sequence: u64) {
    let used = sequences.entry(proposer).or_default();
    used.insert(sequence);
    while used.len() as u64 > SEQUENCE_WINDOW {
        used.pop_first();
    }
}

/// A proposal envelope's payload: the proof-of-work nonce (0 for invite-only groups), then the
/// signed proposal.
pub fn proposal_payload(proposal: &Proposal, pow_nonce: u64) -> Vec<u8> {
    let mut payload = pow_nonce.to_be_bytes().to_vec();
    payload.extend_from_slice(&proposal.encode());
    payload
}

pub fn split_proposal_payload(payload: &[u8]) -> Result<(u64, &[u8]), NodeError> {
    if payload.len() < 8 {
        let missing = crate::wire::DecodeError::Truncated("proof-of-work nonce");
        return Err(NodeError::Proposal(ProposalError::Decode(missing)));
    }
    let (nonce, proposal) = payload.split_at(8);
    Ok((
        u64::from_be_bytes(nonce.try_into().expect("8 bytes")),
        proposal,
    ))
}

fn emit(out: &mut Vec<Output>, group_id: GroupId, session_id: [u8; 32], action: Action) {
    out.push(Output {
        group_id,
        session_id,
        action,
    });
}

fn tag(group_id: GroupId, session_id: [u8; 32], actions: Vec<Action>, out: &mut Vec<Output>) {
    out.extend(actions.into_iter().map(|action| Output {
        group_id,
        session_id,
        action,
    }));
}
