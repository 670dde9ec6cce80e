//! Symmetry reduction: states that differ only by names are explored once. The names are the
//! two honest members, the two proposals, and the Byzantine member's two nonces of each
//! attempt; the model treats each pair alike (the properties too), so swapping one pair in a
//! reachable state gives a reachable state with the same verdicts.
//!
//! stateright offers symmetry only for depth-first search, so the model returns the
//! representative from `next_state` itself.

use crate::state::{Attempt, Member, Msg, NonceId, Proposal, World, ATTEMPT_SLOTS, BYZANTINE};

impl World {
    /// The least of the state's renamings under honest-member and proposal swaps, with the
    /// Byzantine nonces of each attempt named in order of first appearance.
    pub fn representative(&self) -> World {
        let swapped = self.swap_honest();
        [
            self.clone(),
            self.swap_proposals(),
            swapped.swap_proposals(),
            swapped,
        ]
        .into_iter()
        .map(|mut w| {
            w.name_byzantine_nonces();
            w
        })
        .min()
        .expect("four candidates")
    }

    fn swap_honest(&self) -> World {
        let member = |m: Member| match m {
            0 => 1,
            1 => 0,
            other => other,
        };
        let bits = |b: u8| (b & !0b11) | ((b & 1) << 1) | ((b >> 1) & 1);
        let mut w = self.clone();
        w.nodes.swap(0, 1);
        for node in &mut w.nodes {
            node.mem.nonces.swap(0, 1);
            node.mem.partials = bits(node.mem.partials);
            node.store.blamed = bits(node.store.blamed);
        }
        w.sent = self
            .sent
            .iter()
            .map(|msg| match *msg {
                Msg::Nonce {
                    sender,
                    attempt,
                    digest,
                    id,
                } => Msg::Nonce {
                    sender: member(sender),
                    attempt,
                    digest,
                    id,
                },
                Msg::Partial {
                    sender,
                    attempt,
                    digest,
                    view,
                    valid,
                } => Msg::Partial {
                    sender: member(sender),
                    attempt,
                    digest,
                    view: [view[1], view[0], view[2]],
                    valid,
                },
                Msg::Abort { sender, attempt } => Msg::Abort {
                    sender: member(sender),
                    attempt,
                },
                Msg::Completed { sender, digest } => Msg::Completed {
                    sender: member(sender),
                    digest,
                },
                Msg::Proposal { digest } => Msg::Proposal { digest },
            })
            .collect();
        w
    }

    fn swap_proposals(&self) -> World {
        let other = |p: Proposal| match p {
            Proposal::P1 => Proposal::P2,
            Proposal::P2 => Proposal::P1,
        };
        let mut w = self.clone();
        for node in &mut w.nodes {
            node.store.accepted = node.store.accepted.map(other);
            node.store.approval = node.store.approval.map(other);
            let seen = node.mem.seen;
            node.mem.seen = ((seen & 1) << 1) | ((seen >> 1) & 1);
        }
        w.sent = self
            .sent
            .iter()
            .map(|msg| {
                let mut msg = *msg;
                match &mut msg {
                    Msg::Proposal { digest }
                    | Msg::Nonce { digest, .. }
                    | Msg::Partial { digest, .. }
                    | Msg::Completed { digest, .. } => *digest = other(*digest),
                    Msg::Abort { .. } => {}
                }
                msg
            })
            .collect();
        w
    }

    /// Per attempt, renames the Byzantine nonces so that the first one met (members' filed
    /// slots, then partials' citations) is `0`. They appear nowhere else: Byzantine messages
    /// are not kept, only honest records of them.
    fn name_byzantine_nonces(&mut self) {
        let slot = BYZANTINE as usize;
        let first = |w: &World, attempt: Attempt| -> Option<NonceId> {
            let filed = w.nodes.iter().find_map(|node| {
                (node.running() && node.mem.attempt == attempt)
                    .then_some(node.mem.nonces[slot])
                    .flatten()
            });
            filed.or_else(|| {
                w.sent.iter().find_map(|msg| match *msg {
                    Msg::Partial {
                        attempt: a, view, ..
                    } if a == attempt => Some(view[slot]),
                    _ => None,
                })
            })
        };
        let flips: Vec<Attempt> = (0..ATTEMPT_SLOTS as Attempt)
            .filter(|&a| first(self, a) == Some(1))
            .collect();
        if flips.is_empty() {
            return;
        }
        let flip = |id: NonceId| 1 - id;
        for node in &mut self.nodes {
            if node.running() && flips.contains(&node.mem.attempt) {
                node.mem.nonces[slot] = node.mem.nonces[slot].map(flip);
            }
        }
        self.sent = self
            .sent
            .iter()
            .map(|msg| match *msg {
                Msg::Partial {
                    sender,
                    attempt,
                    digest,
                    mut view,
                    valid,
                } if flips.contains(&attempt) => {
                    view[slot] = flip(view[slot]);
                    Msg::Partial {
                        sender,
                        attempt,
                        digest,
                        view,
                        valid,
                    }
                }
                other => other,
            })
            .collect();
    }
}
