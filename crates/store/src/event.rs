//! What the audit chain records: [`AuditEvent`], a typed, self-describing event serialised as
//! JSON (ids as hex) — and its translation from the protocol's `session::Event`.
//!
//! The store's own mirror types ([`AbortCause`], [`RoundPhase`], …) keep the JSON stable and
//! readable even when the protocol's in-memory types change shape; a new protocol variant is a
//! compile error in `From`, not a silently dropped event.

use lotus::hash::sha256;
use protocol::envelope::MessageKind;
use protocol::evidence::Offence;
use protocol::failover::FailoverEvent;
use protocol::group::GroupDescriptor;
use protocol::session::{AbortReason, Event, Outcome, Phase};
use serde::{Deserialize, Serialize};

use crate::nonce_registry::AttemptState;
use crate::reputation::Anomaly;
use crate::Error;

/// A signer key: a 33-byte compressed secp256k1 point.
pub type SignerKey = [u8; 33];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundPhase {
    Commitments,
    Nonces,
    Signatures,
}

impl RoundPhase {
    pub const ALL: [RoundPhase; 3] = [
        RoundPhase::Commitments,
        RoundPhase::Nonces,
        RoundPhase::Signatures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoundPhase::Commitments => "commitments",
            RoundPhase::Nonces => "nonces",
            RoundPhase::Signatures => "signatures",
        }
    }

    /// The message every member sends in this round.
    pub fn message_kind(self) -> MessageKind {
        match self {
            RoundPhase::Commitments => MessageKind::Commitment,
            RoundPhase::Nonces => MessageKind::Nonces,
            RoundPhase::Signatures => MessageKind::Partials,
        }
    }
}

impl From<Phase> for RoundPhase {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Commitments => RoundPhase::Commitments,
            Phase::Nonces => RoundPhase::Nonces,
            Phase::Signatures => RoundPhase::Signatures,
        }
    }
}

/// Why an attempt or session ended without a signature (mirror of `session::AbortReason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AbortCause {
    RejectedBy {
        member: u16,
        reason: String,
    },
    Timeout {
        phase: RoundPhase,
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
    NonceRegistryConflict,
    Restart {
        member: u16,
    },
    PeerTimedOut {
        member: u16,
    },
    Superseded {
        by: u16,
        attempt: u32,
    },
    DegenerateNonces,
    AttemptsExhausted,
    Evicted,
    ConflictingProposals {
        proposer: u16,
    },
    TooManyRestarts {
        member: u16,
    },
    /// Closed by the upgrade to protocol v2 (its messages can't continue a v1 session).
    ProtocolUpgrade,
    /// A proposal named pooled nonces a pool doesn't have (an interactive attempt follows).
    PoolUnusable,
}

impl From<&AbortReason> for AbortCause {
    fn from(reason: &AbortReason) -> Self {
        match reason.clone() {
            AbortReason::RejectedBy { member, reason } => AbortCause::RejectedBy { member, reason },
            AbortReason::InvalidPartial { member } => AbortCause::InvalidPartial { member },
            AbortReason::Equivocation { member } => AbortCause::Equivocation { member },
            AbortReason::MalformedContribution { member } => {
                AbortCause::MalformedContribution { member }
            }
            AbortReason::Expired => AbortCause::Expired,
            AbortReason::NonceRegistryConflict => AbortCause::NonceRegistryConflict,
            AbortReason::Restart { member } => AbortCause::Restart { member },
            AbortReason::ConflictingProposals { proposer } => {
                AbortCause::ConflictingProposals { proposer }
            }
            AbortReason::DegenerateNonces => AbortCause::DegenerateNonces,
            AbortReason::PoolUnusable => AbortCause::PoolUnusable,
            AbortReason::TooManyRestarts { member } => AbortCause::TooManyRestarts { member },
            AbortReason::AttemptsExhausted => AbortCause::AttemptsExhausted,
            AbortReason::Evicted => AbortCause::Evicted,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffenceKind {
    InvalidPartial,
    Equivocation,
    MalformedContribution,
    WrongElectionProof,
}

impl OffenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OffenceKind::InvalidPartial => "invalid_partial",
            OffenceKind::Equivocation => "equivocation",
            OffenceKind::MalformedContribution => "malformed_contribution",
            OffenceKind::WrongElectionProof => "wrong_election_proof",
        }
    }
}

impl From<Offence> for OffenceKind {
    fn from(offence: Offence) -> Self {
        match offence {
            Offence::InvalidPartial => OffenceKind::InvalidPartial,
            Offence::Equivocation => OffenceKind::Equivocation,
            Offence::MalformedContribution => OffenceKind::MalformedContribution,
            Offence::WrongElectionProof => OffenceKind::WrongElectionProof,
        }
    }
}

/// A step of the broadcast failover schedule (mirror of `failover::FailoverEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum FailoverStep {
    ShouldBroadcast {
        slot: usize,
    },
    CoordinatorFailed {
        slot: usize,
        member: u16,
    },
    Exhausted,
    BroadcastConfirmed {
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
    },
}

impl From<&FailoverEvent> for FailoverStep {
    fn from(event: &FailoverEvent) -> Self {
        match *event {
            FailoverEvent::ShouldBroadcast { slot } => FailoverStep::ShouldBroadcast { slot },
            FailoverEvent::CoordinatorFailed { slot, member } => {
                FailoverStep::CoordinatorFailed { slot, member }
            }
            FailoverEvent::FailoverExhausted => FailoverStep::Exhausted,
            FailoverEvent::BroadcastConfirmed { txid } => FailoverStep::BroadcastConfirmed { txid },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    Created,
    Imported,
    PublicExported,
    BackupConfirmed,
    Removed,
}

/// One audited event. `kind` in the JSON is the variant name in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditEvent {
    /// This node proposed.
    ProposalCreated {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        group_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        digest: [u8; 32],
        sent_sat: i64,
        fee_sat: i64,
    },
    /// A validated proposal from a co-signer awaits the user's decision.
    ProposalReceived {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        group_id: [u8; 32],
        proposer: u16,
        #[serde(with = "crate::column::hex_bytes")]
        proposer_key: SignerKey,
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        digest: [u8; 32],
        sent_sat: i64,
        fee_sat: i64,
    },
    /// A proposal that failed validation.
    ProposalRefused {
        #[serde(with = "crate::column::hex_opt")]
        group_id: Option<[u8; 32]>,
        member: u16,
        #[serde(with = "crate::column::hex_opt")]
        signer: Option<SignerKey>,
        error: String,
    },
    Approved {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        digest: [u8; 32],
    },
    /// A policy co-signer decided on its own (`rule` names the written rule that decided).
    PolicyDecision {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        digest: [u8; 32],
        approved: bool,
        /// What the session sends out of the group (daily limits are rebuilt from this).
        sent_sat: i64,
        rule: String,
        reason: String,
    },
    /// A member (possibly this one) refused the proposal.
    Rejected {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        member: u16,
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
        reason: String,
    },
    AttemptStarted {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
    },
    RoundCompleted {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        phase: RoundPhase,
    },
    Elected {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        method: String,
        /// Member indices, coordinator first.
        priority: Vec<u16>,
        #[serde(with = "crate::column::hex_bytes")]
        proof: [u8; 32],
    },
    ElectionProofMismatch {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        member: u16,
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
    },
    /// A member restarted an attempt after its election salt was known (counted against it;
    /// `refused` once it used up its allowance).
    ForcedReroll {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        member: u16,
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
        refused: bool,
    },
    /// Verified misbehaviour; the evidence bytes are in the evidence table under `evidence_id`
    /// (SHA256 of the bytes).
    Blamed {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        offence: OffenceKind,
        culprit: u16,
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
        #[serde(with = "crate::column::hex_bytes")]
        evidence_id: [u8; 32],
    },
    /// Silence in a round: recorded per phase, never blame.
    TimedOut {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        phase: RoundPhase,
        waiting_for: Vec<u16>,
        #[serde(with = "crate::column::hex_vec")]
        waiting_for_keys: Vec<SignerKey>,
    },
    AttemptAborted {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        cause: AbortCause,
    },
    /// Found unfinished at start: its secret nonces died with the process.
    AttemptAbandonedAtStart {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        state: AttemptStateLabel,
    },
    Signed {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        attempt: u32,
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
    },
    Failover {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        step: FailoverStep,
    },
    /// This node handed the transaction to the chain backend.
    Broadcast {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
    },
    Confirmed {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
    },
    /// The session ended without a signature (rejections are `Rejected`).
    SessionAborted {
        #[serde(with = "crate::column::hex_bytes")]
        session_id: [u8; 32],
        cause: AbortCause,
    },
    Key {
        action: KeyAction,
        #[serde(with = "crate::column::hex_bytes")]
        public_key: SignerKey,
    },
    Blacklisted {
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
        reason: String,
    },
    Unblacklisted {
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
    },
    AnomalyRaised {
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
        anomaly: Anomaly,
    },
    AnomalyCleared {
        #[serde(with = "crate::column::hex_bytes")]
        signer: SignerKey,
        rule: String,
    },
}

/// [`AttemptState`] as it appears in audit JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStateLabel {
    Released,
    Signing,
    Signed,
    Aborted,
}

impl From<AttemptState> for AttemptStateLabel {
    fn from(state: AttemptState) -> Self {
        match state {
            AttemptState::Released => AttemptStateLabel::Released,
            AttemptState::Signing => AttemptStateLabel::Signing,
            AttemptState::Signed => AttemptStateLabel::Signed,
            AttemptState::Aborted => AttemptStateLabel::Aborted,
        }
    }
}

impl AuditEvent {
    /// The `kind` column: the variant name in snake_case (as in the JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::ProposalCreated { .. } => "proposal_created",
            AuditEvent::ProposalReceived { .. } => "proposal_received",
            AuditEvent::ProposalRefused { .. } => "proposal_refused",
            AuditEvent::Approved { .. } => "approved",
            AuditEvent::PolicyDecision { .. } => "policy_decision",
            AuditEvent::Rejected { .. } => "rejected",
            AuditEvent::AttemptStarted { .. } => "attempt_started",
            AuditEvent::RoundCompleted { .. } => "round_completed",
            AuditEvent::Elected { .. } => "elected",
            AuditEvent::ElectionProofMismatch { .. } => "election_proof_mismatch",
            AuditEvent::ForcedReroll { .. } => "forced_reroll",
            AuditEvent::Blamed { .. } => "blamed",
            AuditEvent::TimedOut { .. } => "timed_out",
            AuditEvent::AttemptAborted { .. } => "attempt_aborted",
            AuditEvent::AttemptAbandonedAtStart { .. } => "attempt_abandoned_at_start",
            AuditEvent::Signed { .. } => "signed",
            AuditEvent::Failover { .. } => "failover",
            AuditEvent::Broadcast { .. } => "broadcast",
            AuditEvent::Confirmed { .. } => "confirmed",
            AuditEvent::SessionAborted { .. } => "session_aborted",
            AuditEvent::Key { .. } => "key",
            AuditEvent::Blacklisted { .. } => "blacklisted",
            AuditEvent::Unblacklisted { .. } => "unblacklisted",
            AuditEvent::AnomalyRaised { .. } => "anomaly_raised",
            AuditEvent::AnomalyCleared { .. } => "anomaly_cleared",
        }
    }

    /// The `session_id` column.
    pub fn session_id(&self) -> Option<[u8; 32]> {
        match self {
            AuditEvent::ProposalCreated { session_id, .. }
            | AuditEvent::ProposalReceived { session_id, .. }
            | AuditEvent::Approved { session_id, .. }
            | AuditEvent::PolicyDecision { session_id, .. }
            | AuditEvent::Rejected { session_id, .. }
            | AuditEvent::AttemptStarted { session_id, .. }
            | AuditEvent::RoundCompleted { session_id, .. }
            | AuditEvent::Elected { session_id, .. }
            | AuditEvent::ElectionProofMismatch { session_id, .. }
            | AuditEvent::ForcedReroll { session_id, .. }
            | AuditEvent::Blamed { session_id, .. }
            | AuditEvent::TimedOut { session_id, .. }
            | AuditEvent::AttemptAborted { session_id, .. }
            | AuditEvent::AttemptAbandonedAtStart { session_id, .. }
            | AuditEvent::Signed { session_id, .. }
            | AuditEvent::Failover { session_id, .. }
            | AuditEvent::Broadcast { session_id, .. }
            | AuditEvent::Confirmed { session_id, .. }
            | AuditEvent::SessionAborted { session_id, .. } => Some(*session_id),
            AuditEvent::ProposalRefused { .. }
            | AuditEvent::Key { .. }
            | AuditEvent::Blacklisted { .. }
            | AuditEvent::Unblacklisted { .. }
            | AuditEvent::AnomalyRaised { .. }
            | AuditEvent::AnomalyCleared { .. } => None,
        }
    }

    /// The group named by the event itself (otherwise the store takes the session's).
    pub fn group_id(&self) -> Option<[u8; 32]> {
        match self {
            AuditEvent::ProposalCreated { group_id, .. }
            | AuditEvent::ProposalReceived { group_id, .. } => Some(*group_id),
            AuditEvent::ProposalRefused { group_id, .. } => *group_id,
            _ => None,
        }
    }

    /// The `signer` column: the one member key the event is about, if any.
    pub fn signer(&self) -> Option<SignerKey> {
        match self {
            AuditEvent::ProposalReceived { proposer_key, .. } => Some(*proposer_key),
            AuditEvent::ProposalRefused { signer, .. } => *signer,
            AuditEvent::Rejected { signer, .. }
            | AuditEvent::ElectionProofMismatch { signer, .. }
            | AuditEvent::ForcedReroll { signer, .. }
            | AuditEvent::Blamed { signer, .. }
            | AuditEvent::Blacklisted { signer, .. }
            | AuditEvent::Unblacklisted { signer }
            | AuditEvent::AnomalyRaised { signer, .. }
            | AuditEvent::AnomalyCleared { signer, .. } => Some(*signer),
            AuditEvent::Key { public_key, .. } => Some(*public_key),
            AuditEvent::TimedOut {
                waiting_for_keys, ..
            } if waiting_for_keys.len() == 1 => Some(waiting_for_keys[0]),
            _ => None,
        }
    }

    /// Translates a protocol event of `session_id` in `group`. `proposed_by_me` tells a
    /// proposal this node created from one it received. `None` for events audited elsewhere
    /// (`Approved` is recorded by `Store::record_approval`, which carries the digest and comes
    /// first, as approval must be durable before any partial signature).
    pub fn from_protocol(
        group: &GroupDescriptor,
        session_id: [u8; 32],
        event: &Event,
        proposed_by_me: bool,
    ) -> Result<Option<AuditEvent>, Error> {
        let key = |member: u16| member_key(group, member);
        Ok(Some(match event {
            Event::ReviewReady { review } => {
                if proposed_by_me {
                    AuditEvent::ProposalCreated {
                        session_id,
                        group_id: review.group_id.0,
                        txid: review.txid.0,
                        digest: review.digest,
                        sent_sat: review.sent_sat,
                        fee_sat: review.fee_sat,
                    }
                } else {
                    AuditEvent::ProposalReceived {
                        session_id,
                        group_id: review.group_id.0,
                        proposer: review.proposer,
                        proposer_key: key(review.proposer)?,
                        txid: review.txid.0,
                        digest: review.digest,
                        sent_sat: review.sent_sat,
                        fee_sat: review.fee_sat,
                    }
                }
            }
            Event::ProposalRefused { member, error } => AuditEvent::ProposalRefused {
                group_id: Some(group.id().0),
                member: *member,
                signer: key(*member).ok(),
                error: error.clone(),
            },
            Event::AttemptStarted { attempt } => AuditEvent::AttemptStarted {
                session_id,
                attempt: *attempt,
            },
            Event::RoundCompleted { attempt, phase } => AuditEvent::RoundCompleted {
                session_id,
                attempt: *attempt,
                phase: (*phase).into(),
            },
            Event::Elected { attempt, election } => AuditEvent::Elected {
                session_id,
                attempt: *attempt,
                method: election.method.name().to_string(),
                priority: election.priority.clone(),
                proof: election.proof,
            },
            Event::ElectionProofMismatch { member } => AuditEvent::ElectionProofMismatch {
                session_id,
                member: *member,
                signer: key(*member)?,
            },
            Event::Approved | Event::MemberApproved { .. } | Event::PeerAuditHead { .. } => {
                return Ok(None)
            }
            Event::ForcedReroll {
                member,
                attempt,
                refused,
            } => AuditEvent::ForcedReroll {
                session_id,
                attempt: *attempt,
                member: *member,
                signer: key(*member)?,
                refused: *refused,
            },
            Event::Blamed { blame, evidence } => AuditEvent::Blamed {
                session_id,
                attempt: blame.attempt,
                offence: blame.offence.into(),
                culprit: blame.culprit,
                signer: key(blame.culprit)?,
                evidence_id: sha256(&evidence.encode()),
            },
            Event::TimedOut {
                attempt,
                phase,
                waiting_for,
            } => AuditEvent::TimedOut {
                session_id,
                attempt: *attempt,
                phase: (*phase).into(),
                waiting_for: waiting_for.clone(),
                waiting_for_keys: waiting_for
                    .iter()
                    .map(|&m| key(m))
                    .collect::<Result<_, _>>()?,
            },
            Event::AttemptAborted { attempt, reason } => AuditEvent::AttemptAborted {
                session_id,
                attempt: *attempt,
                cause: reason.into(),
            },
            Event::Signed { attempt, txid } => AuditEvent::Signed {
                session_id,
                attempt: *attempt,
                txid: *txid,
            },
            Event::Failover(step) => AuditEvent::Failover {
                session_id,
                step: step.into(),
            },
            Event::Closed { outcome } => match outcome {
                Outcome::Confirmed { txid } => AuditEvent::Confirmed {
                    session_id,
                    txid: *txid,
                },
                Outcome::Aborted(AbortReason::RejectedBy { member, reason }) => {
                    AuditEvent::Rejected {
                        session_id,
                        member: *member,
                        signer: key(*member)?,
                        reason: reason.clone(),
                    }
                }
                Outcome::Aborted(reason) => AuditEvent::SessionAborted {
                    session_id,
                    cause: reason.into(),
                },
            },
        }))
    }
}

pub(crate) fn member_key(group: &GroupDescriptor, member: u16) -> Result<SignerKey, Error> {
    group
        .members
        .get(member as usize)
        .map(|k| k.serialize())
        .ok_or(Error::UnknownMember(member))
}
