//! What a run measured, and the invariant violations it found.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use protocol::evidence::Offence;

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub nodes: usize,
    pub sessions: usize,
    pub completed: usize,
    pub aborted: BTreeMap<String, usize>,
    pub proposals_refused: usize,
    pub blame_correct: usize,
    pub blame_incorrect: usize,
    /// (group, culprit member index, offence) named by honest members.
    pub blamed: BTreeSet<(usize, u16, Offence)>,
    pub failovers: usize,
    pub failover_exhausted: usize,
    pub timeouts: usize,
    /// Durable steps the store refused (the session was suspended, nothing it guarded left).
    pub persist_refused: usize,
    /// Restart notices after the salt was known (followed or refused).
    pub forced_rerolls: usize,
    pub election_mismatches: usize,
    pub broadcasts: usize,
    pub silent_broadcasts: usize,
    pub crashes: usize,
    pub restarts: usize,
    pub messages_sent: usize,
    pub messages_lost: usize,
    pub rejections: BTreeMap<String, usize>,
    /// Simulated ms from proposal to the transaction on chain.
    pub latencies: Vec<u64>,
    pub violations: Vec<String>,
    /// Asynchronous runs: sessions whose members' windows met the goal's condition, and how
    /// many of those completed before expiry.
    pub eligible: usize,
    pub eligible_completed: usize,
    /// Of those, the sessions whose windows also come in an order that lets two sequential
    /// rounds finish (everyone visits again after the last first visit), and how many did.
    pub order_feasible: usize,
    pub order_feasible_completed: usize,
    /// Attempts each honest session took (highest attempt started + 1).
    pub attempts: Vec<u32>,
    /// Messages dropped because their recipient was offline.
    pub messages_offline: usize,
    pub replay: String,
    /// Durable steps each node executed (to aim crash injection at every one of them).
    pub persist_steps: Vec<usize>,
}

impl Report {
    pub fn violation(&mut self, what: String) {
        if self.violations.len() < 100 {
            self.violations.push(what);
        }
    }

    /// Share of goal-meeting sessions that completed before expiry (1.0 if none).
    pub fn completion_share(&self) -> f64 {
        if self.eligible == 0 {
            1.0
        } else {
            self.eligible_completed as f64 / self.eligible as f64
        }
    }

    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() - 1) as f64 * p).round() as usize;
        Some(sorted[index])
    }

    /// Adds another run's numbers (for multi-seed tables).
    pub fn merge(&mut self, other: &Report) {
        self.nodes = self.nodes.max(other.nodes);
        self.sessions += other.sessions;
        self.completed += other.completed;
        for (k, v) in &other.aborted {
            *self.aborted.entry(k.clone()).or_default() += v;
        }
        self.proposals_refused += other.proposals_refused;
        self.blame_correct += other.blame_correct;
        self.blame_incorrect += other.blame_incorrect;
        self.failovers += other.failovers;
        self.failover_exhausted += other.failover_exhausted;
        self.timeouts += other.timeouts;
        self.persist_refused += other.persist_refused;
        self.forced_rerolls += other.forced_rerolls;
        self.election_mismatches += other.election_mismatches;
        self.broadcasts += other.broadcasts;
        self.silent_broadcasts += other.silent_broadcasts;
        self.crashes += other.crashes;
        self.restarts += other.restarts;
        self.messages_sent += other.messages_sent;
        self.messages_lost += other.messages_lost;
        for (k, v) in &other.rejections {
            *self.rejections.entry(k.clone()).or_default() += v;
        }
        self.latencies.extend(&other.latencies);
        self.eligible += other.eligible;
        self.eligible_completed += other.eligible_completed;
        self.order_feasible += other.order_feasible;
        self.order_feasible_completed += other.order_feasible_completed;
        self.attempts.extend(&other.attempts);
        self.messages_offline += other.messages_offline;
        for v in &other.violations {
            self.violation(format!("{v}  [replay: {}]", other.replay));
        }
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "{k:<28} {v}");
        };
        row(&mut t, "sessions", self.sessions.to_string());
        row(&mut t, "completed", self.completed.to_string());
        let aborted: usize = self.aborted.values().sum();
        row(&mut t, "aborted", aborted.to_string());
        for (reason, count) in &self.aborted {
            row(&mut t, &format!("  aborted: {reason}"), count.to_string());
        }
        row(
            &mut t,
            "proposals refused",
            self.proposals_refused.to_string(),
        );
        row(&mut t, "blame correct", self.blame_correct.to_string());
        row(&mut t, "blame incorrect", self.blame_incorrect.to_string());
        row(&mut t, "failovers", self.failovers.to_string());
        row(
            &mut t,
            "failover exhausted",
            self.failover_exhausted.to_string(),
        );
        row(&mut t, "phases with silence", self.timeouts.to_string());
        row(&mut t, "forced re-rolls", self.forced_rerolls.to_string());
        row(
            &mut t,
            "durable steps refused",
            self.persist_refused.to_string(),
        );
        row(
            &mut t,
            "election proof mismatches",
            self.election_mismatches.to_string(),
        );
        row(
            &mut t,
            "crashes / restarts",
            format!("{} / {}", self.crashes, self.restarts),
        );
        row(
            &mut t,
            "messages sent / lost",
            format!("{} / {}", self.messages_sent, self.messages_lost),
        );
        for (reason, count) in &self.rejections {
            row(&mut t, &format!("  rejected: {reason}"), count.to_string());
        }
        let ms = |v: Option<u64>| v.map_or("-".into(), |v| format!("{:.1} s", v as f64 / 1000.0));
        row(&mut t, "latency p50", ms(self.percentile(0.5)));
        row(&mut t, "latency p99", ms(self.percentile(0.99)));
        if self.eligible > 0 || self.messages_offline > 0 {
            row(
                &mut t,
                "messages to offline members",
                self.messages_offline.to_string(),
            );
            row(
                &mut t,
                "completed (goal met)",
                format!(
                    "{} / {} = {:.1}%",
                    self.eligible_completed,
                    self.eligible,
                    self.completion_share() * 100.0
                ),
            );
            row(
                &mut t,
                "  of them, rounds fit",
                format!(
                    "{} / {} = {:.1}%",
                    self.order_feasible_completed,
                    self.order_feasible,
                    if self.order_feasible == 0 {
                        100.0
                    } else {
                        self.order_feasible_completed as f64 * 100.0 / self.order_feasible as f64
                    }
                ),
            );
            let hours = |v: Option<u64>| {
                v.map_or("-".into(), |v| format!("{:.2} h", v as f64 / 3_600_000.0))
            };
            row(
                &mut t,
                "time to completion p50",
                hours(self.percentile(0.5)),
            );
            row(
                &mut t,
                "time to completion p99",
                hours(self.percentile(0.99)),
            );
        }
        if !self.attempts.is_empty() {
            let mean =
                self.attempts.iter().map(|&a| a as f64).sum::<f64>() / self.attempts.len() as f64;
            let max = self.attempts.iter().max().copied().unwrap_or(0);
            row(
                &mut t,
                "attempts per session",
                format!("mean {mean:.2}, max {max}"),
            );
        }
        let _ = writeln!(t, "invariant violations: {}", self.violations.len());
        t
    }
}
