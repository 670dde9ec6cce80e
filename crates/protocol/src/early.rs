//! Messages that outran their proposal: held until the proposal arrives, bounded by bytes
//! (per sender and in total) and by time, keyed by (group, session) so a message can only
//! ever join a session of the group it names.

use std::collections::BTreeMap;

use lotus::secp256k1::PublicKey;

use crate::envelope::Envelope;
use crate::failover::Millis;
use crate::gate::Rejection;
use crate::group::GroupId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyLimits {
    /// Bytes one member may have held at a time, across all sessions.
    pub per_sender_bytes: usize,
    /// Bytes held in all.
    pub total_bytes: usize,
    /// How long a message waits for its proposal.
    pub ttl_ms: Millis,
}

impl Default for EarlyLimits {
    fn default() -> Self {
        Self {
            per_sender_bytes: 256 << 10,
            total_bytes: 8 << 20,
            ttl_ms: 10 * 60_000,
        }
    }
}

struct Held {
    envelope: Envelope,
    len: usize,
    sender: PublicKey,
    until: Millis,
}

#[derive(Default)]
pub struct EarlyBuffer {
    limits: EarlyLimits,
    held: BTreeMap<(GroupId, [u8; 32]), Vec<Held>>,
    per_sender: BTreeMap<PublicKey, usize>,
    total: usize,
}

impl EarlyBuffer {
    pub fn new(limits: EarlyLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Whether a message of `len` bytes from `sender` would fit (checked before the signature,
    /// so junk is refused cheaply; only an authenticated message is then inserted).
    pub fn check_room(
        &mut self,
        sender: &PublicKey,
        len: usize,
        now: Millis,
    ) -> Result<(), Rejection> {
        self.prune(now);
        if self.per_sender.get(sender).copied().unwrap_or(0) + len > self.limits.per_sender_bytes {
            return Err(Rejection::EarlyBufferFull("this sender's share is used up"));
        }
        if self.total + len > self.limits.total_bytes {
            return Err(Rejection::EarlyBufferFull("the buffer is full"));
        }
        Ok(())
    }

    pub fn insert(
        &mut self,
        group: GroupId,
        envelope: Envelope,
        len: usize,
        sender: PublicKey,
        now: Millis,
    ) {
        if self.check_room(&sender, len, now).is_err() {
            return;
        }
        *self.per_sender.entry(sender).or_default() += len;
        self.total += len;
        self.held
            .entry((group, envelope.header.session_id))
            .or_default()
            .push(Held {
                envelope,
                len,
                sender,
                until: now + self.limits.ttl_ms,
            });
    }

    /// The messages held for a session of `group`, in arrival order.
    pub fn take(&mut self, group: GroupId, session_id: [u8; 32]) -> Vec<Envelope> {
        let held = self.held.remove(&(group, session_id)).unwrap_or_default();
        held.into_iter()
            .map(|h| {
                self.release_bytes(&h.sender, h.len);
                h.envelope
            })
            .collect()
    }

    pub fn prune(&mut self, now: Millis) {
        let mut released = Vec::new();
        self.held.retain(|_, list| {
            list.retain(|h| {
                let keep = h.until > now;
                if !keep {
                    released.push((h.sender, h.len));
                }
                keep
            });
            !list.is_empty()
        });
        for (sender, len) in released {
            self.release_bytes(&sender, len);
        }
    }

    pub fn bytes(&self) -> usize {
        self.total
    }

    pub fn sender_bytes(&self, sender: &PublicKey) -> usize {
        self.per_sender.get(sender).copied().unwrap_or(0)
    }

    fn release_bytes(&mut self, sender: &PublicKey, len: usize) {
        self.total -= len;
        if let Some(used) = self.per_sender.get_mut(sender) {
            *used -= len;
            if *used == 0 {
                self.per_sender.remove(sender);
            }
        }
    }
}
