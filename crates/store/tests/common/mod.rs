//! Shared test fixtures: member keys, a group, signed envelopes, a store in a temp dir.
#![allow(dead_code)]

use lotus::address::Network;
use lotus::PrivateKey;
use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::session::Durable;
use store::Store;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("cosigner.sqlite")).expect("open store");
        Self { dir, store }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("cosigner.sqlite")
    }

    /// A second connection to the same file, as someone with access to the file would have.
    /// `synchronous = OFF` only for this connection, so tamper loops stay fast.
    pub fn raw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.path()).expect("raw connection");
        conn.execute_batch("PRAGMA synchronous = OFF;").unwrap();
        conn
    }
}

pub fn keys(n: u8) -> Vec<PrivateKey> {
    (1..=n)
        .map(|i| PrivateKey::from_bytes(&[i; 32]).expect("key"))
        .collect()
}

pub fn group(keys: &[PrivateKey]) -> GroupDescriptor {
    GroupDescriptor::new(
        "test group",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .expect("group")
}

pub fn session(n: u8) -> [u8; 32] {
    [n; 32]
}

/// The review digest every test envelope of a session binds (its proposal's).
pub fn digest(session_id: [u8; 32]) -> [u8; 32] {
    lotus::hash::sha256(&[&b"review"[..], &session_id].concat())
}

/// A signed envelope (the store decodes the header only; the payload is opaque to it).
pub fn envelope(
    keys: &[PrivateKey],
    group: &GroupDescriptor,
    kind: MessageKind,
    session_id: [u8; 32],
    attempt: u32,
    sender: u16,
    now: u64,
) -> Vec<u8> {
    let header = Header::new(
        kind,
        group.id(),
        session_id,
        digest(session_id),
        attempt,
        sender,
        now,
    );
    Envelope::sign(
        header,
        vec![kind.code(), sender as u8],
        &keys[sender as usize],
    )
    .encode()
}

pub fn message(bytes: Vec<u8>, session_id: [u8; 32], outgoing: bool) -> Durable {
    Durable::Message {
        session_id,
        bytes,
        outgoing,
    }
}

pub fn nonce(session_id: [u8; 32], attempt: u32, input: u16, hash: u8) -> Durable {
    Durable::NonceReleased {
        session_id,
        attempt,
        input,
        nonce_hash: [hash; 32],
    }
}

/// Stores a proposal from `proposer` (outgoing if `me == proposer`).
pub fn propose(
    store: &mut Store,
    keys: &[PrivateKey],
    group: &GroupDescriptor,
    session_id: [u8; 32],
    proposer: u16,
    me: u16,
    now: u64,
) {
    let bytes = envelope(
        keys,
        group,
        MessageKind::Proposal,
        session_id,
        0,
        proposer,
        now,
    );
    store
        .apply(
            &Durable::SessionAccepted {
                session_id,
                envelope: bytes,
                outgoing: proposer == me,
            },
            now,
        )
        .expect("store proposal");
}
