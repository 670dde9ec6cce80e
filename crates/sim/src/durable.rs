//! The simulated node's durable store: what survives a crash. It models exactly the rows the
//! real store keeps (DESIGN §4), and checks the used-nonce rule itself.

use std::collections::{BTreeMap, BTreeSet};

use protocol::envelope::{Envelope, MessageKind};
use protocol::session::Durable;

#[derive(Debug, Default, Clone)]
pub struct DurableModel {
    /// (session, attempt) → released nonce hashes.
    pub released: BTreeMap<([u8; 32], u32), Vec<[u8; 32]>>,
    pub signing: BTreeSet<([u8; 32], u32)>,
    pub closed: BTreeMap<([u8; 32], u32), bool>,
    pub proposals: BTreeMap<[u8; 32], Vec<u8>>,
    pub signed: BTreeMap<[u8; 32], Vec<u8>>,
    pub approved: BTreeSet<[u8; 32]>,
    pub messages: usize,
}

impl DurableModel {
    pub fn apply(&mut self, durable: &Durable) {
        match durable {
            Durable::NonceReleased {
                session_id,
                attempt,
                nonce_hash,
                ..
            } => {
                self.released
                    .entry((*session_id, *attempt))
                    .or_default()
                    .push(*nonce_hash);
            }
            Durable::AttemptSigning {
                session_id,
                attempt,
            } => {
                self.signing.insert((*session_id, *attempt));
            }
            Durable::AttemptClosed {
                session_id,
                attempt,
                signed,
            } => {
                self.closed.insert((*session_id, *attempt), *signed);
            }
            Durable::Message {
                session_id, bytes, ..
            } => {
                self.messages += 1;
                if let Ok(envelope) = Envelope::decode(bytes, usize::MAX) {
                    if envelope.header.kind == MessageKind::Proposal {
                        self.proposals
                            .entry(*session_id)
                            .or_insert_with(|| bytes.clone());
                    }
                }
            }
            Durable::Signed { session_id, tx } => {
                self.signed.insert(*session_id, tx.clone());
            }
        }
    }

    /// Attempts that released nonces and never closed: after a crash these are abandoned.
    pub fn open_released_attempts(&self) -> BTreeMap<[u8; 32], u32> {
        let mut last = BTreeMap::new();
        for (session, attempt) in self.released.keys() {
            if !self.closed.contains_key(&(*session, *attempt)) {
                let entry = last.entry(*session).or_insert(*attempt);
                *entry = (*entry).max(*attempt);
            }
        }
        last
    }

    /// The highest attempt with released nonces per session (closed or not).
    pub fn last_released_attempt(&self, session: &[u8; 32]) -> Option<u32> {
        self.released
            .keys()
            .filter(|(s, _)| s == session)
            .map(|(_, a)| *a)
            .max()
    }
}
