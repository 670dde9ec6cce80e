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
/// verification budget to the connection, never to the sender a message claims. A network
/// that wants the node's judgement (gossip validation, the peer's budget) passes `verdict`.
#[derive(Debug)]
pub struct Delivery {
    pub from: Peer,
    pub bytes: Vec<u8>,
    pub verdict: Option<tokio::sync::oneshot::Sender<Result<(), protocol::gate::Rejection>>>,
}

impl Delivery {
    pub fn new(from: Peer, bytes: Vec<u8>) -> Self {
        Self {
            from,
            bytes,
            verdict: None,
        }
    }
}

/// Connects engines in one process: each gets an inbox keyed by its signer key.
/// Signer key → that engine's inbox.
type Inboxes = BTreeMap<[u8; 33], mpsc::Sender<Delivery>>;

/// Deliveries waiting for one engine. Bounded: a flood from one peer costs memory up to
/// this, then is dropped, never queued without limit.
pub const INBOX_CAPACITY: usize = 1024;

/// The connection id of messages the person brought by hand (imported files): the protocol's
/// per-connection budgets charge them here, apart from every network peer.
pub const BY_HAND: Peer = Peer(u64::MAX);

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
    pub fn connect(&self, key: &PublicKey) -> (InProcessTransport, mpsc::Receiver<Delivery>) {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
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
                // A full inbox drops (the protocol resends and pulls what it missed); a closed
                // one is an engine that stopped: like a peer that went offline.
                let _ = inbox.try_send(Delivery::new(self.peer, bytes.to_vec()));
            }
        }
    }
}
