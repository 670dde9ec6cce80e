//! Reputation per signer key: what protocol events count, the §8.1 score, the §8.3 anomaly
//! rules, the blacklist; and the peer book.

mod common;

use std::collections::BTreeMap;

use common::*;
use lotus::PrivateKey;
use protocol::evidence::{Blame, Evidence, Offence};
use protocol::failover::FailoverEvent;
use protocol::group::GroupDescriptor;
use protocol::session::{AbortReason, Event, Outcome, Phase};
use store::reputation::{evaluate, TimeoutPhase, RECENCY_WINDOW_MS};
use store::{
    Anomaly, AnomalyEvent, AnomalyRules, AuditEvent, ResponseStats, RoundPhase, SignerStats, Store,
};

const DAY: u64 = 24 * 60 * 60 * 1000;

struct World {
    f: Fixture,
    k: Vec<PrivateKey>,
    g: GroupDescriptor,
}

impl World {
    fn new() -> Self {
        let k = keys(3);
        let g = group(&k);
        Self {
            f: Fixture::new(),
            k,
            g,
        }
    }

    fn store(&mut self) -> &mut Store {
        &mut self.f.store
    }

    fn key(&self, member: usize) -> [u8; 33] {
        self.k[member].public_key().serialize()
    }

    fn stats(&self, member: usize) -> SignerStats {
        self.f
            .store
            .signer_stats(&self.key(member))
            .unwrap()
            .expect("known signer")
    }

    fn event(&mut self, s: [u8; 32], event: Event, now: u64) {
        let g = self.g.clone();
        self.f.store.record_event(&g, s, &event, now).unwrap();
    }

    /// A session proposed by member 1 (this node is member 0).
    fn session(&mut self, n: u8, now: u64) -> [u8; 32] {
        let s = session(n);
        propose(&mut self.f.store, &self.k, &self.g, s, 1, 0, now);
        s
    }

    fn succeed(&mut self, n: u8, now: u64) {
        let s = self.session(n, now);
        self.event(
            s,
            Event::Signed {
                attempt: 0,
                txid: [n; 32],
            },
            now + 1,
        );
        self.event(
            s,
            Event::Closed {
                outcome: Outcome::Confirmed { txid: [n; 32] },
            },
            now + 2,
        );
    }

    /// Member `culprit` times out in nonces, and the session expires.
    fn fail(&mut self, n: u8, culprit: u16, now: u64) {
        let s = self.session(n, now);
        self.event(
            s,
            Event::TimedOut {
                attempt: 0,
                phase: Phase::Nonces,
                waiting_for: vec![culprit],
            },
            now + 1,
        );
        self.event(
            s,
            Event::Closed {
                outcome: Outcome::Aborted(AbortReason::Expired),
            },
            now + 2,
        );
    }

    /// One Nonces round of attempt `attempt`: our message at `start`, then each co-signer's
    /// `delays` later.
    fn round(&mut self, s: [u8; 32], attempt: u32, start: u64, delays: &[(u16, u64)]) {
        let nonces = protocol::envelope::MessageKind::Nonces;
        let ours = envelope(&self.k, &self.g, nonces, s, attempt, 0, start);
        self.store().apply(&message(ours, s, true), start).unwrap();
        for &(member, delay) in delays {
            let theirs = envelope(&self.k, &self.g, nonces, s, attempt, member, start + delay);
            self.store()
                .apply(&message(theirs, s, false), start + delay)
                .unwrap();
        }
        let end = start + delays.iter().map(|d| d.1).max().unwrap_or(0);
        self.event(
            s,
            Event::RoundCompleted {
                attempt,
                phase: Phase::Nonces,
            },
            end,
        );
    }
}

#[test]
fn successes_count_for_everyone_failures_only_for_who_caused_them() {
    let mut w = World::new();
    w.succeed(1, 1_000);
    w.succeed(2, 2_000);
    w.fail(3, 2, 3_000);
    // A rejection is nobody's failure.
    let s = w.session(4, 4_000);
    w.event(
        s,
        Event::Closed {
            outcome: Outcome::Aborted(AbortReason::RejectedBy {
                member: 1,
                reason: "wrong amount".into(),
            }),
        },
        4_001,
    );
    for member in 0..3 {
        let stats = w.stats(member);
        assert_eq!(stats.sessions_succeeded, 2, "member {member}");
        assert_eq!(
            stats.sessions_failed,
            u64::from(member == 2),
            "member {member}"
        );
    }
    assert_eq!(w.stats(2).timeouts[&TimeoutPhase::Nonces], 1);
    // Outcomes are on the sessions, and counted once even if reported again.
    let record = w.f.store.session(&session(4)).unwrap().unwrap();
    assert!(matches!(
        record.outcome,
        Some(store::SessionOutcome::Rejected { member: 1, .. })
    ));
    w.event(
        session(1),
        Event::Signed {
            attempt: 0,
            txid: [1; 32],
        },
        5_000,
    );
    assert_eq!(w.stats(0).sessions_succeeded, 2);
    // Closed sessions are not restored.
    assert!(w.f.store.sessions_to_restore().unwrap().is_empty());
}

#[test]
fn blame_timeouts_per_phase_and_missed_broadcast_slots() {
    let mut w = World::new();
    let s = w.session(1, 1_000);
    w.event(
        s,
        Event::TimedOut {
            attempt: 0,
            phase: Phase::Commitments,
            waiting_for: vec![1, 2],
        },
        1_100,
    );
    w.event(
        s,
        Event::TimedOut {
            attempt: 1,
            phase: Phase::Nonces,
            waiting_for: vec![2],
        },
        1_200,
    );
    w.event(
        s,
        Event::Failover(FailoverEvent::CoordinatorFailed { slot: 0, member: 1 }),
        1_300,
    );
    w.event(
        s,
        Event::Blamed {
            blame: Blame {
                offence: Offence::InvalidPartial,
                culprit: 2,
                session_id: s,
                attempt: 2,
            },
            evidence: Evidence {
                offence: Offence::InvalidPartial,
                proposal: vec![1, 2, 3],
                envelopes: vec![vec![4, 5]],
            },
        },
        1_400,
    );
    let one = w.stats(1);
    assert_eq!(
        one.timeouts,
        BTreeMap::from([(TimeoutPhase::Commitments, 1), (TimeoutPhase::Broadcast, 1)])
    );
    assert_eq!(one.blame_count, 0);
    let two = w.stats(2);
    assert_eq!(
        two.timeouts,
        BTreeMap::from([(TimeoutPhase::Commitments, 1), (TimeoutPhase::Nonces, 1)])
    );
    assert_eq!(two.timeouts_total(), 2);
    assert_eq!(two.blame_count, 1);
    // The session ends for lack of attempts: it counts against members 1 and 2, not 0.
    w.event(
        s,
        Event::Closed {
            outcome: Outcome::Aborted(AbortReason::AttemptsExhausted),
        },
        1_500,
    );
    assert_eq!(w.stats(1).sessions_failed, 1);
    assert_eq!(w.stats(2).sessions_failed, 1);
    assert!(w.f.store.signer_stats(&w.key(0)).unwrap().is_none());
}

#[test]
fn response_times_come_from_the_stored_arrival_times() {
    let mut w = World::new();
    let s = w.session(1, 1_000);
    w.round(s, 0, 10_000, &[(1, 400), (2, 3_000)]);
    w.round(s, 1, 20_000, &[(1, 700), (2, 200)]);
    // Counting the same round again changes nothing.
    w.event(
        s,
        Event::RoundCompleted {
            attempt: 1,
            phase: Phase::Nonces,
        },
        30_000,
    );
    let one = w.stats(1).responses[&RoundPhase::Nonces].clone();
    assert_eq!(one.count, 2);
    assert_eq!(one.mean_ms(), Some(550.0));
    assert_eq!(one.contested_rounds, 2);
    assert_eq!(one.last_in_round, 1);
    assert_eq!(one.p50_ms(), Some(500));
    assert_eq!(one.p95_ms(), Some(1_000));
    let two = w.stats(2).responses[&RoundPhase::Nonces].clone();
    assert_eq!(two.total_ms, 3_200);
    assert_eq!(two.last_in_round, 1);
    assert_eq!(w.stats(2).last_seen_ms, Some(20_200));
    assert_eq!(w.stats(1).last_seen_ms, Some(20_700));
    // With one co-signer responding nobody is "last".
    let s2 = w.session(2, 40_000);
    w.round(s2, 0, 50_000, &[(1, 100)]);
    let one = w.stats(1).responses[&RoundPhase::Nonces].clone();
    assert_eq!(
        (one.count, one.contested_rounds, one.last_in_round),
        (3, 2, 1)
    );
}

fn stats_with(succeeded: u64, failed: u64, blames: u64, last_seen: Option<u64>) -> SignerStats {
    SignerStats {
        signer: [2; 33],
        sessions_succeeded: succeeded,
        sessions_failed: failed,
        blame_count: blames,
        timeouts: BTreeMap::new(),
        responses: BTreeMap::new(),
        first_seen_ms: last_seen,
        last_seen_ms: last_seen,
        blacklisted: None,
    }
}

#[test]
fn the_score_is_the_analysis_formula() {
    let now = 100 * DAY;
    // 3 of 4 succeeded, seen 15 days ago, blamed once: 0.75·0.7 + 0.5·0.3 − 0.1.
    let s = stats_with(3, 1, 1, Some(now - 15 * DAY)).score(now);
    assert!((s.value - 0.575).abs() < 1e-12, "{s:?}");
    assert_eq!((s.success_rate, s.recency, s.blame_count), (0.75, 0.5, 1));
    // Seen just now, never failed: the maximum, 1.0.
    assert!((stats_with(5, 0, 0, Some(now)).score(now).value - 1.0).abs() < 1e-12);
    // Recency runs out after 30 days and never goes negative.
    assert_eq!(
        stats_with(1, 0, 0, Some(now - RECENCY_WINDOW_MS))
            .score(now)
            .recency,
        0.0
    );
    assert_eq!(
        stats_with(1, 0, 0, Some(now - 90 * DAY)).score(now).recency,
        0.0
    );
    // Deviations (documented): no history → success rate 0.5; never seen → recency 0; a
    // last-seen time in the future → recency capped at 1.
    assert_eq!(stats_with(0, 0, 0, None).score(now).value, 0.35);
    assert_eq!(stats_with(0, 0, 0, Some(now + DAY)).score(now).recency, 1.0);
    // Blame can drive the score below zero, as in the analysis.
    assert!(stats_with(0, 4, 10, None).score(now).value < 0.0);
    // From the store: the same numbers.
    let mut w = World::new();
    w.succeed(1, 1_000);
    w.succeed(2, 1_000);
    w.succeed(3, 1_000);
    w.fail(4, 2, 1_000);
    let key = w.key(2);
    w.store().signer_seen(&key, now - 15 * DAY).unwrap();
    let s = w.stats(2).score(now);
    assert!((s.value - (0.75 * 0.7 + 0.5 * 0.3)).abs() < 1e-12, "{s:?}");
}

fn responses(latencies: &[u64], contested: u64, last: u64) -> ResponseStats {
    let mut r = ResponseStats {
        contested_rounds: contested,
        last_in_round: last,
        ..ResponseStats::default()
    };
    for &l in latencies {
        let bucket = store::reputation::LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| l <= b)
            .unwrap_or(store::reputation::LATENCY_BUCKETS_MS.len());
        r.histogram[bucket] += 1;
        r.count += 1;
        r.total_ms += l;
    }
    r
}

#[test]
fn the_anomaly_rules() {
    let rules = AnomalyRules::default();
    // High failure rate: > 0.5 of at least 4 finished sessions.
    assert_eq!(
        evaluate(&stats_with(1, 3, 0, None), &rules),
        vec![Anomaly::HighFailureRate {
            failed: 3,
            sessions: 4
        }]
    );
    assert!(
        evaluate(&stats_with(2, 2, 0, None), &rules).is_empty(),
        "0.5 is not above 0.5"
    );
    assert!(
        evaluate(&stats_with(0, 3, 0, None), &rules).is_empty(),
        "too few sessions"
    );
    // Consistently slow: mean and median above 30 s in the automatic rounds.
    let mut slow = stats_with(5, 0, 0, None);
    slow.responses.insert(
        RoundPhase::Nonces,
        responses(&[40_000, 45_000, 50_000, 35_000, 31_000], 0, 0),
    );
    assert_eq!(
        evaluate(&slow, &rules),
        vec![Anomaly::ConsistentlySlow {
            mean_ms: 40_200,
            p50_ms: 60_000,
            responses: 5
        }]
    );
    // One very slow answer raises the mean but not the median: not "consistently".
    let mut outlier = stats_with(5, 0, 0, None);
    outlier.responses.insert(
        RoundPhase::Nonces,
        responses(&[500, 400, 600, 300, 900_000], 0, 0),
    );
    assert!(evaluate(&outlier, &rules).is_empty());
    // Slow human review in the signatures round is not an anomaly by default.
    let mut reviewer = stats_with(5, 0, 0, None);
    reviewer
        .responses
        .insert(RoundPhase::Signatures, responses(&[600_000; 6], 6, 6));
    assert!(evaluate(&reviewer, &rules).is_empty());
    let all_rounds = AnomalyRules {
        phases: RoundPhase::ALL.to_vec(),
        ..AnomalyRules::default()
    };
    assert_eq!(evaluate(&reviewer, &all_rounds).len(), 2);
    // Always last: last in ≥ 80% of at least 5 contested rounds.
    let mut last = stats_with(5, 0, 0, None);
    last.responses
        .insert(RoundPhase::Commitments, responses(&[100; 5], 5, 4));
    assert_eq!(
        evaluate(&last, &rules),
        vec![Anomaly::AlwaysLast { last: 4, rounds: 5 }]
    );
    last.responses
        .insert(RoundPhase::Commitments, responses(&[100; 5], 5, 3));
    assert!(evaluate(&last, &rules).is_empty());
}

#[test]
fn anomalies_are_raised_once_audited_and_cleared() {
    let mut w = World::new();
    let s = w.session(1, 1_000);
    for attempt in 0..5 {
        w.round(
            s,
            attempt,
            10_000 * (attempt as u64 + 1),
            &[(1, 100), (2, 2_000)],
        );
    }
    let rules = AnomalyRules::default();
    let raised = w.store().detect_anomalies(&rules, 100_000).unwrap();
    assert_eq!(
        raised,
        vec![AnomalyEvent::Raised {
            signer: w.key(2),
            anomaly: Anomaly::AlwaysLast { last: 5, rounds: 5 }
        }]
    );
    assert!(w
        .store()
        .detect_anomalies(&rules, 100_001)
        .unwrap()
        .is_empty());
    // Member 2 speeds up: after enough rounds it is no longer "always" last.
    for attempt in 5..7 {
        w.round(
            s,
            attempt,
            10_000 * (attempt as u64 + 1),
            &[(1, 2_000), (2, 100)],
        );
    }
    let cleared = w.store().detect_anomalies(&rules, 200_000).unwrap();
    assert_eq!(
        cleared,
        vec![AnomalyEvent::Cleared {
            signer: w.key(2),
            rule: "always_last".into()
        }]
    );
    let kinds: Vec<&str> =
        w.f.store
            .audit_entries(0, 1_000)
            .unwrap()
            .iter()
            .map(|e| e.event.kind())
            .filter(|k| k.starts_with("anomaly"))
            .collect();
    assert_eq!(kinds, vec!["anomaly_raised", "anomaly_cleared"]);
    w.f.store.verify_audit().unwrap();
}

#[test]
fn the_blacklist_is_per_key_with_a_reason_and_audited() {
    let mut w = World::new();
    let key = w.key(2);
    assert!(w
        .store()
        .blacklist(&key, "equivocated twice", 5_000)
        .unwrap());
    assert!(!w.store().blacklist(&key, "again", 6_000).unwrap());
    let entry = w.f.store.blacklisted(&key).unwrap().unwrap();
    assert_eq!(
        (entry.reason.as_str(), entry.since_ms),
        ("equivocated twice", 5_000)
    );
    assert_eq!(w.f.store.blacklist_entries().unwrap().len(), 1);
    // A blacklisted key with no other history still shows up in the statistics.
    assert!(w.stats(2).blacklisted.is_some());
    assert_eq!(w.f.store.all_signer_stats().unwrap().len(), 1);
    assert!(w.store().unblacklist(&key, 7_000).unwrap());
    assert!(!w.store().unblacklist(&key, 7_001).unwrap());
    assert!(w.f.store.blacklisted(&key).unwrap().is_none());
    let events: Vec<AuditEvent> =
        w.f.store
            .audit_entries(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
    assert_eq!(
        events,
        vec![
            AuditEvent::Blacklisted {
                signer: key,
                reason: "equivocated twice".into()
            },
            AuditEvent::Unblacklisted { signer: key }
        ]
    );
}

#[test]
fn the_peer_book_keeps_addresses_bindings_and_anchors() {
    let mut w = World::new();
    let key = w.key(1);
    let st = w.store();
    st.peer_seen("12D3KooWA", None, &["/ip4/10.0.0.1/tcp/4001".into()], 1_000)
        .unwrap();
    st.peer_seen(
        "12D3KooWA",
        Some(&key),
        &[
            "/ip4/10.0.0.2/tcp/4001".into(),
            "/ip4/10.0.0.1/tcp/4001".into(),
        ],
        2_000,
    )
    .unwrap();
    st.peer_seen("12D3KooWA", None, &[], 1_500).unwrap();
    st.peer_seen("12D3KooWB", None, &["/dns4/b.example/tcp/1".into()], 3_000)
        .unwrap();
    let a = st.peer("12D3KooWA").unwrap().unwrap();
    assert_eq!(
        a.signer,
        Some(key),
        "binding kept when a later sighting has none"
    );
    assert_eq!((a.first_seen_ms, a.last_seen_ms), (1_000, 2_000));
    assert_eq!(a.addresses.len(), 2);
    assert!(a.addresses.iter().all(|x| x.last_seen_ms == 2_000));
    assert!(!a.anchor);
    assert!(st.set_anchor("12D3KooWA", true).unwrap());
    assert!(!st.set_anchor("nobody", true).unwrap());
    assert_eq!(st.anchor_peers().unwrap().len(), 1);
    assert_eq!(st.peers_of_signer(&key).unwrap().len(), 1);
    let ids: Vec<String> = st.peers().unwrap().into_iter().map(|p| p.peer_id).collect();
    assert_eq!(ids, vec!["12D3KooWB", "12D3KooWA"]);
    assert_eq!(st.prune_peer_addresses(2_500).unwrap(), 2);
    assert!(st.peer("12D3KooWA").unwrap().unwrap().addresses.is_empty());
    assert!(st.forget_peer("12D3KooWB").unwrap());
    assert!(st.peer("12D3KooWB").unwrap().is_none());
    // Reputation is per signer key: the peer book does not feed it.
    assert!(st.signer_stats(&key).unwrap().is_none());
}
