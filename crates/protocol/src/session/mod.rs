//! One signing session (one proposal) as one participant runs it: a sans-IO state machine.
//!
//! Inputs are method calls (`on_envelope`, `approve`, `reject`, `tick`, `broadcast_observed`)
//! with the time passed in; outputs are `Action`s the driver executes IN ORDER. A
//! `Action::Persist` must be durable before any later `Action::Send` of the same batch leaves
//! the process — that is how the used-nonce registry and the signing mark guard the messages
//! they precede (DESIGN §4).
//!
//! Attempt flow: [round 0: commitments] → round 1: public nonces (+ salt share), released
//! automatically → election → round 2: partial signatures, only after `approve(digest)` for
//! exactly the reviewed proposal → aggregate and verify → `Completed` + failover schedule.
//! Any abort of an attempt (timeout, blame, a peer's restart) moves to a new attempt with fresh
//! nonces from everyone; a secret nonce is consumed by signing and never stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use lotus::hash::sha256;
use lotus::schnorr::Signature;
use lotus::tx::Transaction;
use lotus::PrivateKey;
use musig::{
    AggregatedNonce, KeyAggContext, PartialSignature, SecretNonce, Session as MusigSession,
};

use crate::election::{derive_salt, elect, Election, ElectionInput, ElectionMethod};
use crate::envelope::{Envelope, Header, MessageKind};
use crate::evidence::{penalized_members, Blame, Evidence, Offence};
use crate::failover::{Failover, FailoverEvent, Millis};
use crate::group::{GroupDescriptor, GroupId};
use crate::messages::{AbortCode, Commitment, Completed, Nonces, Partials, Reject};
use crate::proposal::{Proposal, Review};
use crate::Entropy;

mod attempt;
mod rounds;

/// How many attempts a session makes before giving up.
pub const MAX_ATTEMPTS: u32 = 8;

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
    Timeout {
        phase: Phase,
        waiting_for: Vec<u16>,
    },
    InvalidPartial {
        member: u16,
    },
    Equivocation {
        member: u16,
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
    /// A participant abandoned the attempt after its own timeout.
    PeerTimedOut {
        member: u16,
    },
    /// Another participant moved on to a later attempt.
    Superseded {
        by: u16,
        attempt: u32,
    },
    /// The public nonces summed to the point at infinity.
    DegenerateNonces,
    AttemptsExhausted,
    /// Dropped to make room: too many sessions were pending approval.
    Evicted,
}

impl AbortReason {
    /// Whether a new attempt can fix it (a rejection, expiry or registry conflict cannot).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            AbortReason::RejectedBy { .. }
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
    /// One row per released public nonce; a repeated nonce hash anywhere is a conflict.
    NonceReleased {
        session_id: [u8; 32],
        attempt: u32,
        input: u16,
        nonce_hash: [u8; 32],
    },
    /// The attempt may now produce a partial signature (released → signing).
    AttemptSigning { session_id: [u8; 32], attempt: u32 },
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
    Blamed {
        blame: Blame,
        evidence: Evidence,
    },
    /// Silence: recorded per phase, never blame.
    TimedOut {
        attempt: u32,
        phase: Phase,
        waiting_for: Vec<u16>,
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
    #[error("every co-signer already signed; the transaction can no longer be stopped here")]
    AlreadySigned,
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
    released_nonces: bool,
    signed: bool,
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
    /// The proposer's envelope carrying the proposal, resent by the proposer.
    proposal_envelope: Vec<u8>,
    review: Review,
    sighashes: Vec<[u8; 32]>,
    penalized: Vec<u16>,
    approved: bool,
    attempt: Attempt,
    state: State,
    next_resend: Millis,
    completed_message: Option<Vec<u8>>,
}

/// Everything a new session needs that the node already computed (the proposal validated, its
/// review and sighashes derived).
pub struct SessionSetup {
    pub group: Arc<GroupDescriptor>,
    pub key_agg: Arc<KeyAggContext>,
    pub me: u16,
    pub proposal: Proposal,
    pub proposal_envelope: Vec<u8>,
    pub review: Review,
    pub sighashes: Vec<[u8; 32]>,
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
            released_nonces: false,
            signed: false,
        }
    }

    fn enter(&mut self, phase: Phase, now: Millis) {
        self.phase = phase;
        self.phase_started = now;
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
        let penalized = if group.election == ElectionMethod::ReputationAware {
            penalized_members(&group, &proposal)
        } else {
            Vec::new()
        };
        let proposal_bytes = proposal.encode();
        let mut session = Self {
            group_id: group.id(),
            group,
            key_agg,
            sorted_index,
            me,
            proposal,
            proposal_bytes,
            proposal_envelope,
            review,
            sighashes,
            penalized,
            approved: false,
            attempt: Attempt::new(
                0,
                Phase::Nonces,
                step.now,
                Vec::new(),
                Nonces {
                    salt_share: [0; 32],
                    nonces: Vec::new(),
                },
            ),
            state: State::Running,
            next_resend: step.now,
            completed_message: None,
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

    pub fn proposal(&self) -> &Proposal {
        &self.proposal
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

    /// Whether this participant released partial signatures in the current attempt.
    pub fn has_signed(&self) -> bool {
        self.attempt.signed
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

    /// The next time `tick` has work: resend, round timeout, failover slot or expiry.
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
                if self.attempt.phase != Phase::Signatures {
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
}

impl Session {
    // ----- inputs ---------------------------------------------------------------------------

    /// A verified envelope for this session (signature, group and membership already checked
    /// by the node).
    pub fn on_envelope(&mut self, envelope: Envelope, step: &mut Step<'_>) {
        if self.is_closed() {
            return;
        }
        let header = envelope.header;
        match header.kind {
            MessageKind::Proposal => {}
            MessageKind::Reject => {
                if matches!(self.state, State::Running) {
                    let reason = Reject::decode(&envelope.payload)
                        .map(|r| r.reason)
                        .unwrap_or_default();
                    self.leave_attempt(
                        AbortReason::RejectedBy {
                            member: header.sender,
                            reason: reason.clone(),
                        },
                        step,
                    );
                    self.close(
                        Outcome::Aborted(AbortReason::RejectedBy {
                            member: header.sender,
                            reason,
                        }),
                        step,
                    );
                }
            }
            MessageKind::Completed => self.on_completed(&envelope, step),
            MessageKind::Partials if matches!(self.state, State::Completed { .. }) => {
                // Signatures are done, but a late round-2 message still gets checked so a
                // wrong election proof or an invalid partial is reported, not forgotten.
                if header.attempt == self.attempt.number && self.store(envelope, step).is_none() {
                    let _already_finished = self.check_partials(step);
                }
            }
            _ if !matches!(self.state, State::Running) => {}
            _ if header.attempt < self.attempt.number => {}
            _ if header.attempt >= MAX_ATTEMPTS => {}
            _ if header.attempt > self.attempt.number => {
                // Someone moved on: this attempt cannot finish without them. Follow.
                self.leave_attempt(
                    AbortReason::Superseded {
                        by: header.sender,
                        attempt: header.attempt,
                    },
                    step,
                );
                if step.now >= self.proposal.expires_ms {
                    self.close(Outcome::Aborted(AbortReason::Expired), step);
                    return;
                }
                self.begin_attempt(header.attempt, step);
                if matches!(self.state, State::Running) && self.attempt.number == header.attempt {
                    self.on_envelope(envelope, step);
                }
            }
            MessageKind::AttemptAborted => {
                let member = header.sender;
                let reason = match AbortCode::decode(&envelope.payload) {
                    Ok(AbortCode::Restart) => AbortReason::Restart { member },
                    _ => AbortReason::PeerTimedOut { member },
                };
                self.abort_attempt(reason, step);
            }
            _ => match self.store(envelope, step) {
                Some(reason) => self.abort_attempt(reason, step),
                None => self.advance(step),
            },
        }
    }

    /// Files a message in its slot. A second, different message in an occupied slot is
    /// equivocation (returned as the reason to abort); an identical one is a harmless resend.
    /// The user approved exactly this review. Signs as soon as round 1 is complete.
    pub fn approve(&mut self, digest: &[u8; 32], step: &mut Step<'_>) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        if *digest != self.review.digest {
            return Err(SessionError::DigestMismatch);
        }
        if !self.approved {
            self.approved = true;
            step.event(Event::Approved);
        }
        if matches!(self.state, State::Running) && self.attempt.phase == Phase::Signatures {
            self.release_partials(step);
            self.advance(step);
        }
        Ok(())
    }

    /// The user refused: a signed Reject to everyone, and the session ends.
    pub fn reject(&mut self, reason: &str, step: &mut Step<'_>) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        if !matches!(self.state, State::Running) {
            return Err(SessionError::AlreadySigned);
        }
        let reason: String = reason
            .chars()
            .take(crate::messages::MAX_REASON_BYTES / 4)
            .collect();
        let envelope = self.sign(
            MessageKind::Reject,
            Reject {
                reason: reason.clone(),
            }
            .encode(),
            step,
        );
        self.log_and_send(&envelope, step);
        let why = AbortReason::RejectedBy {
            member: self.me,
            reason,
        };
        self.leave_attempt(why.clone(), step);
        self.close(Outcome::Aborted(why), step);
        Ok(())
    }

    /// Time passes: resends, round timeouts, failover slots, expiry.
    pub fn tick(&mut self, step: &mut Step<'_>) {
        let now = step.now;
        match &self.state {
            State::Closed(_) => {}
            State::Completed { .. } => {
                if now >= self.next_resend {
                    if let Some(bytes) = &self.completed_message {
                        step.actions.push(Action::Send {
                            to: Recipient::Members,
                            bytes: bytes.clone(),
                        });
                    }
                    self.next_resend = now + self.resend_interval();
                }
                self.poll_failover(step);
            }
            State::Running => {
                if now >= self.proposal.expires_ms {
                    self.leave_attempt(AbortReason::Expired, step);
                    return self.close(Outcome::Aborted(AbortReason::Expired), step);
                }
                let phase = self.attempt.phase;
                if phase != Phase::Signatures
                    && now >= self.attempt.phase_started + self.group.timeouts.round_ms
                {
                    let waiting_for = self.waiting_for();
                    step.event(Event::TimedOut {
                        attempt: self.attempt.number,
                        phase,
                        waiting_for: waiting_for.clone(),
                    });
                    let notice = self.sign(
                        MessageKind::AttemptAborted,
                        AbortCode::Timeout.encode(),
                        step,
                    );
                    step.push(Action::Send {
                        to: Recipient::Members,
                        bytes: notice.encode(),
                    });
                    return self.abort_attempt(AbortReason::Timeout { phase, waiting_for }, step);
                }
                if now >= self.next_resend {
                    if self.me == self.proposal.proposer {
                        step.actions.push(Action::Send {
                            to: Recipient::Members,
                            bytes: self.proposal_envelope.clone(),
                        });
                    }
                    for bytes in &self.attempt.sent {
                        step.actions.push(Action::Send {
                            to: Recipient::Members,
                            bytes: bytes.clone(),
                        });
                    }
                    self.next_resend = now + self.resend_interval();
                }
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
    /// process. Tell everyone, so they move on too.
    pub fn announce_restart(&mut self, abandoned_attempt: u32, step: &mut Step<'_>) {
        let header = Header::new(
            MessageKind::AttemptAborted,
            self.group_id,
            self.session_id(),
            abandoned_attempt,
            self.me,
            step.now,
        );
        let envelope = Envelope::sign(header, AbortCode::Restart.encode(), step.key);
        self.log_and_send(&envelope, step);
        step.event(Event::AttemptAborted {
            attempt: abandoned_attempt,
            reason: AbortReason::Restart { member: self.me },
        });
    }

    /// Restores a session whose transaction was already signed before a restart.
    pub fn restore_signed(&mut self, tx: Transaction, step: &mut Step<'_>) {
        self.attempt.secret_nonces = None;
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
