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
    /// Highest attempt this node sent any message in, per session.
    pub sent_attempt: BTreeMap<[u8; 32], u32>,
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
                session_id,
                bytes,
                outgoing,
            } => {
                self.messages += 1;
                if let Ok(envelope) = Envelope::decode(bytes, usize::MAX) {
                    if *outgoing {
                        let attempt = self
                            .sent_attempt
                            .entry(*session_id)
                            .or_insert(envelope.header.attempt);
                        *attempt = (*attempt).max(envelope.header.attempt);
                    }
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

    /// The highest attempt this node took part in (released nonces or sent anything): after a
    /// restart it must never send in that attempt again, or it would contradict itself.
    pub fn last_active_attempt(&self, session: &[u8; 32]) -> Option<u32> {
        let released = self
            .released
            .keys()
            .filter(|(s, _)| s == session)
            .map(|(_, a)| *a)
            .max();
        released.max(self.sent_attempt.get(session).copied())
    }
}
