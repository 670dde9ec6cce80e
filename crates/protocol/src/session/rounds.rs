//! The rounds: filing messages in their slots, checking each contribution, aggregating,
//! signing after approval, completing, and the failover schedule.

use super::*;

impl Session {
    /// Files a message in its slot. A second, different message in an occupied slot is
    /// equivocation (returned with its evidence); an identical one is a harmless resend.
    pub(super) fn store(
        &mut self,
        envelope: Envelope,
        step: &mut Step<'_>,
    ) -> Option<(AbortReason, Evidence)> {
        let sender = envelope.header.sender;
        if self.attempt.pooled
            && matches!(
                envelope.header.kind,
                MessageKind::Commitment | MessageKind::Nonces
            )
        {
            // A pooled attempt's round 1 is the members' pools; nobody honest sends these.
            return None;
        }
        let previous = match envelope.header.kind {
            MessageKind::Commitment => self.attempt.commitments.get(&sender).map(|r| &r.envelope),
            MessageKind::Nonces => self.attempt.nonces.get(&sender).map(|r| &r.envelope),
            MessageKind::Partials => self.attempt.partials.get(&sender).map(|r| &r.envelope),
            _ => None,
        };
        if let Some(previous) = previous {
            if previous.payload == envelope.payload {
                return None;
            }
            let previous = previous.clone();
            return self
                .blame(Offence::Equivocation, &[&previous, &envelope], step)
                .map(|(_, evidence)| (AbortReason::Equivocation { member: sender }, evidence));
        }
        match envelope.header.kind {
            MessageKind::Commitment => {
                let value = Commitment::decode(&envelope.payload).ok();
                self.attempt
                    .commitments
                    .insert(sender, Received { value, envelope });
            }
            MessageKind::Nonces => {
                let value = Nonces::decode(&envelope.payload).ok();
                self.attempt
                    .nonces
                    .insert(sender, Received { value, envelope });
            }
            MessageKind::Partials => {
                let value = Partials::decode(&envelope.payload).ok();
                self.attempt
                    .partials
                    .insert(sender, Received { value, envelope });
            }
            _ => {}
        }
        None
    }

    /// Moves through the phases as far as the stored messages allow.
    pub(super) fn advance(&mut self, step: &mut Step<'_>) {
        let n = self.group.members.len();
        if !matches!(self.state, State::Running) {
            return;
        }
        if self.attempt.phase == Phase::Commitments {
            if let Some((reason, evidence)) = self.check_commitments(step) {
                return self.abort_with_evidence(reason, evidence, step);
            }
            if self.attempt.commitments.len() < n {
                return;
            }
            step.event(Event::RoundCompleted {
                attempt: self.attempt.number,
                phase: Phase::Commitments,
            });
            self.attempt.enter(Phase::Nonces, step.now);
            self.progressed(step.now);
            // Releasing files our own nonces and re-enters `advance`.
            return self.release_nonces(step);
        }
        if self.attempt.phase == Phase::Nonces {
            if self.attempt.pooled && self.attempt.nonces.values().any(|r| r.value.is_none()) {
                // The proposal named entries a pool does not have: every member sees the same.
                return self.abort_attempt(AbortReason::PoolUnusable, step);
            }
            if let Some((reason, evidence)) = self.check_nonces(step) {
                return self.abort_with_evidence(reason, evidence, step);
            }
            if self.attempt.nonces_ok.len() < n {
                return;
            }
            if let Some(reason) = self.finish_round_one(step) {
                // Degenerate nonces: every member sees the same sum and aborts by itself.
                return self.abort_attempt(reason, step);
            }
            self.progressed(step.now);
            if self.approved {
                self.release_partials(step);
            }
        }
        if self.attempt.phase == Phase::Signatures {
            if let Some((reason, evidence)) = self.check_partials(step) {
                return self.abort_with_evidence(reason, evidence, step);
            }
            if self.attempt.partials_ok.len() == n {
                if self.salted_pool() && self.attempt.election.is_none() {
                    self.elect_from_reveals(step);
                }
                self.complete_from_partials(step);
            }
        }
    }

    /// Round 0 contributions must at least decode.
    pub(super) fn check_commitments(
        &mut self,
        step: &mut Step<'_>,
    ) -> Option<(AbortReason, Evidence)> {
        let bad: Vec<Envelope> = self
            .attempt
            .commitments
            .values()
            .filter(|r| r.value.is_none())
            .map(|r| r.envelope.clone())
            .collect();
        for envelope in bad {
            if let Some((_, evidence)) =
                self.blame(Offence::MalformedContribution, &[&envelope], step)
            {
                let member = envelope.header.sender;
                return Some((AbortReason::MalformedContribution { member }, evidence));
            }
        }
        None
    }

    /// Round 1 contributions: decode, one nonce pair per input, and (with round 0) they must
    /// open the sender's commitment. Checked once per sender.
    pub(super) fn check_nonces(&mut self, step: &mut Step<'_>) -> Option<(AbortReason, Evidence)> {
        let inputs = self.sighashes.len();
        let pending: Vec<u16> = self
            .attempt
            .nonces
            .keys()
            .filter(|m| !self.attempt.nonces_ok.contains_key(m))
            .copied()
            .collect();
        for member in pending {
            let received = &self.attempt.nonces[&member];
            let envelope = received.envelope.clone();
            let well_formed = received
                .value
                .as_ref()
                .filter(|n| n.nonces.len() == inputs)
                .cloned();
            let Some(nonces) = well_formed else {
                if let Some((_, evidence)) =
                    self.blame(Offence::MalformedContribution, &[&envelope], step)
                {
                    return Some((AbortReason::MalformedContribution { member }, evidence));
                }
                continue;
            };
            if self.group.commit_round && !self.attempt.pooled {
                let Some(commitment) = self.attempt.commitments.get(&member) else {
                    // Revealed before its commitment reached us: wait for the commitment.
                    continue;
                };
                let expected = nonces.commitment(&self.session_id(), self.attempt.number, member);
                if commitment.value.map(|c| c.0) != Some(expected) {
                    let commitment_envelope = commitment.envelope.clone();
                    if let Some((_, evidence)) = self.blame(
                        Offence::MalformedContribution,
                        &[&envelope, &commitment_envelope],
                        step,
                    ) {
                        return Some((AbortReason::MalformedContribution { member }, evidence));
                    }
                    continue;
                }
            }
            if let Some(head) = nonces.audit_head {
                let key = &self.group.members[member as usize];
                if member != self.me && head.verify(key) {
                    step.event(Event::PeerAuditHead { member, head });
                }
            }
            self.attempt.nonces_ok.insert(member, nonces);
        }
        None
    }

    /// All nonces in: aggregate per input, run the election, enter round 2.
    pub(super) fn finish_round_one(&mut self, step: &mut Step<'_>) -> Option<AbortReason> {
        let inputs = self.sighashes.len();
        let mut aggregated = Vec::with_capacity(inputs);
        for input in 0..inputs {
            let per_input: Vec<_> = self
                .attempt
                .nonces_ok
                .values()
                .map(|n| n.nonces[input])
                .collect();
            match AggregatedNonce::sum(&per_input) {
                Ok(sum) => aggregated.push(sum),
                Err(_) => return Some(AbortReason::DegenerateNonces),
            }
        }
        self.attempt.aggregated = Some(aggregated);
        if self.salted_pool() {
            // The salt shares come with the partial signatures: elected once all are in.
            step.event(Event::RoundCompleted {
                attempt: self.attempt.number,
                phase: Phase::Nonces,
            });
            self.attempt.enter(Phase::Signatures, step.now);
            return None;
        }
        let shares: Vec<[u8; 32]> = self
            .attempt
            .nonces_ok
            .values()
            .map(|n| n.salt_share)
            .collect();
        let election = self.run_election(&shares);
        step.event(Event::RoundCompleted {
            attempt: self.attempt.number,
            phase: Phase::Nonces,
        });
        step.event(Event::Elected {
            attempt: self.attempt.number,
            election: election.clone(),
        });
        self.attempt.election = Some(election);
        self.attempt.enter(Phase::Signatures, step.now);
        None
    }

    /// A pooled attempt of a salted election (its salt shares travel with the partials).
    pub(super) fn salted_pool(&self) -> bool {
        self.attempt.pooled && self.group.election.needs_salt()
    }

    /// Every member's share is revealed (and opened its commitment): run the election.
    fn elect_from_reveals(&mut self, step: &mut Step<'_>) {
        let shares: Vec<[u8; 32]> = self.attempt.salt_reveals.values().copied().collect();
        let election = self.run_election(&shares);
        step.event(Event::Elected {
            attempt: self.attempt.number,
            election: election.clone(),
        });
        self.attempt.election = Some(election);
    }

    /// This attempt's election with the members' salt shares (in member order).
    fn run_election(&self, shares: &[[u8; 32]]) -> Election {
        elect(
            self.group.election,
            &ElectionInput {
                members: &self.group.members,
                session_id: self.session_id(),
                attempt: self.attempt.number,
                sequence: self.proposal.sequence,
                salt: Some(derive_salt(&self.session_id(), self.attempt.number, shares)),
                penalized: &self.penalized,
            },
        )
        .expect("a validated group has members and the salt is present")
    }

    pub(super) fn musig_session(&self, input: usize) -> Option<MusigSession<'_>> {
        let aggregated = self.attempt.aggregated.as_ref()?.get(input)?;
        MusigSession::new(
            &self.key_agg,
            self.group.output.spend_path(),
            aggregated,
            &self.sighashes[input],
        )
        .ok()
    }

    /// Round 2: mark signing durable, consume the secret nonces, send the partials.
    pub(super) fn release_partials(&mut self, step: &mut Step<'_>) {
        if self.attempt.signed || self.attempt.phase != Phase::Signatures {
            return;
        }
        let Some(secrets) = self.attempt.secret_nonces.take() else {
            return;
        };
        let signer = self.sorted_index[self.me as usize];
        let mut partials = Vec::with_capacity(secrets.len());
        for (input, secret) in secrets.into_iter().enumerate() {
            let signed = self
                .musig_session(input)
                .and_then(|s| s.sign(signer, step.key, secret).ok());
            match signed {
                Some(partial) => partials.push(partial),
                None => return self.abort_attempt(AbortReason::DegenerateNonces, step),
            }
        }
        self.attempt.signed = true;
        self.ever_signed = true;
        // The store lets this through only if the user approved exactly this digest and it
        // is the digest of the proposal the store holds for the session.
        step.push(Action::Persist(Durable::AttemptSigning {
            session_id: self.session_id(),
            attempt: self.attempt.number,
            digest: self.review.digest,
        }));
        let proof = self
            .attempt
            .election
            .as_ref()
            .map(|e| e.proof)
            .unwrap_or_default();
        let payload = Partials {
            election_proof: proof,
            nonces_used: self.nonce_ids(),
            partials,
            salt_share: self
                .salted_pool()
                .then_some(self.attempt.my_nonces.salt_share),
        }
        .encode();
        let envelope = self.sign(MessageKind::Partials, payload, step);
        self.send_own(envelope, step);
    }

    /// The ids of every member's Nonces envelope of this attempt, in member order.
    pub(super) fn nonce_ids(&self) -> Vec<[u8; 32]> {
        self.attempt
            .nonces
            .values()
            .map(|r| r.envelope.id())
            .collect()
    }

    /// Verifies each newly arrived round-2 message against the nonces its sender committed
    /// to. Where the sender's view of some member's nonces differs from ours, the partial is
    /// not judged (our view could frame an honest signer): we forward what we hold, and the
    /// member who signed two different nonce messages is caught as an equivocator.
    pub(super) fn check_partials(
        &mut self,
        step: &mut Step<'_>,
    ) -> Option<(AbortReason, Evidence)> {
        let n = self.group.members.len();
        let ours = self.nonce_ids();
        let pending: Vec<u16> = self
            .attempt
            .partials
            .keys()
            .filter(|m| {
                !self.attempt.partials_ok.contains_key(m)
                    && !self.attempt.partials_bad.contains_key(m)
            })
            .copied()
            .collect();
        for member in pending {
            let received = &self.attempt.partials[&member];
            let envelope = received.envelope.clone();
            let Some(partials) = received
                .value
                .clone()
                .filter(|p| p.nonces_used.len() == n && p.partials.len() == self.sighashes.len())
            else {
                if let Some((_, evidence)) =
                    self.blame(Offence::MalformedContribution, &[&envelope], step)
                {
                    let reason = AbortReason::MalformedContribution { member };
                    self.attempt.partials_bad.insert(member, (reason, evidence));
                }
                continue;
            };
            if ours.len() < n {
                continue; // our own round 1 is not complete yet
            }
            let differing: Vec<u16> = (0..n as u16)
                .filter(|&k| partials.nonces_used[k as usize] != ours[k as usize])
                .collect();
            if !differing.is_empty() {
                for about in differing {
                    let bytes = self.attempt.nonces[&about].envelope.encode();
                    self.forward_once(self.attempt.number, member, about, bytes, step);
                }
                continue;
            }
            let Some(nonces) = self.attempt.nonces_ok.get(&member).cloned() else {
                continue;
            };
            if self.salted_pool() {
                // The revealed share must open the commitment of the member's pool entry.
                let committed = self.attempt.pool_salts.get(&member).copied();
                let revealed = partials.salt_share.as_ref().map(salt_commitment);
                if committed.is_none() || revealed != committed {
                    let pool = self.attempt.nonces[&member].envelope.clone();
                    if let Some((_, evidence)) =
                        self.blame(Offence::MalformedContribution, &[&envelope, &pool], step)
                    {
                        let reason = AbortReason::MalformedContribution { member };
                        self.attempt.partials_bad.insert(member, (reason, evidence));
                    }
                    continue;
                }
            }
            let signer = self.sorted_index[member as usize];
            let valid = partials
                .partials
                .iter()
                .enumerate()
                .all(|(input, partial)| {
                    self.musig_session(input)
                        .is_some_and(|s| s.verify_partial(signer, &nonces.nonces[input], partial))
                });
            let nonce_envelopes: Vec<Envelope> = self
                .attempt
                .nonces
                .values()
                .map(|r| r.envelope.clone())
                .collect();
            let mut envelopes = vec![&envelope];
            envelopes.extend(nonce_envelopes.iter());
            if !valid {
                if let Some((_, evidence)) = self.blame(Offence::InvalidPartial, &envelopes, step) {
                    let reason = AbortReason::InvalidPartial { member };
                    self.attempt.partials_bad.insert(member, (reason, evidence));
                }
                continue;
            }
            // A pooled salted election runs after signing: its round-2 proof is zero.
            let expected_proof = match &self.attempt.election {
                Some(e) if !self.salted_pool() => e.proof,
                _ => [0; 32],
            };
            if partials.election_proof != expected_proof {
                step.event(Event::ElectionProofMismatch { member });
                self.blame(Offence::WrongElectionProof, &envelopes, step);
            }
            self.member_approved(member, step);
            if let Some(share) = partials.salt_share.filter(|_| self.salted_pool()) {
                self.attempt.salt_reveals.insert(member, share);
            }
            self.attempt.partials_ok.insert(member, partials.partials);
        }
        // Every round-2 message is in and some are proven bad: the attempt can't finish.
        if self.attempt.partials.len() == n {
            if let Some(bad) = self.attempt.partials_bad.values().next() {
                return Some(bad.clone());
            }
        }
        None
    }

    pub(super) fn complete_from_partials(&mut self, step: &mut Step<'_>) {
        let n = self.group.members.len();
        let mut signatures = Vec::with_capacity(self.sighashes.len());
        for input in 0..self.sighashes.len() {
            let Some(session) = self.musig_session(input) else {
                return;
            };
            // Partials in MuSig2 sorted order.
            let mut ordered = vec![None; n];
            for (member, partials) in &self.attempt.partials_ok {
                ordered[self.sorted_index[*member as usize]] = Some(partials[input]);
            }
            let ordered: Vec<PartialSignature> = ordered.into_iter().flatten().collect();
            match session.aggregate(&ordered) {
                Ok(signature) if session.verify_final(&signature) => signatures.push(signature),
                _ => return self.abort_attempt(AbortReason::DegenerateNonces, step),
            }
        }
        let completed = Completed {
            signatures: signatures.clone(),
        };
        let envelope = self.sign(MessageKind::Completed, completed.encode(), step);
        let bytes = self.log_and_send(&envelope, step);
        self.completed_message = Some(bytes);
        let attempt = self.attempt.number;
        self.finish(signatures, attempt, step);
    }

    /// A member's finished signatures: adopt them if they verify (we may have missed a
    /// partial), blame the sender if they don't.
    pub(super) fn on_completed(&mut self, envelope: &Envelope, step: &mut Step<'_>) {
        if !matches!(self.state, State::Running) {
            return;
        }
        let valid = Completed::decode(&envelope.payload)
            .ok()
            .filter(|c| self.signatures_verify(&c.signatures));
        match valid {
            Some(completed) => {
                self.completed_message = Some(envelope.encode());
                self.finish(completed.signatures, envelope.header.attempt, step);
            }
            None => {
                if let Some((_, evidence)) =
                    self.blame(Offence::MalformedContribution, &[envelope], step)
                {
                    let member = envelope.header.sender;
                    self.abort_with_evidence(
                        AbortReason::MalformedContribution { member },
                        evidence,
                        step,
                    );
                }
            }
        }
    }

    pub(super) fn signatures_verify(&self, signatures: &[Signature]) -> bool {
        let key = self.key_agg.signing_key(self.group.output.spend_path()).key;
        signatures.len() == self.sighashes.len()
            && signatures
                .iter()
                .zip(&self.sighashes)
                .all(|(s, m)| lotus::schnorr::verify(s, m, &key))
    }

    /// Signatures in hand: build the transaction, persist it, start the failover schedule.
    /// `signed_attempt` is the attempt whose partials made the signatures: ours, or another
    /// one when we adopt a member's `Completed` message.
    pub(super) fn finish(
        &mut self,
        signatures: Vec<Signature>,
        signed_attempt: u32,
        step: &mut Step<'_>,
    ) {
        let tx = match self.proposal.finalize(&self.group, &signatures) {
            Ok(tx) => tx,
            Err(_) => return self.abort_attempt(AbortReason::DegenerateNonces, step),
        };
        self.attempt.secret_nonces = None;
        let session_id = self.session_id();
        // The transaction first: once an attempt is marked signed, a restart must find the tx.
        step.push(Action::Persist(Durable::Signed {
            session_id,
            tx: tx.encode(),
        }));
        if self.attempt.released_nonces {
            step.push(Action::Persist(Durable::AttemptClosed {
                session_id,
                attempt: self.attempt.number,
                signed: self.attempt.number == signed_attempt,
            }));
        }
        let txid = tx.txid().0;
        step.event(Event::Signed {
            attempt: signed_attempt,
            txid,
        });
        // Without this attempt's nonces (we adopted someone's signatures) the salted election
        // can't be recomputed; fall back to the key order for our own schedule only.
        let priority = match &self.attempt.election {
            Some(e) => e.priority.clone(),
            None => {
                elect(
                    ElectionMethod::Lexicographic,
                    &ElectionInput {
                        members: &self.group.members,
                        session_id,
                        attempt: self.attempt.number,
                        sequence: self.proposal.sequence,
                        salt: None,
                        penalized: &[],
                    },
                )
                .expect("a validated group has members")
                .priority
            }
        };
        let failover = Failover::new(
            priority,
            self.me,
            step.now,
            self.group.timeouts.broadcast_slot_ms,
            self.group.parallel_broadcasts as usize,
        );
        self.state = State::Completed { tx, failover };
        self.next_resend = step.now + self.resend_interval();
        self.poll_failover(step);
    }

    pub(super) fn poll_failover(&mut self, step: &mut Step<'_>) {
        let State::Completed { tx, failover } = &mut self.state else {
            return;
        };
        for event in failover.poll(step.now) {
            if matches!(event, FailoverEvent::ShouldBroadcast { .. }) {
                step.actions.push(Action::Broadcast { tx: tx.clone() });
            }
            step.actions.push(Action::Event(Event::Failover(event)));
        }
    }
}
