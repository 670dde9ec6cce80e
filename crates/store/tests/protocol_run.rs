//! Real `protocol` nodes (three members, real keys, a 2-input Lotus Taproot spend) driven over
//! an in-memory queue, each persisting every `Action::Persist` into its own `Store` before the
//! actions after it run, and recording every event. Then the same run with one member killed
//! at each of its durable steps in turn (everything after the step lost, as with SIGKILL) and
//! restarted from its store alone: abort unfinished attempts, restore sessions, resume.
//!
//! Checked throughout: the store's `last_active_attempt` equals a reference model of the
//! simulator's durable facts (crates/sim/src/durable.rs); no nonce is refused as reused; no
//! attempt aborted at a restart ever signs; every audit chain verifies after every restart;
//! the final transaction verifies with `lotus::spend`.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use common::{group, keys};
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use lotus::PrivateKey;
use protocol::envelope::{Envelope, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::node::{Node, NodeConfig, Output, Peer, Restore};
use protocol::session::{Action, Durable, Event, Recipient};
use protocol::Entropy;
use store::{AttemptState, Store};

/// Deterministic injected entropy (session ids, salt shares). MuSig2 secret nonces come from
/// the OS generator inside `musig`, as in production.
struct TestEntropy(u64);

impl Entropy for TestEntropy {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// The simulator's durable model (crates/sim/src/durable.rs), reduced to the restart fact.
#[derive(Default)]
struct Model {
    released: BTreeMap<([u8; 32], u32), Vec<[u8; 32]>>,
    sent_attempt: BTreeMap<[u8; 32], u32>,
}

impl Model {
    fn apply(&mut self, durable: &Durable) {
        match durable {
            Durable::NonceReleased {
                session_id,
                attempt,
                nonce_hash,
                ..
            } => self
                .released
                .entry((*session_id, *attempt))
                .or_default()
                .push(*nonce_hash),
            Durable::Message {
                session_id,
                bytes,
                outgoing: true,
            }
            | Durable::SessionAccepted {
                session_id,
                envelope: bytes,
                outgoing: true,
            } => {
                let attempt = Envelope::decode(bytes, usize::MAX).unwrap().header.attempt;
                let entry = self.sent_attempt.entry(*session_id).or_insert(attempt);
                *entry = (*entry).max(attempt);
            }
            _ => {}
        }
    }

    fn last_active_attempt(&self, session: &[u8; 32]) -> Option<u32> {
        let released = self
            .released
            .keys()
            .filter(|(s, _)| s == session)
            .map(|(_, a)| *a)
            .max();
        released.max(self.sent_attempt.get(session).copied())
    }
}

struct Member {
    key: PrivateKey,
    node: Node,
    store: Store,
    path: PathBuf,
    model: Model,
    persists: usize,
    /// Killed BEFORE its n-th durable step commits.
    crash_at: Option<usize>,
    /// Killed right AFTER a durable step like this one commits.
    crash_after: Option<fn(&Durable) -> bool>,
    /// (session, attempt) aborted at a restart: must never sign.
    abandoned: BTreeSet<([u8; 32], u32)>,
}

struct Net {
    _dir: tempfile::TempDir,
    members: Vec<Member>,
    group: GroupDescriptor,
    spent: Vec<TxOut>,
    /// (from, to, bytes)
    queue: VecDeque<(usize, usize, Vec<u8>)>,
    now: u64,
    entropy: TestEntropy,
    on_chain: Option<Transaction>,
    restarts: usize,
    audits_verified: usize,
    unrestored: usize,
    violations: Vec<String>,
}

fn spend(group: &GroupDescriptor) -> (Transaction, Vec<TxOut>) {
    let script = group.script_pubkey().unwrap();
    let values = [30_000_000i64, 12_000_000];
    let inputs = (0..2u8)
        .map(|i| TxIn {
            prev_out: OutPoint::new(TxId([0x50 + i; 32]), i as u32),
            script_sig: Script::new(),
            sequence: TxIn::SEQUENCE_FINAL,
        })
        .collect();
    let spent: Vec<TxOut> = values
        .iter()
        .map(|&v| TxOut::new(v, script.clone()))
        .collect();
    let total: i64 = values.iter().sum();
    let pay = 20_000_000;
    let tx = Transaction {
        version: 2,
        inputs,
        outputs: vec![
            TxOut::new(pay, Script::p2pkh(&[0x77; 20])),
            TxOut::new(total - pay - 5_000, script),
        ],
        lock_time: 0,
    };
    (tx, spent)
}

impl Net {
    fn new(crash: Option<(usize, usize)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(3);
        let group = group(&keys);
        let members = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let path = dir.path().join(format!("member-{i}.sqlite"));
                let mut node = Node::new(key.public_key(), NodeConfig::default());
                node.add_group(group.clone()).unwrap();
                Member {
                    node,
                    store: Store::open(&path).unwrap(),
                    path,
                    key,
                    model: Model::default(),
                    persists: 0,
                    crash_at: crash.filter(|c| c.0 == i).map(|c| c.1),
                    crash_after: None,
                    abandoned: BTreeSet::new(),
                }
            })
            .collect();
        let (_, spent) = spend(&group);
        Self {
            _dir: dir,
            members,
            group,
            spent,
            queue: VecDeque::new(),
            now: 1_700_000_000_000,
            entropy: TestEntropy(0x5EED),
            on_chain: None,
            restarts: 0,
            audits_verified: 0,
            unrestored: 0,
            violations: Vec::new(),
        }
    }

    fn execute(&mut self, i: usize, outputs: Vec<Output>) {
        let mut pending: VecDeque<Output> = outputs.into();
        while let Some(Output {
            session_id, action, ..
        }) = pending.pop_front()
        {
            let now = self.now;
            match action {
                Action::Persist(durable) => {
                    let m = &mut self.members[i];
                    m.persists += 1;
                    if m.crash_at == Some(m.persists) {
                        // Killed before this step committed: it and everything after it are lost.
                        return self.restart(i);
                    }
                    if let Durable::AttemptSigning {
                        session_id,
                        attempt,
                        ..
                    } = &durable
                    {
                        if m.abandoned.contains(&(*session_id, *attempt)) {
                            self.violations.push(format!(
                                "member {i} signs attempt {attempt} aborted at a restart"
                            ));
                        }
                    }
                    if let Err(e) = m.store.apply(&durable, now) {
                        self.violations.push(format!("member {i}: {e}"));
                        return; // nothing after a failed persist may leave
                    }
                    m.model.apply(&durable);
                    if m.crash_after.is_some_and(|matches| matches(&durable)) {
                        m.crash_after = None;
                        return self.restart(i);
                    }
                    let stored = m.store.last_active_attempt(&session_id).unwrap();
                    let modelled = m.model.last_active_attempt(&session_id);
                    if stored != modelled {
                        self.violations.push(format!(
                            "member {i}: last active attempt {stored:?}, model {modelled:?}"
                        ));
                    }
                }
                Action::Send { to, bytes } => {
                    let targets: Vec<usize> = match to {
                        Recipient::Members => (0..self.members.len()).filter(|&j| j != i).collect(),
                        Recipient::Member(j) => vec![j as usize],
                    };
                    for j in targets {
                        self.queue.push_back((i, j, bytes.clone()));
                    }
                }
                Action::Broadcast { tx } => {
                    let m = &mut self.members[i];
                    m.store
                        .append(
                            &store::AuditEvent::Broadcast {
                                session_id,
                                txid: tx.txid().0,
                            },
                            now,
                        )
                        .unwrap();
                    self.on_chain.get_or_insert(tx);
                }
                Action::Event(event) => {
                    let m = &mut self.members[i];
                    if let Err(e) = m.store.record_event(&self.group, session_id, &event, now) {
                        self.violations.push(format!("member {i} event: {e}"));
                    }
                    if let Event::ReviewReady { review } = &event {
                        // The user approves: durably first, then the protocol is told.
                        m.store
                            .record_approval(session_id, review.digest, now)
                            .unwrap();
                        let mut out = Vec::new();
                        m.node
                            .approve(
                                &session_id,
                                &review.digest,
                                now,
                                &m.key,
                                &mut self.entropy,
                                &mut out,
                            )
                            .unwrap();
                        pending.extend(out);
                    }
                }
            }
        }
    }

    /// The process died: reopen the store, abort unfinished attempts, restore and resume.
    fn restart(&mut self, i: usize) {
        self.restarts += 1;
        let now = self.now;
        let m = &mut self.members[i];
        m.crash_at = None;
        let path = m.path.clone();
        m.store = Store::open(&path).unwrap();
        for a in m.store.abort_unfinished_attempts(now).unwrap() {
            m.abandoned.insert((a.session_id, a.attempt));
        }
        match m.store.verify_audit() {
            Ok(_) => self.audits_verified += 1,
            Err(e) => self
                .violations
                .push(format!("member {i} audit after restart: {e}")),
        }
        let m = &mut self.members[i];
        m.node = Node::new(m.key.public_key(), NodeConfig::default());
        m.node.add_group(self.group.clone()).unwrap();
        let mut out = Vec::new();
        for r in m.store.sessions_to_restore().unwrap() {
            let signed = r
                .signed_tx
                .as_deref()
                .map(|b| Transaction::decode(b).unwrap());
            let restore = Restore {
                proposal_envelope: &r.proposal_envelope,
                last_active_attempt: r.last_active_attempt,
                approved_digest: r.approval.map(|a| a.digest),
                signed_before: r.signed_before,
                signed_tx: signed,
            };
            m.node
                .restore_session(restore, now, &m.key, &mut self.entropy, &mut out)
                .unwrap();
        }
        self.execute(i, out);
    }

    fn run(&mut self) -> Option<[u8; 32]> {
        let (tx, spent) = spend(&self.group);
        let mut out = Vec::new();
        let m = &mut self.members[0];
        let session = m
            .node
            .propose(
                &self.group.id(),
                tx,
                spent,
                self.now + 3_600_000,
                Vec::new(),
                self.now,
                &m.key,
                &mut self.entropy,
                &mut out,
            )
            .unwrap();
        self.execute(0, out);
        let limit = self.now + 2 * 3_600_000;
        loop {
            while let Some((from, to, bytes)) = self.queue.pop_front() {
                self.now += 7;
                let m = &mut self.members[to];
                let mut out = Vec::new();
                let _ = m.node.receive(
                    &bytes,
                    Peer(from as u64),
                    self.now,
                    &m.key,
                    &mut self.entropy,
                    &mut out,
                );
                self.execute(to, out);
            }
            if let Some(tx) = self.on_chain.clone() {
                let txid = tx.txid().0;
                for i in 0..self.members.len() {
                    let m = &mut self.members[i];
                    let mut out = Vec::new();
                    m.node
                        .broadcast_observed(&txid, self.now, &m.key, &mut self.entropy, &mut out);
                    self.execute(i, out);
                }
            }
            let next = self
                .members
                .iter()
                .filter_map(|m| m.node.next_deadline())
                .min();
            match next {
                Some(at) if at <= limit && self.queue.is_empty() => {
                    self.now = self.now.max(at);
                    for i in 0..self.members.len() {
                        let m = &mut self.members[i];
                        let mut out = Vec::new();
                        m.node.tick(self.now, &m.key, &mut self.entropy, &mut out);
                        self.execute(i, out);
                    }
                }
                _ if self.queue.is_empty() => break,
                _ => {}
            }
        }
        self.members[0]
            .store
            .session(&session)
            .unwrap()
            .map(|_| session)
    }

    /// Every member's store: the session confirmed, the transaction verifies, the audit holds.
    fn check_finished(&mut self, session: &[u8; 32]) {
        let tx = self
            .on_chain
            .clone()
            .expect("a transaction reached the chain");
        lotus::spend::verify_transaction(&tx, &self.spent).expect("final signatures verify");
        for (i, m) in self.members.iter().enumerate() {
            // However often a member restarted, its log holds the proposal once.
            let proposals = m
                .store
                .session_audit(session)
                .unwrap()
                .iter()
                .filter(|e| matches!(e.event.kind(), "proposal_created" | "proposal_received"))
                .count();
            assert_eq!(proposals, 1, "member {i}'s log holds the proposal once");
            let record = m.store.session(session).unwrap().expect("session stored");
            let attempts = m.store.attempts(session).unwrap();
            if record.signed_tx.is_none()
                && attempts.iter().any(|a| a.state == AttemptState::Signed)
            {
                // Killed between closing its attempt signed and storing the transaction: as
                // in the simulator, such a session is not restored (see the report).
                assert!(record.outcome.is_none());
                assert!(m.store.sessions_to_restore().unwrap().is_empty());
                m.store.verify_audit().unwrap();
                self.unrestored += 1;
                continue;
            }
            assert_eq!(
                record.outcome,
                Some(store::SessionOutcome::Confirmed { txid: tx.txid().0 }),
                "member {i}"
            );
            let stored =
                Transaction::decode(record.signed_tx.as_deref().expect("signed tx")).unwrap();
            lotus::spend::verify_transaction(&stored, &self.spent).expect("stored tx verifies");
            assert!(m.store.sessions_to_restore().unwrap().is_empty());
            let summary = m.store.verify_audit().unwrap();
            assert!(summary.entries > 5, "member {i}: {summary:?}");
            // At most one attempt ends signed here. None when this member died after its
            // partials left and finished from the others' `Completed` message afterwards.
            assert!(
                attempts
                    .iter()
                    .filter(|a| a.state == AttemptState::Signed)
                    .count()
                    <= 1,
                "member {i}: {attempts:?}"
            );
            assert!(attempts
                .iter()
                .all(|a| a.state.is_closed() || a.state == AttemptState::Released));
            // Every released nonce is one per input (2 inputs).
            for a in &attempts {
                assert!(
                    a.nonce_hashes.len() == 2 || a.state == AttemptState::Aborted,
                    "{a:?}"
                );
            }
            // Evidence can be rebuilt from the store: every member's signed round-1 message
            // of an attempt that reached round 2, in member order. (Not necessarily the
            // attempt of the `Signed` event: a member that finishes from someone's
            // `Completed` reports its own current attempt.)
            let full = (0..=8)
                .rev()
                .find(|&a| {
                    m.store
                        .attempt_messages(session, a, MessageKind::Nonces)
                        .unwrap()
                        .len()
                        == 3
                })
                .expect("an attempt with everyone's nonces");
            let nonces = m
                .store
                .attempt_messages(session, full, MessageKind::Nonces)
                .unwrap();
            let senders: Vec<u16> = nonces.iter().map(|n| n.sender).collect();
            assert_eq!(senders, vec![0, 1, 2], "member {i}");
            for n in &nonces {
                n.envelope().unwrap().verify_signature(&self.group).unwrap();
            }
        }
    }
}

#[test]
fn three_members_sign_a_two_input_spend_with_everything_persisted() {
    let mut net = Net::new(None);
    let session = net.run().expect("proposed");
    assert!(net.violations.is_empty(), "{:#?}", net.violations);
    net.check_finished(&session);
    for m in &net.members {
        let kinds: BTreeSet<&str> = m
            .store
            .session_audit(&session)
            .unwrap()
            .iter()
            .map(|e| e.event.kind())
            .collect();
        for kind in [
            "approved",
            "attempt_started",
            "round_completed",
            "elected",
            "signed",
            "failover",
            "confirmed",
        ] {
            assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
        }
        // Response times of the co-signers were recorded from the stored messages.
        let others = m.store.all_signer_stats().unwrap();
        assert!(others.iter().all(|s| s.sessions_succeeded == 1));
        assert!(others.iter().any(|s| !s.responses.is_empty()));
    }
    let created = net.members[0].store.session_audit(&session).unwrap();
    assert_eq!(created[0].event.kind(), "proposal_created");
    let received = net.members[1].store.session_audit(&session).unwrap();
    assert_eq!(received[0].event.kind(), "proposal_received");
}

/// Kills member `who` at each of its durable steps in turn.
fn crash_at_every_step(who: usize) -> (usize, usize) {
    let mut clean = Net::new(None);
    clean.run().unwrap();
    let steps = clean.members[who].persists;
    let (mut restarts, mut unrestored) = (0, 0);
    for step in 1..=steps {
        let mut net = Net::new(Some((who, step)));
        let session = net.run();
        assert!(
            net.violations.is_empty(),
            "member {who} killed at step {step}/{steps}: {:#?}",
            net.violations
        );
        assert_eq!(net.restarts, 1, "step {step}");
        assert_eq!(net.audits_verified, 1);
        match session {
            Some(session) => net.check_finished(&session),
            // The proposer died before its proposal was stored: it never left.
            None => assert!(who == 0 && net.on_chain.is_none()),
        }
        restarts += net.restarts;
        unrestored += net.unrestored;
    }
    eprintln!(
        "member {who}: killed at each of {steps} durable steps, {restarts} restarts, \
         {unrestored} signed-but-tx-lost sessions left unrestored"
    );
    (steps, restarts)
}

#[test]
fn a_co_signer_killed_at_any_durable_step_resumes_from_its_store() {
    let (steps, restarts) = crash_at_every_step(2);
    assert!(steps > 10, "{steps} durable steps");
    assert_eq!(restarts, steps);
}

#[test]
fn the_proposer_killed_at_any_durable_step_resumes_from_its_store() {
    let (steps, restarts) = crash_at_every_step(0);
    assert!(steps > 10, "{steps} durable steps");
    assert_eq!(restarts, steps);
}

#[test]
fn a_member_killed_after_releasing_nonces_resumes_in_a_later_attempt() {
    // Member 1 dies right after its round-1 nonce rows commit, before its Nonces message
    // leaves: the attempt is aborted at restart, announced, and everyone moves on.
    let mut net = Net::new(None);
    net.members[1].crash_after = Some(|d| {
        matches!(
            d,
            Durable::NonceReleased {
                attempt: 0,
                input: 1,
                ..
            }
        )
    });
    let session = net.run().unwrap();
    assert!(net.violations.is_empty(), "{:#?}", net.violations);
    assert_eq!(net.restarts, 1);
    net.check_finished(&session);
    let attempts = net.members[1].store.attempts(&session).unwrap();
    assert_eq!(attempts[0].attempt, 0);
    assert_eq!(attempts[0].state, AttemptState::Aborted);
    assert_eq!(attempts[0].nonce_hashes.len(), 2);
    assert!(attempts
        .iter()
        .any(|a| a.attempt >= 1 && a.state == AttemptState::Signed));
    // The restarted member told the others, and they left attempt 0 too.
    let announced = net.members[1]
        .store
        .attempt_messages(&session, 0, MessageKind::AttemptAborted)
        .unwrap();
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].direction, store::Direction::Outgoing);
    for other in [0, 2] {
        let a = net.members[other].store.attempts(&session).unwrap();
        assert_eq!(a[0].state, AttemptState::Aborted, "member {other}");
    }
}
