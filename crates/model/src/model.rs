//! The checker's entry: the configuration (bounds, fault budgets, a deliberate mutation) and
//! the `stateright::Model` implementation.

use std::sync::Arc;

use stateright::{Model, Property};

use crate::actions::Action;
use crate::node::Rules;
use crate::properties::{self, LivenessStats};
use crate::state::{Attempt, Proposal, World, ATTEMPT_SLOTS};

/// A guard broken on purpose, to show the checker finds what it is there to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// "Mark signing" accepts any recorded approval, not only the accepted proposal's digest
    /// (breaks property 1).
    StoreIgnoresApprovalDigest,
    /// Round-1 nonces leave before their registry rows commit (breaks property 2).
    NoncesSentBeforeCommit,
    /// A partial is verified against the receiver's own nonces instead of the nonce messages
    /// it committed to (breaks property 3).
    PartialCheckedAgainstOwnView,
    /// A restarted member moves to a fresh attempt without announcing the abort of the one it
    /// left (breaks property 4: the others wait in that attempt for good).
    RestartWithoutNotice,
}

/// Which properties a run checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Properties 1–3.
    Safety,
    /// Property 4.
    Liveness,
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `MAX_ATTEMPTS` of the modelled protocol.
    pub max_attempts: Attempt,
    /// Crashes of honest members, in total.
    pub crashes: u8,
    /// Failed commits of nonce rows (I/O errors), in total.
    pub persist_failures: u8,
    /// Times an honest member's RNG repeats an earlier nonce, in total.
    pub rng_repeats: u8,
    /// Abort notices the Byzantine member may send in the session.
    pub byzantine_aborts: u8,
    pub mutation: Option<Mutation>,
    pub checks: Checks,
    /// Explore one state per renaming (see `symmetry`); off, counterexamples keep their names.
    pub symmetry: bool,
}

impl Config {
    /// The bounds the CI test explores exhaustively.
    pub fn standard(checks: Checks) -> Self {
        Self {
            max_attempts: 3,
            crashes: 2,
            persist_failures: 1,
            rng_repeats: 1,
            byzantine_aborts: 1,
            mutation: None,
            checks,
            symmetry: true,
        }
    }

    pub fn with_mutation(mut self, mutation: Mutation) -> Self {
        self.mutation = Some(mutation);
        self
    }
}

pub struct LifecycleModel {
    pub config: Config,
    /// `Some(d)`: the honest continuation used by the liveness check — the Byzantine member
    /// behaves as an honest proposer of `d`, users approve only `d`, no new faults happen.
    pub honest_from: Option<Proposal>,
    pub stats: Arc<LivenessStats>,
}

impl LifecycleModel {
    pub fn new(config: Config) -> Self {
        assert!(
            (config.max_attempts as usize) < ATTEMPT_SLOTS,
            "the liveness check needs a spare attempt slot"
        );
        Self {
            config,
            honest_from: None,
            stats: Arc::default(),
        }
    }

    pub(crate) fn rules(&self) -> Rules {
        Rules {
            max_attempts: self.config.max_attempts,
            mutation: self.config.mutation,
        }
    }

    /// The same protocol from a given state on, with everyone honest and no more faults.
    pub(crate) fn honest_continuation(&self, digest: Proposal, max_attempts: Attempt) -> Self {
        Self {
            config: Config {
                max_attempts,
                crashes: 0,
                persist_failures: 0,
                rng_repeats: 0,
                byzantine_aborts: 0,
                // The continuation is tied to the proposal `digest` by name.
                symmetry: false,
                ..self.config
            },
            honest_from: Some(digest),
            stats: Arc::clone(&self.stats),
        }
    }
}

impl Model for LifecycleModel {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        vec![World::default()]
    }

    fn actions(&self, state: &World, actions: &mut Vec<Action>) {
        self.enumerate(state, actions);
    }

    fn next_state(&self, state: &World, action: Action) -> Option<World> {
        self.apply(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        match self.config.checks {
            Checks::Safety => [
                Property::always(properties::APPROVAL, |_, w| {
                    properties::partials_follow_approval(w)
                }),
                Property::always(properties::NONCE_ONCE, |_, w| {
                    properties::nonces_released_once(w)
                }),
                Property::always(properties::NO_HONEST_BLAME, |_, w| {
                    properties::no_honest_member_blamed(w)
                }),
            ]
            .into_iter()
            .chain(properties::reachability_checks())
            .collect(),
            Checks::Liveness => vec![Property::always(properties::LIVENESS, |m, w| {
                m.honest_continuation_can_sign(w)
            })],
        }
    }
}
