//! An attempt's lifecycle: fresh nonces, release, abort and the move to the next attempt,
//! closing, and blame reporting.

use super::*;

impl Session {
    // ----- attempts -------------------------------------------------------------------------

    pub(super) fn begin_attempt(&mut self, number: u32, step: &mut Step<'_>) {
        if number == 0 && !self.proposal.pools.is_empty() {
            return self.begin_pooled_attempt(step);
        }
        let mut secrets = Vec::with_capacity(self.sighashes.len());
        let mut publics = Vec::with_capacity(self.sighashes.len());
        for message in &self.sighashes {
            // Nonce generation commits to the untweaked Q, as lotus-sdk does.
            match SecretNonce::generate(step.key, self.key_agg.aggregated_key(), Some(message)) {
                Ok((secret, public)) => {
                    secrets.push(secret);
                    publics.push(public);
                }
                Err(_) => {
                    // The OS random generator failed: never fall back to anything weaker.
                    self.close(Outcome::Aborted(AbortReason::NonceRegistryConflict), step);
                    return;
                }
            }
        }
        let mut salt_share = [0u8; 32];
        step.entropy.fill(&mut salt_share);
        let phase = if self.group.commit_round {
            Phase::Commitments
        } else {
            Phase::Nonces
        };
        self.attempt = Attempt::new(
            number,
            phase,
            step.now,
            secrets,
            Nonces {
                salt_share,
                nonces: publics,
                audit_head: self.audit_head,
            },
        );
        step.event(Event::AttemptStarted { attempt: number });
        self.progressed(step.now);
        if self.group.commit_round {
            let commitment = Commitment(self.attempt.my_nonces.commitment(
                &self.session_id(),
                number,
                self.me,
            ));
            let envelope = self.sign(MessageKind::Commitment, commitment.encode(), step);
            self.send_own(envelope, step);
            self.advance(step);
        } else {
            self.release_nonces(step);
        }
        if self.is_running() && self.attempt.number == number {
            self.replay_held(step);
        }
    }

    /// Attempt 0 with the nonces the proposal names from each member's pool. Our secrets
    /// were taken from our pool for this session alone; their rows are made durable now,
    /// before anything else of this session leaves. Without them (another session took the
    /// entries first, or a restart lost them) the attempt can't finish: we say so, as after a
    /// restart, and everyone moves to an interactive attempt.
    fn begin_pooled_attempt(&mut self, step: &mut Step<'_>) {
        let inputs = self.sighashes.len();
        let own_pool = self.proposal.pools[self.me as usize];
        let own = self
            .initial_pools
            .iter()
            .find(|e| e.id() == own_pool.pool)
            .map(|e| {
                pooled_nonces(
                    e,
                    &self.group_id,
                    self.group.members.len(),
                    self.me,
                    self.proposal.proposer,
                    &own_pool,
                    inputs,
                )
            });
        if let Some(Err(_)) = own {
            // The proposal names entries our pool does not have (or not the proposer's
            // slice): every member holding our pool sees the same, so nobody signs attempt 0.
            self.attempt = Attempt::new(
                0,
                Phase::Nonces,
                step.now,
                Vec::new(),
                self.attempt.my_nonces.clone(),
            );
            self.attempt.pooled = true;
            self.pool_secrets = None;
            step.event(Event::AttemptStarted { attempt: 0 });
            return self.abort_attempt(AbortReason::PoolUnusable, step);
        }
        let own = own.and_then(Result::ok);
        let secrets = self.pool_secrets.take().filter(|(s, _)| s.len() == inputs);
        let (Some(own), Some((secrets, salt_share))) = (own, secrets) else {
            self.attempt = Attempt::new(
                0,
                Phase::Nonces,
                step.now,
                Vec::new(),
                self.attempt.my_nonces.clone(),
            );
            self.attempt.pooled = true;
            step.event(Event::AttemptStarted { attempt: 0 });
            self.announce_restart(0, step);
            return self.begin_attempt(1, step);
        };
        self.attempt = Attempt::new(
            0,
            Phase::Nonces,
            step.now,
            secrets,
            Nonces {
                salt_share,
                nonces: own.nonces,
                audit_head: None,
            },
        );
        self.attempt.pooled = true;
        self.attempt.released_nonces = true;
        step.event(Event::AttemptStarted { attempt: 0 });
        let session_id = self.session_id();
        for (input, nonce) in self.attempt.my_nonces.nonces.iter().enumerate() {
            step.push(Action::Persist(Durable::NonceReleased {
                session_id,
                attempt: 0,
                input: input as u16,
                nonce_hash: sha256(&nonce.serialize()),
            }));
        }
        self.progressed(step.now);
        for envelope in std::mem::take(&mut self.initial_pools) {
            self.file_pool(envelope);
        }
        self.advance(step);
        if self.is_running() && self.attempt.number == 0 {
            self.replay_held(step);
        }
    }

    /// Files a member's pool envelope in its round-1 slot of the pooled attempt, if it is the
    /// one the proposal names. Entries out of the pool's range file as unusable (`None`).
    pub(super) fn file_pool(&mut self, envelope: Envelope) {
        let member = envelope.header.sender;
        let Some(pool_ref) = self.proposal.pools.get(member as usize) else {
            return;
        };
        if !self.attempt.pooled
            || self.attempt.number != 0
            || envelope.id() != pool_ref.pool
            || self.attempt.nonces.contains_key(&member)
        {
            return;
        }
        let value = pooled_nonces(
            &envelope,
            &self.group_id,
            self.group.members.len(),
            member,
            self.proposal.proposer,
            pool_ref,
            self.sighashes.len(),
        )
        .ok()
        .map(|pooled| {
            self.attempt
                .pool_salts
                .insert(member, pooled.salt_commitment);
            Nonces {
                salt_share: [0; 32],
                nonces: pooled.nonces,
                audit_head: pooled.audit_head,
            }
        });
        self.attempt
            .nonces
            .insert(member, Received { value, envelope });
    }

    /// A member's nonce pool arrived (signature checked by the node).
    pub fn on_pool(&mut self, envelope: &Envelope, step: &mut Step<'_>) {
        if !self.is_running() || !self.attempt.pooled || self.attempt.number != 0 {
            return;
        }
        self.file_pool(envelope.clone());
        self.advance(step);
    }

    /// Round 1: persist every nonce row, then send. Once per attempt.
    pub(super) fn release_nonces(&mut self, step: &mut Step<'_>) {
        if self.attempt.released_nonces {
            return;
        }
        self.attempt.released_nonces = true;
        let session_id = self.session_id();
        for (input, nonce) in self.attempt.my_nonces.nonces.iter().enumerate() {
            step.push(Action::Persist(Durable::NonceReleased {
                session_id,
                attempt: self.attempt.number,
                input: input as u16,
                nonce_hash: sha256(&nonce.serialize()),
            }));
        }
        let envelope = self.sign(MessageKind::Nonces, self.attempt.my_nonces.encode(), step);
        self.send_own(envelope, step);
        self.advance(step);
    }

    /// Our signed message of `kind` for the current attempt, bound to this proposal.
    pub(super) fn sign(&self, kind: MessageKind, payload: Vec<u8>, step: &Step<'_>) -> Envelope {
        let header = Header::new(
            kind,
            self.group_id,
            self.session_id(),
            self.review.digest,
            self.attempt.number,
            self.me,
            step.now,
        );
        Envelope::sign(header, payload, step.key)
    }

    /// Logs our signed message (durably, before it leaves) and sends it to every member.
    pub(super) fn log_and_send(&self, envelope: &Envelope, step: &mut Step<'_>) -> Vec<u8> {
        let bytes = envelope.encode();
        step.push(Action::Persist(Durable::Message {
            session_id: self.session_id(),
            bytes: bytes.clone(),
            outgoing: true,
        }));
        step.send_to(Recipient::Members, bytes.clone());
        bytes
    }

    /// Persists and sends our own message, and files it like anyone else's.
    pub(super) fn send_own(&mut self, envelope: Envelope, step: &mut Step<'_>) {
        let bytes = self.log_and_send(&envelope, step);
        self.attempt.sent.push(bytes);
        let _own_messages_never_conflict = self.store(envelope, step);
    }

    /// Ends the attempt because of verified evidence: tells everyone (with every record we
    /// hold against the member, so they can check it and follow), then moves on or closes.
    pub(super) fn abort_with_evidence(
        &mut self,
        reason: AbortReason,
        evidence: Evidence,
        step: &mut Step<'_>,
    ) {
        let records = match reason.culprit() {
            Some(member) => {
                self.record_offence(member, self.attempt.number, evidence);
                self.offences[&member]
                    .values()
                    .rev()
                    .take(crate::messages::MAX_NOTICE_RECORDS)
                    .map(Evidence::encode)
                    .collect()
            }
            None => vec![evidence.encode()],
        };
        let notice = self.sign(
            MessageKind::AttemptAborted,
            AbortCode::Blamed(records).encode(),
            step,
        );
        let bytes = self.log_and_send(&notice, step);
        self.notices.push(bytes);
        self.abort_attempt(reason, step);
    }

    /// Keeps verified evidence against `member` for `attempt`; whether it is new.
    pub(super) fn record_offence(&mut self, member: u16, attempt: u32, evidence: Evidence) -> bool {
        let attempts = self.offences.entry(member).or_default();
        if attempts.contains_key(&attempt) {
            return false;
        }
        attempts.insert(attempt, evidence);
        true
    }

    pub(super) fn abort_attempt(&mut self, reason: AbortReason, step: &mut Step<'_>) {
        let next = self.attempt.number + 1;
        self.abort_attempt_to(reason, next, step);
    }

    /// Ends the current attempt and continues at attempt `next` (at least the following one).
    pub(super) fn abort_attempt_to(&mut self, reason: AbortReason, next: u32, step: &mut Step<'_>) {
        // Always forward, never back to an attempt we already took part in.
        let next = next.max(self.attempt.number.saturating_add(1));
        self.leave_attempt(reason.clone(), step);
        // A member proven to misbehave in two attempts would do it in every attempt: in an
        // n-of-n group nobody can sign without it, so stop here rather than burn attempts.
        let repeat_offender = reason
            .culprit()
            .is_some_and(|member| self.offences.get(&member).is_some_and(|a| a.len() >= 2));
        if !reason.is_retryable() || repeat_offender {
            self.close(Outcome::Aborted(reason), step);
        } else if next >= MAX_ATTEMPTS {
            self.close(Outcome::Aborted(AbortReason::AttemptsExhausted), step);
        } else if step.now >= self.proposal.expires_ms {
            self.close(Outcome::Aborted(AbortReason::Expired), step);
        } else {
            self.begin_attempt(next, step);
        }
    }

    /// Drops the attempt's secret nonces (erasing them) and records why it ended.
    pub(super) fn leave_attempt(&mut self, reason: AbortReason, step: &mut Step<'_>) {
        self.attempt.secret_nonces = None;
        if self.attempt.released_nonces {
            step.push(Action::Persist(Durable::AttemptClosed {
                session_id: self.session_id(),
                attempt: self.attempt.number,
                signed: false,
            }));
        }
        step.event(Event::AttemptAborted {
            attempt: self.attempt.number,
            reason,
        });
    }

    pub(super) fn close(&mut self, outcome: Outcome, step: &mut Step<'_>) {
        self.attempt.secret_nonces = None;
        step.event(Event::Closed {
            outcome: outcome.clone(),
        });
        self.state = State::Closed(outcome);
    }

    /// Reports evidence only if it verifies — the same check any third party runs.
    pub(super) fn blame(
        &self,
        offence: Offence,
        envelopes: &[&Envelope],
        step: &mut Step<'_>,
    ) -> Option<(Blame, Evidence)> {
        let evidence = Evidence {
            offence,
            proposal: self.proposal_bytes.clone(),
            envelopes: envelopes.iter().map(|e| e.encode()).collect(),
        };
        let blame = evidence.verify(&self.group).ok()?;
        step.event(Event::Blamed {
            blame,
            evidence: evidence.clone(),
        });
        Some((blame, evidence))
    }
}
