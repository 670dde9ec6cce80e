//! The simulated node's durable store: what survives a crash. It models exactly the rows the
//! real store keeps (DESIGN §4), and enforces the same rules: a nonce row once, a session row
//! only from an accepted proposal, and the signing mark only for the approved digest.

use std::collections::{BTreeMap, BTreeSet};

use protocol::envelope::Envelope;
use protocol::session::Durable;

/// Why the model store refused a durable step (as the real store's errors would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The nonce hash was released before: the session closes for good.
    NonceReused,
    /// Any other refused step: the session is suspended until a restart.
    Other(&'static str),
}

#[derive(Debug, Default, Clone)]
pub struct DurableModel {
    /// (session, attempt) → released nonce hashes.
    pub released: BTreeMap<([u8; 32], u32), Vec<[u8; 32]>>,
    nonce_hashes: BTreeSet<[u8; 32]>,
    pub signing: BTreeSet<([u8; 32], u32)>,
    pub closed: BTreeMap<([u8; 32], u32), bool>,
    /// session → the accepted proposal envelope and its review digest.
    pub proposals: BTreeMap<[u8; 32], (Vec<u8>, [u8; 32])>,
    pub signed: BTreeMap<[u8; 32], Vec<u8>>,
    /// session → the review digest the user approved.
    pub approved: BTreeMap<[u8; 32], [u8; 32]>,
    /// Sessions the user rejected (never resumed, never signed).
    pub rejected: BTreeSet<[u8; 32]>,
    pub messages: usize,
    /// Highest attempt this node sent any message in, per session.
    pub sent_attempt: BTreeMap<[u8; 32], u32>,
}

impl DurableModel {
    /// Applies one durable step, or refuses it as the real store would.
    pub fn apply(&mut self, durable: &Durable) -> Result<(), Refused> {
        match durable {
            Durable::SessionAccepted {
                session_id,
                envelope,
                outgoing,
            } => {
                if *outgoing {
                    // Our own proposal counts as a message sent in attempt 0, as in the store.
                    self.sent_attempt.entry(*session_id).or_insert(0);
                }
                let digest = Envelope::decode(envelope, usize::MAX)
                    .map_err(|_| Refused::Other("the proposal envelope does not decode"))?
                    .header
                    .proposal;
                match self.proposals.get(session_id) {
                    Some((_, held)) if *held != digest => {
                        return Err(Refused::Other("another proposal holds this session"))
                    }
                    Some(_) => {}
                    None => {
                        self.proposals
                            .insert(*session_id, (envelope.clone(), digest));
                    }
                }
            }
            Durable::NonceReleased {
                session_id,
                attempt,
                nonce_hash,
                ..
            } => {
                if !self.nonce_hashes.insert(*nonce_hash) {
                    return Err(Refused::NonceReused);
                }
                self.released
                    .entry((*session_id, *attempt))
                    .or_default()
                    .push(*nonce_hash);
            }
            Durable::AttemptSigning {
                session_id,
                attempt,
                digest,
            } => {
                if self.rejected.contains(session_id) {
                    return Err(Refused::Other("the user rejected this session"));
                }
                if self.approved.get(session_id) != Some(digest) {
                    return Err(Refused::Other("the user did not approve this digest"));
                }
                if self.proposals.get(session_id).map(|(_, d)| d) != Some(digest) {
                    return Err(Refused::Other("the digest is not the stored proposal's"));
                }
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
                }
            }
            Durable::Signed { session_id, tx } => {
                self.signed.insert(*session_id, tx.clone());
            }
            Durable::Rejected { session_id, .. } => {
                self.rejected.insert(*session_id);
            }
        }
        Ok(())
    }

    /// Whether our partials left in some attempt of the session.
    pub fn signed_before(&self, session: &[u8; 32]) -> bool {
        self.signing.iter().any(|(s, _)| s == session)
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
