//! Runs the lifecycle model check (see the crate docs) and the mutation checks. Each test
//! prints its state count and time for the record.

use std::time::Instant;

use model::properties::{APPROVAL, LIVENESS, NONCE_ONCE, NO_HONEST_BLAME, REACHABLE};
use model::{Checks, Config, LifecycleModel, Mutation};
use stateright::{Checker, HasDiscoveries, Model};

fn report(label: &str, checker: &impl Checker<LifecycleModel>, started: Instant) {
    eprintln!(
        "{label}: {} unique states ({} generated), max depth {}, {:.1?}",
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
        started.elapsed(),
    );
}

#[test]
fn safety_properties_hold_over_every_interleaving() {
    let started = Instant::now();
    let checker = LifecycleModel::new(Config::standard(Checks::Safety))
        .checker()
        .spawn_bfs()
        .join();
    report("safety (properties 1-3)", &checker, started);
    checker.assert_no_discovery(APPROVAL);
    checker.assert_no_discovery(NONCE_ONCE);
    checker.assert_no_discovery(NO_HONEST_BLAME);
    for name in REACHABLE {
        checker.assert_any_discovery(name);
        eprintln!("  reached: {name}");
    }
}

#[test]
fn honest_continuation_can_always_sign() {
    let started = Instant::now();
    let checker = LifecycleModel::new(Config::standard(Checks::Liveness))
        .checker()
        .spawn_bfs()
        .join();
    report("liveness (property 4)", &checker, started);
    eprintln!("  {}", checker.model().stats.summary());
    checker.assert_no_discovery(LIVENESS);
}

/// Runs a mutated model until it finds a counterexample to `property`, and prints it.
fn find_counterexample(mutation: Mutation, checks: Checks, property: &'static str) {
    let started = Instant::now();
    // Without symmetry reduction the counterexample keeps its member and proposal names.
    let config = Config {
        symmetry: false,
        ..Config::standard(checks).with_mutation(mutation)
    };
    let checker = LifecycleModel::new(config)
        .checker()
        .finish_when(HasDiscoveries::AnyOf([property].into()))
        .spawn_bfs()
        .join();
    report(&format!("mutation {mutation:?}"), &checker, started);
    let actions = checker.assert_any_discovery(property).into_actions();
    eprintln!(
        "  counterexample to \"{property}\" ({} steps):",
        actions.len()
    );
    for action in actions {
        eprintln!("    {action:?}");
    }
}

#[test]
fn store_without_digest_check_lets_an_unapproved_partial_out() {
    find_counterexample(
        Mutation::StoreIgnoresApprovalDigest,
        Checks::Safety,
        APPROVAL,
    );
}

#[test]
fn nonces_sent_before_commit_are_released_twice() {
    find_counterexample(Mutation::NoncesSentBeforeCommit, Checks::Safety, NONCE_ONCE);
}

#[test]
fn partial_checked_against_own_view_blames_an_honest_member() {
    find_counterexample(
        Mutation::PartialCheckedAgainstOwnView,
        Checks::Safety,
        NO_HONEST_BLAME,
    );
}

#[test]
fn restart_without_notice_leaves_the_others_waiting() {
    find_counterexample(Mutation::RestartWithoutNotice, Checks::Liveness, LIVENESS);
}
