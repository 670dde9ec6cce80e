//! A tiny lossless, instant, in-process driver for direct protocol tests and benches: every
//! message reaches every other member at once, users answer reviews through a callback.

use lotus::address::Network;
use lotus::hash::sha256;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use protocol::group::GroupDescriptor;
use protocol::input::{Context, Handled, Input};
use protocol::node::{Node, NodeConfig, NodeError, Output, Peer};
use protocol::proposal::Review;
use protocol::session::{Action, Event, Recipient};

use crate::fixtures::{member_node_with, two_input_spend};
use crate::rng::SimRng;

pub const NOW: u64 = 10_000_000;

/// What a simulated user does with a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject(String),
    /// Leaves it pending.
    Ignore,
}

pub struct Lossless {
    pub keys: Vec<PrivateKey>,
    pub group: GroupDescriptor,
    pub nodes: Vec<Node>,
    pub rng: SimRng,
    /// Every (node, action) executed, in order.
    pub log: Vec<(usize, Action)>,
}

impl Lossless {
    pub fn new(members: usize, tweak: impl FnOnce(&mut GroupDescriptor)) -> Self {
        Self::with_config(members, tweak, NodeConfig::default())
    }

    /// Members whose nodes run with `config` (e.g. without nonce pools).
    pub fn with_config(
        members: usize,
        tweak: impl FnOnce(&mut GroupDescriptor),
        config: NodeConfig,
    ) -> Self {
        let keys: Vec<PrivateKey> = (0..members)
            .map(|i| PrivateKey::from_bytes(&sha256(&[i as u8, 77])).unwrap())
            .collect();
        let mut group = GroupDescriptor::new(
            "lossless",
            Network::Regtest,
            keys.iter().map(|k| k.public_key()).collect(),
        )
        .unwrap();
        tweak(&mut group);
        group.validate().expect("tweaked group stays valid");
        let nodes = keys
            .iter()
            .map(|k| member_node_with(&k.public_key(), &group, config.clone()))
            .collect();
        Self {
            keys,
            group,
            nodes,
            rng: SimRng::new(9),
            log: Vec::new(),
        }
    }

    /// A 2-input spend of the group's outputs: most out, the rest back as change.
    pub fn spend(&self) -> (Transaction, Vec<TxOut>) {
        two_input_spend(&self.group, b"lossless")
    }

    /// Node `proposer` proposes the standard spend; returns the session id.
    pub fn propose(
        &mut self,
        proposer: usize,
        decide: &mut dyn FnMut(usize, &Review) -> Decision,
    ) -> Result<[u8; 32], NodeError> {
        let (tx, spent) = self.spend();
        let mut out = Vec::new();
        let group_id = self.group.id();
        let input = Input::Propose {
            group: group_id,
            tx,
            spent_outputs: spent,
            expires_ms: NOW + 600_000,
            evidence: Vec::new(),
        };
        let Handled::Proposed(session) = self.handle(proposer, input, &mut out)? else {
            unreachable!("a proposal is answered with its session");
        };
        self.run(proposer, out, decide);
        Ok(session)
    }

    /// Node `i` handles `input` at the fixed time (the only way this harness drives a node).
    fn handle(
        &mut self,
        i: usize,
        input: Input<'_>,
        out: &mut Vec<Output>,
    ) -> Result<Handled, NodeError> {
        let ctx = Context {
            now: NOW,
            key: &self.keys[i],
            entropy: &mut self.rng,
        };
        self.nodes[i].handle(input, ctx, out)
    }

    /// Every member publishes its nonce pool and the others receive it (a group just made).
    pub fn publish_pools(&mut self) {
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            let _always_done = self.handle(i, Input::RefreshPools, &mut out);
            self.run(i, out, &mut |_, _| Decision::Ignore);
        }
    }

    /// Delivers everything until the network is quiet.
    pub fn run(
        &mut self,
        origin: usize,
        outputs: Vec<Output>,
        decide: &mut dyn FnMut(usize, &Review) -> Decision,
    ) {
        let mut queue: std::collections::VecDeque<(usize, Output)> =
            outputs.into_iter().map(|o| (origin, o)).collect();
        let mut out = Vec::new();
        while let Some((
            from,
            Output {
                session_id, action, ..
            },
        )) = queue.pop_front()
        {
            self.log.push((from, action.clone()));
            match action {
                Action::Send { bytes, to } => {
                    let targets: Vec<usize> = match to {
                        Recipient::Members => (0..self.nodes.len()).collect(),
                        Recipient::Member(m) => vec![m as usize],
                    };
                    for to in targets.into_iter().filter(|&t| t != from) {
                        let input = Input::Receive {
                            bytes: &bytes,
                            from: Peer(from as u64),
                        };
                        let _ = self.handle(to, input, &mut out);
                        queue.extend(out.drain(..).map(|o| (to, o)));
                    }
                }
                Action::Event(Event::ReviewReady { review }) => match decide(from, &review) {
                    Decision::Approve => {
                        let input = Input::Approve {
                            session: session_id,
                            digest: review.digest,
                        };
                        let _ = self.handle(from, input, &mut out);
                        queue.extend(out.drain(..).map(|o| (from, o)));
                    }
                    Decision::Reject(reason) => {
                        let input = Input::Reject {
                            session: session_id,
                            reason: &reason,
                        };
                        let _ = self.handle(from, input, &mut out);
                        queue.extend(out.drain(..).map(|o| (from, o)));
                    }
                    Decision::Ignore => {}
                },
                _ => {}
            }
        }
    }

    /// The first transaction any node asked to broadcast.
    pub fn broadcast_tx(&self) -> Option<&Transaction> {
        self.log.iter().find_map(|(_, a)| match a {
            Action::Broadcast { tx } => Some(tx),
            _ => None,
        })
    }

    pub fn events(&self) -> impl Iterator<Item = (usize, &Event)> {
        self.log.iter().filter_map(|(n, a)| match a {
            Action::Event(e) => Some((*n, e)),
            _ => None,
        })
    }
}
