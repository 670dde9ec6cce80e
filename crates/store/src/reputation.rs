//! Reputation per signer KEY (a 33-byte member key — never per peer id, which costs nothing to
//! change): session successes and failures, timeouts per phase, response times, blame count,
//! last seen; the score of the security analysis §8.1; a blacklist with reasons; and the
//! anomaly rules of §8.3.
//!
//! ## Score (§8.1)
//!
//! `score = success_rate · 0.7 + recency · 0.3 − blame_count · 0.1`, with
//! `success_rate = succeeded / (succeeded + failed)` and
//! `recency = max(0, 1 − (now − last_seen) / 30 days)`, as in the analysis. Where we deviate:
//! - no finished session yet: the analysis divides 0 by 0; we use a neutral 0.5;
//! - a `last_seen` in the future (clock step) would give recency > 1; we cap it at 1;
//! - never seen: recency 0;
//! - the analysis's `slashCount` is our `blame_count` (verified evidence only — silence is a
//!   timeout, never blame);
//! - the analysis counts a failed session against EVERY participant; we count it only against
//!   the members the protocol holds responsible (the culprit of verified evidence, members that
//!   timed out or missed their broadcast slot in that session). A failure nobody caused (a
//!   rejection, an expiry with everyone present, an eviction) counts against no one.
//!
//! ## Anomalies (§8.3)
//!
//! [`evaluate`] applies the three rules to a signer's statistics: high failure rate (> 0.5),
//! consistently slow (mean AND median response above a threshold — the analysis uses the mean
//! alone; the median keeps one outlier from flagging a member), always last to respond (last in
//! at least a share of the rounds with two or more co-signers responding). Minimum sample sizes
//! keep one bad session from raising anything. By default response times are those of the
//! automatic rounds (commitments, nonces): the signatures round waits for each person's review,
//! and careful review is not an anomaly.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::column::{fixed, ms, u64_col, u64_opt};
use crate::event::{RoundPhase, SignerKey};
use crate::Error;

pub const SUCCESS_WEIGHT: f64 = 0.7;
pub const RECENCY_WEIGHT: f64 = 0.3;
pub const BLAME_PENALTY: f64 = 0.1;
pub const RECENCY_WINDOW_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Success rate assumed before any session finished (the analysis leaves it undefined).
pub const NO_HISTORY_SUCCESS_RATE: f64 = 0.5;

/// Upper bounds (inclusive, ms) of the response-time histogram buckets; one more bucket holds
/// everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 13] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000,
    3_600_000,
];
pub const BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

fn bucket_of(latency_ms: u64) -> usize {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|&bound| latency_ms <= bound)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutPhase {
    Commitments,
    Nonces,
    Signatures,
    /// A failover slot passed without this member's broadcast.
    Broadcast,
}

impl TimeoutPhase {
    pub const ALL: [TimeoutPhase; 4] = [
        TimeoutPhase::Commitments,
        TimeoutPhase::Nonces,
        TimeoutPhase::Signatures,
        TimeoutPhase::Broadcast,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutPhase::Commitments => "commitments",
            TimeoutPhase::Nonces => "nonces",
            TimeoutPhase::Signatures => "signatures",
            TimeoutPhase::Broadcast => "broadcast",
        }
    }
}

impl From<RoundPhase> for TimeoutPhase {
    fn from(phase: RoundPhase) -> Self {
        match phase {
            RoundPhase::Commitments => TimeoutPhase::Commitments,
            RoundPhase::Nonces => TimeoutPhase::Nonces,
            RoundPhase::Signatures => TimeoutPhase::Signatures,
        }
    }
}

/// Response times in one or more rounds: how long after a round's first message this signer's
/// arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseStats {
    pub count: u64,
    pub total_ms: u64,
    pub histogram: [u64; BUCKETS],
    /// Rounds where at least two co-signers responded (so someone was last).
    pub contested_rounds: u64,
    /// Of those, rounds where this signer was the last.
    pub last_in_round: u64,
}

impl ResponseStats {
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total_ms as f64 / self.count as f64)
    }

    /// An upper bound for the `q` quantile (0 < q ≤ 1): the bucket bound it falls in;
    /// `u64::MAX` if it falls in the open last bucket.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        None
    }

    pub fn p50_ms(&self) -> Option<u64> {
        self.quantile_ms(0.5)
    }

    pub fn p95_ms(&self) -> Option<u64> {
        self.quantile_ms(0.95)
    }

    fn merge(&mut self, other: &ResponseStats) {
        self.count += other.count;
        self.total_ms += other.total_ms;
        for (a, b) in self.histogram.iter_mut().zip(other.histogram) {
            *a += b;
        }
        self.contested_rounds += other.contested_rounds;
        self.last_in_round += other.last_in_round;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlacklistEntry {
    pub signer: SignerKey,
    pub reason: String,
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignerStats {
    pub signer: SignerKey,
    pub sessions_succeeded: u64,
    pub sessions_failed: u64,
    pub blame_count: u64,
    pub timeouts: BTreeMap<TimeoutPhase, u64>,
    pub responses: BTreeMap<RoundPhase, ResponseStats>,
    pub first_seen_ms: Option<u64>,
    pub last_seen_ms: Option<u64>,
    pub blacklisted: Option<BlacklistEntry>,
}

/// The §8.1 score and its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub value: f64,
    pub success_rate: f64,
    pub recency: f64,
    pub blame_count: u64,
}

impl SignerStats {
    fn empty(signer: SignerKey) -> Self {
        Self {
            signer,
            sessions_succeeded: 0,
            sessions_failed: 0,
            blame_count: 0,
            timeouts: BTreeMap::new(),
            responses: BTreeMap::new(),
            first_seen_ms: None,
            last_seen_ms: None,
            blacklisted: None,
        }
    }

    /// failed / (succeeded + failed); `None` before any session finished.
    pub fn failure_rate(&self) -> Option<f64> {
        let total = self.sessions_succeeded + self.sessions_failed;
        (total > 0).then(|| self.sessions_failed as f64 / total as f64)
    }

    pub fn timeouts_total(&self) -> u64 {
        self.timeouts.values().sum()
    }

    /// Response statistics over the given rounds combined.
    pub fn responses_in(&self, phases: &[RoundPhase]) -> ResponseStats {
        let mut out = ResponseStats::default();
        for phase in phases {
            if let Some(stats) = self.responses.get(phase) {
                out.merge(stats);
            }
        }
        out
    }

    /// The analysis §8.1 score (see the module docs for the edge cases).
    pub fn score(&self, now_ms: u64) -> Score {
        let total = self.sessions_succeeded + self.sessions_failed;
        let success_rate = if total == 0 {
            NO_HISTORY_SUCCESS_RATE
        } else {
            self.sessions_succeeded as f64 / total as f64
        };
        let recency = match self.last_seen_ms {
            None => 0.0,
            Some(seen) => {
                let age = now_ms.saturating_sub(seen) as f64;
                (1.0 - age / RECENCY_WINDOW_MS as f64).clamp(0.0, 1.0)
            }
        };
        Score {
            value: success_rate * SUCCESS_WEIGHT + recency * RECENCY_WEIGHT
                - self.blame_count as f64 * BLAME_PENALTY,
            success_rate,
            recency,
            blame_count: self.blame_count,
        }
    }
}

/// An anomaly (§8.3), with the numbers that raised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Anomaly {
    HighFailureRate {
        failed: u64,
        sessions: u64,
    },
    ConsistentlySlow {
        mean_ms: u64,
        p50_ms: u64,
        responses: u64,
    },
    AlwaysLast {
        last: u64,
        rounds: u64,
    },
}

impl Anomaly {
    pub fn rule(&self) -> &'static str {
        match self {
            Anomaly::HighFailureRate { .. } => "high_failure_rate",
            Anomaly::ConsistentlySlow { .. } => "consistently_slow",
            Anomaly::AlwaysLast { .. } => "always_last",
        }
    }
}

/// Thresholds of the §8.3 rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRules {
    /// "High failure rate": failed / finished above this (analysis: 0.5).
    pub max_failure_rate: f64,
    pub min_sessions: u64,
    /// "Consistently slow": mean and median response above this.
    pub slow_ms: u64,
    pub min_responses: u64,
    /// "Always last": last in at least this share of contested rounds.
    pub last_share: f64,
    pub min_contested_rounds: u64,
    /// Rounds whose response times count.
    pub phases: Vec<RoundPhase>,
}

impl Default for AnomalyRules {
    fn default() -> Self {
        Self {
            max_failure_rate: 0.5,
            min_sessions: 4,
            slow_ms: 30_000,
            min_responses: 5,
            last_share: 0.8,
            min_contested_rounds: 5,
            phases: vec![RoundPhase::Commitments, RoundPhase::Nonces],
        }
    }
}

/// The anomalies a signer's statistics show under `rules`.
pub fn evaluate(stats: &SignerStats, rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let sessions = stats.sessions_succeeded + stats.sessions_failed;
    if sessions >= rules.min_sessions.max(1)
        && stats.sessions_failed as f64 / sessions as f64 > rules.max_failure_rate
    {
        out.push(Anomaly::HighFailureRate {
            failed: stats.sessions_failed,
            sessions,
        });
    }
    let responses = stats.responses_in(&rules.phases);
    if let (Some(mean), Some(p50)) = (responses.mean_ms(), responses.p50_ms()) {
        if responses.count >= rules.min_responses.max(1)
            && mean > rules.slow_ms as f64
            && p50 > rules.slow_ms
        {
            out.push(Anomaly::ConsistentlySlow {
                mean_ms: mean as u64,
                p50_ms: p50,
                responses: responses.count,
            });
        }
    }
    if responses.contested_rounds >= rules.min_contested_rounds.max(1)
        && responses.last_in_round as f64 >= rules.last_share * responses.contested_rounds as f64
    {
        out.push(Anomaly::AlwaysLast {
            last: responses.last_in_round,
            rounds: responses.contested_rounds,
        });
    }
    out
}

// ----- rows ------------------------------------------------------------------------------

fn ensure(conn: &Connection, signer: &SignerKey) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO signers (signer) VALUES (?1) ON CONFLICT (signer) DO NOTHING",
    )?
    .execute(params![signer])?;
    Ok(())
}

pub(crate) fn record_session(
    conn: &Connection,
    signer: &SignerKey,
    success: bool,
) -> Result<(), Error> {
    ensure(conn, signer)?;
    let sql = if success {
        "UPDATE signers SET sessions_succeeded = sessions_succeeded + 1 WHERE signer = ?1"
    } else {
        "UPDATE signers SET sessions_failed = sessions_failed + 1 WHERE signer = ?1"
    };
    conn.prepare_cached(sql)?.execute(params![signer])?;
    Ok(())
}

pub(crate) fn record_blame(conn: &Connection, signer: &SignerKey) -> Result<(), Error> {
    ensure(conn, signer)?;
    conn.prepare_cached("UPDATE signers SET blame_count = blame_count + 1 WHERE signer = ?1")?
        .execute(params![signer])?;
    Ok(())
}

pub(crate) fn record_timeout(
    conn: &Connection,
    signer: &SignerKey,
    phase: TimeoutPhase,
) -> Result<(), Error> {
    ensure(conn, signer)?;
    conn.prepare_cached(
        "INSERT INTO signer_timeouts (signer, phase, count) VALUES (?1, ?2, 1)
         ON CONFLICT (signer, phase) DO UPDATE SET count = count + 1",
    )?
    .execute(params![signer, phase.as_str()])?;
    Ok(())
}

/// One response in a round: `latency_ms` after the round's first message; `contested` if two
/// or more co-signers responded; `last` if this one was the latest of them.
pub(crate) fn record_response(
    conn: &Connection,
    signer: &SignerKey,
    phase: RoundPhase,
    latency_ms: u64,
    contested: bool,
    last: bool,
) -> Result<(), Error> {
    ensure(conn, signer)?;
    conn.prepare_cached(
        "INSERT INTO signer_responses (signer, phase, responses, total_ms, contested, last)
         VALUES (?1, ?2, 1, ?3, ?4, ?5)
         ON CONFLICT (signer, phase) DO UPDATE SET
             responses = responses + 1, total_ms = total_ms + excluded.total_ms,
             contested = contested + excluded.contested, last = last + excluded.last",
    )?
    .execute(params![
        signer,
        phase.as_str(),
        ms(latency_ms),
        contested,
        last
    ])?;
    conn.prepare_cached(
        "INSERT INTO signer_latency (signer, phase, bucket, count) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (signer, phase, bucket) DO UPDATE SET count = count + 1",
    )?
    .execute(params![
        signer,
        phase.as_str(),
        bucket_of(latency_ms) as i64
    ])?;
    Ok(())
}

pub(crate) fn seen(conn: &Connection, signer: &SignerKey, now_ms: u64) -> Result<(), Error> {
    ensure(conn, signer)?;
    conn.prepare_cached(
        "UPDATE signers SET first_seen_ms = coalesce(first_seen_ms, ?2),
                            last_seen_ms = max(coalesce(last_seen_ms, ?2), ?2)
         WHERE signer = ?1",
    )?
    .execute(params![signer, ms(now_ms)])?;
    Ok(())
}

/// Claims a round for response accounting; false if it was already counted.
pub(crate) fn claim_round(
    conn: &Connection,
    session_id: &[u8; 32],
    attempt: u32,
    phase: RoundPhase,
) -> Result<bool, Error> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO rounds_counted (session_id, attempt, phase) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![session_id, attempt, phase.as_str()])?;
    Ok(inserted == 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Timeout,
    Blame,
    Broadcast,
}

impl Fault {
    fn as_str(self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::Blame => "blame",
            Fault::Broadcast => "broadcast",
        }
    }
}

pub(crate) fn add_fault(
    conn: &Connection,
    session_id: &[u8; 32],
    signer: &SignerKey,
    fault: Fault,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO session_faults (session_id, signer, fault) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![session_id, signer, fault.as_str()])?;
    Ok(())
}

/// The distinct signers that caused trouble in a session.
pub(crate) fn faulty(conn: &Connection, session_id: &[u8; 32]) -> Result<Vec<SignerKey>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT signer FROM session_faults WHERE session_id = ?1 ORDER BY signer",
    )?;
    let rows = stmt.query_map(params![session_id], |r| fixed::<33>(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn blacklist_add(
    conn: &Connection,
    signer: &SignerKey,
    reason: &str,
    now_ms: u64,
) -> Result<bool, Error> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO blacklist (signer, reason, since_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (signer) DO NOTHING",
        )?
        .execute(params![signer, reason, ms(now_ms)])?;
    Ok(changed == 1)
}

pub(crate) fn blacklist_remove(conn: &Connection, signer: &SignerKey) -> Result<bool, Error> {
    let changed = conn
        .prepare_cached("DELETE FROM blacklist WHERE signer = ?1")?
        .execute(params![signer])?;
    Ok(changed == 1)
}

pub(crate) fn blacklisted(
    conn: &Connection,
    signer: &SignerKey,
) -> Result<Option<BlacklistEntry>, Error> {
    Ok(conn
        .prepare_cached("SELECT reason, since_ms FROM blacklist WHERE signer = ?1")?
        .query_row(params![signer], |r| {
            Ok(BlacklistEntry {
                signer: *signer,
                reason: r.get(0)?,
                since_ms: u64_col(r, 1)?,
            })
        })
        .optional()?)
}

pub(crate) fn blacklist(conn: &Connection) -> Result<Vec<BlacklistEntry>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT signer, reason, since_ms FROM blacklist ORDER BY since_ms")?;
    let rows = stmt.query_map([], |r| {
        Ok(BlacklistEntry {
            signer: fixed(r, 0)?,
            reason: r.get(1)?,
            since_ms: u64_col(r, 2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn raised(conn: &Connection, signer: &SignerKey) -> Result<Vec<String>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT rule FROM anomalies WHERE signer = ?1 ORDER BY rule")?;
    let rows = stmt.query_map(params![signer], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn raise(
    conn: &Connection,
    signer: &SignerKey,
    rule: &str,
    now_ms: u64,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO anomalies (signer, rule, raised_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![signer, rule, ms(now_ms)])?;
    Ok(())
}

pub(crate) fn clear(conn: &Connection, signer: &SignerKey, rule: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM anomalies WHERE signer = ?1 AND rule = ?2")?
        .execute(params![signer, rule])?;
    Ok(())
}

pub(crate) fn stats(conn: &Connection, signer: &SignerKey) -> Result<Option<SignerStats>, Error> {
    let base = conn
        .prepare_cached(
            "SELECT sessions_succeeded, sessions_failed, blame_count, first_seen_ms, last_seen_ms
             FROM signers WHERE signer = ?1",
        )?
        .query_row(params![signer], |r| {
            Ok((
                u64_col(r, 0)?,
                u64_col(r, 1)?,
                u64_col(r, 2)?,
                u64_opt(r, 3)?,
                u64_opt(r, 4)?,
            ))
        })
        .optional()?;
    let blacklisted = blacklisted(conn, signer)?;
    let Some((succeeded, failed, blames, first_seen, last_seen)) = base else {
        return Ok(blacklisted.map(|entry| SignerStats {
            blacklisted: Some(entry),
            ..SignerStats::empty(*signer)
        }));
    };
    let mut stats = SignerStats {
        sessions_succeeded: succeeded,
        sessions_failed: failed,
        blame_count: blames,
        first_seen_ms: first_seen,
        last_seen_ms: last_seen,
        blacklisted,
        ..SignerStats::empty(*signer)
    };
    let mut stmt =
        conn.prepare_cached("SELECT phase, count FROM signer_timeouts WHERE signer = ?1")?;
    let rows = stmt.query_map(params![signer], |r| {
        Ok((r.get::<_, String>(0)?, u64_col(r, 1)?))
    })?;
    for row in rows {
        let (phase, count) = row?;
        if let Some(phase) = TimeoutPhase::ALL.into_iter().find(|p| p.as_str() == phase) {
            stats.timeouts.insert(phase, count);
        }
    }
    let phase_of = |text: &str| RoundPhase::ALL.into_iter().find(|p| p.as_str() == text);
    let mut stmt = conn.prepare_cached(
        "SELECT phase, responses, total_ms, contested, last FROM signer_responses WHERE signer = ?1",
    )?;
    let rows = stmt.query_map(params![signer], |r| {
        Ok((
            r.get::<_, String>(0)?,
            u64_col(r, 1)?,
            u64_col(r, 2)?,
            u64_col(r, 3)?,
            u64_col(r, 4)?,
        ))
    })?;
    for row in rows {
        let (phase, count, total_ms, contested, last) = row?;
        if let Some(phase) = phase_of(&phase) {
            let entry = stats.responses.entry(phase).or_default();
            entry.count = count;
            entry.total_ms = total_ms;
            entry.contested_rounds = contested;
            entry.last_in_round = last;
        }
    }
    let mut stmt =
        conn.prepare_cached("SELECT phase, bucket, count FROM signer_latency WHERE signer = ?1")?;
    let rows = stmt.query_map(params![signer], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, u64_col(r, 2)?))
    })?;
    for row in rows {
        let (phase, bucket, count) = row?;
        if let (Some(phase), Ok(bucket)) = (phase_of(&phase), usize::try_from(bucket)) {
            if bucket < BUCKETS {
                stats.responses.entry(phase).or_default().histogram[bucket] = count;
            }
        }
    }
    Ok(Some(stats))
}

pub(crate) fn all(conn: &Connection) -> Result<Vec<SignerStats>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT signer FROM signers UNION SELECT signer FROM blacklist ORDER BY 1",
    )?;
    let keys = stmt
        .query_map([], |r| fixed::<33>(r, 0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(stats) = stats(conn, &key)? {
            out.push(stats);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(250), 0);
        assert_eq!(bucket_of(251), 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut r = ResponseStats::default();
        assert_eq!(r.p50_ms(), None);
        for latency in [100, 200, 300, 900, 40_000] {
            r.histogram[bucket_of(latency)] += 1;
            r.count += 1;
            r.total_ms += latency;
        }
        assert_eq!(r.p50_ms(), Some(500));
        assert_eq!(r.p95_ms(), Some(60_000));
        assert_eq!(r.mean_ms(), Some(8_300.0));
    }
}
