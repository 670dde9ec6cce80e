//! How signed envelopes travel between engines. The libp2p network layer implements
//! `Transport`; `InProcessHub` connects several engines inside one process (tests, demo).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lotus::secp256k1::PublicKey;
use tokio::sync::mpsc;

/// Delivery of opaque envelope bytes to group members, addressed by signer key. Best effort:
/// the protocol resends until it hears back, so a transport may drop.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, to: &[PublicKey], bytes: &[u8]);
}

/// Connects engines in one process: each gets an inbox keyed by its signer key.
/// Signer key → that engine's inbox.
type Inboxes = BTreeMap<[u8; 33], mpsc::UnboundedSender<Vec<u8>>>;

#[derive(Clone, Default)]
pub struct InProcessHub {
    inboxes: Arc<Mutex<Inboxes>>,
}

impl InProcessHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `key`'s inbox (replacing an older one, as a restarted engine would).
    pub fn connect(
        &self,
        key: &PublicKey,
    ) -> (InProcessTransport, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes
            .lock()
            .expect("hub lock")
            .insert(key.serialize(), tx);
        (InProcessTransport { hub: self.clone() }, rx)
    }

    pub fn disconnect(&self, key: &PublicKey) {
        self.inboxes
            .lock()
            .expect("hub lock")
            .remove(&key.serialize());
    }
}

#[derive(Clone)]
pub struct InProcessTransport {
    hub: InProcessHub,
}

impl Transport for InProcessTransport {
    fn send(&self, to: &[PublicKey], bytes: &[u8]) {
        let inboxes = self.hub.inboxes.lock().expect("hub lock");
        for key in to {
            if let Some(inbox) = inboxes.get(&key.serialize()) {
                // A closed inbox is an engine that stopped: like a peer that went offline.
                let _ = inbox.send(bytes.to_vec());
            }
        }
    }
}
