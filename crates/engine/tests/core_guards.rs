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
use protocol::election::ElectionMethod;
use protocol::envelope::{Envelope, MessageKind};
use protocol::evidence::{Blame, Evidence, Offence};
use protocol::group::GroupDescriptor;
use protocol::node::Peer;
use protocol::proposal::Proposal;
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
    setup_with(tag, ElectionMethod::Salted)
}

fn setup_with(tag: u8, election: ElectionMethod) -> Setup {
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
    group.election = election;
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
    let _ = s.core.receive(&bytes, Peer(0));
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
    let _ = s.core.receive(&bytes, Peer(0));
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

fn review_ready(events: &mut broadcast::Receiver<EngineEvent>) -> bool {
    let mut ready = false;
    while let Ok(event) = events.try_recv() {
        ready |= matches!(
            event,
            EngineEvent::Session {
                event: Event::ReviewReady { .. },
                ..
            }
        );
    }
    ready
}

/// The store's blacklist used to stay in the store: the node's gate never heard of it, so a
/// blacklisted co-signer's proposals still reached the review screen.
#[test]
fn a_signer_blacklisted_in_the_store_is_refused_at_the_gate() {
    let mut s = setup(3);
    let bytes = proposal(&s);
    store::Store::open(&s.path)
        .unwrap()
        .blacklist(
            &s.keys[0].public_key().serialize(),
            "sent a forged partial signature",
            START,
        )
        .unwrap();
    assert_eq!(s.core.load_blacklist().unwrap(), 1);
    let _ = s.core.receive(&bytes, Peer(0));
    assert!(
        !review_ready(&mut s.events),
        "no review for a blacklisted proposer"
    );
    assert!(s.core.sessions().is_empty());

    // The same proposal from a profile without the entry is reviewed (the control).
    let mut clean = setup(3);
    clean.core.restore().unwrap();
    let _ = clean.core.receive(&proposal(&clean), Peer(0));
    assert!(review_ready(&mut clean.events));
}

/// Reputation-aware elections used to get no evidence at all: the runtime proposed with an
/// empty list, whatever the store knew. Now the proposal carries the stored evidence against
/// this group's members, and only evidence from sessions of this group.
#[test]
fn a_reputation_aware_proposal_carries_the_stores_evidence_of_this_group() {
    let mut s = setup_with(4, ElectionMethod::ReputationAware);
    let _ = s.core.receive(&proposal(&s), Peer(0));
    let session_id = s.core.sessions()[0].session_id.0;
    let blamed = |session_id: [u8; 32], tag: u8| {
        let evidence = Evidence {
            offence: Offence::InvalidPartial,
            proposal: vec![tag; 8],
            envelopes: Vec::new(),
        };
        let blame = Blame {
            offence: Offence::InvalidPartial,
            culprit: 2,
            session_id,
            attempt: 0,
        };
        (evidence, blame)
    };
    let mut other = store::Store::open(&s.path).unwrap();
    let (ours, blame) = blamed(session_id, 1);
    other
        .record_event(
            &s.group,
            session_id,
            &Event::Blamed {
                blame,
                evidence: ours.clone(),
            },
            START,
        )
        .unwrap();
    let (foreign, blame) = blamed([9; 32], 2);
    other
        .record_event(
            &s.group,
            [9; 32],
            &Event::Blamed {
                blame,
                evidence: foreign,
            },
            START + 1,
        )
        .unwrap();

    let (tx, spent) = sim::fixtures::two_input_spend(&s.group, b"member one pays");
    s.core
        .propose(s.group.id(), tx, spent, START + 3_600_000)
        .unwrap();
    let sent = s.sent.0.lock().unwrap().clone();
    let ours_proposal = sent
        .iter()
        .filter_map(|b| Envelope::decode(b, usize::MAX).ok())
        .find(|e| e.header.sender == 1 && e.header.kind == MessageKind::Proposal)
        .expect("member 1 sent its proposal");
    let (_, proposal_bytes) =
        protocol::node::split_proposal_payload(&ours_proposal.payload).unwrap();
    let proposal = Proposal::decode(proposal_bytes, usize::MAX).unwrap();
    assert_eq!(proposal.evidence, vec![ours.encode()]);
}
