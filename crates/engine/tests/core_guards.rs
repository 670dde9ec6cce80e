//! The runtime core against a real store whose durable steps fail: nothing a failed step
//! guarded is ever sent (on any path, resends included), and a reused nonce closes the session
//! for good, end to end. The store is made to fail by SQLite triggers added to its file, as a
//! full disk, a damaged file or a second writer would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use engine::runtime::chain::InProcessChain;
use engine::runtime::core::Core;
use engine::runtime::transport::Transport;
use engine::runtime::{Clock, EngineEvent};
use lotus::address::Network;
use lotus::hash::sha256;
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use protocol::envelope::{Envelope, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::node::Peer;
use protocol::session::{AbortReason, Action, Event, Outcome};
use tokio::sync::broadcast;

const START: u64 = 1_800_000_000_000;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

impl Transport for Recorder {
    fn send(&self, _to: &[PublicKey], bytes: &[u8]) {
        self.0.lock().unwrap().push(bytes.to_vec());
    }
}

impl Recorder {
    /// Kinds of the envelopes member `sender` sent.
    fn kinds_from(&self, sender: u16) -> Vec<MessageKind> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| Envelope::decode(b, usize::MAX).ok())
            .filter(|e| e.header.sender == sender)
            .map(|e| e.header.kind)
            .collect()
    }
}

#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    keys: Vec<PrivateKey>,
    group: GroupDescriptor,
    core: Core,
    sent: Recorder,
    clock: Arc<AtomicU64>,
    events: broadcast::Receiver<EngineEvent>,
}

fn setup(tag: u8) -> Setup {
    let keys: Vec<PrivateKey> = (0..3u8)
        .map(|i| PrivateKey::from_bytes(&sha256(&[tag, i])).unwrap())
        .collect();
    let mut group = GroupDescriptor::new(
        "guards",
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .unwrap();
    group.commit_round = false; // round 1 is the first guarded step
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("member-1.sqlite");
    let store = store::Store::open(&path).unwrap();
    let sent = Recorder::default();
    let clock = Arc::new(AtomicU64::new(START));
    let (events_tx, events) = broadcast::channel(1024);
    let mut core = Core::new(
        PrivateKey::from_bytes(&keys[1].to_bytes()).unwrap(),
        store,
        Arc::new(sent.clone()),
        Arc::new(InProcessChain::new()),
        events_tx,
        Box::new(TestClock(clock.clone())),
    );
    core.add_group(group.clone()).unwrap();
    Setup {
        _dir: dir,
        path,
        keys,
        group,
        core,
        sent,
        clock,
        events,
    }
}

/// Member 0's proposal envelope for a standard spend.
fn proposal(s: &Setup) -> Vec<u8> {
    let mut proposer = sim::fixtures::member_node(&s.keys[0].public_key(), &s.group);
    let (tx, spent) = sim::fixtures::two_input_spend(&s.group, b"guards");
    let mut out = Vec::new();
    proposer
        .propose(
            &s.group.id(),
            tx,
            spent,
            START + 3_600_000,
            Vec::new(),
            START,
            &s.keys[0],
            &mut sim::rng::SimRng::new(1),
            &mut out,
        )
        .unwrap();
    out.into_iter()
        .find_map(|o| match o.action {
            Action::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .unwrap()
}

fn add_trigger(path: &std::path::Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// Defect 5: a failed persist stopped the batch, but the message it guarded stayed queued and a
/// later tick resent it — nonces left with no registry row.
#[test]
fn nonces_whose_rows_failed_to_commit_never_leave_not_even_on_resend() {
    let mut s = setup(1);
    add_trigger(
        &s.path,
        // On the attempt row the registry writes first (a failure on the nonce row itself
        // reads as a constraint violation, i.e. a reused nonce: the next test).
        "CREATE TRIGGER disk_full BEFORE INSERT ON attempts
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    );
    let bytes = proposal(&s);
    s.core.receive(&bytes, Peer(0));
    for minute in 1..=30 {
        s.clock.store(START + minute * 60_000, Ordering::SeqCst);
        s.core.tick();
    }
    assert!(
        !s.sent.kinds_from(1).contains(&MessageKind::Nonces),
        "sent: {:?}",
        s.sent.kinds_from(1)
    );
    let mut failures = 0;
    while let Ok(event) = s.events.try_recv() {
        if matches!(event, EngineEvent::StorageFailure { .. }) {
            failures += 1;
        }
    }
    assert_eq!(failures, 1, "one failed step, then silence");
    assert!(
        s.core.sessions().is_empty(),
        "the session left memory until a restart: {:?}",
        s.core.sessions()
    );
}

/// The engine-level duplicate-nonce path (before, only store unit tests reached it: OS nonces
/// never repeat). A trigger makes the registry already hold the nonce being released: the
/// session closes for good with a registry conflict and its nonces never leave.
#[test]
fn a_nonce_the_registry_already_holds_closes_the_session_end_to_end() {
    let mut s = setup(2);
    let other_session = "x'".to_string() + &"ee".repeat(32) + "'";
    add_trigger(
        &s.path,
        &format!(
            "CREATE TRIGGER already_used BEFORE INSERT ON nonces
             WHEN NEW.session_id != {other_session}
             BEGIN
               INSERT OR IGNORE INTO attempts (session_id, attempt, state, opened_ms)
                 VALUES ({other_session}, 0, 'aborted', 0);
               INSERT INTO nonces (nonce_hash, session_id, attempt, input, released_ms)
                 VALUES (NEW.nonce_hash, {other_session}, 0, NEW.input, 0);
             END;"
        ),
    );
    let bytes = proposal(&s);
    s.core.receive(&bytes, Peer(0));
    s.clock.store(START + 600_000, Ordering::SeqCst);
    s.core.tick();
    assert!(!s.sent.kinds_from(1).contains(&MessageKind::Nonces));
    let mut closed = None;
    while let Ok(event) = s.events.try_recv() {
        if let EngineEvent::Session {
            event: Event::Closed { outcome },
            ..
        } = event
        {
            closed = Some(outcome);
        }
    }
    assert_eq!(
        closed,
        Some(Outcome::Aborted(AbortReason::NonceRegistryConflict))
    );
}
