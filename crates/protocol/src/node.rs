//! One participant's protocol instance: its groups and sessions, the cheap-check gate, DoS
//! policy, and message routing. Sans-IO like `Session`: the driver (engine or simulator)
//! feeds bytes and time in and executes the returned outputs in order.

use std::collections::BTreeMap;
use std::sync::Arc;

use lotus::secp256k1::PublicKey;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use musig::KeyAggContext;

use crate::envelope::{Envelope, Header, MessageKind};
use crate::failover::Millis;
use crate::gate::{precheck, Rejection, SeenSet, Window};
use crate::group::{Admission, GroupDescriptor, GroupError, GroupId};
use crate::policy::{
    check_admission_work, mine_pow, Blacklist, PolicyError, ProposalRateLimit, SessionCapacity,
    VerificationBudget,
};
use crate::proposal::{
    required_hash_type, Proposal, ProposalError, Review, SessionId, UnsignedProposal,
};
use crate::session::{Action, Durable, Event, Session, SessionError, SessionSetup, Step};
use crate::Entropy;

/// Largest message any group may configure (group validation caps it at 1 MiB).
const MAX_ANY_MESSAGE: usize = 1 << 20;
/// Messages held for a session whose proposal has not arrived yet.
const MAX_EARLY_PER_SESSION: usize = 4 * crate::group::MAX_MEMBERS;
const MAX_EARLY_SESSIONS: usize = 64;

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub window: Window,
    pub seen_capacity: usize,
    /// Signature verifications per sender per minute.
    pub verifications_per_minute: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            window: Window::default(),
            seen_capacity: 200_000,
            verifications_per_minute: 600,
        }
    }
}

/// An action tagged with the session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
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
    #[error("the proposal's session or proposer differs from its envelope's")]
    ProposalEnvelopeMismatch,
}

struct GroupEntry {
    descriptor: Arc<GroupDescriptor>,
    key_agg: Arc<KeyAggContext>,
    me: u16,
    /// Highest proposal sequence number seen, so our next proposal rotates round-robin.
    last_sequence: Option<u64>,
}

pub struct Node {
    public_key: PublicKey,
    config: NodeConfig,
    groups: BTreeMap<GroupId, GroupEntry>,
    sessions: BTreeMap<[u8; 32], Session>,
    capacity: SessionCapacity<[u8; 32]>,
    early: BTreeMap<[u8; 32], Vec<Envelope>>,
    seen: SeenSet,
    proposal_rate: ProposalRateLimit<PublicKey>,
    budget: VerificationBudget<PublicKey>,
    blacklist: Blacklist<PublicKey>,
    /// Dropped messages by reason, for monitoring.
    rejections: BTreeMap<&'static str, u64>,
}

impl Node {
    pub fn new(public_key: PublicKey, config: NodeConfig) -> Self {
        Self {
            public_key,
            seen: SeenSet::new(config.window, config.seen_capacity),
            budget: VerificationBudget::new(config.verifications_per_minute, 60_000, 10_000),
            config,
            groups: BTreeMap::new(),
            sessions: BTreeMap::new(),
            capacity: SessionCapacity::from_limits(&Default::default()),
            early: BTreeMap::new(),
            proposal_rate: ProposalRateLimit::new(5, 10_000),
            blacklist: Blacklist::default(),
            rejections: BTreeMap::new(),
        }
    }

    pub fn add_group(&mut self, descriptor: GroupDescriptor) -> Result<GroupId, NodeError> {
        descriptor.validate()?;
        let me = descriptor
            .member_index(&self.public_key)
            .ok_or(NodeError::NotAMember)?;
        let key_agg = Arc::new(descriptor.key_agg()?);
        let id = descriptor.id();
        // The node-wide rules follow the strictest group (usually they are all the defaults).
        self.capacity = SessionCapacity::from_limits(&descriptor.limits);
        self.proposal_rate = ProposalRateLimit::from_limits(&descriptor.limits);
        self.groups.insert(
            id,
            GroupEntry {
                descriptor: Arc::new(descriptor),
                key_agg,
                me,
                last_sequence: None,
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

    /// The earliest deadline of any session, for the driver's single timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.sessions
            .values()
            .filter_map(Session::next_deadline)
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
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(NodeError::UnknownGroup)?;
        let mut session_id = [0u8; 32];
        entropy.fill(&mut session_id);
        let sequence = entry.last_sequence.map_or(0, |s| s + 1);
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
        };
        let proposal = Proposal::sign(unsigned, key)?;
        let review = proposal.validate(&entry.descriptor, now)?;
        entry.last_sequence = Some(sequence);
        // Open groups ask proposals for proof-of-work (analysis §6.1); invite-only groups don't.
        let pow_nonce = match entry.descriptor.admission {
            Admission::Open { pow_bits } => mine_pow(&proposal.review_digest(), pow_bits, 0)?,
            Admission::InviteOnly => 0,
        };
        let header = Header::new(
            MessageKind::Proposal,
            *group_id,
            session_id,
            0,
            entry.me,
            now,
        );
        let envelope = Envelope::sign(header, proposal_payload(&proposal, pow_nonce), key);
        let bytes = envelope.encode();
        self.seen.insert(envelope.id(), now);
        out.push(Output {
            session_id,
            action: Action::Persist(Durable::Message {
                session_id,
                bytes: bytes.clone(),
                outgoing: true,
            }),
        });
        out.push(Output {
            session_id,
            action: Action::Send {
                to: crate::session::Recipient::Members,
                bytes: bytes.clone(),
            },
        });
        self.start_session(group_id, proposal, review, bytes, now, key, entropy, out)?;
        Ok(session_id)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_session(
        &mut self,
        group_id: &GroupId,
        proposal: Proposal,
        review: Review,
        proposal_envelope: Vec<u8>,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let entry = self.groups.get(group_id).ok_or(NodeError::UnknownGroup)?;
        let session_id = proposal.session_id.0;
        if let Some(evicted) = self.capacity.admit_pending(session_id)? {
            if let Some(mut old) = self.sessions.remove(&evicted) {
                let mut step = Step::new(now, key, entropy);
                old.evict(&mut step);
                tag(evicted, step.actions, out);
            }
        }
        let sighashes = proposal.sighashes(&entry.descriptor)?;
        let setup = SessionSetup {
            group: entry.descriptor.clone(),
            key_agg: entry.key_agg.clone(),
            me: entry.me,
            proposal,
            proposal_envelope,
            review: review.clone(),
            sighashes,
        };
        let mut step = Step::new(now, key, entropy);
        step.actions.push(Action::Event(Event::ReviewReady {
            review: Box::new(review),
        }));
        let mut session = Session::start(setup, 0, &mut step);
        // Messages that outran the proposal.
        for envelope in self.early.remove(&session_id).unwrap_or_default() {
            session.on_envelope(envelope, &mut step);
        }
        tag(session_id, step.actions, out);
        self.sessions.insert(session_id, session);
        Ok(())
    }

    fn reject_message(&mut self, rejection: Rejection) -> Rejection {
        *self.rejections.entry(rejection.label()).or_default() += 1;
        rejection
    }

    /// Bytes from the network. Cheap checks first; one signature verification; then routing.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        match self.admit(bytes, now) {
            Ok((envelope, group)) => {
                let session_id = envelope.header.session_id;
                out.push(Output {
                    session_id,
                    action: Action::Persist(Durable::Message {
                        session_id,
                        bytes: bytes.to_vec(),
                        outgoing: false,
                    }),
                });
                self.route(envelope, group, now, key, entropy, out);
                Ok(())
            }
            Err(rejection) => Err(self.reject_message(rejection)),
        }
    }

    /// Everything up to and including the signature check.
    fn admit(&mut self, bytes: &[u8], now: Millis) -> Result<(Envelope, GroupId), Rejection> {
        let envelope = precheck(bytes, MAX_ANY_MESSAGE, now, self.config.window)?;
        let header = envelope.header;
        let entry = self
            .groups
            .get(&header.group_id)
            .ok_or(Rejection::UnknownGroup)?;
        let group = &entry.descriptor;
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
        let known_session = self.sessions.contains_key(&header.session_id);
        if !known_session
            && header.kind != MessageKind::Proposal
            && self.early.len() >= MAX_EARLY_SESSIONS
            && !self.early.contains_key(&header.session_id)
        {
            return Err(Rejection::UnknownSession);
        }
        if !self.seen.insert(envelope.id(), now) {
            return Err(Rejection::Duplicate);
        }
        self.budget
            .spend(&sender_key, 1, now)
            .map_err(|e| Rejection::RateLimited(e.to_string()))?;
        envelope
            .verify_signature(group)
            .map_err(|e| Rejection::Signature(e.to_string()))?;
        Ok((envelope, header.group_id))
    }

    fn route(
        &mut self,
        envelope: Envelope,
        group_id: GroupId,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        let session_id = envelope.header.session_id;
        if let Some(session) = self.sessions.get_mut(&session_id) {
            let mut step = Step::new(now, key, entropy);
            session.on_envelope(envelope, &mut step);
            tag(session_id, step.actions, out);
            return;
        }
        if envelope.header.kind == MessageKind::Proposal {
            if let Err(error) = self.accept_proposal(&envelope, &group_id, now, key, entropy, out) {
                out.push(Output {
                    session_id,
                    action: Action::Event(Event::ProposalRefused {
                        member: envelope.header.sender,
                        error: error.to_string(),
                    }),
                });
            }
            return;
        }
        let early = self.early.entry(session_id).or_default();
        if early.len() < MAX_EARLY_PER_SESSION {
            early.push(envelope);
        }
    }

    fn accept_proposal(
        &mut self,
        envelope: &Envelope,
        group_id: &GroupId,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(NodeError::UnknownGroup)?;
        let group = entry.descriptor.clone();
        let proposer_key = group.members[envelope.header.sender as usize];
        self.proposal_rate.check(&proposer_key, now)?;
        let (pow_nonce, proposal_bytes) = split_proposal_payload(&envelope.payload)?;
        let proposal = Proposal::decode(proposal_bytes, group.limits.max_message_bytes as usize)
            .map_err(|e| NodeError::Proposal(ProposalError::Decode(e)))?;
        check_admission_work(&group.admission, &proposal.review_digest(), Some(pow_nonce))?;
        if proposal.session_id.0 != envelope.header.session_id
            || proposal.proposer != envelope.header.sender
        {
            return Err(NodeError::ProposalEnvelopeMismatch);
        }
        let review = proposal.validate(&group, now)?;
        entry.last_sequence = Some(
            entry
                .last_sequence
                .map_or(proposal.sequence, |s| s.max(proposal.sequence)),
        );
        self.start_session(
            group_id,
            proposal,
            review,
            envelope.encode(),
            now,
            key,
            entropy,
            out,
        )
    }

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
        tag(*session_id, step.actions, out);
        // Approved sessions no longer count as pending (never evicted).
        let _already_active = self.capacity.promote(session_id);
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
        tag(*session_id, step.actions, out);
        Ok(())
    }

    pub fn tick(
        &mut self,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) {
        for (id, session) in self.sessions.iter_mut() {
            if session.next_deadline().is_some_and(|d| d <= now) {
                let mut step = Step::new(now, key, entropy);
                session.tick(&mut step);
                tag(*id, step.actions, out);
            }
        }
        let closed: Vec<[u8; 32]> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            self.capacity.remove(&id);
            // Closed sessions live on in the store; in memory only while peers may still be
            // finishing (until the proposal's expiry plus the replay window).
            let expired = self.sessions[&id].proposal().expires_ms + self.config.window.past_ms;
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
            tag(*id, step.actions, out);
        }
    }

    /// Rebuilds a session after a restart from what the store kept: the proposal envelope, the
    /// last attempt this node took part in (released nonces or sent any message: its secret
    /// nonces died with the process, and a new message in that attempt would contradict the
    /// old one, so it is announced as aborted and the session resumes at the next attempt), the
    /// user's approval, and the signed transaction if signing had finished.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_session(
        &mut self,
        proposal_envelope: &[u8],
        last_active_attempt: Option<u32>,
        approved: bool,
        signed_tx: Option<Transaction>,
        now: Millis,
        key: &PrivateKey,
        entropy: &mut dyn Entropy,
        out: &mut Vec<Output>,
    ) -> Result<[u8; 32], NodeError> {
        let envelope = Envelope::decode(proposal_envelope, MAX_ANY_MESSAGE)
            .map_err(|e| NodeError::Proposal(ProposalError::Decode(e)))?;
        let group_id = envelope.header.group_id;
        let entry = self.groups.get(&group_id).ok_or(NodeError::UnknownGroup)?;
        let group = entry.descriptor.clone();
        envelope
            .verify_signature(&group)
            .map_err(|_| NodeError::ProposalEnvelopeMismatch)?;
        let (_pow_nonce, proposal_bytes) = split_proposal_payload(&envelope.payload)?;
        let proposal = Proposal::decode(proposal_bytes, MAX_ANY_MESSAGE)
            .map_err(|e| NodeError::Proposal(ProposalError::Decode(e)))?;
        proposal.verify_signature(&group)?;
        // Validation against the proposal's own creation time: expiry is the session's job.
        let review = proposal.validate(&group, proposal.created_ms)?;
        let session_id = proposal.session_id.0;
        self.seen.insert(envelope.id(), now);
        let sighashes = proposal.sighashes(&group)?;
        let setup = SessionSetup {
            group: group.clone(),
            key_agg: entry.key_agg.clone(),
            me: entry.me,
            proposal,
            proposal_envelope: proposal_envelope.to_vec(),
            review: review.clone(),
            sighashes,
        };
        let mut step = Step::new(now, key, entropy);
        let first_attempt = last_active_attempt.map_or(0, |a| a + 1);
        let mut session = Session::start(setup, first_attempt, &mut step);
        if let Some(abandoned) = last_active_attempt {
            session.announce_restart(abandoned, &mut step);
        }
        if let Some(tx) = signed_tx {
            session.restore_signed(tx, &mut step);
        } else if approved {
            session.approve(&review.digest, &mut step)?;
        } else {
            // Still waiting for this user's decision: show it again.
            step.actions.push(Action::Event(Event::ReviewReady {
                review: Box::new(review),
            }));
        }
        let _ = self.capacity.admit_pending(session_id);
        if approved {
            let _ = self.capacity.promote(&session_id);
        }
        tag(session_id, step.actions, out);
        self.sessions.insert(session_id, session);
        Ok(session_id)
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
            tag(*session_id, step.actions, out);
        }
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

fn tag(session_id: [u8; 32], actions: Vec<Action>, out: &mut Vec<Output>) {
    out.extend(
        actions
            .into_iter()
            .map(|action| Output { session_id, action }),
    );
}
