//! How signed envelopes travel between engines. The libp2p network layer implements
//! `Transport`; `InProcessHub` connects several engines inside one process (tests, demo).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lotus::secp256k1::PublicKey;
use protocol::node::Peer;
use tokio::sync::mpsc;

/// Delivery of opaque envelope bytes to group members, addressed by signer key. Best effort:
/// the protocol resends until it hears back, so a transport may drop.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, to: &[PublicKey], bytes: &[u8]);
}

/// What arrives in an inbox: the delivering connection and the bytes. The protocol charges its
/// verification budget to the connection, never to the sender a message claims.
pub type Delivery = (Peer, Vec<u8>);

/// Connects engines in one process: each gets an inbox keyed by its signer key.
/// Signer key → that engine's inbox.
type Inboxes = BTreeMap<[u8; 33], mpsc::UnboundedSender<Delivery>>;

/// The connection id of an in-process transport: derived from the key it was connected with
/// (the network layer uses the libp2p peer instead).
pub fn peer_of(key: &PublicKey) -> Peer {
    let hash = lotus::hash::sha256(&key.serialize());
    Peer(u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")))
}

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
    ) -> (InProcessTransport, mpsc::UnboundedReceiver<Delivery>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes
            .lock()
            .expect("hub lock")
            .insert(key.serialize(), tx);
        let transport = InProcessTransport {
            hub: self.clone(),
            peer: peer_of(key),
        };
        (transport, rx)
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
    /// This end's connection id, as receivers see it.
    peer: Peer,
}

impl Transport for InProcessTransport {
    fn send(&self, to: &[PublicKey], bytes: &[u8]) {
        let inboxes = self.hub.inboxes.lock().expect("hub lock");
        for key in to {
            if let Some(inbox) = inboxes.get(&key.serialize()) {
                // A closed inbox is an engine that stopped: like a peer that went offline.
                let _ = inbox.send((self.peer, bytes.to_vec()));
            }
        }
    }
}
