//! The store's guarded transitions (DESIGN §4). These are the checks the properties rest on, so
//! they live apart from the session logic that calls them.

use crate::model::Mutation;
use crate::state::{Attempt, NonceId, Proposal, Row, Store};

/// The store refused: whatever the write was guarding must not leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The nonce id is already in the registry (here or in any earlier attempt).
    NonceReused,
    /// The user approved no digest, or another digest than the accepted proposal's.
    NotApproved,
    /// The attempt is not in the `released` state.
    WrongState,
}

impl Store {
    /// Opens the session with the first proposal; a later one never replaces it.
    pub fn accept(&mut self, proposal: Proposal) {
        self.accepted.get_or_insert(proposal);
    }

    /// The user's approval of one review digest; the first one stands.
    pub fn approve(&mut self, digest: Proposal) {
        self.approval.get_or_insert(digest);
    }

    /// Commits the row of a nonce about to be released. A nonce id seen before, in any
    /// attempt, is refused.
    pub fn release_nonce(&mut self, attempt: Attempt, id: NonceId) -> Result<(), Refused> {
        if self.used_ids & (1 << id) != 0 {
            return Err(Refused::NonceReused);
        }
        self.used_ids |= 1 << id;
        let row = &mut self.attempts[attempt as usize];
        if *row == Row::Unused {
            *row = Row::Released;
        }
        Ok(())
    }

    /// released → signing, before a partial signature leaves. The protocol-v2 guard: the user
    /// approved exactly the accepted proposal's digest.
    pub fn mark_signing(
        &mut self,
        attempt: Attempt,
        mutation: Option<Mutation>,
    ) -> Result<(), Refused> {
        let approved = match mutation {
            // Protocol v1: any recorded approval was enough.
            Some(Mutation::StoreIgnoresApprovalDigest) => self.approval.is_some(),
            _ => self.approval.is_some() && self.approval == self.accepted,
        };
        if !approved {
            return Err(Refused::NotApproved);
        }
        let row = &mut self.attempts[attempt as usize];
        if *row != Row::Released {
            return Err(Refused::WrongState);
        }
        *row = Row::Signing;
        Ok(())
    }

    /// The attempt ended (signed or not); a no-op for an attempt that released nothing.
    pub fn close_attempt(&mut self, attempt: Attempt) {
        let row = &mut self.attempts[attempt as usize];
        if matches!(*row, Row::Released | Row::Signing) {
            *row = Row::Closed;
        }
    }

    /// Attempts that released a nonce and did not end: a restart must abort them.
    pub fn open_attempts(&self) -> impl Iterator<Item = Attempt> + '_ {
        self.attempts
            .iter()
            .enumerate()
            .filter(|(_, row)| matches!(row, Row::Released | Row::Signing))
            .map(|(a, _)| a as Attempt)
    }

    /// The first attempt after every attempt that released a nonce: where a restart resumes.
    pub fn fresh_attempt(&self) -> Attempt {
        self.attempts
            .iter()
            .rposition(|row| *row != Row::Unused)
            .map_or(0, |a| a as Attempt + 1)
    }

    pub fn blame(&mut self, member: u8) {
        self.blamed |= 1 << member;
    }
}
