//! The simulated world: nodes, network, chain, users, attackers, and the event loop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use lotus::address::Network;
use lotus::hash::sha256;
use lotus::script::Script;
use lotus::secp256k1::PublicKey;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use lotus::PrivateKey;
use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::evidence::Offence;
use protocol::failover::FailoverEvent;
use protocol::group::GroupDescriptor;
use protocol::input::{Context, Handled, Input};
use protocol::messages::{Nonces, Partials};
use protocol::node::{Node, NodeConfig, NodeError, Output, Peer, Restore};
use protocol::session::{AbortReason, Action, Durable, Event, Outcome, Recipient};

use crate::durable::{DurableModel, Refused};
use crate::report::Report;
use crate::rng::SimRng;
use crate::scenario::{Byzantine, Scenario};

type Time = u64;

#[derive(Debug, Clone)]
enum Happening {
    Deliver {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Wake {
        node: usize,
    },
    Approve {
        node: usize,
        session: [u8; 32],
        digest: [u8; 32],
    },
    Propose {
        node: usize,
        group: usize,
    },
    Restart {
        node: usize,
    },
    ChainSeen {
        node: usize,
        txid: [u8; 32],
    },
    /// A replaying attacker re-sends something old.
    Replay {
        node: usize,
    },
    /// A member's online window opens (the laptop wakes, or the app is started again).
    GoOnline {
        node: usize,
    },
    /// A member's online window closes (the laptop sleeps, or the app is quit).
    GoOffline {
        node: usize,
    },
    /// A flooding attacker's next burst (junk for the budget, or early-buffer filler).
    Flood {
        node: usize,
        round: u32,
    },
}

/// The simulator drives a node the way the engine does: only through `Node::handle`. `None`
/// while the node is down.
fn handle(
    n: &mut SimNode,
    now: u64,
    input: Input<'_>,
    out: &mut Vec<Output>,
) -> Option<Result<Handled, NodeError>> {
    let protocol = n.protocol.as_mut()?;
    let ctx = Context {
        now,
        key: &n.key,
        entropy: &mut n.entropy,
    };
    Some(protocol.handle(input, ctx, out))
}

struct SimNode {
    key: PrivateKey,
    public: PublicKey,
    protocol: Option<Node>,
    store: DurableModel,
    entropy: SimRng,
    skew: i64,
    byzantine: Option<Byzantine>,
    groups: Vec<usize>,
    wake_at: Option<Time>,
    /// Attempts released before the last crash: signing any of them later is a violation.
    lost_attempts: BTreeSet<([u8; 32], u32)>,
    /// Durable steps executed so far (for deterministic crash points).
    persist_steps: usize,
    /// Whether the member is online (always, without an availability model).
    online: bool,
    /// Its online windows (start, end), absolute simulated time, sorted.
    windows: Vec<(Time, Time)>,
    /// Deliveries held for it while offline.
    mailbox: Vec<Happening>,
}

struct SimGroup {
    descriptor: GroupDescriptor,
    members: Vec<usize>,
    /// Member indices (in the group) that are Byzantine.
    byzantine: BTreeSet<u16>,
}

struct SessionRecord {
    group: usize,
    proposer: usize,
    /// Proposals by attackers (e.g. floods) are not owed liveness.
    byzantine_proposer: bool,
    proposed_at: Time,
    txid: [u8; 32],
    /// Honest members (world node ids) who approved this exact review.
    approvals: BTreeSet<usize>,
    outcome: BTreeMap<usize, String>,
    confirmed_at: Option<Time>,
    /// Highest attempt any honest member started.
    max_attempt: u32,
}

pub struct World {
    scenario: Scenario,
    rng: SimRng,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    happenings: BTreeMap<usize, Happening>,
    next_happening: usize,
    nodes: Vec<SimNode>,
    groups: Vec<SimGroup>,
    sessions: BTreeMap<[u8; 32], SessionRecord>,
    /// Every released nonce hash, across all nodes and restarts.
    nonce_registry: BTreeSet<[u8; 32]>,
    /// (node, review digest) its simulated user approved.
    user_approved: BTreeSet<(usize, [u8; 32])>,
    group_index: BTreeMap<protocol::group::GroupId, usize>,
    /// The chain: txid → transaction, and the outputs the simulated UTXOs had.
    chain: BTreeMap<[u8; 32], Transaction>,
    spent_outputs: BTreeMap<[u8; 32], Vec<TxOut>>,
    replay_log: Vec<Vec<u8>>,
    /// Groups in which an attacker sent a round-1 Nonces message (pooled attempts have none,
    /// so a nonce equivocator there never reaches the step it would be caught at).
    nonces_sent_by_attacker: BTreeSet<protocol::group::GroupId>,
    report: Report,
}

impl World {
    pub fn new(scenario: Scenario) -> Self {
        let mut rng = SimRng::new(scenario.seed);
        let nodes = (0..scenario.nodes)
            .map(|i| {
                let key = PrivateKey::from_bytes(&sha256(
                    &[&scenario.seed.to_be_bytes()[..], &(i as u64).to_be_bytes()].concat(),
                ))
                .expect("hash is a valid key");
                let public = key.public_key();
                let skew = rng.range(0, 2 * scenario.skew_ms) as i64 - scenario.skew_ms as i64;
                SimNode {
                    key,
                    public,
                    protocol: Some(Node::new(public, NodeConfig::default())),
                    store: DurableModel::default(),
                    entropy: rng.fork(),
                    skew,
                    byzantine: None,
                    groups: Vec::new(),
                    wake_at: None,
                    lost_attempts: BTreeSet::new(),
                    persist_steps: 0,
                    online: true,
                    windows: Vec::new(),
                    mailbox: Vec::new(),
                }
            })
            .collect();
        let mut world = Self {
            scenario,
            rng,
            now: 1_000_000,
            seq: 0,
            queue: BinaryHeap::new(),
            happenings: BTreeMap::new(),
            next_happening: 0,
            nodes,
            groups: Vec::new(),
            sessions: BTreeMap::new(),
            nonce_registry: BTreeSet::new(),
            user_approved: BTreeSet::new(),
            group_index: BTreeMap::new(),
            chain: BTreeMap::new(),
            spent_outputs: BTreeMap::new(),
            replay_log: Vec::new(),
            nonces_sent_by_attacker: BTreeSet::new(),
            report: Report::default(),
        };
        world.build_groups();
        world
    }

    fn schedule(&mut self, at: Time, happening: Happening) {
        let id = self.next_happening;
        self.next_happening += 1;
        self.happenings.insert(id, happening);
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, id)));
    }

    fn local_time(&self, node: usize) -> Time {
        (self.now as i64 + self.nodes[node].skew).max(0) as Time
    }

    fn build_groups(&mut self) {
        let s = self.scenario.clone();
        for g in 0..s.groups {
            // Distinct members, drawn from all nodes.
            let mut members: Vec<usize> = Vec::new();
            while members.len() < s.signers.min(s.nodes) {
                let candidate = self.rng.below(s.nodes as u64) as usize;
                if !members.contains(&candidate) {
                    members.push(candidate);
                }
            }
            let keys = members.iter().map(|&m| self.nodes[m].public).collect();
            let mut descriptor =
                GroupDescriptor::new(&format!("group-{g}"), Network::Regtest, keys)
                    .expect("valid simulated group");
            descriptor.election = s.election;
            descriptor.commit_round = s.commit_round;
            descriptor.timeouts.round_ms = s.round_ms;
            descriptor.timeouts.broadcast_slot_ms = s.broadcast_slot_ms;
            descriptor.timeouts.max_proposal_ttl_ms = s.proposal_ttl_ms;
            descriptor.limits.max_pending_sessions = 1000;
            descriptor.limits.max_active_sessions = 1000;
            if s.byzantine == Some(Byzantine::FloodProposals) {
                descriptor.limits.proposals_per_minute = 5;
            } else {
                descriptor.limits.proposals_per_minute = 1000;
            }
            let mut byzantine = BTreeSet::new();
            if let Some(kind) = s.byzantine {
                for member in 0..s.byzantine_per_group.min(members.len()) {
                    byzantine.insert(member as u16);
                    self.nodes[members[member]].byzantine = Some(kind);
                }
            }
            for &m in &members {
                self.nodes[m].groups.push(g);
                if let Some(node) = self.nodes[m].protocol.as_mut() {
                    node.add_group(descriptor.clone())
                        .expect("member of its group");
                }
            }
            self.group_index.insert(descriptor.id(), self.groups.len());
            self.groups.push(SimGroup {
                descriptor,
                members,
                byzantine,
            });
        }
        // A node that is Byzantine in one group is Byzantine everywhere; keep group views
        // consistent with that.
        for g in 0..self.groups.len() {
            let byzantine: Vec<u16> = self.groups[g]
                .members
                .iter()
                .enumerate()
                .filter(|(_, &m)| self.nodes[m].byzantine.is_some())
                .map(|(i, _)| i as u16)
                .collect();
            self.groups[g].byzantine.extend(byzantine);
        }
        self.build_availability();
        // Proposals: honest proposers, spread over the first minute (or, with availability,
        // at random moments when the proposer is online).
        for g in 0..self.groups.len() {
            for _ in 0..s.sessions_per_group {
                let honest: Vec<usize> = self.groups[g]
                    .members
                    .iter()
                    .copied()
                    .filter(|&m| self.nodes[m].byzantine.is_none())
                    .collect();
                let proposer = if honest.is_empty() {
                    self.groups[g].members[0]
                } else {
                    honest[self.rng.below(honest.len() as u64) as usize]
                };
                let at = self.proposal_time(proposer);
                self.schedule(
                    at,
                    Happening::Propose {
                        node: proposer,
                        group: g,
                    },
                );
            }
            // Attackers that propose: a flood right away, or a couple of proposals later on.
            let attacker_proposals = match s.byzantine {
                Some(Byzantine::FloodProposals) => Some((30, 1_000, 100)),
                Some(kind) if kind.proposes() => Some((2, 70_000, 20_000)),
                _ => None,
            };
            let attacker = self.groups[g]
                .members
                .iter()
                .copied()
                .find(|&m| self.nodes[m].byzantine.is_some());
            if let (Some((count, start, step)), Some(attacker)) = (attacker_proposals, attacker) {
                for k in 0..count {
                    self.schedule(
                        self.now + start + k * step,
                        Happening::Propose {
                            node: attacker,
                            group: g,
                        },
                    );
                }
            }
        }
        for n in 0..self.nodes.len() {
            match self.nodes[n].byzantine {
                Some(Byzantine::Replay) => {
                    self.schedule(self.now + 5_000, Happening::Replay { node: n })
                }
                Some(Byzantine::OutsiderBudgetExhaustion | Byzantine::EarlyBufferFlood) => {
                    self.schedule(self.now + 500, Happening::Flood { node: n, round: 0 })
                }
                _ => {}
            }
        }
    }

    /// Each member's daily routine: the same `windows_per_day` hours every day.
    fn build_availability(&mut self) {
        let Some(a) = self.scenario.availability else {
            return;
        };
        // The group was made before the run: every member was online to accept it, and
        // published its first nonce pool then (delivered to each member when it is back).
        for n in 0..self.nodes.len() {
            let now = self.local_time(n);
            let mut out = Vec::new();
            if handle(&mut self.nodes[n], now, Input::RefreshPools, &mut out).is_some() {
                self.execute(n, out);
            }
        }
        let day = 86_400_000;
        let start = self.now;
        for n in 0..self.nodes.len() {
            let hours: Vec<u64> = (0..a.windows_per_day)
                .map(|_| self.rng.range(0, day - a.window_ms))
                .collect();
            let mut windows: Vec<(Time, Time)> = (0..a.days + 2)
                .flat_map(|d| {
                    hours
                        .iter()
                        .map(move |h| (start + d * day + h, start + d * day + h + a.window_ms))
                })
                .collect();
            windows.sort_unstable();
            let mut merged: Vec<(Time, Time)> = Vec::new();
            for (s, e) in windows {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            self.nodes[n].online = merged.iter().any(|&(s, e)| s <= start && start < e);
            if !self.nodes[n].online && a.away == crate::scenario::Away::Quit {
                self.nodes[n].protocol = None;
            }
            for &(s, e) in &merged {
                if s > start {
                    self.schedule(s, Happening::GoOnline { node: n });
                }
                self.schedule(e, Happening::GoOffline { node: n });
            }
            self.nodes[n].windows = merged;
        }
    }

    /// When a proposer proposes: in the first minute, or inside one of its windows.
    fn proposal_time(&mut self, proposer: usize) -> Time {
        let Some(a) = self.scenario.availability else {
            return self.now + self.rng.range(0, 60_000);
        };
        let horizon = self.now + a.days * 86_400_000;
        let windows: Vec<(Time, Time)> = self.nodes[proposer]
            .windows
            .iter()
            .copied()
            .filter(|&(s, e)| s < horizon && e > self.now + 60_000)
            .collect();
        let (s, e) = windows[self.rng.below(windows.len() as u64) as usize];
        let s = s.max(self.now);
        s + self.rng.range(0, e - s - 60_000)
    }

    /// The start of the member's next window after now (or now if online).
    fn next_online(&self, node: usize) -> Time {
        if self.nodes[node].online {
            return self.now;
        }
        self.nodes[node]
            .windows
            .iter()
            .map(|&(s, _)| s)
            .find(|&s| s > self.now)
            .unwrap_or(Time::MAX)
    }

    fn go_online(&mut self, node: usize) {
        if self.nodes[node].online {
            return;
        }
        self.nodes[node].online = true;
        if self.nodes[node].protocol.is_none() {
            // The app starts again: everything comes back from its store.
            self.restart(node);
        }
        let now = self.local_time(node);
        let n = &mut self.nodes[node];
        let mut out = Vec::new();
        if handle(n, now, Input::Tick, &mut out).is_none() {
            return;
        }
        handle(n, now, Input::Reconnected, &mut out);
        self.execute(node, out);
        for held in std::mem::take(&mut self.nodes[node].mailbox) {
            let (lo, hi) = self.scenario.latency_ms;
            let at = self.now + self.rng.range(lo, hi);
            self.schedule(at, held);
        }
    }

    fn go_offline(&mut self, node: usize) {
        self.nodes[node].online = false;
        self.nodes[node].wake_at = None;
        let quits = self
            .scenario
            .availability
            .is_some_and(|a| a.away == crate::scenario::Away::Quit);
        if quits {
            // Quitting loses the process like a crash (secret nonces with it), but on purpose.
            let n = &mut self.nodes[node];
            if n.protocol.take().is_some() {
                for (session, attempt) in n.store.released.keys() {
                    if !n.store.closed.contains_key(&(*session, *attempt)) {
                        n.lost_attempts.insert((*session, *attempt));
                    }
                }
            }
        }
    }

    /// A transaction spending `inputs` fresh group outputs: most to an outside address, the
    /// rest back to the group, a small fee.
    fn make_spend(&mut self, group: usize) -> (Transaction, Vec<TxOut>) {
        let script = self.groups[group]
            .descriptor
            .script_pubkey()
            .expect("group script");
        let mut inputs = Vec::new();
        let mut spent = Vec::new();
        let mut total = 0i64;
        for _ in 0..self.scenario.inputs.max(1) {
            let mut txid = [0u8; 32];
            self.rng.fill(&mut txid);
            let value = self.rng.range(2_000_000, 50_000_000) as i64;
            total += value;
            inputs.push(TxIn {
                prev_out: OutPoint::new(TxId(txid), 0),
                script_sig: Script::new(),
                sequence: TxIn::SEQUENCE_FINAL,
            });
            spent.push(TxOut::new(value, script.clone()));
        }
        let fee = 5_000;
        let pay = total / 2;
        let destination = Script::p2pkh(&lotus::hash::hash160(&self.rng.next_u64().to_be_bytes()));
        let outputs = vec![
            TxOut::new(pay, destination),
            TxOut::new(total - pay - fee, script),
        ];
        let tx = Transaction {
            version: 2,
            inputs,
            outputs,
            lock_time: 0,
        };
        (tx, spent)
    }

    /// Runs until nothing is left to do (or the time limit), then checks invariants.
    pub fn run(mut self) -> Report {
        let days = self.scenario.availability.map_or(0, |a| a.days);
        let limit = self.now + days * 86_400_000 + self.scenario.proposal_ttl_ms + 120_000;
        while let Some(Reverse((at, _, id))) = self.queue.pop() {
            if at > limit {
                break;
            }
            self.now = at;
            let happening = self.happenings.remove(&id).expect("scheduled");
            self.handle(happening);
            if self.all_sessions_settled() {
                break;
            }
        }
        self.finish()
    }

    fn all_sessions_settled(&self) -> bool {
        let expected = self.scenario.groups * self.scenario.sessions_per_group;
        self.sessions.len() >= expected
            && self.queue.iter().all(|Reverse((_, _, id))| {
                !matches!(self.happenings.get(id), Some(Happening::Propose { .. }))
            })
            && self.nodes.iter().all(|n| {
                n.protocol
                    .as_ref()
                    .is_some_and(|p| p.sessions().all(|s| s.is_closed()))
            })
    }

    fn handle(&mut self, happening: Happening) {
        // An offline member: nothing reaches it, its timers don't run, its user waits.
        match &happening {
            Happening::Deliver { to, .. } if !self.nodes[*to].online => {
                // The network's store-and-forward (a relay mailbox, or an always-on member)
                // holds it until the member is back.
                self.report.messages_offline += 1;
                let to = *to;
                self.nodes[to].mailbox.push(happening);
                return;
            }
            Happening::Wake { node } if !self.nodes[*node].online => {
                self.nodes[*node].wake_at = None;
                return;
            }
            Happening::Approve { node, .. } | Happening::ChainSeen { node, .. }
                if !self.nodes[*node].online =>
            {
                let at = self.next_online(*node);
                if at != Time::MAX {
                    let delay = self
                        .rng
                        .range(1_000, self.scenario.approval_delay_ms.max(2_000));
                    self.schedule(at + delay, happening);
                }
                return;
            }
            _ => {}
        }
        match happening {
            Happening::GoOnline { node } => self.go_online(node),
            Happening::GoOffline { node } => self.go_offline(node),
            Happening::Deliver { from, to, bytes } => {
                let now = self.local_time(to);
                let n = &mut self.nodes[to];
                let mut out = Vec::new();
                let input = Input::Receive {
                    bytes: &bytes,
                    from: Peer(from as u64),
                };
                let Some(handled) = handle(n, now, input, &mut out) else {
                    return;
                };
                if let Ok(Handled::Refused(rejection)) = handled {
                    *self
                        .report
                        .rejections
                        .entry(rejection.label().to_string())
                        .or_default() += 1;
                }
                if n.byzantine == Some(Byzantine::Replay) && self.replay_log.len() < 2_000 {
                    self.replay_log.push(bytes.clone());
                }
                let forger = n.byzantine == Some(Byzantine::ForgedEvidence);
                self.execute(to, out);
                if forger {
                    self.forge_evidence(to, &bytes);
                }
            }
            Happening::Wake { node } => {
                self.nodes[node].wake_at = None;
                let now = self.local_time(node);
                let mut out = Vec::new();
                if handle(&mut self.nodes[node], now, Input::Tick, &mut out).is_some() {
                    self.execute(node, out);
                }
            }
            Happening::Approve {
                node,
                session,
                digest,
            } => {
                let now = self.local_time(node);
                let n = &mut self.nodes[node];
                let Some(protocol) = n.protocol.as_mut() else {
                    return;
                };
                let mut out = Vec::new();
                // The decision is durable before anything it unlocks (as the engine does).
                if protocol.check_approval(&session, &digest).is_ok() {
                    n.store.approved.insert(session, digest);
                    self.user_approved.insert((node, digest));
                    if let Some(record) = self.sessions.get_mut(&session) {
                        record.approvals.insert(node);
                    }
                    let _ = handle(n, now, Input::Approve { session, digest }, &mut out);
                }
                self.execute(node, out);
            }
            Happening::Propose { node, group } => self.propose(node, group),
            Happening::Restart { node } => self.restart(node),
            Happening::ChainSeen { node, txid } => {
                let now = self.local_time(node);
                let mut out = Vec::new();
                let input = Input::BroadcastObserved { txid };
                if handle(&mut self.nodes[node], now, input, &mut out).is_some() {
                    self.execute(node, out);
                }
            }
            Happening::Replay { node } => {
                if !self.replay_log.is_empty() {
                    for _ in 0..5 {
                        let pick = self.rng.below(self.replay_log.len() as u64) as usize;
                        let bytes = self.replay_log[pick].clone();
                        for group in self.nodes[node].groups.clone() {
                            self.send_to_group(node, group, bytes.clone());
                        }
                    }
                }
                self.schedule(self.now + 7_000, Happening::Replay { node });
            }
            Happening::Flood { node, round } => {
                self.flood(node, round);
                if round < 6 {
                    self.schedule(
                        self.now + 20_000,
                        Happening::Flood {
                            node,
                            round: round + 1,
                        },
                    );
                }
            }
        }
        self.reschedule_wakes();
    }

    fn reschedule_wakes(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].online {
                continue;
            }
            let Some(deadline) = self.nodes[i]
                .protocol
                .as_ref()
                .and_then(Node::next_deadline)
            else {
                continue;
            };
            // Local deadline → global time.
            let global = (deadline as i64 - self.nodes[i].skew).max(self.now as i64 + 1) as Time;
            if self.nodes[i].wake_at.is_none_or(|w| global < w) {
                self.nodes[i].wake_at = Some(global);
                self.schedule(global, Happening::Wake { node: i });
            }
        }
    }

    fn propose(&mut self, node: usize, group: usize) {
        if self.nodes[node].protocol.is_none() {
            // The proposer is down: try again shortly.
            self.schedule(self.now + 1_000, Happening::Propose { node, group });
            return;
        }
        let (tx, spent) = self.make_spend(group);
        let now = self.local_time(node);
        let expires = now + self.scenario.proposal_ttl_ms - 1_000;
        let group_id = self.groups[group].descriptor.id();
        let txid = tx.txid().0;
        let mut out = Vec::new();
        let input = Input::Propose {
            group: group_id,
            tx,
            spent_outputs: spent.clone(),
            expires_ms: expires,
            evidence: Vec::new(),
        };
        match handle(&mut self.nodes[node], now, input, &mut out).expect("checked up") {
            Ok(Handled::Proposed(session)) => {
                self.spent_outputs.insert(txid, spent);
                self.sessions.insert(
                    session,
                    SessionRecord {
                        group,
                        proposer: node,
                        byzantine_proposer: self.nodes[node].byzantine.is_some(),
                        proposed_at: self.now,
                        txid,
                        approvals: BTreeSet::new(),
                        outcome: BTreeMap::new(),
                        confirmed_at: None,
                        max_attempt: 0,
                    },
                );
                self.report.sessions += 1;
            }
            Ok(other) => unreachable!("a proposal is answered with its session, not {other:?}"),
            Err(_) => self.report.proposals_refused += 1,
        }
        let session = out.first().map(|o| o.session_id);
        self.execute(node, out);
        // Crashed before the proposal was stored: it never left, so the user proposes again.
        if let Some(session) = session {
            if !self.nodes[node].store.proposals.contains_key(&session) {
                if self.sessions.remove(&session).is_some() {
                    self.report.sessions -= 1;
                }
                self.schedule(
                    self.now + self.scenario.downtime_ms + 1_000,
                    Happening::Propose { node, group },
                );
            }
        }
    }

    fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.protocol.take().is_none() {
            return;
        }
        self.report.crashes += 1;
        for (session, attempt) in n.store.released.keys() {
            if !n.store.closed.contains_key(&(*session, *attempt)) {
                n.lost_attempts.insert((*session, *attempt));
            }
        }
        n.wake_at = None;
        let back = self.now + self.scenario.downtime_ms;
        self.schedule(back, Happening::Restart { node });
    }

    fn restart(&mut self, node: usize) {
        let now = self.local_time(node);
        let groups: Vec<GroupDescriptor> = self.nodes[node]
            .groups
            .iter()
            .map(|&g| self.groups[g].descriptor.clone())
            .collect();
        let n = &mut self.nodes[node];
        let mut protocol = Node::new(n.public, NodeConfig::default());
        for g in groups {
            protocol.add_group(g).expect("member");
        }
        let mut out = Vec::new();
        // Every proposer's sequence keeps increasing across the restart (as the engine does).
        for (proposal, _) in n.store.proposals.values() {
            let _ = protocol.remember_proposal(proposal);
        }
        for (session, (proposal, _)) in n.store.proposals.clone() {
            if n.store.rejected.contains(&session) {
                continue; // the user's rejection is durable: never resumed
            }
            let signed_tx = n
                .store
                .signed
                .get(&session)
                .and_then(|bytes| Transaction::decode(bytes).ok());
            let restore = Restore {
                proposal_envelope: &proposal,
                last_active_attempt: n.store.last_active_attempt(&session),
                approved_digest: n.store.approved.get(&session).copied(),
                signed_before: n.store.signed_before(&session),
                signed_tx,
            };
            let _ = protocol.restore_session(restore, now, &n.key, &mut n.entropy, &mut out);
        }
        n.protocol = Some(protocol);
        self.report.restarts += 1;
        self.execute(node, out);
    }

    /// Executes outputs in order, as the engine would; a crash can strike before any durable
    /// step, losing everything after it.
    fn execute(&mut self, node: usize, outputs: Vec<Output>) {
        let mut halted: Vec<[u8; 32]> = Vec::new();
        for Output {
            group_id,
            session_id,
            action,
        } in outputs
        {
            if self.nodes[node].protocol.is_none() {
                return;
            }
            if halted.contains(&session_id) {
                continue;
            }
            match action {
                Action::Persist(durable) => {
                    let step = self.nodes[node].persist_steps;
                    self.nodes[node].persist_steps += 1;
                    if self.scenario.crash_at == Some((node, step)) {
                        self.crash(node);
                        return;
                    }
                    if self.scenario.crash_rate > 0.0 && self.rng.chance(self.scenario.crash_rate) {
                        self.crash(node);
                        return;
                    }
                    if let Err(refused) = self.persist(node, &durable) {
                        // As the engine does: nothing after a failed step leaves.
                        halted.push(session_id);
                        self.report.persist_refused += 1;
                        let n = &mut self.nodes[node];
                        let protocol = n.protocol.as_mut().expect("checked up");
                        if refused == Refused::NonceReused {
                            let mut out = Vec::new();
                            let now = (self.now as i64 + n.skew).max(0) as Time;
                            protocol.nonce_conflict(
                                &session_id,
                                now,
                                &n.key,
                                &mut n.entropy,
                                &mut out,
                            );
                            let closing: Vec<Output> = out
                                .into_iter()
                                .filter(|o| matches!(o.action, Action::Event(_)))
                                .collect();
                            self.execute(node, closing);
                        } else {
                            protocol.persist_failed(&session_id);
                        }
                    }
                }
                Action::Send { to, bytes } => {
                    let group = self.group_index.get(&group_id).copied();
                    if let Some(group) = group {
                        self.send(node, group, to, bytes);
                    }
                }
                Action::Broadcast { tx } => self.broadcast(node, tx),
                Action::Event(event) => self.event(node, session_id, event),
            }
        }
    }

    fn persist(&mut self, node: usize, durable: &Durable) -> Result<(), Refused> {
        match durable {
            Durable::NonceReleased { nonce_hash, .. }
                if !self.nonce_registry.insert(*nonce_hash) =>
            {
                self.report.violation(format!(
                    "node {node}: public nonce {} released twice",
                    hex(nonce_hash)
                ));
            }
            Durable::AttemptSigning {
                session_id,
                attempt,
                digest,
            } => {
                if self.nodes[node]
                    .lost_attempts
                    .contains(&(*session_id, *attempt))
                {
                    self.report.violation(format!("node {node}: signed attempt {attempt} whose nonces were released before a crash"));
                }
                if self.nodes[node].byzantine.is_none()
                    && !self.user_approved.contains(&(node, *digest))
                {
                    self.report.violation(format!(
                        "node {node}: signing mark for a digest its user never approved"
                    ));
                }
            }
            _ => {}
        }
        self.nodes[node].store.apply(durable)
    }

    fn group_of_session(&self, session_id: &[u8; 32]) -> Option<usize> {
        self.sessions.get(session_id).map(|r| r.group)
    }

    /// What an honest node sends must be guarded by what its store already holds: its nonce
    /// rows before its nonces, its signing mark (for a digest its user approved) before its
    /// partials. Checked on the wire, so sending before persisting, or sending after a failed
    /// persist, is caught even though no crash happens.
    fn check_guard(&mut self, node: usize, group: usize, bytes: &[u8]) {
        if self.nodes[node].byzantine.is_some() {
            return;
        }
        let Ok(envelope) = Envelope::decode(bytes, usize::MAX) else {
            return;
        };
        let h = envelope.header;
        let own = self.groups[group].descriptor.members.get(h.sender as usize)
            == Some(&self.nodes[node].public);
        if !own {
            return; // a relayed message of another member (a pull answer or a forward)
        }
        let store = &self.nodes[node].store;
        match h.kind {
            MessageKind::Nonces => {
                let Ok(nonces) = Nonces::decode(&envelope.payload) else {
                    return;
                };
                let rows = store.released.get(&(h.session_id, h.attempt));
                let all_committed = nonces
                    .nonces
                    .iter()
                    .all(|n| rows.is_some_and(|r| r.contains(&sha256(&n.serialize()))));
                if !all_committed {
                    self.report.violation(format!(
                        "node {node}: sent nonces of attempt {} before their registry rows committed",
                        h.attempt
                    ));
                }
            }
            MessageKind::Partials => {
                if !store.signing.contains(&(h.session_id, h.attempt)) {
                    self.report.violation(format!(
                        "node {node}: sent partials of attempt {} without a committed signing mark",
                        h.attempt
                    ));
                }
                if !self.user_approved.contains(&(node, h.proposal)) {
                    self.report.violation(format!(
                        "node {node}: sent partials for a proposal its user never approved"
                    ));
                }
            }
            _ => {}
        }
    }

    fn send(&mut self, node: usize, group: usize, to: Recipient, bytes: Vec<u8>) {
        self.check_guard(node, group, &bytes);
        if let (Some(kind), Recipient::Members) = (self.nodes[node].byzantine, &to) {
            if let Some(variant) = self.variant_for_half(node, kind, &bytes) {
                // Per-recipient equivocation: one version to half the members, another to the rest.
                let targets: Vec<usize> = self.groups[group]
                    .members
                    .iter()
                    .copied()
                    .filter(|&t| t != node)
                    .collect();
                for (i, target) in targets.into_iter().enumerate() {
                    let version = if i % 2 == 0 { &bytes } else { &variant };
                    self.deliver(node, target, version.clone());
                }
                return;
            }
        }
        let outgoing = match self.nodes[node].byzantine {
            Some(kind) => self.tamper(node, kind, bytes),
            None => vec![bytes],
        };
        for bytes in outgoing {
            match to {
                Recipient::Members => self.send_to_group(node, group, bytes),
                Recipient::Member(m) => {
                    if let Some(&target) = self.groups[group].members.get(m as usize) {
                        self.deliver(node, target, bytes);
                    }
                }
            }
        }
    }

    fn send_to_group(&mut self, from: usize, group: usize, bytes: Vec<u8>) {
        for target in self.groups[group].members.clone() {
            if target != from {
                self.deliver(from, target, bytes.clone());
            }
        }
    }

    /// The network: loss, duplication, latency (and so reordering), partitions.
    fn deliver(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.report.messages_sent += 1;
        if let Some(p) = self.scenario.network_partition {
            if self.now >= p.from_ms + 1_000_000
                && self.now < p.until_ms + 1_000_000
                && (from % 2) != (to % 2)
            {
                return;
            }
        }
        if self.rng.chance(self.scenario.loss) {
            self.report.messages_lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.scenario.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.scenario.latency_ms;
            let at = self.now + self.rng.range(lo, hi);
            self.schedule(
                at,
                Happening::Deliver {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    fn broadcast(&mut self, node: usize, tx: Transaction) {
        if self.nodes[node].byzantine == Some(Byzantine::SilentCoordinator) {
            self.report.silent_broadcasts += 1;
            return;
        }
        self.report.broadcasts += 1;
        let txid = tx.txid().0;
        let Some(spent) = self.spent_outputs.get(&txid).cloned() else {
            self.report.violation(format!(
                "node {node} broadcast a transaction nobody proposed"
            ));
            return;
        };
        if let Err(e) = lotus::spend::verify_transaction(&tx, &spent) {
            self.report
                .violation(format!("node {node} broadcast an invalid transaction: {e}"));
            return;
        }
        if self.chain.insert(txid, tx).is_some() {
            return; // a harmless re-broadcast
        }
        let Some((session_id, record)) = self.sessions.iter_mut().find(|(_, r)| r.txid == txid)
        else {
            return;
        };
        record.confirmed_at = Some(self.now);
        let _ = session_id;
        let members = self.groups[record.group].members.clone();
        for m in members {
            let (lo, hi) = self.scenario.latency_ms;
            let at = self.now + self.rng.range(lo, hi) * 3;
            self.schedule(at, Happening::ChainSeen { node: m, txid });
        }
    }

    fn event(&mut self, node: usize, session_id: [u8; 32], event: Event) {
        match event {
            Event::ReviewReady { review } => {
                let delay = self.rng.range(0, self.scenario.approval_delay_ms);
                self.schedule(
                    self.now + delay,
                    Happening::Approve {
                        node,
                        session: session_id,
                        digest: review.digest,
                    },
                );
            }
            Event::Blamed { blame, evidence } => {
                let Some(group) = self.group_of_session(&session_id) else {
                    return;
                };
                let honest_reporter = self.nodes[node].byzantine.is_none();
                if !honest_reporter {
                    return;
                }
                let culprit_is_byzantine = self.groups[group].byzantine.contains(&blame.culprit);
                match evidence.verify(&self.groups[group].descriptor) {
                    Ok(b) if b == blame && culprit_is_byzantine => {
                        self.report.blame_correct += 1;
                        self.report
                            .blamed
                            .insert((group, blame.culprit, blame.offence));
                    }
                    Ok(_) => {
                        self.report.blame_incorrect += 1;
                        self.report.violation(format!(
                            "node {node} blamed honest member {} ({})",
                            blame.culprit,
                            blame.offence.name()
                        ));
                    }
                    Err(e) => {
                        self.report.blame_incorrect += 1;
                        self.report.violation(format!(
                            "node {node} reported evidence that does not verify: {e}"
                        ));
                    }
                }
            }
            Event::Elected { attempt, election }
                if self.nodes[node].byzantine == Some(Byzantine::SaltReroll) =>
            {
                self.reroll(node, session_id, attempt, election.coordinator());
            }
            Event::AttemptStarted { attempt } if self.nodes[node].byzantine.is_none() => {
                if let Some(record) = self.sessions.get_mut(&session_id) {
                    record.max_attempt = record.max_attempt.max(attempt);
                }
            }
            Event::TimedOut { .. } => self.report.timeouts += 1,
            Event::ForcedReroll { .. } => self.report.forced_rerolls += 1,
            Event::Failover(FailoverEvent::CoordinatorFailed { .. }) => self.report.failovers += 1,
            Event::Failover(FailoverEvent::FailoverExhausted) => {
                self.report.failover_exhausted += 1
            }
            Event::ElectionProofMismatch { .. } => self.report.election_mismatches += 1,
            Event::Closed { outcome } => {
                let label = match &outcome {
                    Outcome::Confirmed { .. } => "confirmed".to_string(),
                    Outcome::Aborted(reason) => abort_label(reason).to_string(),
                };
                if let Some(record) = self.sessions.get_mut(&session_id) {
                    record.outcome.insert(node, label);
                }
            }
            _ => {}
        }
    }

    /// What an attacker sends instead of the honest message (re-signed with its own key).
    fn tamper(&mut self, node: usize, kind: Byzantine, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        let Ok(envelope) = Envelope::decode(&bytes, usize::MAX) else {
            return vec![bytes];
        };
        let key = &self.nodes[node].key;
        let resign =
            |header: Header, payload: Vec<u8>| Envelope::sign(header, payload, key).encode();
        let h = envelope.header;
        if h.kind == MessageKind::Nonces {
            self.nonces_sent_by_attacker.insert(h.group_id);
        }
        match (kind, h.kind) {
            (Byzantine::InvalidPartial, MessageKind::Partials) => {
                let Ok(mut partials) = Partials::decode(&envelope.payload) else {
                    return vec![bytes];
                };
                for p in partials.partials.iter_mut() {
                    let mut b = p.to_bytes();
                    b[31] ^= 1;
                    if let Ok(tampered) = musig::PartialSignature::from_slice(&b) {
                        *p = tampered;
                    }
                }
                vec![resign(h, partials.encode())]
            }
            (Byzantine::WrongElectionProof, MessageKind::Partials) => {
                let Ok(mut partials) = Partials::decode(&envelope.payload) else {
                    return vec![bytes];
                };
                partials.election_proof[0] ^= 0xff;
                vec![resign(h, partials.encode())]
            }
            (Byzantine::EquivocatingNonces, MessageKind::Nonces) => {
                let Ok(mut nonces) = Nonces::decode(&envelope.payload) else {
                    return vec![bytes];
                };
                nonces.salt_share[0] ^= 0xff;
                let second = resign(h, nonces.encode());
                vec![bytes, second]
            }
            (Byzantine::WithholdCommitment, MessageKind::Commitment)
            | (Byzantine::WithholdNonces, MessageKind::Nonces)
            | (Byzantine::WithholdPartials, MessageKind::Partials) => Vec::new(),
            (Byzantine::Impersonation, _) => {
                // Its own messages, re-signed in another member's name (what it forwards of
                // the others' is passed on untouched: re-signing that in its own name would
                // be provable misbehaviour of a different kind).
                let group = self.group_index.get(&h.group_id).copied();
                let own = group
                    .is_some_and(|g| self.groups[g].members.get(h.sender as usize) == Some(&node));
                let victim = group.filter(|_| own).and_then(|g| {
                    let n = self.groups[g].members.len() as u16;
                    (0..n).find(|&m| m != h.sender)
                });
                match victim {
                    Some(victim) => {
                        let forged = resign(
                            Header {
                                sender: victim,
                                ..h
                            },
                            envelope.payload.clone(),
                        );
                        vec![bytes, forged]
                    }
                    None => vec![bytes],
                }
            }
            (Byzantine::CrossGroupImpersonation, k) if k != MessageKind::Proposal => {
                let mut out = vec![bytes];
                let public = self.nodes[node].public;
                for &other in &self.nodes[node].groups {
                    let other_group = &self.groups[other].descriptor;
                    if other_group.id() == h.group_id {
                        continue;
                    }
                    if let Some(index) = other_group.member_index(&public) {
                        let forged = Header {
                            group_id: other_group.id(),
                            sender: index,
                            ..h
                        };
                        out.push(resign(forged, envelope.payload.clone()));
                    }
                }
                out
            }
            (Byzantine::SequenceSteering, MessageKind::Proposal) => {
                let sequence = if self.rng.chance(0.5) {
                    u64::MAX
                } else {
                    1_000
                };
                match reproposed(&envelope, key, |p| p.sequence = sequence) {
                    Some(steered) => vec![steered],
                    None => vec![bytes],
                }
            }
            (Byzantine::Oversized, _) => vec![bytes, vec![0u8; 2 << 20]],
            (Byzantine::Malformed, _) => {
                let mut junk = vec![0u8; 200];
                self.rng.fill(&mut junk);
                vec![bytes, junk]
            }
            _ => vec![bytes],
        }
    }

    /// A re-rolling attacker that did not win the election claims a restart of the attempt
    /// (and follows its own notice, as its node would).
    fn reroll(&mut self, node: usize, session_id: [u8; 32], attempt: u32, coordinator: u16) {
        let Some(group) = self.group_of_session(&session_id) else {
            return;
        };
        let descriptor = &self.groups[group].descriptor;
        let Some(me) = descriptor.member_index(&self.nodes[node].public) else {
            return;
        };
        let Some(digest) = self.nodes[node]
            .protocol
            .as_ref()
            .and_then(|p| p.session(&session_id))
            .map(|s| s.digest())
        else {
            return;
        };
        if coordinator == me {
            return;
        }
        let header = Header::new(
            MessageKind::AttemptAborted,
            descriptor.id(),
            session_id,
            digest,
            attempt,
            me,
            self.local_time(node),
        );
        let notice = Envelope::sign(
            header,
            protocol::messages::AbortCode::Restart.encode(),
            &self.nodes[node].key,
        )
        .encode();
        self.send_to_group(node, group, notice.clone());
        self.deliver(node, node, notice);
    }

    /// The second version an equivocating attacker sends to half the members, if any.
    fn variant_for_half(&mut self, node: usize, kind: Byzantine, bytes: &[u8]) -> Option<Vec<u8>> {
        let envelope = Envelope::decode(bytes, usize::MAX).ok()?;
        let key = &self.nodes[node].key;
        match (kind, envelope.header.kind) {
            (Byzantine::ProposerEquivocation, MessageKind::Proposal) => {
                reproposed(&envelope, key, |p| p.tx.outputs[0].value -= 1_000)
            }
            (Byzantine::NonceEquivocation, MessageKind::Nonces) => {
                let mut nonces = Nonces::decode(&envelope.payload).ok()?;
                nonces.salt_share[0] ^= 0xff;
                Some(Envelope::sign(envelope.header, nonces.encode(), key).encode())
            }
            _ => None,
        }
    }

    /// A forger that just received an honest member's Nonces pairs them with a proposal of its
    /// own for the same session id (one more input, so the nonce count looks wrong) and sends
    /// the "evidence" in an abort notice.
    fn forge_evidence(&mut self, node: usize, bytes: &[u8]) {
        let Ok(envelope) = Envelope::decode(bytes, usize::MAX) else {
            return;
        };
        let h = envelope.header;
        let Some(&group) = self.group_index.get(&h.group_id) else {
            return;
        };
        let descriptor = self.groups[group].descriptor.clone();
        let Some(me) = descriptor.member_index(&self.nodes[node].public) else {
            return;
        };
        if h.kind != MessageKind::Nonces || h.sender == me {
            return;
        }
        let key = &self.nodes[node].key;
        let mut tx = Transaction {
            version: 2,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_time: 0,
        };
        let mut spent = Vec::new();
        let script = descriptor.script_pubkey().expect("group script");
        for i in 0..(self.scenario.inputs + 1) as u8 {
            tx.inputs.push(TxIn {
                prev_out: OutPoint::new(TxId(sha256(&[&h.session_id[..], &[i]].concat())), 0),
                script_sig: Script::new(),
                sequence: TxIn::SEQUENCE_FINAL,
            });
            spent.push(TxOut::new(10_000_000, script.clone()));
        }
        tx.outputs.push(TxOut::new(5_000_000, script));
        let Ok(fake) = protocol::proposal::Proposal::sign(
            protocol::proposal::UnsignedProposal {
                group_id: descriptor.id(),
                session_id: protocol::proposal::SessionId(h.session_id),
                proposer: me,
                tx,
                spent_outputs: spent,
                hash_type: protocol::proposal::required_hash_type(descriptor.output),
                created_ms: h.timestamp_ms,
                expires_ms: h.timestamp_ms + 3_600_000,
                sequence: 0,
                evidence: Vec::new(),
                pools: Vec::new(),
            },
            key,
        ) else {
            return;
        };
        let evidence = protocol::evidence::Evidence {
            offence: Offence::MalformedContribution,
            proposal: fake.encode(),
            envelopes: vec![bytes.to_vec()],
        };
        let notice = Header::new(
            MessageKind::AttemptAborted,
            h.group_id,
            h.session_id,
            h.proposal,
            h.attempt,
            me,
            h.timestamp_ms,
        );
        let payload = protocol::messages::AbortCode::Blamed(vec![evidence.encode()]).encode();
        let forged = Envelope::sign(notice, payload, key).encode();
        self.send_to_group(node, group, forged);
    }

    /// A flooding attacker's burst: junk claiming to be each other member (budget
    /// exhaustion), or validly signed filler for sessions that don't exist (early buffer).
    fn flood(&mut self, node: usize, round: u32) {
        let Some(kind) = self.nodes[node].byzantine else {
            return;
        };
        for group in self.nodes[node].groups.clone() {
            let descriptor = self.groups[group].descriptor.clone();
            let Some(me) = descriptor.member_index(&self.nodes[node].public) else {
                continue;
            };
            let mut burst = Vec::new();
            for k in 0..300u32 {
                let mut session = [0u8; 32];
                self.rng.fill(&mut session);
                let (sender, payload) = match kind {
                    Byzantine::OutsiderBudgetExhaustion => {
                        let victim = (me + 1 + (k % (descriptor.members.len() as u32 - 1)) as u16)
                            % descriptor.members.len() as u16;
                        (victim, vec![k as u8; 64])
                    }
                    _ => (me, vec![round as u8; 2_000]),
                };
                let header = Header::new(
                    MessageKind::Nonces,
                    descriptor.id(),
                    session,
                    [7; 32],
                    0,
                    sender,
                    self.local_time(node),
                );
                burst.push(Envelope::sign(header, payload, &self.nodes[node].key).encode());
            }
            for bytes in burst {
                self.send_to_group(node, group, bytes);
            }
        }
    }

    fn finish(mut self) -> Report {
        let honest = |w: &World, n: usize| w.nodes[n].byzantine.is_none();
        // Safety: everything on chain was approved by every honest member of its group.
        for (txid, _tx) in self.chain.clone() {
            let Some(record) = self.sessions.values().find(|r| r.txid == txid) else {
                continue;
            };
            for &m in &self.groups[record.group].members {
                if honest(&self, m) && !record.approvals.contains(&m) {
                    self.report.violation(format!(
                        "tx {} confirmed without honest member {m}'s approval",
                        hex(&txid)
                    ));
                }
            }
        }
        // Liveness.
        let kind = self.scenario.byzantine;
        let live_expected = self.scenario.crash_rate == 0.0
            && self.scenario.loss <= 0.3
            && self.scenario.network_partition.is_none()
            && self.scenario.availability.is_none()
            && kind.is_none_or(|k| k.allows_completion() || self.scenario.byzantine_per_group == 0);
        let ttl = self.scenario.proposal_ttl_ms;
        for record in self.sessions.values() {
            let confirmed = record.confirmed_at.is_some();
            if !record.byzantine_proposer {
                self.report.attempts.push(record.max_attempt + 1);
            }
            if let Some(a) = self.scenario.availability {
                let lifetime = (record.proposed_at, record.proposed_at + ttl);
                let members = &self.groups[record.group].members;
                let eligible = match a.away {
                    crate::scenario::Away::Sleep => members
                        .iter()
                        .all(|&m| online_spells(&self.nodes[m].windows, lifetime) >= 2),
                    crate::scenario::Away::Quit => {
                        let windows: Vec<&[(Time, Time)]> = members
                            .iter()
                            .map(|&m| &self.nodes[m].windows[..])
                            .collect();
                        all_online_together(&windows, lifetime)
                    }
                };
                if eligible && !record.byzantine_proposer {
                    let done = record.confirmed_at.is_some_and(|at| at <= lifetime.1);
                    self.report.eligible += 1;
                    self.report.eligible_completed += usize::from(done);
                    let windows: Vec<&[(Time, Time)]> = members
                        .iter()
                        .map(|&m| &self.nodes[m].windows[..])
                        .collect();
                    if rounds_fit(&windows, lifetime) {
                        self.report.order_feasible += 1;
                        self.report.order_feasible_completed += usize::from(done);
                    }
                }
            }
            if confirmed {
                self.report.completed += 1;
                self.report
                    .latencies
                    .push(record.confirmed_at.unwrap_or(0) - record.proposed_at);
            } else {
                let reason = record
                    .outcome
                    .iter()
                    .find(|(n, _)| self.nodes[**n].byzantine.is_none())
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| "unfinished".into());
                *self.report.aborted.entry(reason).or_default() += 1;
                if live_expected && !record.byzantine_proposer {
                    self.report.violation(format!(
                        "liveness: session of group {} proposed by node {} did not complete",
                        record.group, record.proposer
                    ));
                }
            }
        }
        // Blame: provable attacks must be named (where a session reached the faulty step).
        if let Some(kind) = kind {
            if kind.is_provable() && self.scenario.byzantine_per_group > 0 {
                let offence = match kind {
                    Byzantine::InvalidPartial => Offence::InvalidPartial,
                    Byzantine::EquivocatingNonces | Byzantine::NonceEquivocation => {
                        if self.scenario.commit_round {
                            Offence::MalformedContribution
                        } else {
                            Offence::Equivocation
                        }
                    }
                    Byzantine::ProposerEquivocation => Offence::Equivocation,
                    _ => Offence::WrongElectionProof,
                };
                let nonce_kind = matches!(
                    kind,
                    Byzantine::EquivocatingNonces | Byzantine::NonceEquivocation
                );
                for (g, group) in self.groups.iter().enumerate() {
                    let reached = !nonce_kind
                        || self
                            .nonces_sent_by_attacker
                            .contains(&group.descriptor.id());
                    let had_session = reached && self.sessions.values().any(|r| r.group == g);
                    for &culprit in &group.byzantine {
                        let named = self.report.blamed.iter().any(|(bg, c, o)| {
                            *bg == g
                                && *c == culprit
                                && (*o == offence || *o == Offence::Equivocation)
                        });
                        if had_session && !named {
                            self.report.violation(format!(
                                "group {g}: attacker {culprit} ({}) was never blamed",
                                kind.name()
                            ));
                        }
                    }
                }
            }
        }
        self.report.nodes = self.nodes.len();
        self.report.persist_steps = self.nodes.iter().map(|n| n.persist_steps).collect();
        self.report.replay = self.scenario.replay_command();
        self.report
    }
}

/// The goals' unit: a member (or everyone) online together for at least ten minutes.
const SPELL_MS: Time = 10 * 60_000;

/// How many of a member's windows give it ten minutes online within `lifetime`.
fn online_spells(windows: &[(Time, Time)], lifetime: (Time, Time)) -> usize {
    windows
        .iter()
        .filter(|&&(s, e)| e.min(lifetime.1).saturating_sub(s.max(lifetime.0)) >= SPELL_MS)
        .count()
}

/// Whether two sequential rounds fit the members' windows: every member visits once (round 1:
/// nonces), and every member visits again after the last of those first visits (round 2:
/// partials, which need everyone's nonces).
fn rounds_fit(members: &[&[(Time, Time)]], lifetime: (Time, Time)) -> bool {
    let first: Option<Vec<Time>> = members
        .iter()
        .map(|w| {
            w.iter()
                .find(|&&(s, e)| e.min(lifetime.1).saturating_sub(s.max(lifetime.0)) >= SPELL_MS)
                .map(|&(s, _)| s.max(lifetime.0))
        })
        .collect();
    let Some(first) = first else {
        return false;
    };
    let all_nonces = first.iter().max().copied().unwrap_or(0) + SPELL_MS;
    members
        .iter()
        .all(|w| online_spells(w, (all_nonces, lifetime.1)) >= 1)
}

/// Whether every member's windows overlap for ten minutes at least once within `lifetime`.
fn all_online_together(members: &[&[(Time, Time)]], lifetime: (Time, Time)) -> bool {
    let Some((first, rest)) = members.split_first() else {
        return false;
    };
    first.iter().any(|&(s, e)| {
        // Intersect this window with each other member's windows, one member at a time.
        let mut spans = vec![(s.max(lifetime.0), e.min(lifetime.1))];
        for other in rest {
            spans = spans
                .iter()
                .flat_map(|&(a, b)| {
                    other
                        .iter()
                        .map(move |&(c, d)| (a.max(c), b.min(d)))
                        .filter(|&(x, y)| y > x)
                })
                .collect();
        }
        spans.iter().any(|&(x, y)| y - x >= SPELL_MS)
    })
}

/// A proposal envelope re-signed (proposal and envelope) by `key` after `edit`.
fn reproposed(
    envelope: &Envelope,
    key: &PrivateKey,
    edit: impl FnOnce(&mut protocol::proposal::UnsignedProposal),
) -> Option<Vec<u8>> {
    let (pow, bytes) = protocol::node::split_proposal_payload(&envelope.payload).ok()?;
    let proposal = protocol::proposal::Proposal::decode(bytes, usize::MAX).ok()?;
    let mut unsigned = proposal.unsigned().clone();
    edit(&mut unsigned);
    let changed = protocol::proposal::Proposal::sign(unsigned, key).ok()?;
    let header = Header {
        proposal: changed.review_digest(),
        ..envelope.header
    };
    let payload = protocol::node::proposal_payload(&changed, pow);
    Some(Envelope::sign(header, payload, key).encode())
}

fn abort_label(reason: &AbortReason) -> &'static str {
    match reason {
        AbortReason::RejectedBy { .. } => "rejected",
        AbortReason::InvalidPartial { .. } => "invalid partial",
        AbortReason::Equivocation { .. } => "equivocation",
        AbortReason::MalformedContribution { .. } => "malformed contribution",
        AbortReason::Expired => "expired",
        AbortReason::NonceRegistryConflict => "nonce registry conflict",
        AbortReason::Restart { .. } => "restart",
        AbortReason::ConflictingProposals { .. } => "conflicting proposals",
        AbortReason::DegenerateNonces => "degenerate nonces",
        AbortReason::PoolUnusable => "pool unusable",
        AbortReason::TooManyRestarts { .. } => "too many restarts",
        AbortReason::AttemptsExhausted => "attempts exhausted",
        AbortReason::Evicted => "evicted",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
