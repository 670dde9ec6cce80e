//! Test-only misbehaviour of a whole node, for cross-process tests that need a real process to
//! fail in one particular way (`lotus-cosigner node --test-fault NAME`). The app never sets
//! one; a node that runs with one says so loudly in its log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use lotus::secp256k1::PublicKey;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::messages::{Nonces, Partials};
use tokio::sync::broadcast;

use super::chain::{ChainLink, InputsCheck, LinkError};
use super::transport::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFault {
    /// Never broadcasts a signed transaction (a coordinator that dies after the partial
    /// signatures): only backups can finish the session.
    SilentCoordinator,
    /// Sends every envelope followed by a burst of forged copies: broken signatures, and
    /// copies claiming to come from the other members (impersonation).
    Flood,
    /// Sends partial signatures that do not verify (re-signed with its own key, so the
    /// envelope itself is genuine), and keeps the signatures it could finish to itself.
    InvalidPartials,
    /// Sends two different signed round-1 messages for every attempt.
    Equivocate,
    /// Re-sends everything it sent before with every new message, and re-signs its own
    /// messages under every other group it belongs to, with its index there (cross-group
    /// replay: genuinely signed, but for sessions those groups never had).
    Replay,
}

/// Forged copies a flooding node sends after each real envelope.
const FLOOD_COPIES: usize = 64;

impl std::str::FromStr for TestFault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "silent-coordinator" => Ok(Self::SilentCoordinator),
            "flood" => Ok(Self::Flood),
            "invalid-partials" => Ok(Self::InvalidPartials),
            "equivocate" => Ok(Self::Equivocate),
            "replay" => Ok(Self::Replay),
            other => Err(format!(
                "unknown test fault '{other}' \
                 (silent-coordinator, flood, invalid-partials, equivocate, replay)"
            )),
        }
    }
}

/// The chain link of a [`TestFault::SilentCoordinator`]: watches, never submits.
pub struct SilentChain(pub Arc<dyn ChainLink>);

impl ChainLink for SilentChain {
    fn submit(&self, tx: &Transaction) -> Result<(), LinkError> {
        tracing::warn!("test fault: not broadcasting a signed transaction");
        self.0.watch(tx)
    }

    fn watch(&self, tx: &Transaction) -> Result<(), LinkError> {
        self.0.watch(tx)
    }

    fn check_inputs(
        &self,
        inputs: Vec<(lotus::tx::OutPoint, TxOut)>,
    ) -> Option<tokio::sync::oneshot::Receiver<InputsCheck>> {
        self.0.check_inputs(inputs)
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        self.0.subscribe()
    }
}

/// Envelopes a replaying node keeps to send again.
const REPLAY_WINDOW: usize = 64;

/// The transport of a Byzantine test node: runs the honest protocol and tampers with what it
/// sends, re-signing with its own key as a real attacker would.
pub struct ByzantineTransport {
    pub inner: Arc<dyn Transport>,
    pub key: PrivateKey,
    pub fault: TestFault,
    /// The groups the node belongs to (for cross-group replays).
    pub groups: Vec<GroupDescriptor>,
    pub sent: Mutex<VecDeque<Vec<u8>>>,
}

impl ByzantineTransport {
    pub fn new(
        inner: Arc<dyn Transport>,
        key: PrivateKey,
        fault: TestFault,
        groups: Vec<GroupDescriptor>,
    ) -> Self {
        Self {
            inner,
            key,
            fault,
            groups,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    fn resign(&self, header: Header, payload: Vec<u8>) -> Vec<u8> {
        Envelope::sign(header, payload, &self.key).encode()
    }

    fn flood(&self, to: &[PublicKey], envelope: &Envelope) {
        for copy in 0..FLOOD_COPIES {
            let mut forged = envelope.clone();
            forged.header.timestamp_ms = forged.header.timestamp_ms.wrapping_add(copy as u64 + 1);
            // Every other copy claims another member as its sender.
            if copy % 2 == 1 {
                forged.header.sender = forged.header.sender.wrapping_add(1);
            }
            let mut bytes = forged.encode();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x55;
            self.inner.send(to, &bytes);
        }
    }

    /// Its partial signatures, each with one bit flipped; `None` for what it never sends.
    fn invalid_partials(&self, envelope: &Envelope) -> Option<Vec<u8>> {
        match envelope.header.kind {
            // Finished signatures would let the others complete despite the bad partials.
            MessageKind::Completed => None,
            MessageKind::Partials => {
                let Ok(mut partials) = Partials::decode(&envelope.payload) else {
                    return Some(envelope.encode());
                };
                for p in partials.partials.iter_mut() {
                    let mut b = p.to_bytes();
                    b[31] ^= 1;
                    if let Ok(tampered) = musig::PartialSignature::from_slice(&b) {
                        *p = tampered;
                    }
                }
                tracing::warn!("test fault: sending invalid partial signatures");
                Some(self.resign(envelope.header, partials.encode()))
            }
            _ => Some(envelope.encode()),
        }
    }

    /// A second, different round-1 message beside the real one.
    fn equivocation(&self, envelope: &Envelope) -> Option<Vec<u8>> {
        if envelope.header.kind != MessageKind::Nonces {
            return None;
        }
        let mut nonces = Nonces::decode(&envelope.payload).ok()?;
        nonces.salt_share[0] ^= 0xff;
        tracing::warn!("test fault: sending a second, different round-1 message");
        Some(self.resign(envelope.header, nonces.encode()))
    }

    /// Old envelopes again, and this one re-signed under its other groups.
    fn replays(&self, envelope: &Envelope, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = {
            let mut sent = self.sent.lock().expect("replay window");
            let old = sent.iter().cloned().collect();
            if sent.len() == REPLAY_WINDOW {
                sent.pop_front();
            }
            sent.push_back(bytes.to_vec());
            old
        };
        let me = self.key.public_key();
        let h = envelope.header;
        for group in self.groups.iter().filter(|g| g.id() != h.group_id) {
            if let Some(index) = group.member_index(&me) {
                let forged = Header {
                    group_id: group.id(),
                    sender: index,
                    ..h
                };
                out.push(self.resign(forged, envelope.payload.clone()));
            }
        }
        out
    }
}

impl Transport for ByzantineTransport {
    fn send(&self, to: &[PublicKey], bytes: &[u8]) {
        let Ok(envelope) = Envelope::decode(bytes, 1 << 20) else {
            return self.inner.send(to, bytes);
        };
        // Its nonce pool stays with it: with no pool to name, every proposal runs the
        // interactive rounds, whose messages are the ones it tampers with.
        if envelope.header.kind == MessageKind::NoncePool && self.fault != TestFault::Flood {
            return;
        }
        match self.fault {
            TestFault::Flood => {
                self.inner.send(to, bytes);
                self.flood(to, &envelope);
            }
            TestFault::InvalidPartials => {
                if let Some(bytes) = self.invalid_partials(&envelope) {
                    self.inner.send(to, &bytes);
                }
            }
            TestFault::Equivocate => {
                self.inner.send(to, bytes);
                if let Some(second) = self.equivocation(&envelope) {
                    self.inner.send(to, &second);
                }
            }
            TestFault::Replay => {
                self.inner.send(to, bytes);
                for replay in self.replays(&envelope, bytes) {
                    self.inner.send(to, &replay);
                }
            }
            TestFault::SilentCoordinator => self.inner.send(to, bytes),
        }
    }
}
