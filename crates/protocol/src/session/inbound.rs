//! Messages from the other members: routing by kind, the proposal binding, notices, and
//! messages for attempts we have not reached yet.

use super::*;

impl Session {
    /// A verified envelope for this session (signature, membership and group already checked
    /// by the node: the header's group is this session's group).
    pub fn on_envelope(&mut self, envelope: Envelope, step: &mut Step<'_>) {
        if self.is_closed() {
            return;
        }
        let header = envelope.header;
        if header.kind == MessageKind::Proposal {
            return self.on_proposal(envelope, step);
        }
        if header.proposal != self.review.digest {
            // The sender holds another proposal for this session id: show it ours (once per
            // member), so whoever signed two proposals is caught. Never filed, never blamed on
            // the sender.
            return self.forward_once(
                0,
                header.sender,
                u16::MAX,
                self.proposal_envelope_bytes.clone(),
                step,
            );
        }
        match header.kind {
            MessageKind::Proposal | MessageKind::Pull => {}
            MessageKind::Approved => self.member_approved(header.sender, step),
            MessageKind::Reject => self.on_reject(&envelope, step),
            MessageKind::Completed => self.on_completed(&envelope, step),
            MessageKind::Partials if matches!(self.state, State::Completed { .. }) => {
                // Signatures are done, but a late round-2 message still gets checked so a
                // wrong election proof or an invalid partial is reported, not forgotten.
                if header.attempt == self.attempt.number && self.store(envelope, step).is_none() {
                    let _already_finished = self.check_partials(step);
                }
            }
            _ if !matches!(self.state, State::Running) => {}
            // Verified evidence is acted on whatever attempt it names: it is self-contained,
            // and a member that fell behind must not wait for the attempts in between.
            MessageKind::AttemptAborted
                if header.attempt < MAX_ATTEMPTS && is_blame_notice(&envelope) =>
            {
                self.on_abort_notice(&envelope, step)
            }
            _ if header.attempt < self.attempt.number => {}
            _ if header.attempt >= MAX_ATTEMPTS => {}
            _ if header.attempt > self.attempt.number => self.hold_for_later(envelope),
            MessageKind::AttemptAborted => self.on_abort_notice(&envelope, step),
            _ => match self.store(envelope, step) {
                Some((reason, evidence)) => self.abort_with_evidence(reason, evidence, step),
                None => self.advance(step),
            },
        }
    }

    pub(super) fn member_approved(&mut self, member: u16, step: &mut Step<'_>) {
        if member != self.me && self.approvals.insert(member) {
            step.event(Event::MemberApproved { member });
        }
    }

    /// The proposer's envelope again (a resend), or a different one with our session id: two
    /// proposals signed by the proposer for one session is equivocation, and this session
    /// is never signed.
    fn on_proposal(&mut self, envelope: Envelope, step: &mut Step<'_>) {
        if envelope.payload == self.proposal_envelope.payload
            || envelope.header.sender != self.proposal.proposer
        {
            // A resend, or another member reusing our session id (its own proposal can't
            // become this session; the node already holds one for the id).
            return;
        }
        let ours = self.proposal_envelope.clone();
        if let Some((blame, evidence)) =
            self.blame(Offence::Equivocation, &[&ours, &envelope], step)
        {
            self.abort_with_evidence(
                AbortReason::ConflictingProposals {
                    proposer: blame.culprit,
                },
                evidence,
                step,
            );
        }
    }

    fn on_reject(&mut self, envelope: &Envelope, step: &mut Step<'_>) {
        if !matches!(self.state, State::Running) {
            return;
        }
        let member = envelope.header.sender;
        let reason = Reject::decode(&envelope.payload)
            .map(|r| r.reason)
            .unwrap_or_default();
        let why = AbortReason::RejectedBy { member, reason };
        self.leave_attempt(why.clone(), step);
        self.close(Outcome::Aborted(why), step);
    }

    /// Someone ended our current attempt. Followed only for a reason we can check (evidence
    /// that verifies) or a restart, which is bounded per member once the salt was known.
    fn on_abort_notice(&mut self, envelope: &Envelope, step: &mut Step<'_>) {
        let member = envelope.header.sender;
        match AbortCode::decode(&envelope.payload) {
            Ok(AbortCode::Restart) => {
                // Once our own share is out, the sender may know the salt (with round 0 it
                // can compute it from the others' reveals before revealing its own), so the
                // restart counts as a re-roll against it. (In a pooled attempt, only a salted
                // election has a salt; the last to reveal its share knows it first.)
                let salt_known = !self.attempt.pooled || self.group.election.needs_salt();
                if self.attempt.released_nonces && salt_known {
                    let count = self.rerolls.entry(member).or_default();
                    let refused = *count >= MAX_REROLLS_PER_MEMBER;
                    if !refused {
                        *count += 1;
                    }
                    step.event(Event::ForcedReroll {
                        member,
                        attempt: self.attempt.number,
                        refused,
                    });
                    if refused {
                        return self.abort_attempt(AbortReason::TooManyRestarts { member }, step);
                    }
                }
                self.abort_attempt(AbortReason::Restart { member }, step);
            }
            Ok(AbortCode::Blamed(records)) => self.on_blame_notice(&records, step),
            Err(_) => {}
        }
    }

    /// Evidence from another member: every record is verified here, as any third party would.
    /// Records for attempts we already left only count towards repeat offences.
    fn on_blame_notice(&mut self, records: &[Vec<u8>], step: &mut Step<'_>) {
        let mut leave: Option<(AbortReason, u32)> = None;
        for bytes in records {
            let Ok(evidence) = Evidence::decode(bytes) else {
                continue;
            };
            let Ok(blame) = evidence.verify(&self.group) else {
                continue;
            };
            if blame.session_id != self.session_id() {
                continue;
            }
            if is_proposal_evidence(&evidence) {
                step.event(Event::Blamed { blame, evidence });
                let reason = AbortReason::ConflictingProposals {
                    proposer: blame.culprit,
                };
                return self.abort_attempt(reason, step);
            }
            if self.record_offence(blame.culprit, blame.attempt, evidence.clone()) {
                step.event(Event::Blamed { blame, evidence });
            }
            if blame.attempt >= self.attempt.number
                && blame.attempt < MAX_ATTEMPTS
                && leave.as_ref().is_none_or(|(_, a)| blame.attempt > *a)
            {
                leave = Some((reason_for(&blame), blame.attempt));
            }
        }
        if let Some((reason, attempt)) = leave {
            // Everyone who saw this evidence moves past its attempt.
            let next = self.attempt.number.max(attempt) + 1;
            self.abort_attempt_to(reason, next, step);
        }
    }

    /// Keeps a message for a later attempt until we get there (bounded per member).
    fn hold_for_later(&mut self, envelope: Envelope) {
        let sender = envelope.header.sender;
        let held = self
            .future
            .iter()
            .filter(|e| e.header.sender == sender)
            .count();
        if held < MAX_FUTURE_PER_MEMBER && !self.future.contains(&envelope) {
            self.future.push(envelope);
        }
    }

    /// Messages held for the attempt we just entered.
    pub(super) fn replay_held(&mut self, step: &mut Step<'_>) {
        let number = self.attempt.number;
        let (now, later): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut self.future)
            .into_iter()
            .filter(|e| e.header.attempt >= number)
            .partition(|e| e.header.attempt == number);
        self.future = later;
        for envelope in now {
            if self.attempt.number != number || !self.is_running() {
                break;
            }
            self.on_envelope(envelope, step);
        }
    }

    /// Sends `bytes` to `to` once per (attempt, recipient, subject).
    pub(super) fn forward_once(
        &mut self,
        attempt: u32,
        to: u16,
        about: u16,
        bytes: Vec<u8>,
        step: &mut Step<'_>,
    ) {
        if to != self.me && self.forwarded.insert((attempt, to, about)) {
            step.send_to(Recipient::Member(to), bytes);
        }
    }
}

/// Whether a notice carries blame evidence (checked by the receiver itself).
fn is_blame_notice(notice: &Envelope) -> bool {
    matches!(AbortCode::decode(&notice.payload), Ok(AbortCode::Blamed(_)))
}

/// Whether the evidence is two proposals (the session can never be signed).
fn is_proposal_evidence(evidence: &Evidence) -> bool {
    evidence.offence == Offence::Equivocation
        && evidence
            .envelopes
            .first()
            .and_then(|bytes| Envelope::decode(bytes, bytes.len()).ok())
            .is_some_and(|e| e.header.kind == MessageKind::Proposal)
}

/// The abort reason a verified blame stands for.
pub(super) fn reason_for(blame: &Blame) -> AbortReason {
    reason_for_offence(blame.offence, blame.culprit)
}

pub(super) fn reason_for_offence(offence: Offence, member: u16) -> AbortReason {
    match offence {
        Offence::InvalidPartial => AbortReason::InvalidPartial { member },
        Offence::Equivocation => AbortReason::Equivocation { member },
        Offence::MalformedContribution | Offence::WrongElectionProof => {
            AbortReason::MalformedContribution { member }
        }
    }
}
