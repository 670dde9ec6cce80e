//! The four properties. 1–3 are invariants over one state; 4 is "from every reachable state a
//! signed state is reachable in the honest continuation" (AG EF, restricted), which
//! stateright's `eventually` cannot express (it is "on every path", and its docs warn it
//! misses paths that end in a cycle) and its `sometimes` only asks it of the initial state. So
//! 4 is an `always` property whose condition searches the honest continuation from the state:
//! first one greedy schedule (a witness if it signs), then, only if that fails, an exhaustive
//! breadth-first search of the continuation. Both are exact about reachability; the greedy run
//! is only a shortcut.
//!
//! A Byzantine member can spend every attempt (it may equivocate in each one), so states where
//! the budget is gone cannot satisfy 4 in any protocol with a `MAX_ATTEMPTS`. They are counted,
//! not hidden: "budget already spent" (an honest member closed the session), and "needs one
//! more attempt" (signing is reachable once the continuation may use one attempt beyond
//! `MAX_ATTEMPTS`, i.e. the only obstacle is damage already done in the last attempt). A state
//! from which even that cannot sign is a failure.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use stateright::{Model, Property};

use crate::model::LifecycleModel;
use crate::node::ready_to_sign;
use crate::state::{Proposal, World, HONEST};

pub const APPROVAL: &str =
    "1. a partial signature leaves only with a durable approval of its proposal's digest";
pub const NONCE_ONCE: &str = "2. no nonce id is released twice";
pub const NO_HONEST_BLAME: &str = "3. no honest member is blamed";
pub const LIVENESS: &str = "4. from every state, the honest continuation can sign";

/// A greedy run ends well before this many steps: every step files, sends or moves forward.
const GREEDY_STEPS: usize = 400;

/// 1. Every partial an honest member sent was for the digest its store held as approved when
///    it left (checked as it leaves, in `node::Ctx::sign`).
pub fn partials_follow_approval(world: &World) -> bool {
    HONEST
        .iter()
        .all(|&m| !world.node(m).ghost.unapproved_partial)
}

/// 2. No honest member's nonce id left in two nonce messages (any attempts, any incarnations).
pub fn nonces_released_once(world: &World) -> bool {
    HONEST.iter().all(|&m| !world.node(m).ghost.double_release)
}

/// 3. No honest member recorded evidence against an honest member (itself included).
pub fn no_honest_member_blamed(world: &World) -> bool {
    let honest_bits = HONEST.iter().fold(0u8, |bits, &m| bits | 1 << m);
    HONEST
        .iter()
        .all(|&m| world.node(m).store.blamed & honest_bits == 0)
}

/// States the safety run must reach, so that "no counterexample" is not the emptiness of a
/// model that never gets anywhere: signing despite each kind of fault, and the store's
/// approval guard actually refusing.
pub const REACHABLE: [&str; 4] = [
    "signed after two crashes",
    "signed after a failed commit and a refused repeated nonce",
    "signed after the Byzantine abort notice",
    "ready to sign with an approval of the other proposal (the store refuses)",
];

pub fn reachability_checks() -> Vec<Property<LifecycleModel>> {
    vec![
        Property::sometimes(REACHABLE[0], |_, w| all_signed(w) && w.faults.crashes == 2),
        Property::sometimes(REACHABLE[1], |_, w| {
            all_signed(w) && w.faults.persist_failures == 1 && w.faults.rng_repeats == 1
        }),
        Property::sometimes(REACHABLE[2], |_, w| {
            all_signed(w) && w.faults.byzantine_aborts == 1
        }),
        Property::sometimes(REACHABLE[3], |_, w: &World| {
            HONEST.iter().any(|&m| {
                let node = w.node(m);
                let other = node
                    .store
                    .approval
                    .is_some_and(|a| Some(a) != node.store.accepted);
                ready_to_sign(node) && other
            })
        }),
    ]
}

/// Every honest member holds the signed transaction.
pub fn all_signed(world: &World) -> bool {
    HONEST.iter().all(|&m| world.node(m).store.signed)
}

/// Proposals every honest user could still approve: one no honest member accepted or approved
/// anything else for. (With none, the premise "every honest user approves the same proposal"
/// cannot hold: the Byzantine proposer split them.)
pub fn common_proposals(world: &World) -> Vec<Proposal> {
    Proposal::ALL
        .into_iter()
        .filter(|&d| {
            HONEST.iter().all(|&m| {
                let store = &world.node(m).store;
                store.accepted.is_none_or(|a| a == d) && store.approval.is_none_or(|a| a == d)
            })
        })
        .collect()
}

/// How property 4 was settled for the states checked (one count per state).
#[derive(Debug, Default)]
pub struct LivenessStats {
    /// An honest member already ended the session: the attempt budget is spent.
    pub exhausted: AtomicUsize,
    /// No proposal both honest users can approve (the premise does not hold).
    pub split: AtomicUsize,
    /// Signing reachable within `MAX_ATTEMPTS`, shown by the greedy schedule.
    pub greedy: AtomicUsize,
    /// Signing reachable within `MAX_ATTEMPTS`, shown by exhaustive search (greedy failed).
    pub searched: AtomicUsize,
    /// Signing reachable only with one attempt more than `MAX_ATTEMPTS`: damage already done
    /// in the last attempt (a Byzantine equivocation there) needs a fresh one.
    pub extra_attempt: AtomicUsize,
    /// No way to sign even with an extra attempt: a liveness bug.
    pub stuck: AtomicUsize,
}

impl LivenessStats {
    pub fn summary(&self) -> String {
        format!(
            "within budget: {} greedy + {} searched; needs one more attempt: {}; \
             budget already spent: {}; no common proposal: {}; stuck: {}",
            self.greedy.load(Relaxed),
            self.searched.load(Relaxed),
            self.extra_attempt.load(Relaxed),
            self.exhausted.load(Relaxed),
            self.split.load(Relaxed),
            self.stuck.load(Relaxed),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Greedy,
    Searched,
    ExtraAttempt,
    Stuck,
}

impl LifecycleModel {
    /// 4. If from now on the Byzantine member behaves honestly, nothing crashes or fails, and
    ///    every honest user approves the same proposal `d`, a state where every honest member
    ///    holds the signed transaction is reachable — for each `d` the premise allows.
    pub fn honest_continuation_can_sign(&self, world: &World) -> bool {
        let stats = &self.stats;
        if HONEST.iter().any(|&m| world.node(m).store.closed) {
            stats.exhausted.fetch_add(1, Relaxed);
            return true;
        }
        let digests = common_proposals(world);
        if digests.is_empty() {
            stats.split.fetch_add(1, Relaxed);
            return true;
        }
        let worst = digests
            .into_iter()
            .map(|d| self.verdict(world, d))
            .max()
            .expect("non-empty");
        let counter = match worst {
            Verdict::Greedy => &stats.greedy,
            Verdict::Searched => &stats.searched,
            Verdict::ExtraAttempt => &stats.extra_attempt,
            Verdict::Stuck => &stats.stuck,
        };
        counter.fetch_add(1, Relaxed);
        worst != Verdict::Stuck
    }

    fn verdict(&self, world: &World, digest: Proposal) -> Verdict {
        let budget = self.config.max_attempts;
        let within = self.honest_continuation(digest, budget);
        if greedy_signs(&within, world) {
            return Verdict::Greedy;
        }
        if search_signs(&within, world) {
            return Verdict::Searched;
        }
        let extended = self.honest_continuation(digest, budget + 1);
        if greedy_signs(&extended, world) || search_signs(&extended, world) {
            return Verdict::ExtraAttempt;
        }
        Verdict::Stuck
    }
}

/// One fair-looking schedule: always the first enabled step by `Action::greedy_rank`. Finding
/// a signed state this way proves reachability; not finding one proves nothing.
fn greedy_signs(model: &LifecycleModel, start: &World) -> bool {
    let mut world = start.clone();
    let mut actions = Vec::new();
    for _ in 0..GREEDY_STEPS {
        if all_signed(&world) {
            return true;
        }
        actions.clear();
        model.actions(&world, &mut actions);
        actions.sort_by_key(|a| a.greedy_rank());
        match actions.iter().find_map(|a| model.next_state(&world, *a)) {
            Some(next) => world = next,
            None => return false,
        }
    }
    false
}

/// Exhaustive: is a signed state reachable at all in the continuation?
fn search_signs(model: &LifecycleModel, start: &World) -> bool {
    let mut seen: HashSet<World> = HashSet::from([start.clone()]);
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(world) = queue.pop_front() {
        if all_signed(&world) {
            return true;
        }
        for next in model.next_states(&world) {
            if seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    false
}
