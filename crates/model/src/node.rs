//! One honest member's session logic under the protocol-v2 rules: what it does with a message,
//! with its own round 1 and round 2, with a user's approval, and after a restart.
//!
//! The node deliberately has no in-memory approval check of its own: it asks the store to
//! mark the attempt signing whenever the user approved *something*, so property 1 rests on the
//! store's guard alone (the real `Session::approve` also compares digests; that is extra).
//! For the same reason the re-check of the approval on restore is not a step of its own: a
//! restarted node asks the store again, which compares the stored approval with the stored
//! proposal.

use crate::model::Mutation;
use crate::state::{Attempt, Member, Memory, Msg, Node, NonceId, Round1, Sent, BYZANTINE, MEMBERS};
use crate::store::Refused;

/// The parts of the protocol configuration a node obeys.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub max_attempts: Attempt,
    pub mutation: Option<Mutation>,
}

/// One honest member at work: its state and the shared record of sent messages.
pub struct Ctx<'a> {
    pub me: Member,
    pub node: &'a mut Node,
    pub sent: &'a mut Sent,
    pub rules: Rules,
}

/// Whether a message can matter to this member now. Everything else is dropped unfiled and
/// unblamed: a foreign digest belongs to another proposal (never evidence), an earlier attempt
/// is over, and a later attempt's message will arrive again (resend or pull) once this member
/// gets there, so dropping it now loses nothing.
pub fn considers(node: &Node, msg: &Msg) -> bool {
    match *msg {
        Msg::Proposal { .. } => !node.store.signed && !node.store.closed,
        _ if !node.running() => false,
        Msg::Nonce {
            attempt, digest, ..
        }
        | Msg::Partial {
            attempt, digest, ..
        } => attempt == node.mem.attempt && Some(digest) == node.store.accepted,
        Msg::Abort { attempt, .. } => attempt == node.mem.attempt,
        Msg::Completed { digest, .. } => Some(digest) == node.store.accepted,
    }
}

/// Whether the member could send its partial signature now, if approved and the store agrees.
pub fn ready_to_sign(node: &Node) -> bool {
    node.running()
        && matches!(node.mem.round1, Round1::Released(_))
        && node.mem.nonces.iter().all(Option::is_some)
}

impl Ctx<'_> {
    pub fn receive(&mut self, msg: Msg) {
        if !considers(self.node, &msg) {
            return;
        }
        match msg {
            Msg::Proposal { digest } => {
                self.node.mem.seen |= digest.bit();
                match self.node.store.accepted {
                    None => {
                        self.node.store.accept(digest);
                        self.enter_attempt(self.node.store.fresh_attempt());
                    }
                    // Two proposals signed by the proposer for one session id: evidence. The
                    // session keeps the proposal it accepted.
                    Some(accepted) if accepted != digest => self.record_blame(msg.sender()),
                    Some(_) => {}
                }
            }
            Msg::Nonce { sender, id, .. } => self.file_nonce(sender, id),
            Msg::Partial {
                sender,
                view,
                valid,
                ..
            } => self.file_partial(sender, view, valid),
            // Someone abandoned the attempt we are in: it cannot finish without them.
            Msg::Abort { .. } => self.abort_attempt(false),
            // The final signatures verify: adopt them.
            Msg::Completed { .. } => self.finish_signed(),
        }
    }

    /// Round 1: the nonce `id` was just drawn. Its registry row commits before it leaves
    /// (unless the model runs the `NoncesSentBeforeCommit` mutation); a refused or failed
    /// commit abandons the attempt with nothing sent.
    pub fn release_nonce(&mut self, id: NonceId, persist_fails: bool) {
        let attempt = self.node.mem.attempt;
        if self.rules.mutation == Some(Mutation::NoncesSentBeforeCommit) {
            self.send_nonce(id);
            if self.node.running() && self.node.mem.attempt == attempt {
                self.node.mem.round1 = Round1::Unsaved(id);
            }
            return;
        }
        if persist_fails || self.node.store.release_nonce(attempt, id).is_err() {
            return self.abort_attempt(true);
        }
        self.node.mem.round1 = Round1::Released(id);
        self.send_nonce(id);
    }

    /// Mutation `NoncesSentBeforeCommit` only: the late commit of a nonce already out.
    pub fn commit_unsaved_nonce(&mut self, persist_fails: bool) {
        let Round1::Unsaved(id) = self.node.mem.round1 else {
            return;
        };
        let attempt = self.node.mem.attempt;
        if persist_fails || self.node.store.release_nonce(attempt, id).is_err() {
            return self.abort_attempt(true);
        }
        self.node.mem.round1 = Round1::Released(id);
    }

    /// The user approves the review of `digest` (one the member was shown).
    pub fn approve(&mut self, digest: crate::state::Proposal) {
        self.node.store.approve(digest);
    }

    /// Round 2: the store marks the attempt signing (the approval guard), then the partial
    /// leaves, committing to the accepted digest and to the nonce messages it used.
    pub fn sign(&mut self) -> Result<(), Refused> {
        let attempt = self.node.mem.attempt;
        self.node.store.mark_signing(attempt, self.rules.mutation)?;
        let view = self.node.mem.nonces.map(|n| n.expect("ready_to_sign"));
        let digest = self.node.store.accepted.expect("running");
        if self.node.store.approval != Some(digest) {
            self.node.ghost.unapproved_partial = true;
        }
        self.node.mem.round1 = Round1::Signed;
        self.sent.insert(Msg::Partial {
            sender: self.me,
            attempt,
            digest,
            view,
            valid: true,
        });
        self.node.mem.partials |= 1 << self.me;
        self.complete_if_ready();
        Ok(())
    }

    /// After a crash: the session comes back from the store alone. Every attempt that released
    /// a nonce and did not end is aborted (its secret nonces died with the process) and
    /// announced; the member resumes at an attempt after all of them, so its next nonce is
    /// fresh. The approval is durable and is consulted again by the store at the next signing.
    pub fn restart(&mut self) {
        self.node.mem = Memory::default();
        if !self.node.running() {
            return;
        }
        let open: Vec<Attempt> = self.node.store.open_attempts().collect();
        for attempt in open {
            self.node.store.close_attempt(attempt);
            if self.rules.mutation != Some(Mutation::RestartWithoutNotice) {
                self.sent.insert(Msg::Abort {
                    sender: self.me,
                    attempt,
                });
            }
        }
        self.node.mem.seen = self.node.store.accepted.map_or(0, |p| p.bit());
        self.enter_attempt(self.node.store.fresh_attempt());
    }

    // ----- internals --------------------------------------------------------------------------

    fn send_nonce(&mut self, id: NonceId) {
        let ghost = &mut self.node.ghost;
        if ghost.released & (1 << id) != 0 {
            ghost.double_release = true;
        }
        ghost.released |= 1 << id;
        self.sent.insert(Msg::Nonce {
            sender: self.me,
            attempt: self.node.mem.attempt,
            digest: self.node.store.accepted.expect("running"),
            id,
        });
        self.file_nonce(self.me, id);
    }

    /// A second, different nonce message for a filled slot is equivocation by its signer.
    fn file_nonce(&mut self, member: Member, id: NonceId) {
        match self.node.mem.nonces[member as usize] {
            None => self.node.mem.nonces[member as usize] = Some(id),
            Some(filed) if filed == id => {}
            Some(_) => self.evidence(member),
        }
    }

    fn file_partial(&mut self, sender: Member, view: [NonceId; MEMBERS], valid: bool) {
        let mem = &self.node.mem;
        if mem.partials & (1 << sender) != 0 {
            // Filed already (its view is `nonces`): the same message again is a resend, a
            // different one is a second signed partial for one slot.
            if valid && mem.nonces == view.map(Some) {
                return;
            }
            return self.evidence(sender);
        }
        if self.rules.mutation == Some(Mutation::PartialCheckedAgainstOwnView) {
            // The broken rule: verify with our own nonces, so a signer who was shown other
            // nonces (by an equivocator) looks like a forger.
            if mem.nonces.iter().any(Option::is_none) {
                return;
            }
            if !valid || mem.nonces != view.map(Some) {
                return self.evidence(sender);
            }
        } else {
            // v2: the partial is checked against the nonce messages it committed to; it is
            // evidence against its signer only if it fails that check.
            if !valid {
                return self.evidence(sender);
            }
            // It verifies, but cites a nonce message other than the one we filed: both are
            // signed by that slot's member, who therefore equivocated.
            let conflict = (0..MEMBERS).find(|&m| mem.nonces[m].is_some_and(|n| n != view[m]));
            if let Some(member) = conflict {
                return self.evidence(member as Member);
            }
            for (slot, id) in self.node.mem.nonces.iter_mut().zip(view) {
                slot.get_or_insert(id);
            }
        }
        self.node.mem.partials |= 1 << sender;
        self.complete_if_ready();
    }

    /// Verified evidence: recorded durably, and the attempt cannot finish, so it is abandoned.
    fn evidence(&mut self, against: Member) {
        self.record_blame(against);
        self.abort_attempt(true);
    }

    /// Evidence against the Byzantine member is not kept: no property reads it, and it would
    /// only split otherwise equal states.
    fn record_blame(&mut self, against: Member) {
        if against != BYZANTINE {
            self.node.store.blame(against);
        }
    }

    fn complete_if_ready(&mut self) {
        if self.node.mem.partials == (1 << MEMBERS) - 1 {
            let digest = self.node.store.accepted.expect("running");
            self.sent.insert(Msg::Completed {
                sender: self.me,
                digest,
            });
            self.finish_signed();
        }
    }

    fn finish_signed(&mut self) {
        self.node.store.signed = true;
        self.node.store.close_attempt(self.node.mem.attempt);
        self.node.mem = Memory::default();
    }

    /// Leaves the current attempt (its secret nonce is dropped with the memory) and starts the
    /// next, or ends the session when the attempts are used up.
    fn abort_attempt(&mut self, announce: bool) {
        let attempt = self.node.mem.attempt;
        self.node.store.close_attempt(attempt);
        if announce {
            self.sent.insert(Msg::Abort {
                sender: self.me,
                attempt,
            });
        }
        self.enter_attempt(attempt + 1);
    }

    fn enter_attempt(&mut self, attempt: Attempt) {
        let seen = self.node.mem.seen;
        if attempt >= self.rules.max_attempts {
            self.node.store.closed = true;
            self.node.mem = Memory::default();
        } else {
            self.node.mem = Memory {
                attempt,
                seen,
                ..Memory::default()
            };
        }
    }
}
