//! A small hand-driven network of protocol nodes for the attack tests: every output is
//! visible, the test decides what is delivered to whom, and an attacker can sign anything.
#![allow(dead_code)]

use std::collections::VecDeque;

use lotus::address::Network;
use lotus::hash::sha256;
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use lotus::PrivateKey;
use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::group::GroupDescriptor;
use protocol::node::{proposal_payload, Node, NodeConfig, Output, Peer};
use protocol::proposal::{required_hash_type, Proposal, SessionId, UnsignedProposal};
use protocol::session::{Action, Durable, Event, Recipient};
use protocol::Entropy;

pub const NOW: u64 = 1_800_000_000_000;

/// Deterministic entropy: a counter through SHA256.
pub struct Counter(pub u64);

impl Entropy for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.0 += 1;
            chunk.copy_from_slice(&sha256(&self.0.to_be_bytes())[..chunk.len()]);
        }
    }
}

pub fn keys(n: usize, tag: u8) -> Vec<PrivateKey> {
    (0..n)
        .map(|i| PrivateKey::from_bytes(&sha256(&[tag, i as u8])).expect("hash is a key"))
        .collect()
}

pub fn group_of(name: &str, keys: &[PrivateKey]) -> GroupDescriptor {
    let mut g = GroupDescriptor::new(
        name,
        Network::Regtest,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .expect("valid group");
    g.timeouts.round_ms = 4_000;
    g
}

/// Spends `inputs` 10-XPI outputs of the group: 15 XPI out (less per extra input), change back.
pub fn spend(group: &GroupDescriptor, tag: &[u8], inputs: usize) -> (Transaction, Vec<TxOut>) {
    let script = group.script_pubkey().expect("group script");
    let tx_inputs = (0..inputs as u8)
        .map(|i| TxIn {
            prev_out: OutPoint::new(TxId(sha256(&[tag, &[i]].concat())), 0),
            script_sig: Script::new(),
            sequence: TxIn::SEQUENCE_FINAL,
        })
        .collect();
    let total = 10_000_000 * inputs as i64;
    let outputs = vec![
        TxOut::new(15_000_000, Script::p2pkh(&lotus::hash::hash160(tag))),
        TxOut::new(total - 15_000_000 - 10_000, script.clone()),
    ];
    (
        Transaction {
            version: 2,
            inputs: tx_inputs,
            outputs,
            lock_time: 0,
        },
        vec![TxOut::new(10_000_000, script); inputs],
    )
}

/// A proposal envelope signed by `proposer` (any member, honest or not) for `session_id`.
#[allow(clippy::too_many_arguments)]
pub fn proposal_envelope(
    group: &GroupDescriptor,
    keys: &[PrivateKey],
    proposer: u16,
    session_id: [u8; 32],
    tag: &[u8],
    inputs: usize,
    created_ms: u64,
    sequence: u64,
) -> (Envelope, Proposal) {
    let (tx, spent) = spend(group, tag, inputs);
    let proposal = Proposal::sign(
        UnsignedProposal {
            group_id: group.id(),
            session_id: SessionId(session_id),
            proposer,
            tx,
            spent_outputs: spent,
            hash_type: required_hash_type(group.output),
            created_ms,
            expires_ms: created_ms + 3_600_000,
            sequence,
            evidence: Vec::new(),
            pools: Vec::new(),
        },
        &keys[proposer as usize],
    )
    .expect("signs");
    let header = Header::new(
        MessageKind::Proposal,
        group.id(),
        session_id,
        proposal.review_digest(),
        0,
        proposer,
        created_ms,
    );
    let envelope = Envelope::sign(
        header,
        proposal_payload(&proposal, 0),
        &keys[proposer as usize],
    );
    (envelope, proposal)
}

/// A member's signed message of any kind (what an attacker can always produce for itself).
pub fn signed(key: &PrivateKey, header: Header, payload: Vec<u8>) -> Vec<u8> {
    Envelope::sign(header, payload, key).encode()
}

pub struct Net {
    pub keys: Vec<PrivateKey>,
    pub group: GroupDescriptor,
    pub nodes: Vec<Node>,
    pub entropy: Counter,
    pub now: u64,
    /// (from, to, bytes) not yet delivered.
    pub wire: VecDeque<(usize, usize, Vec<u8>)>,
    /// Every (node, output) so far, in order.
    pub log: Vec<(usize, Output)>,
    /// Messages from these members are handed to `intercept` instead of being delivered.
    pub intercepted: Vec<usize>,
    pub held: Vec<(usize, Recipient, Vec<u8>)>,
}

impl Net {
    pub fn new(n: usize, tag: u8) -> Self {
        let keys = keys(n, tag);
        let group = group_of("attacks", &keys);
        let nodes = keys
            .iter()
            .map(|k| {
                let mut node = Node::new(k.public_key(), NodeConfig::default());
                node.add_group(group.clone()).expect("member");
                node
            })
            .collect();
        Self {
            keys,
            group,
            nodes,
            entropy: Counter(u64::from(tag) << 32),
            now: NOW,
            wire: VecDeque::new(),
            log: Vec::new(),
            intercepted: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Takes node `i`'s outputs: sends go on the wire (or are held if `i` is intercepted).
    pub fn absorb(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            if let Action::Send { to, bytes } = &o.action {
                if self.intercepted.contains(&i) {
                    self.held.push((i, to.clone(), bytes.clone()));
                } else {
                    self.post(i, to.clone(), bytes.clone());
                }
            }
            self.log.push((i, o));
        }
    }

    pub fn post(&mut self, from: usize, to: Recipient, bytes: Vec<u8>) {
        let targets: Vec<usize> = match to {
            Recipient::Members => (0..self.nodes.len()).filter(|&t| t != from).collect(),
            Recipient::Member(m) => vec![m as usize],
        };
        for t in targets {
            self.wire.push_back((from, t, bytes.clone()));
        }
    }

    pub fn deliver(
        &mut self,
        from: usize,
        to: usize,
        bytes: &[u8],
    ) -> Result<(), protocol::gate::Rejection> {
        let mut out = Vec::new();
        let result = self.nodes[to].receive(
            bytes,
            Peer(from as u64),
            self.now,
            &self.keys[to],
            &mut self.entropy,
            &mut out,
        );
        self.absorb(to, out);
        result
    }

    /// Delivers until the wire is empty.
    pub fn settle(&mut self) {
        while let Some((from, to, bytes)) = self.wire.pop_front() {
            self.now += 1;
            let _ = self.deliver(from, to, &bytes);
        }
    }

    pub fn propose(&mut self, proposer: usize, tag: &[u8]) -> [u8; 32] {
        let (tx, spent) = spend(&self.group, tag, 2);
        let mut out = Vec::new();
        let id = self.nodes[proposer]
            .propose(
                &self.group.id(),
                tx,
                spent,
                self.now + 3_600_000,
                Vec::new(),
                self.now,
                &self.keys[proposer],
                &mut self.entropy,
                &mut out,
            )
            .expect("proposes");
        self.absorb(proposer, out);
        id
    }

    pub fn approve(&mut self, i: usize, session: &[u8; 32]) {
        let digest = self.nodes[i].session(session).expect("session").digest();
        let mut out = Vec::new();
        self.nodes[i]
            .approve(
                session,
                &digest,
                self.now,
                &self.keys[i],
                &mut self.entropy,
                &mut out,
            )
            .expect("approves");
        self.absorb(i, out);
    }

    pub fn tick_all(&mut self, advance_ms: u64) {
        self.now += advance_ms;
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            self.nodes[i].tick(self.now, &self.keys[i], &mut self.entropy, &mut out);
            self.absorb(i, out);
        }
    }

    /// The first envelope of `kind` signed by member `sender` that any node sent.
    pub fn sent(&self, kind: MessageKind, sender: u16) -> Vec<u8> {
        self.log
            .iter()
            .find_map(|(_, o)| match &o.action {
                Action::Send { bytes, .. } => {
                    let e = Envelope::decode(bytes, usize::MAX).unwrap();
                    (e.header.kind == kind && e.header.sender == sender).then(|| bytes.clone())
                }
                _ => None,
            })
            .expect("sent")
    }

    /// Events node `i` emitted so far.
    pub fn events(&self, i: usize) -> Vec<&Event> {
        self.log
            .iter()
            .filter(|(n, _)| *n == i)
            .filter_map(|(_, o)| match &o.action {
                Action::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// Durable steps node `i` asked for so far.
    pub fn durables(&self, i: usize) -> Vec<&Durable> {
        self.log
            .iter()
            .filter(|(n, _)| *n == i)
            .filter_map(|(_, o)| match &o.action {
                Action::Persist(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// (culprit, offence) of every blame node `i` reported.
    pub fn blames(&self, i: usize) -> Vec<(u16, protocol::evidence::Offence)> {
        self.events(i)
            .into_iter()
            .filter_map(|e| match e {
                Event::Blamed { blame, evidence } => {
                    // Whatever a node reports must verify for a third party.
                    let verified = evidence
                        .verify(&self.group)
                        .expect("reported evidence verifies");
                    assert_eq!(verified, *blame);
                    Some((blame.culprit, blame.offence))
                }
                _ => None,
            })
            .collect()
    }
}
