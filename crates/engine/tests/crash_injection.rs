//! Crash injection (issue: "the proof"): a signer engine runs in a child process
//! (`crash-signer`) against two scripted co-signers in this process; the harness SIGKILLs it
//! between durable steps — at every step of a session, and at random steps and random moments
//! over many sessions — restarts it on the same SQLite store, and continues. After every kill:
//! the audit chain verifies, no committed step is lost; across the whole run: no public nonce
//! is released twice, and no partial signature appears for an attempt whose nonces were released
//! before a crash. Seeds are printed on failure.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::{BufReader, BufWriter};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use engine::runtime::stdio::{read_from_engine, to_engine, to_harness, write_to_engine};
use lotus::address::Network;
use lotus::hash::sha256;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use protocol::envelope::{Envelope, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::messages::Nonces;
use protocol::node::{Node, Output, Peer};
use protocol::session::{Action, Event, Recipient};
use sim::rng::SimRng;

const START_MS: u64 = 1_800_000_000_000;
const CHILD: usize = 2;

struct Signer {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

#[derive(Clone, Copy)]
struct KillPolicy {
    /// Kill at this global durable-step index (deterministic sweep).
    at_step: Option<usize>,
    /// Otherwise kill at each durable step with this probability…
    per_step: f64,
    /// …and right after handing the child a message, mid-processing, with this one.
    mid_message: f64,
}

#[derive(Default, Debug)]
struct Stats {
    kills: usize,
    durable_steps: usize,
    sessions_confirmed: usize,
    /// Sessions that ran out of attempts under a crash storm (allowed; invariants still hold).
    sessions_aborted: usize,
    restarts_checked: usize,
    /// Nonces/Partials frames checked against the child's store as they left.
    guards_checked: usize,
}

struct Harness {
    seed: u64,
    dir: tempfile::TempDir,
    keys: Vec<PrivateKey>,
    group: GroupDescriptor,
    now: u64,
    signer: Option<Signer>,
    cosigners: Vec<Node>,
    rng: SimRng,
    entropy: SimRng,
    to_child: VecDeque<Vec<u8>>,
    /// (to, from, bytes)
    to_cosigner: VecDeque<(usize, u64, Vec<u8>)>,
    approvals: VecDeque<Vec<u8>>,
    policy: KillPolicy,
    stats: Stats,
    spends: BTreeMap<[u8; 32], Vec<TxOut>>,
    confirmed: BTreeSet<[u8; 32]>,
    // Invariant state.
    child_nonces: HashSet<[u8; 66]>,
    lost_attempts: BTreeSet<([u8; 32], u32)>,
    acked_releases: BTreeSet<([u8; 32], u32)>,
    audit_entries: u64,
    violations: Vec<String>,
    /// A second, read-only use of the child's store (reopened after every kill), to check that
    /// what guards a message committed before the message left.
    reader: Option<store::Store>,
}

impl Harness {
    fn new(seed: u64, policy: KillPolicy) -> Self {
        let keys: Vec<PrivateKey> = (0..3u8)
            .map(|i| PrivateKey::from_bytes(&sha256(&[i, 0xc5])).unwrap())
            .collect();
        let mut group = GroupDescriptor::new(
            "crash",
            Network::Regtest,
            keys.iter().map(|k| k.public_key()).collect(),
        )
        .unwrap();
        group.timeouts.round_ms = 4_000;
        group.timeouts.broadcast_slot_ms = 5_000;
        let cosigners = keys[..2]
            .iter()
            .map(|k| sim::fixtures::member_node(&k.public_key(), &group))
            .collect();
        Self {
            seed,
            dir: tempfile::tempdir().unwrap(),
            keys,
            group,
            now: START_MS,
            signer: None,
            cosigners,
            rng: SimRng::new(seed),
            entropy: SimRng::new(seed ^ 0xabcdef),
            to_child: VecDeque::new(),
            to_cosigner: VecDeque::new(),
            approvals: VecDeque::new(),
            policy,
            stats: Stats::default(),
            spends: BTreeMap::new(),
            confirmed: BTreeSet::new(),
            child_nonces: HashSet::new(),
            lost_attempts: BTreeSet::new(),
            acked_releases: BTreeSet::new(),
            audit_entries: 0,
            violations: Vec::new(),
            reader: None,
        }
    }

    fn store_path(&self) -> std::path::PathBuf {
        self.dir.path().join("child.sqlite")
    }

    fn violation(&mut self, what: String) {
        self.violations.push(format!("seed {}: {what}", self.seed));
    }

    // ----- the child --------------------------------------------------------------------

    fn start_child(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-signer"))
            .arg(self.store_path())
            .env(
                "CRASH_SIGNER_KEY",
                hex::encode(*self.keys[CHILD].to_bytes()),
            )
            .env("CRASH_SIGNER_GROUP", self.group.invite())
            .env("CRASH_SIGNER_NOW", self.now.to_string())
            // Each restart gets its own stream, still fixed by the seed.
            .env(
                "CRASH_SIGNER_SEED",
                (self.seed * 1_000_003 + self.stats.kills as u64).to_string(),
            )
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn crash-signer");
        let stdin = BufWriter::new(child.stdin.take().unwrap());
        let stdout = BufReader::new(child.stdout.take().unwrap());
        self.signer = Some(Signer {
            child,
            stdin,
            stdout,
        });
        // Restoring may already send and persist (and so be killed).
        self.pump(to_harness::READY);
    }

    fn kill_child(&mut self) {
        let Some(mut signer) = self.signer.take() else {
            return;
        };
        signer.child.kill().expect("SIGKILL");
        let _ = signer.child.wait();
        self.reader = None;
        self.stats.kills += 1;
        self.check_store_after_kill();
    }

    /// What must hold on disk after every kill.
    fn check_store_after_kill(&mut self) {
        let store = match store::Store::open(self.store_path()) {
            Ok(store) => store,
            Err(e) => return self.violation(format!("store does not open after a kill: {e}")),
        };
        match store.verify_audit() {
            Ok(summary) => {
                if summary.entries < self.audit_entries {
                    let was = self.audit_entries;
                    self.violation(format!("audit lost entries: {was} → {}", summary.entries));
                }
                self.audit_entries = summary.entries;
            }
            Err(e) => self.violation(format!("audit chain broken after a kill: {e}")),
        }
        let sessions: BTreeSet<[u8; 32]> = self.acked_releases.iter().map(|(s, _)| *s).collect();
        for session in sessions {
            let attempts = store.attempts(&session).unwrap_or_default();
            for record in &attempts {
                if !record.nonce_hashes.is_empty() {
                    self.lost_attempts.insert((session, record.attempt));
                }
            }
            let stored: BTreeSet<u32> = attempts
                .iter()
                .filter(|r| !r.nonce_hashes.is_empty())
                .map(|r| r.attempt)
                .collect();
            let missing: Vec<u32> = self
                .acked_releases
                .iter()
                .filter(|(s, a)| *s == session && !stored.contains(a))
                .map(|(_, a)| *a)
                .collect();
            if !missing.is_empty() {
                self.violation(format!(
                    "committed nonce releases lost after a kill: attempts {missing:?}"
                ));
            }
        }
        self.stats.restarts_checked += 1;
    }

    /// Sends one frame to the child (starting it if needed) and processes its answer.
    fn send_to_child(&mut self, kind: u8, payload: &[u8]) {
        if self.signer.is_none() {
            self.start_child();
            if self.signer.is_none() {
                return; // killed while restoring; the frame is lost like a message to a dead peer
            }
        }
        let signer = self.signer.as_mut().unwrap();
        if write_to_engine(&mut signer.stdin, kind, self.now, payload).is_err() {
            self.violation("child died unexpectedly".into());
            self.signer = None;
            return;
        }
        if kind == to_engine::DELIVER && self.rng.chance(self.policy.mid_message) {
            // Kill while it is somewhere inside handling the message.
            return self.kill_child();
        }
        self.pump(to_harness::IDLE);
    }

    /// Reads the child's frames until `until` (READY or IDLE), acting on each.
    fn pump(&mut self, until: u8) {
        loop {
            let Some(signer) = self.signer.as_mut() else {
                return;
            };
            let (kind, payload) = match read_from_engine(&mut signer.stdout) {
                Ok(frame) => frame,
                Err(e) => {
                    self.violation(format!("child stopped answering: {e}"));
                    self.signer = None;
                    return;
                }
            };
            match kind {
                k if k == until => return,
                to_harness::SEND => self.child_sent(payload),
                to_harness::DURABLE => {
                    let step = self.stats.durable_steps;
                    self.stats.durable_steps += 1;
                    let kill = match self.policy.at_step {
                        Some(at) => at == step,
                        None => self.rng.chance(self.policy.per_step),
                    };
                    if kill {
                        return self.kill_child();
                    }
                    if payload[0] == 1 {
                        let session: [u8; 32] = payload[1..33].try_into().unwrap();
                        let attempt = u32::from_be_bytes(payload[33..37].try_into().unwrap());
                        self.acked_releases.insert((session, attempt));
                    }
                    let signer = self.signer.as_mut().unwrap();
                    write_to_engine(&mut signer.stdin, to_engine::ACK, self.now, &[]).expect("ack");
                }
                to_harness::REVIEW => self.approvals.push_back(payload),
                to_harness::BROADCAST => {
                    let tx = Transaction::decode(&payload).expect("child broadcasts a transaction");
                    self.chain_submit(tx);
                }
                to_harness::SIGNED | to_harness::READY | to_harness::IDLE => {}
                other => panic!("unknown frame {other}"),
            }
        }
    }

    /// The child's own Nonces may leave only after their registry rows committed, its Partials
    /// only after the attempt's signing mark did: read from its store while it runs (the
    /// harness can't see a send-before-persist by killing, since it only kills after commits).
    fn check_guard_committed(&mut self, envelope: &Envelope) {
        let h = envelope.header;
        if h.sender != 2 || !matches!(h.kind, MessageKind::Nonces | MessageKind::Partials) {
            return; // a relayed message of a co-signer, or an unguarded notice
        }
        if self.reader.is_none() {
            match store::Store::open(self.store_path()) {
                Ok(store) => self.reader = Some(store),
                Err(e) => return self.violation(format!("child store unreadable: {e}")),
            }
        }
        let store = self.reader.as_ref().expect("opened");
        self.stats.guards_checked += 1;
        let guarded = match h.kind {
            MessageKind::Nonces => Nonces::decode(&envelope.payload).is_ok_and(|n| {
                n.nonces.iter().all(|nonce| {
                    store
                        .nonce_used(&sha256(&nonce.serialize()))
                        .unwrap_or(false)
                })
            }),
            _ => matches!(
                store.attempt_state(&h.session_id, h.attempt),
                Ok(Some(
                    store::AttemptState::Signing | store::AttemptState::Signed
                ))
            ),
        };
        if !guarded {
            self.violation(format!(
                "{:?} of attempt {} left before its guarding row committed",
                h.kind, h.attempt
            ));
        }
    }

    /// Checks the child's outgoing message against the invariants, then delivers it.
    fn child_sent(&mut self, bytes: Vec<u8>) {
        if let Ok(envelope) = Envelope::decode(&bytes, usize::MAX) {
            self.check_guard_committed(&envelope);
            let h = envelope.header;
            match h.kind {
                MessageKind::Nonces => {
                    if let Ok(nonces) = Nonces::decode(&envelope.payload) {
                        for nonce in nonces.nonces {
                            if !self.child_nonces.insert(nonce.serialize()) {
                                self.violation("a public nonce was released twice".into());
                            }
                        }
                    }
                }
                MessageKind::Partials
                    if self.lost_attempts.contains(&(h.session_id, h.attempt)) =>
                {
                    self.violation(format!("partial signatures for attempt {} whose nonces were released before a crash", h.attempt));
                }
                _ => {}
            }
        }
        for i in 0..self.cosigners.len() {
            self.to_cosigner.push_back((i, 2, bytes.clone()));
        }
    }

    // ----- co-signers and chain -----------------------------------------------------------

    fn route_cosigner(&mut self, from: usize, outputs: Vec<Output>) {
        for Output {
            session_id, action, ..
        } in outputs
        {
            match action {
                Action::Send { bytes, to } => {
                    // Addressed sends (pull answers, forwards) go to that member only.
                    let other = 1 - from;
                    match to {
                        Recipient::Member(2) => self.to_child.push_back(bytes),
                        Recipient::Member(m) if m as usize == other => {
                            self.to_cosigner.push_back((other, from as u64, bytes))
                        }
                        Recipient::Member(_) => {}
                        Recipient::Members => {
                            self.to_child.push_back(bytes.clone());
                            self.to_cosigner.push_back((other, from as u64, bytes));
                        }
                    }
                }
                Action::Broadcast { tx } => self.chain_submit(tx),
                Action::Event(Event::ReviewReady { review }) => {
                    let mut out = Vec::new();
                    let key = &self.keys[from];
                    let _ = self.cosigners[from].approve(
                        &session_id,
                        &review.digest,
                        self.now,
                        key,
                        &mut self.entropy,
                        &mut out,
                    );
                    self.route_cosigner(from, out);
                }
                _ => {}
            }
        }
    }

    fn chain_submit(&mut self, tx: Transaction) {
        let txid = tx.txid().0;
        let Some(spent) = self.spends.get(&txid) else {
            return self.violation("broadcast of a transaction nobody proposed".into());
        };
        if let Err(e) = lotus::spend::verify_transaction(&tx, spent) {
            return self.violation(format!("invalid transaction broadcast: {e}"));
        }
        if self.confirmed.insert(txid) {
            self.stats.sessions_confirmed += 1;
            for i in 0..self.cosigners.len() {
                let mut out = Vec::new();
                self.cosigners[i].broadcast_observed(
                    &txid,
                    self.now,
                    &self.keys[i],
                    &mut self.entropy,
                    &mut out,
                );
                self.route_cosigner(i, out);
            }
            self.send_to_child(to_engine::OBSERVED, &txid);
        }
    }

    fn propose(&mut self, proposer: usize, index: u8) -> ([u8; 32], [u8; 32]) {
        let tag = [b"crash".as_slice(), &self.seed.to_be_bytes(), &[index]].concat();
        let (tx, spent) = sim::fixtures::two_input_spend(&self.group, &tag);
        let txid = tx.txid().0;
        self.spends.insert(txid, spent.clone());
        let mut out = Vec::new();
        let key = &self.keys[proposer];
        let session = self.cosigners[proposer]
            .propose(
                &self.group.id(),
                tx,
                spent,
                self.now + 3_600_000,
                Vec::new(),
                self.now,
                key,
                &mut self.entropy,
                &mut out,
            )
            .unwrap();
        self.route_cosigner(proposer, out);
        (txid, session)
    }

    /// Runs `sessions` proposals one after another until each is confirmed on chain.
    fn run(mut self, sessions: u8) -> (Stats, Vec<String>) {
        self.start_child();
        for index in 0..sessions {
            let proposer = (index % 2) as usize;
            let (txid, session) = self.propose(proposer, index);
            let mut rounds = 0;
            while !self.confirmed.contains(&txid) && self.violations.is_empty() {
                let closed = self.cosigners[proposer]
                    .session(&session)
                    .is_some_and(|s| s.is_closed());
                if closed && self.to_child.is_empty() && self.to_cosigner.is_empty() {
                    self.stats.sessions_aborted += 1;
                    break;
                }
                rounds += 1;
                if rounds > 20_000 {
                    self.violation(format!("session {index} did not finish"));
                    break;
                }
                if let Some(bytes) = self.to_child.pop_front() {
                    self.send_to_child(to_engine::DELIVER, &bytes);
                } else if let Some((i, from, bytes)) = self.to_cosigner.pop_front() {
                    let mut out = Vec::new();
                    let _ = self.cosigners[i].receive(
                        &bytes,
                        Peer(from),
                        self.now,
                        &self.keys[i],
                        &mut self.entropy,
                        &mut out,
                    );
                    self.route_cosigner(i, out);
                } else if let Some(approval) = self.approvals.pop_front() {
                    self.send_to_child(to_engine::APPROVE, &approval);
                } else {
                    // Quiet: time passes (resends, round timeouts, failover slots).
                    self.now += 1_000;
                    for i in 0..self.cosigners.len() {
                        let mut out = Vec::new();
                        self.cosigners[i].tick(
                            self.now,
                            &self.keys[i],
                            &mut self.entropy,
                            &mut out,
                        );
                        self.route_cosigner(i, out);
                    }
                    self.send_to_child(to_engine::TICK, &[]);
                }
            }
        }
        if let Some(mut signer) = self.signer.take() {
            drop(signer.stdin);
            let _ = signer.child.wait();
        }
        (self.stats, self.violations)
    }
}

fn assert_clean(stats: &Stats, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "{} violations (stats {stats:?}):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn a_kill_at_every_durable_step_of_a_session() {
    let calm = KillPolicy {
        at_step: None,
        per_step: 0.0,
        mid_message: 0.0,
    };
    let (baseline, violations) = Harness::new(1, calm).run(1);
    assert_clean(&baseline, &violations);
    assert!(baseline.durable_steps > 10, "{baseline:?}");
    let mut kills = 0;
    for step in 0..baseline.durable_steps {
        let (stats, violations) = Harness::new(
            1,
            KillPolicy {
                at_step: Some(step),
                ..calm
            },
        )
        .run(1);
        assert_clean(&stats, &violations);
        assert_eq!(
            stats.sessions_confirmed, 1,
            "killed at step {step}: the session still completes"
        );
        // The same seed replays the same run up to the kill, so step `step` is reached.
        assert_eq!(stats.kills, 1, "killed at step {step}: {stats:?}");
        kills += stats.kills;
    }
    eprintln!("crash injection: one kill at each of {kills} durable steps, all sessions completed");
}

/// Kills at random durable steps and at random moments inside message handling, over many
/// sessions, until at least `kills` kills (CRASH_KILLS in the environment raises it).
fn random_kills(kills: usize) -> Stats {
    let policy = KillPolicy {
        at_step: None,
        per_step: 0.08,
        mid_message: 0.02,
    };
    let mut total = Stats::default();
    let mut seed = 100;
    while total.kills < kills {
        let (stats, violations) = Harness::new(seed, policy).run(20);
        assert_clean(&stats, &violations);
        total.kills += stats.kills;
        total.durable_steps += stats.durable_steps;
        total.sessions_confirmed += stats.sessions_confirmed;
        total.sessions_aborted += stats.sessions_aborted;
        total.restarts_checked += stats.restarts_checked;
        total.guards_checked += stats.guards_checked;
        seed += 1;
    }
    assert!(
        total.sessions_confirmed > total.sessions_aborted,
        "most sessions still complete: {total:?}"
    );
    assert!(total.guards_checked > 0, "frames were checked: {total:?}");
    eprintln!("crash injection: {total:?} over seeds 100..{seed}");
    total
}

#[test]
fn over_a_thousand_random_kills() {
    let kills = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    random_kills(kills);
}
