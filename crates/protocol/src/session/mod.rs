//! One signing session (one proposal) as one participant runs it: a sans-IO state machine.
//!
//! Inputs are method calls (`on_envelope`, `approve`, `reject`, `tick`, `broadcast_observed`,
//! `answer_pull`) with the time passed in; outputs are `Action`s the driver executes IN ORDER.
//! A `Action::Persist` must be durable before any later `Action::Send` of the same batch leaves
//! the process, and if it fails the driver stops the batch and tells the node
//! (`Node::persist_failed`), which drops the session from memory: nothing it guarded is ever
//! sent, not even by a later resend (DESIGN §4).
//!
//! Attempt flow: [round 0: commitments] → round 1: public nonces (+ salt share), released
//! automatically → election → round 2: partial signatures, only after `approve(digest)` for
//! exactly the reviewed proposal → aggregate and verify → `Completed` + failover schedule.
//!
//! Co-signers need not be online together: an attempt stays open across absences (silence is
//! recorded per phase, never an abort), messages are resent with backoff and can be pulled by a
//! member coming back, and the user approves whenever they like. An attempt ends only for a
//! reason every member can act on: a restart (the member's secret nonces are gone), or blame
//! evidence that every receiver verifies itself. A new attempt has fresh nonces from everyone;
//! a secret nonce is consumed by signing and never stored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lotus::hash::sha256;
use lotus::schnorr::Signature;
use lotus::tx::Transaction;
use lotus::PrivateKey;
use musig::{
    AggregatedNonce, KeyAggContext, PartialSignature, SecretNonce, Session as MusigSession,
};

use crate::audit_head::SignedHead;
use crate::election::{derive_salt, elect, Election, ElectionInput, ElectionMethod};
use crate::envelope::{Envelope, Header, MessageKind};
use crate::evidence::{election_penalties, Blame, Evidence, Offence};
use crate::failover::{Failover, FailoverEvent, Millis};
use crate::group::{GroupDescriptor, GroupId};
use crate::messages::{AbortCode, Commitment, Completed, Nonces, Partials, Reject};
use crate::pool::{pooled_nonces, salt_commitment};
use crate::proposal::{Proposal, Review};
use crate::Entropy;

mod attempt;
mod inbound;
mod rounds;

/// How many attempts a session makes before giving up (each restart of a member costs one).
pub const MAX_ATTEMPTS: u32 = 64;
/// Restart notices per member and session that we follow after the attempt's election salt
/// was known. Each is counted against the member (reputation); one more ends the session, so
/// a member can't keep re-rolling the salted election, and nobody waits for it forever.
pub const MAX_REROLLS_PER_MEMBER: u32 = 8;
/// Messages held for attempts we have not reached yet, per member.
const MAX_FUTURE_PER_MEMBER: usize = 8;
/// Resends back off up to this multiple of the base interval.
const MAX_RESEND_BACKOFF: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Commitments,
    Nonces,
    Signatures,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Commitments => "commitments",
            Phase::Nonces => "nonces",
            Phase::Signatures => "signatures",
        }
    }
}

/// Why an attempt or a session ended without a signature. Typed so the UI can say it plainly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    RejectedBy {
        member: u16,
        reason: String,
    },
    InvalidPartial {
        member: u16,
    },
    Equivocation {
        member: u16,
    },
    /// The proposer signed two different proposals for this session: never signed.
    ConflictingProposals {
        proposer: u16,
    },
    MalformedContribution {
        member: u16,
    },
    Expired,
    /// The store refused a nonce as already used: something is badly wrong; never retried.
    NonceRegistryConflict,
    /// A participant (possibly this one) restarted after releasing nonces for the attempt.
    Restart {
        member: u16,
    },
    /// A member restarted more attempts after their salt was known than anyone may.
    TooManyRestarts {
        member: u16,
    },
    /// The public nonces summed to the point at infinity.
    DegenerateNonces,
    /// The proposal named pool entries a member's pool does not have (every member sees the
    /// same pool, so all move to an interactive attempt; nobody is blamed).
    PoolUnusable,
    AttemptsExhausted,
    /// Dropped to make room: too many sessions were pending approval.
    Evicted,
}

impl AbortReason {
    /// Whether a new attempt can fix it (a rejection, expiry or registry conflict cannot).
    /// The member a verified blame names, for reasons that come from evidence.
    pub fn culprit(&self) -> Option<u16> {
        match self {
            AbortReason::InvalidPartial { member }
            | AbortReason::Equivocation { member }
            | AbortReason::MalformedContribution { member } => Some(*member),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            AbortReason::RejectedBy { .. }
                | AbortReason::ConflictingProposals { .. }
                | AbortReason::TooManyRestarts { .. }
                | AbortReason::Expired
                | AbortReason::NonceRegistryConflict
                | AbortReason::AttemptsExhausted
                | AbortReason::Evicted
        )
    }
}

/// State the driver must make durable before the messages that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durable {
    /// The proposal this node accepted for the session (exact envelope bytes). The only way a
    /// session row is made: a proposal that was refused is never stored as the session's.
    SessionAccepted {
        session_id: [u8; 32],
        envelope: Vec<u8>,
        outgoing: bool,
    },
    /// One row per released public nonce; a repeated nonce hash anywhere is a conflict.
    NonceReleased {
        session_id: [u8; 32],
        attempt: u32,
        input: u16,
        nonce_hash: [u8; 32],
    },
    /// The attempt may now produce a partial signature (released → signing), for the proposal
    /// with this review digest: the store checks that the user approved exactly this digest
    /// and that it is the digest of the proposal it holds for the session.
    AttemptSigning {
        session_id: [u8; 32],
        attempt: u32,
        digest: [u8; 32],
    },
    /// The attempt ended (signed or aborted).
    AttemptClosed {
        session_id: [u8; 32],
        attempt: u32,
        signed: bool,
    },
    /// A signed envelope sent or received, exact bytes.
    Message {
        session_id: [u8; 32],
        bytes: Vec<u8>,
        outgoing: bool,
    },
    /// The finished transaction.
    Signed { session_id: [u8; 32], tx: Vec<u8> },
    /// The user rejected the proposal: durable before the Reject leaves, so a restart never
    /// resumes (or signs) it, and the store refuses any later signing mark.
    Rejected {
        session_id: [u8; 32],
        member: u16,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Every other member of the group.
    Members,
    Member(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A validated proposal is waiting for this user's decision.
    ReviewReady {
        review: Box<Review>,
    },
    /// A proposal that failed validation (not a session; never signed).
    ProposalRefused {
        member: u16,
        error: String,
    },
    AttemptStarted {
        attempt: u32,
    },
    RoundCompleted {
        attempt: u32,
        phase: Phase,
    },
    Elected {
        attempt: u32,
        election: Election,
    },
    /// A member's round-2 message carried a different election proof (reported, not fatal).
    ElectionProofMismatch {
        member: u16,
    },
    Approved,
    /// Another member's approval notice (or its partial signatures) arrived.
    MemberApproved {
        member: u16,
    },
    Blamed {
        blame: Blame,
        evidence: Evidence,
    },
    /// A member's round-1 message carried its signed audit head (signature checked): keep it,
    /// so a later rewrite of that member's log can be noticed.
    PeerAuditHead {
        member: u16,
        head: SignedHead,
    },
    /// Silence: recorded once per phase, never blame and never an abort.
    TimedOut {
        attempt: u32,
        phase: Phase,
        waiting_for: Vec<u16>,
    },
    /// A member restarted an attempt after its election salt was known: counted against it
    /// (a member could otherwise re-roll the salted election until it likes the result);
    /// `refused` once it used up its allowance, which ends the session.
    ForcedReroll {
        member: u16,
        attempt: u32,
        refused: bool,
    },
    AttemptAborted {
        attempt: u32,
        reason: AbortReason,
    },
    Signed {
        attempt: u32,
        txid: [u8; 32],
    },
    Failover(FailoverEvent),
    Closed {
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Confirmed { txid: [u8; 32] },
    Aborted(AbortReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Persist(Durable),
    Send { to: Recipient, bytes: Vec<u8> },
    Broadcast { tx: Transaction },
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("approval is for a different review (digest mismatch): review the proposal again")]
    DigestMismatch,
    #[error("the session is already closed")]
    Closed,
    #[error(
        "your partial signatures already left: the others may still complete the transaction; \
         to stop it, spend one of its inputs first"
    )]
    AlreadySigned,
}

/// What a session is waiting for from one member (the UI shows it next to the member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WaitingFor {
    Approval,
    Commitment,
    Nonces,
    Partials,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub member: u16,
    pub waiting_for: Vec<WaitingFor>,
    /// When an authenticated message from this member last arrived (None: never).
    pub last_heard_ms: Option<Millis>,
}

/// A stored message with its identity, so a second, different one in the slot is detectable.
#[derive(Debug, Clone)]
struct Received<T> {
    value: T,
    envelope: Envelope,
}

struct Attempt {
    number: u32,
    phase: Phase,
    phase_started: Millis,
    /// One per input; taken (consumed) by signing, dropped on abort.
    secret_nonces: Option<Vec<SecretNonce>>,
    my_nonces: Nonces,
    /// What this participant sent in this attempt, resent as-is until the session ends.
    sent: Vec<Vec<u8>>,
    commitments: BTreeMap<u16, Received<Option<Commitment>>>,
    nonces: BTreeMap<u16, Received<Option<Nonces>>>,
    partials: BTreeMap<u16, Received<Option<Partials>>>,
    /// Members whose round-1 contribution checked out (count, commitment).
    nonces_ok: BTreeMap<u16, Nonces>,
    aggregated: Option<Vec<AggregatedNonce>>,
    election: Option<Election>,
    partials_ok: BTreeMap<u16, Vec<PartialSignature>>,
    /// Round-2 contributions proven bad, with their evidence: the attempt ends once every
    /// member's round-2 message is in, so a second culprit is caught in the same attempt.
    partials_bad: BTreeMap<u16, (AbortReason, Evidence)>,
    /// Attempt 0 of a proposal that names pooled nonces: the round-1 slots hold the members'
    /// pool envelopes, and nothing is sent before the partial signatures.
    pooled: bool,
    /// Pooled attempt: each member's salt commitment (from its named pool entry) and the
    /// shares revealed with the partial signatures (a salted election runs once all are in).
    pool_salts: BTreeMap<u16, [u8; 32]>,
    salt_reveals: BTreeMap<u16, [u8; 32]>,
    released_nonces: bool,
    signed: bool,
    /// Whether this phase's silence was already recorded.
    silence_recorded: bool,
}

enum State {
    Running,
    Completed { tx: Transaction, failover: Failover },
    Closed(Outcome),
}

pub struct Session {
    group: Arc<GroupDescriptor>,
    group_id: GroupId,
    key_agg: Arc<KeyAggContext>,
    /// member index → MuSig2 sorted index.
    sorted_index: Vec<usize>,
    me: u16,
    proposal: Proposal,
    proposal_bytes: Vec<u8>,
    /// The proposer's envelope carrying the proposal (resent by the proposer, forwarded to a
    /// member whose messages show it holds another proposal for this session id).
    proposal_envelope: Envelope,
    proposal_envelope_bytes: Vec<u8>,
    review: Review,
    sighashes: Vec<[u8; 32]>,
    penalized: Vec<u16>,
    approved: bool,
    /// Members known to have approved: their notice or their partial signatures arrived.
    approvals: BTreeSet<u16>,
    /// Whether our partial signatures ever left, in any attempt (then a reject can't stop it).
    ever_signed: bool,
    attempt: Attempt,
    state: State,
    next_resend: Millis,
    resend_backoff: u32,
    /// Session-wide messages we sent (approval, abort notices, reject), resent until the end.
    notices: Vec<Vec<u8>>,
    completed_message: Option<Vec<u8>>,
    /// Messages for attempts this participant has not reached yet.
    future: Vec<Envelope>,
    /// Post-salt restart notices followed, per member.
    rerolls: BTreeMap<u16, u32>,
    /// Verified evidence per member and attempt: two attempts with an offence by the same
    /// member end the session (it would misbehave in every attempt).
    offences: BTreeMap<u16, BTreeMap<u32, Evidence>>,
    /// (attempt, to, about) already forwarded, so a conflicting view costs one message each.
    forwarded: BTreeSet<(u32, u16, u16)>,
    /// When each member's last pull was answered.
    pulls_answered: BTreeMap<u16, Millis>,
    /// Our current signed audit head, carried in our round-1 messages.
    audit_head: Option<SignedHead>,
    /// Our pooled secret nonces for attempt 0 (taken from the node's pool for this session
    /// only), until the attempt begins.
    pool_secrets: Option<(Vec<SecretNonce>, [u8; 32])>,
    /// Pool envelopes the node already held when the session opened.
    initial_pools: Vec<Envelope>,
}

/// Everything a new session needs that the node already computed (the proposal validated, its
/// review and sighashes derived).
pub struct SessionSetup {
    pub group: Arc<GroupDescriptor>,
    pub key_agg: Arc<KeyAggContext>,
    pub me: u16,
    pub proposal: Proposal,
    pub proposal_envelope: Envelope,
    pub review: Review,
    pub sighashes: Vec<[u8; 32]>,
    /// Our current signed audit head (from the driver, via the node).
    pub audit_head: Option<SignedHead>,
    /// When the proposal names pooled nonces: our secrets for the entries it names (None if
    /// we no longer hold them: taken by another session, or lost in a restart).
    pub pool_secrets: Option<(Vec<SecretNonce>, [u8; 32])>,
    /// The named pool envelopes the node holds (the others arrive through `on_pool`).
    pub pools: Vec<Envelope>,
}

/// The inputs every step needs: the time, the member key, injected randomness, and the actions
/// produced so far (executed by the driver in order).
pub struct Step<'a> {
    pub now: Millis,
    pub key: &'a PrivateKey,
    pub entropy: &'a mut dyn Entropy,
    pub actions: Vec<Action>,
}

impl<'a> Step<'a> {
    pub fn new(now: Millis, key: &'a PrivateKey, entropy: &'a mut dyn Entropy) -> Self {
        Self {
            now,
            key,
            entropy,
            actions: Vec::new(),
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    fn event(&mut self, event: Event) {
        self.actions.push(Action::Event(event));
    }

    fn send_to(&mut self, to: Recipient, bytes: Vec<u8>) {
        self.actions.push(Action::Send { to, bytes });
    }
}

impl Attempt {
    fn new(
        number: u32,
        phase: Phase,
        now: Millis,
        secret_nonces: Vec<SecretNonce>,
        my_nonces: Nonces,
    ) -> Self {
        Self {
            number,
            phase,
            phase_started: now,
            secret_nonces: Some(secret_nonces),
            my_nonces,
            sent: Vec::new(),
            commitments: BTreeMap::new(),
            nonces: BTreeMap::new(),
            partials: BTreeMap::new(),
            nonces_ok: BTreeMap::new(),
            aggregated: None,
            election: None,
            partials_ok: BTreeMap::new(),
            partials_bad: BTreeMap::new(),
            pooled: false,
            pool_salts: BTreeMap::new(),
            salt_reveals: BTreeMap::new(),
            released_nonces: false,
            signed: false,
            silence_recorded: false,
        }
    }

    fn enter(&mut self, phase: Phase, now: Millis) {
        self.phase = phase;
        self.phase_started = now;
        self.silence_recorded = false;
    }
}

impl Session {
    /// Starts at attempt `first_attempt` (0, or the next one after a restart).
    pub fn start(setup: SessionSetup, first_attempt: u32, step: &mut Step<'_>) -> Self {
        let SessionSetup {
            group,
            key_agg,
            me,
            proposal,
            proposal_envelope,
            review,
            sighashes,
            audit_head,
            pool_secrets,
            pools,
        } = setup;
        let sorted_index = group
            .members
            .iter()
            .map(|k| {
                key_agg
                    .index_of(k)
                    .expect("members are in their own aggregate")
            })
            .collect();
        let penalized = election_penalties(&group, &proposal);
        let proposal_bytes = proposal.encode();
        let proposal_envelope_bytes = proposal_envelope.encode();
        let mut session = Self {
            group_id: group.id(),
            group,
            key_agg,
            sorted_index,
            me,
            proposal,
            proposal_bytes,
            proposal_envelope,
            proposal_envelope_bytes,
            review,
            sighashes,
            penalized,
            approved: false,
            approvals: BTreeSet::new(),
            ever_signed: false,
            attempt: Attempt::new(
                0,
                Phase::Nonces,
                step.now,
                Vec::new(),
                Nonces {
                    salt_share: [0; 32],
                    nonces: Vec::new(),
                    audit_head: None,
                },
            ),
            state: State::Running,
            next_resend: step.now,
            resend_backoff: 0,
            notices: Vec::new(),
            completed_message: None,
            future: Vec::new(),
            rerolls: BTreeMap::new(),
            offences: BTreeMap::new(),
            forwarded: BTreeSet::new(),
            pulls_answered: BTreeMap::new(),
            audit_head,
            pool_secrets,
            initial_pools: pools,
        };
        session.begin_attempt(first_attempt, step);
        session
    }

    pub fn session_id(&self) -> [u8; 32] {
        self.proposal.session_id.0
    }

    pub fn group_id(&self) -> GroupId {
        self.group_id
    }

    pub fn me(&self) -> u16 {
        self.me
    }

    pub fn review(&self) -> &Review {
        &self.review
    }

    /// The review digest every message of this session is bound to.
    pub fn digest(&self) -> [u8; 32] {
        self.review.digest
    }

    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }

    pub fn proposal_envelope(&self) -> &[u8] {
        &self.proposal_envelope_bytes
    }

    pub fn attempt(&self) -> u32 {
        self.attempt.number
    }

    pub fn phase(&self) -> Phase {
        self.attempt.phase
    }

    pub fn election(&self) -> Option<&Election> {
        self.attempt.election.as_ref()
    }

    pub fn is_approved(&self) -> bool {
        self.approved
    }

    /// Members known to have approved (including this one).
    pub fn approvals(&self) -> &BTreeSet<u16> {
        &self.approvals
    }

    /// Whether this participant released partial signatures in the current attempt.
    pub fn has_signed(&self) -> bool {
        self.attempt.signed
    }

    /// The driver signed a new audit head: later round-1 messages carry it.
    pub fn set_audit_head(&mut self, head: Option<SignedHead>) {
        self.audit_head = head;
    }

    /// Whether our partial signatures ever left for this session.
    pub fn ever_signed(&self) -> bool {
        self.ever_signed
    }

    /// The finished transaction once signatures are complete.
    pub fn signed_tx(&self) -> Option<&Transaction> {
        match &self.state {
            State::Completed { tx, .. } => Some(tx),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Closed(outcome) => Some(outcome),
            _ => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running)
    }

    /// Members whose message for the current phase has not (validly) arrived.
    pub fn waiting_for(&self) -> Vec<u16> {
        let a = &self.attempt;
        (0..self.group.members.len() as u16)
            .filter(|m| match a.phase {
                Phase::Commitments => !a.commitments.contains_key(m),
                Phase::Nonces => !a.nonces_ok.contains_key(m),
                Phase::Signatures => !a.partials_ok.contains_key(m),
            })
            .collect()
    }

    /// Whom the session waits for and for what, with when each was last heard from
    /// (`last_heard` maps a member to its last authenticated message, from the node).
    pub fn waiting(&self, last_heard: impl Fn(u16) -> Option<Millis>) -> Vec<Waiting> {
        if !self.is_running() {
            return Vec::new();
        }
        let a = &self.attempt;
        (0..self.group.members.len() as u16)
            .filter_map(|m| {
                let mut waiting_for = Vec::new();
                match a.phase {
                    Phase::Commitments if !a.commitments.contains_key(&m) => {
                        waiting_for.push(WaitingFor::Commitment)
                    }
                    Phase::Nonces if !a.nonces_ok.contains_key(&m) => {
                        waiting_for.push(WaitingFor::Nonces)
                    }
                    Phase::Signatures
                        if !a.partials_ok.contains_key(&m) && self.approvals.contains(&m) =>
                    {
                        waiting_for.push(WaitingFor::Partials)
                    }
                    _ => {}
                }
                if !self.approvals.contains(&m) {
                    waiting_for.push(WaitingFor::Approval);
                }
                (!waiting_for.is_empty()).then(|| Waiting {
                    member: m,
                    waiting_for,
                    last_heard_ms: if m == self.me { None } else { last_heard(m) },
                })
            })
            .collect()
    }

    /// The broadcast failover schedule once the transaction is signed (`None` before, and
    /// after the session closed).
    pub fn failover_schedule(&self) -> Option<Vec<crate::failover::Slot>> {
        match &self.state {
            State::Completed { failover, .. } => Some(failover.schedule()),
            _ => None,
        }
    }

    /// The next time `tick` has work: resend, a phase's silence record, failover slot, expiry.
    pub fn next_deadline(&self) -> Option<Millis> {
        match &self.state {
            State::Closed(_) => None,
            State::Completed { failover, .. } => failover
                .next_deadline()
                .into_iter()
                .chain([self.next_resend])
                .min(),
            State::Running => {
                let mut deadline = self.next_resend.min(self.proposal.expires_ms);
                if self.attempt.phase != Phase::Signatures && !self.attempt.silence_recorded {
                    deadline =
                        deadline.min(self.attempt.phase_started + self.group.timeouts.round_ms);
                }
                Some(deadline)
            }
        }
    }

    pub(super) fn resend_interval(&self) -> Millis {
        (self.group.timeouts.round_ms / 4).max(1)
    }

    /// Schedules the next resend, backing off while nothing changes.
    fn schedule_resend(&mut self, now: Millis) {
        self.next_resend = now + (self.resend_interval() << self.resend_backoff);
        self.resend_backoff = (self.resend_backoff + 1).min(MAX_RESEND_BACKOFF);
    }

    /// Something moved: resend soon again.
    pub(super) fn progressed(&mut self, now: Millis) {
        self.resend_backoff = 0;
        self.next_resend = now + self.resend_interval();
    }
}

impl Session {
    // ----- inputs from the user and the clock ------------------------------------------------

    /// The user approved exactly this review: durable (the driver records it before calling),
    /// independent of attempts. Signs as soon as round 1 is complete.
    pub fn approve(&mut self, digest: &[u8; 32], step: &mut Step<'_>) -> Result<(), SessionError> {
        self.check_approval(digest)?;
        if !self.approved {
            self.approved = true;
            self.approvals.insert(self.me);
            step.event(Event::Approved);
            let notice = self.sign(MessageKind::Approved, Vec::new(), step);
            let bytes = self.log_and_send(&notice, step);
            self.notices.push(bytes);
        }
        if matches!(self.state, State::Running) && self.attempt.phase == Phase::Signatures {
            self.release_partials(step);
            self.advance(step);
        }
        Ok(())
    }

    /// What `approve` would refuse, without doing anything (the driver asks before it records
    /// the approval durably).
    pub fn check_approval(&self, digest: &[u8; 32]) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        if *digest != self.review.digest {
            return Err(SessionError::DigestMismatch);
        }
        Ok(())
    }

    /// The user refused: a signed Reject to everyone, and the session ends. Refused once our
    /// partial signatures left in any attempt: the others might still complete without us.
    pub fn reject(&mut self, reason: &str, step: &mut Step<'_>) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        if self.ever_signed || !matches!(self.state, State::Running) {
            return Err(SessionError::AlreadySigned);
        }
        let reason: String = reason
            .chars()
            .take(crate::messages::MAX_REASON_BYTES / 4)
            .collect();
        step.push(Action::Persist(Durable::Rejected {
            session_id: self.session_id(),
            member: self.me,
            reason: reason.clone(),
        }));
        let envelope = self.sign(
            MessageKind::Reject,
            Reject {
                reason: reason.clone(),
            }
            .encode(),
            step,
        );
        let bytes = self.log_and_send(&envelope, step);
        self.notices.push(bytes);
        let why = AbortReason::RejectedBy {
            member: self.me,
            reason,
        };
        self.leave_attempt(why.clone(), step);
        self.close(Outcome::Aborted(why), step);
        Ok(())
    }

    /// Time passes: resends, a phase's silence record, failover slots, expiry.
    pub fn tick(&mut self, step: &mut Step<'_>) {
        let now = step.now;
        match &self.state {
            State::Closed(_) => {}
            State::Completed { .. } => {
                if now >= self.next_resend {
                    if let Some(bytes) = self.completed_message.clone() {
                        step.send_to(Recipient::Members, bytes);
                    }
                    self.schedule_resend(now);
                }
                self.poll_failover(step);
            }
            State::Running => {
                if now >= self.proposal.expires_ms {
                    self.leave_attempt(AbortReason::Expired, step);
                    return self.close(Outcome::Aborted(AbortReason::Expired), step);
                }
                let phase = self.attempt.phase;
                let stuck = phase != Phase::Signatures
                    && now >= self.attempt.phase_started + self.group.timeouts.round_ms;
                if stuck && !self.attempt.silence_recorded {
                    // Recorded for reputation; the attempt stays open for the absent member.
                    self.attempt.silence_recorded = true;
                    step.event(Event::TimedOut {
                        attempt: self.attempt.number,
                        phase,
                        waiting_for: self.waiting_for(),
                    });
                }
                if let Some(reason) = self.proven_offender().filter(|_| stuck) {
                    // Our proof goes out once more, so every member can end the same way.
                    for bytes in &self.notices {
                        step.send_to(Recipient::Members, bytes.clone());
                    }
                    self.leave_attempt(reason.clone(), step);
                    return self.close(Outcome::Aborted(reason), step);
                }
                if now >= self.next_resend {
                    self.resend_all(Recipient::Members, step);
                    self.schedule_resend(now);
                }
            }
        }
    }

    /// The latest offence this session holds verified proof of, as an abort reason. Silence
    /// alone is never blame; but once a member is proven to misbehave, an n-of-n session that
    /// then stops moving for a whole round cannot be trusted to finish (the offender may feed
    /// some members and starve others), and waiting until expiry would only let it stall the
    /// group: a stuck round ends the session with the proven reason.
    fn proven_offender(&self) -> Option<AbortReason> {
        self.offences
            .iter()
            .filter_map(|(member, attempts)| {
                let (attempt, evidence) = attempts.iter().next_back()?;
                Some((
                    *attempt,
                    inbound::reason_for_offence(evidence.offence, *member),
                ))
            })
            .max_by_key(|(attempt, _)| *attempt)
            .map(|(_, reason)| reason)
    }

    /// Everything we signed that the others may still need, as-is.
    fn resend_all(&self, to: Recipient, step: &mut Step<'_>) {
        if self.me == self.proposal.proposer {
            step.send_to(to.clone(), self.proposal_envelope_bytes.clone());
            if self.attempt.pooled {
                // The pools it named, for members who never saw them.
                for r in self.attempt.nonces.values() {
                    step.send_to(to.clone(), r.envelope.encode());
                }
            }
        }
        for bytes in self.notices.iter().chain(&self.attempt.sent) {
            step.send_to(to.clone(), bytes.clone());
        }
        if let Some(bytes) = &self.completed_message {
            step.send_to(to, bytes.clone());
        }
    }

    /// A member asked for what it missed. Answered with the signed bytes we hold (ours and the
    /// others'), at most once per resend interval per member.
    pub fn answer_pull(&mut self, requester: u16, since_attempt: u32, step: &mut Step<'_>) {
        let now = step.now;
        if self
            .pulls_answered
            .get(&requester)
            .is_some_and(|&at| now < at + self.resend_interval())
        {
            return;
        }
        self.pulls_answered.insert(requester, now);
        let to = Recipient::Member(requester);
        step.send_to(to.clone(), self.proposal_envelope_bytes.clone());
        for bytes in &self.notices {
            step.send_to(to.clone(), bytes.clone());
        }
        if let Some(bytes) = &self.completed_message {
            step.send_to(to.clone(), bytes.clone());
        }
        if self.attempt.number < since_attempt {
            return;
        }
        let a = &self.attempt;
        let filed = a
            .commitments
            .values()
            .map(|r| &r.envelope)
            .chain(a.nonces.values().map(|r| &r.envelope))
            .chain(a.partials.values().map(|r| &r.envelope));
        for envelope in filed {
            if envelope.header.sender != requester {
                step.send_to(to.clone(), envelope.encode());
            }
        }
    }

    /// The chain backend saw the transaction (the Lotus txid excludes scriptSigs, so it is the
    /// proposal's txid whoever signed and broadcast it).
    pub fn broadcast_observed(&mut self, txid: &[u8; 32], step: &mut Step<'_>) {
        if self.is_closed() || *txid != self.review.txid.0 {
            return;
        }
        if let State::Completed { failover, .. } = &mut self.state {
            if let Some(event) = failover.observe_broadcast(*txid) {
                step.event(Event::Failover(event));
            }
        } else {
            // Someone else finished and broadcast it: our attempt ends unsigned.
            self.attempt.secret_nonces = None;
            if self.attempt.released_nonces {
                step.push(Action::Persist(Durable::AttemptClosed {
                    session_id: self.session_id(),
                    attempt: self.attempt.number,
                    signed: false,
                }));
            }
        }
        self.close(Outcome::Confirmed { txid: *txid }, step);
    }

    /// After a restart: this participant released nonces in `attempt` and lost them with the
    /// process. Tell everyone (and keep telling, like any notice), so they move on too.
    pub fn announce_restart(&mut self, abandoned_attempt: u32, step: &mut Step<'_>) {
        let header = Header::new(
            MessageKind::AttemptAborted,
            self.group_id,
            self.session_id(),
            self.review.digest,
            abandoned_attempt,
            self.me,
            step.now,
        );
        let envelope = Envelope::sign(header, AbortCode::Restart.encode(), step.key);
        let bytes = self.log_and_send(&envelope, step);
        self.notices.push(bytes);
        step.event(Event::AttemptAborted {
            attempt: abandoned_attempt,
            reason: AbortReason::Restart { member: self.me },
        });
    }

    /// After a restart: our partials left in an earlier process, so a reject can't stop it.
    pub fn restore_signed_before(&mut self) {
        self.ever_signed = true;
    }

    /// Restores a session whose transaction was already signed before a restart.
    pub fn restore_signed(&mut self, tx: Transaction, step: &mut Step<'_>) {
        self.attempt.secret_nonces = None;
        self.ever_signed = true;
        let priority = self
            .attempt
            .election
            .as_ref()
            .map(|e| e.priority.clone())
            .unwrap_or_else(|| (0..self.group.members.len() as u16).collect());
        let failover = Failover::new(
            priority,
            self.me,
            step.now,
            self.group.timeouts.broadcast_slot_ms,
            self.group.parallel_broadcasts as usize,
        );
        self.state = State::Completed { tx, failover };
        self.poll_failover(step);
    }

    /// Capacity: the node dropped this pending session for a newer one.
    pub fn evict(&mut self, step: &mut Step<'_>) {
        if !self.is_closed() {
            self.leave_attempt(AbortReason::Evicted, step);
            self.close(Outcome::Aborted(AbortReason::Evicted), step);
        }
    }

    /// The store refused a nonce as already used (DESIGN §4): abort for good.
    pub fn nonce_conflict(&mut self, step: &mut Step<'_>) {
        if !self.is_closed() {
            self.leave_attempt(AbortReason::NonceRegistryConflict, step);
            self.close(Outcome::Aborted(AbortReason::NonceRegistryConflict), step);
        }
    }
}
