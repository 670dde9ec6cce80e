//! Every step the world can take: honest members' own steps (round 1, signing with the user's
//! approval, a late commit under one mutation), message deliveries, crashes, and the Byzantine
//! member's sends. Enumerated per state for the checker.

use crate::model::{LifecycleModel, Mutation};
use crate::node::{considers, ready_to_sign, Ctx};
use crate::state::{Attempt, Member, Msg, NonceId, Proposal, Round1, World, BYZANTINE, HONEST};

/// Nonce ids an honest member can name (the registry is a 16-bit set).
const MAX_IDS: NonceId = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// An honest member draws nonce `id` for its current attempt (`repeat`: the RNG returned
    /// an earlier draw) and runs round 1's guarded sequence; `persist_fails`: the registry
    /// commit fails with an I/O error.
    ReleaseNonce {
        member: Member,
        id: NonceId,
        repeat: bool,
        persist_fails: bool,
    },
    /// Mutation `NoncesSentBeforeCommit` only: the commit that should have come first.
    CommitNonce { member: Member, persist_fails: bool },
    /// Round 2, if the store's signing guard lets it. `approve`: the user approves the review
    /// of this digest first (one the member was shown). Nothing reads an approval before this
    /// step, so approving earlier would only add equivalent interleavings.
    Sign {
        member: Member,
        approve: Option<Proposal>,
    },
    /// An honest message (or a logged Byzantine abort notice) reaches `to`.
    Deliver { to: Member, msg: Msg },
    /// The process dies and restarts from its store.
    Crash { member: Member },
    /// The Byzantine member sends `to` a message it signed.
    Byzantine { to: Member, msg: Msg },
}

impl Action {
    /// Order in which the liveness check's greedy schedule tries actions: the proposal and
    /// round 1 first, then the rounds' messages in protocol order.
    pub fn greedy_rank(&self) -> u8 {
        match self {
            Action::Byzantine {
                msg: Msg::Proposal { .. },
                ..
            } => 1,
            Action::ReleaseNonce { .. } | Action::CommitNonce { .. } => 2,
            Action::Deliver {
                msg: Msg::Abort { .. },
                ..
            } => 3,
            Action::Deliver {
                msg: Msg::Nonce { .. },
                ..
            } => 4,
            Action::Byzantine {
                msg: Msg::Nonce { .. },
                ..
            } => 5,
            Action::Sign { .. } => 6,
            Action::Deliver {
                msg: Msg::Partial { .. },
                ..
            } => 7,
            Action::Byzantine {
                msg: Msg::Partial { .. },
                ..
            } => 8,
            Action::Deliver { .. } => 9,
            Action::Byzantine { .. } | Action::Crash { .. } => 10,
        }
    }
}

impl LifecycleModel {
    pub(crate) fn enumerate(&self, world: &World, out: &mut Vec<Action>) {
        // Round 1 runs in the same step that enters an attempt (as `begin_attempt` does), so
        // while a member has not drawn its nonce nothing else may happen. It is a step of its
        // own only so that the RNG's and the disk's luck can branch.
        if let Some(member) = HONEST.into_iter().find(|&m| {
            let node = world.node(m);
            node.running() && node.mem.round1 == Round1::Pending
        }) {
            return self.round_one(world, member, out);
        }
        for member in HONEST {
            let node = world.node(member);
            if node.running() {
                self.own_steps(world, member, out);
            }
            for msg in &world.sent {
                if msg.sender() != member && considers(node, msg) {
                    out.push(Action::Deliver {
                        to: member,
                        msg: *msg,
                    });
                }
            }
            self.byzantine_sends(world, member, out);
        }
    }

    /// The nonce draw: a fresh id, or (a fault) one this member already released; and the
    /// registry commit may fail.
    fn round_one(&self, world: &World, member: Member, out: &mut Vec<Action>) {
        let c = &self.config;
        let node = world.node(member);
        let taken = node.ghost.released | node.store.used_ids;
        let fresh = (0..MAX_IDS)
            .find(|id| taken & (1 << id) == 0)
            .expect("ids left");
        let mut draws = vec![(fresh, false)];
        if world.faults.rng_repeats < c.rng_repeats {
            // Repeating an id that never left is no different from a fresh one.
            let released = node.ghost.released;
            draws.extend(
                (0..MAX_IDS)
                    .filter(|id| released & (1 << id) != 0)
                    .map(|id| (id, true)),
            );
        }
        // With the `NoncesSentBeforeCommit` mutation the commit comes later (`CommitNonce`).
        let can_fail = world.faults.persist_failures < c.persist_failures
            && c.mutation != Some(Mutation::NoncesSentBeforeCommit);
        for (id, repeat) in draws {
            for persist_fails in [false, true] {
                if !persist_fails || can_fail {
                    out.push(Action::ReleaseNonce {
                        member,
                        id,
                        repeat,
                        persist_fails,
                    });
                }
            }
        }
    }

    /// A running member's own steps besides round 1: a late commit (mutation only), signing
    /// (with the user's approval if not given yet), a crash.
    fn own_steps(&self, world: &World, member: Member, out: &mut Vec<Action>) {
        let c = &self.config;
        let node = world.node(member);
        if let Round1::Unsaved(_) = node.mem.round1 {
            out.push(Action::CommitNonce {
                member,
                persist_fails: false,
            });
            if world.faults.persist_failures < c.persist_failures {
                out.push(Action::CommitNonce {
                    member,
                    persist_fails: true,
                });
            }
        }
        if ready_to_sign(node) {
            if node.store.approval.is_some() {
                out.push(Action::Sign {
                    member,
                    approve: None,
                });
            } else {
                for digest in Proposal::ALL {
                    let shown = node.mem.seen & digest.bit() != 0;
                    if shown && self.honest_from.is_none_or(|d| d == digest) {
                        out.push(Action::Sign {
                            member,
                            approve: Some(digest),
                        });
                    }
                }
            }
        }
        if world.faults.crashes < c.crashes {
            out.push(Action::Crash { member });
        }
    }

    /// What the Byzantine member can sign and send to `to`. Only messages `to` would consider
    /// are listed: anything else is dropped on arrival (see `node::considers`), and one for a
    /// later attempt can as well be sent once `to` is there.
    fn byzantine_sends(&self, world: &World, to: Member, out: &mut Vec<Action>) {
        let node = world.node(to);
        for digest in Proposal::ALL {
            let msg = Msg::Proposal { digest };
            if considers(node, &msg) && self.honest_from.is_none_or(|d| d == digest) {
                out.push(Action::Byzantine { to, msg });
            }
        }
        if !node.running() {
            return;
        }
        let attempt = node.mem.attempt;
        let digest = node.store.accepted.expect("running");
        let variants = self.byzantine_nonces(world, attempt, digest);
        for &id in &variants {
            out.push(Action::Byzantine {
                to,
                msg: Msg::Nonce {
                    sender: BYZANTINE,
                    attempt,
                    digest,
                    id,
                },
            });
        }
        // A partial cites one existing nonce message per honest member.
        let cited: Vec<Vec<NonceId>> = HONEST
            .iter()
            .map(|&m| world.nonce_ids(m, attempt, digest))
            .collect();
        for &n0 in &cited[0] {
            for &n1 in &cited[1] {
                for &n2 in &variants {
                    out.push(Action::Byzantine {
                        to,
                        msg: Msg::Partial {
                            sender: BYZANTINE,
                            attempt,
                            digest,
                            view: [n0, n1, n2],
                            valid: true,
                        },
                    });
                }
            }
        }
        // One that does not verify against its own citations is blamed whatever it cites.
        if self.honest_from.is_none() {
            if let (Some(&n0), Some(&n1)) = (cited[0].first(), cited[1].first()) {
                out.push(Action::Byzantine {
                    to,
                    msg: Msg::Partial {
                        sender: BYZANTINE,
                        attempt,
                        digest,
                        view: [n0, n1, 0],
                        valid: false,
                    },
                });
            }
        }
        if self.honest_from.is_none()
            && world.faults.byzantine_aborts < self.config.byzantine_aborts
        {
            out.push(Action::Byzantine {
                to,
                msg: Msg::Abort {
                    sender: BYZANTINE,
                    attempt,
                },
            });
        }
    }

    /// The Byzantine member's nonces for (attempt, digest). Turned honest, it keeps to the one
    /// it already showed, and has none left to offer once both are out.
    fn byzantine_nonces(&self, world: &World, attempt: Attempt, digest: Proposal) -> Vec<NonceId> {
        if self.honest_from.is_none() {
            return vec![0, 1];
        }
        let mut shown = 0u8;
        for member in HONEST {
            let node = world.node(member);
            if node.running() && node.mem.attempt == attempt && node.store.accepted == Some(digest)
            {
                if let Some(id) = node.mem.nonces[BYZANTINE as usize] {
                    shown |= 1 << id;
                }
            }
        }
        for msg in &world.sent {
            if let Msg::Partial {
                attempt: a,
                digest: d,
                view,
                ..
            } = *msg
            {
                if a == attempt && d == digest {
                    shown |= 1 << view[BYZANTINE as usize];
                }
            }
        }
        match shown {
            0 | 1 => vec![0],
            2 => vec![1],
            _ => vec![],
        }
    }

    pub(crate) fn apply(&self, world: &World, action: Action) -> Option<World> {
        let mut next = world.clone();
        let rules = self.rules();
        let World {
            nodes,
            sent,
            faults,
        } = &mut next;
        let member = match action {
            Action::ReleaseNonce { member, .. }
            | Action::CommitNonce { member, .. }
            | Action::Sign { member, .. }
            | Action::Crash { member } => member,
            Action::Deliver { to, .. } | Action::Byzantine { to, .. } => to,
        };
        let mut ctx = Ctx {
            me: member,
            node: &mut nodes[member as usize],
            sent,
            rules,
        };
        match action {
            Action::ReleaseNonce {
                id,
                repeat,
                persist_fails,
                ..
            } => {
                if repeat {
                    faults.rng_repeats += 1;
                }
                if persist_fails {
                    faults.persist_failures += 1;
                }
                ctx.release_nonce(id, persist_fails);
            }
            Action::CommitNonce { persist_fails, .. } => {
                if persist_fails {
                    faults.persist_failures += 1;
                }
                ctx.commit_unsaved_nonce(persist_fails);
            }
            Action::Sign { approve, .. } => {
                if let Some(digest) = approve {
                    ctx.approve(digest);
                }
                // A refusal leaves the attempt as it was (the approval, if any, stays).
                let _refused = ctx.sign();
            }
            Action::Deliver { msg, .. } => ctx.receive(msg),
            Action::Crash { .. } => {
                faults.crashes += 1;
                ctx.restart();
            }
            Action::Byzantine { msg, .. } => {
                // A received abort notice is logged, so others can pull it (it is how they
                // learn that this attempt is over).
                if matches!(msg, Msg::Abort { .. }) {
                    faults.byzantine_aborts += 1;
                    ctx.sent.insert(msg);
                }
                ctx.receive(msg);
            }
        }
        if next == *world {
            return None;
        }
        next.forget_stale(next.faults.crashes < self.config.crashes);
        if self.config.symmetry {
            next = next.representative();
        }
        (next != *world).then_some(next)
    }
}
