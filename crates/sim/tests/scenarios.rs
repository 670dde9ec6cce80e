//! The simulator as the protocol's main test: honest runs under loss for every election method,
//! every Byzantine behaviour under two election methods, every failover depth, a crash at every
//! durable step, and replayability. Each failure prints the command that replays it.

use protocol::election::ElectionMethod;
use sim::{Byzantine, Partition, Report, Scenario};

fn assert_clean(report: &Report, what: &str) {
    assert!(
        report.violations.is_empty(),
        "{what}: {} invariant violations, replay with: {}\n{}\n{}",
        report.violations.len(),
        report.replay,
        report.violations.join("\n"),
        report.table()
    );
}

fn small(seed: u64) -> Scenario {
    Scenario {
        seed,
        nodes: 8,
        groups: 2,
        signers: 4,
        sessions_per_group: 2,
        inputs: 2,
        ..Scenario::default()
    }
}

#[test]
fn every_election_method_completes_under_loss_duplication_and_reordering() {
    for (i, method) in ElectionMethod::ALL.into_iter().enumerate() {
        let scenario = Scenario {
            election: method,
            commit_round: i % 2 == 0,
            loss: 0.15,
            duplicate: 0.05,
            ..small(100 + i as u64)
        };
        let report = sim::run(scenario);
        assert_clean(&report, method.name());
        assert_eq!(
            report.completed,
            report.sessions,
            "{}: every honest session completes",
            method.name()
        );
    }
}

#[test]
fn thirty_percent_loss_still_completes() {
    for seed in 200..203 {
        let report = sim::run(Scenario {
            loss: 0.3,
            ..small(seed)
        });
        assert_clean(&report, "30% loss");
        assert_eq!(report.completed, report.sessions);
    }
}

#[test]
fn every_byzantine_kind_under_two_election_methods() {
    for kind in Byzantine::ALL {
        for (method, commit_round) in [
            (ElectionMethod::Salted, true),
            (ElectionMethod::Lexicographic, false),
        ] {
            let scenario = Scenario {
                byzantine: Some(kind),
                byzantine_per_group: 1,
                election: method,
                commit_round,
                loss: 0.05,
                ..small(300 + kind as u64)
            };
            let report = sim::run(scenario);
            let what = format!("{} / {}", kind.name(), method.name());
            assert_clean(&report, &what);
            assert_eq!(report.blame_incorrect, 0, "{what}");
            if kind.is_provable() {
                assert!(
                    report.blame_correct > 0,
                    "{what}: the attacker must be named"
                );
            } else {
                assert_eq!(
                    report.blame_correct, 0,
                    "{what}: nothing provable, so no blame"
                );
            }
            if kind.allows_completion() {
                let honest_sessions = report.sessions - report.aborted.values().sum::<usize>();
                assert!(
                    honest_sessions > 0 && report.completed > 0,
                    "{what}: sessions still complete"
                );
            }
        }
    }
}

#[test]
fn failover_covers_every_number_of_silent_coordinators() {
    let signers = 4;
    for silent in 0..signers {
        let scenario = Scenario {
            // First-signer puts the attackers (the first members) in the first slots.
            election: ElectionMethod::FirstSigner,
            byzantine: (silent > 0).then_some(Byzantine::SilentCoordinator),
            byzantine_per_group: silent,
            signers,
            nodes: signers,
            groups: 1,
            sessions_per_group: 2,
            broadcast_slot_ms: 2_000,
            ..small(400 + silent as u64)
        };
        let report = sim::run(scenario);
        assert_clean(&report, &format!("{silent} silent coordinators"));
        assert_eq!(
            report.completed, report.sessions,
            "{silent} silent: the transaction is still broadcast"
        );
        // Every honest member sees each silent slot fail, in every session.
        let honest = signers - silent;
        assert!(
            report.failovers >= silent * honest * report.sessions,
            "{silent} silent: {} failover events",
            report.failovers
        );
        assert_eq!(report.failover_exhausted, 0);
    }
}

#[test]
fn a_crash_at_every_durable_step_breaks_no_invariant() {
    let base = Scenario {
        nodes: 3,
        groups: 1,
        signers: 3,
        sessions_per_group: 1,
        inputs: 2,
        ..small(500)
    };
    let baseline = sim::run(base.clone());
    assert_clean(&baseline, "baseline");
    let mut crashes = 0;
    for (node, &steps) in baseline.persist_steps.iter().enumerate() {
        for step in 0..steps {
            let report = sim::run(Scenario {
                crash_at: Some((node, step)),
                ..base.clone()
            });
            assert_clean(
                &report,
                &format!("crash of node {node} at durable step {step}"),
            );
            crashes += report.crashes;
        }
    }
    assert!(crashes > 20, "crash points exercised: {crashes}");
}

#[test]
fn random_crashes_with_loss_break_no_invariant() {
    for seed in 600..606 {
        let report = sim::run(Scenario {
            crash_rate: 0.02,
            loss: 0.1,
            ..small(seed)
        });
        assert_clean(&report, "random crashes");
        assert!(report.crashes > 0);
    }
}

#[test]
fn partitions_and_skew_keep_safety() {
    let report = sim::run(Scenario {
        network_partition: Some(Partition {
            from_ms: 0,
            until_ms: 20_000,
        }),
        skew_ms: 20_000,
        ..small(700)
    });
    assert_clean(&report, "partition");
}

#[test]
fn a_seed_replays_exactly() {
    let scenario = Scenario {
        loss: 0.2,
        duplicate: 0.1,
        ..small(800)
    };
    let a = sim::run(scenario.clone());
    let b = sim::run(scenario);
    assert_eq!(a.table(), b.table());
    assert_eq!(a.latencies, b.latencies);
}

/// Co-signers who are not online together (members online 2 × 1 h a day at random hours,
/// proposals living 24 h, the network holding messages for offline members). Sleeping laptops
/// keep their secret nonces; quitting apps lose them and restart their attempt.
#[test]
fn members_online_in_different_windows_still_sign() {
    for away in [sim::Away::Sleep, sim::Away::Quit] {
        let mut total = Report::default();
        for seed in 0..12 {
            let report = sim::run(Scenario::asynchronous(900 + seed, away));
            assert_clean(&report, away.name());
            total.merge(&report);
        }
        eprintln!("{}:\n{}", away.name(), total.table());
        // Every session whose windows let the two rounds happen in order completes.
        assert_eq!(
            total.order_feasible_completed,
            total.order_feasible,
            "{}: a session that could finish did not",
            away.name()
        );
        // The goals: sleeping members complete whenever each is online twice within
        // the lifetime (pooled nonces need no order between visits); restarting members
        // whenever their windows overlap once.
        assert!(
            total.completion_share() >= 0.99,
            "{}: {} of {} eligible sessions completed",
            away.name(),
            total.eligible_completed,
            total.eligible
        );
        match away {
            sim::Away::Sleep => {
                assert!(
                    total.eligible > total.order_feasible && total.order_feasible > 50,
                    "enough sessions, including ones whose visits come in no usable order"
                );
                assert_eq!(
                    total.attempts.iter().max(),
                    Some(&1),
                    "sleeping members never burn an attempt"
                );
            }
            sim::Away::Quit => {}
        }
    }
}
