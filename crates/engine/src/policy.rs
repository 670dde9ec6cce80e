//! The policy co-signer: an always-on node approves by itself the sessions its written rules
//! allow (groups, amount per session and per day, destinations, fee ceiling, hours) and leaves
//! everything else for a person. Each automatic approval is written to the audit log, with the
//! rule that decided, before the approval itself.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::views::SessionView;
use crate::Engine;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

/// One rule; a session is approved when every condition the rule sets holds. A condition left
/// out does not restrict.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// Group ids (or unambiguous prefixes); empty: any group.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Most a session may send out of the group (change excluded), satoshis.
    pub max_per_session_sats: Option<i64>,
    /// Most all sessions this rule approved in the last 24 hours may send, satoshis.
    pub max_per_day_sats: Option<i64>,
    /// The only addresses payments may go to; empty: any.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// Highest fee, satoshis.
    pub max_fee_sats: Option<i64>,
    /// UTC hours during which the rule approves, as [from, to): e.g. [8, 20].
    pub hours_utc: Option<[u8; 2]>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy file {path}: {error}")]
    Read { path: String, error: String },
    #[error("the policy file {path} is not valid: {error}")]
    Invalid { path: String, error: String },
}

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        Self::parse(&text).map_err(|error| PolicyError::Invalid {
            path: path.display().to_string(),
            error,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        for rule in &policy.rules {
            // A short prefix could be matched by a group id ground for it.
            if let Some(short) = rule.groups.iter().find(|g| g.len() < 16) {
                return Err(format!(
                    "rule '{}': group '{short}' is too short; give at least 16 hex characters of its id",
                    rule.name
                ));
            }
            if let Some([from, to]) = rule.hours_utc {
                if from > 23 || to > 24 || from >= to {
                    return Err(format!(
                        "rule '{}': hours_utc must be [from, to) within 0..=24",
                        rule.name
                    ));
                }
            }
        }
        Ok(policy)
    }

    /// The first rule that approves `session`, given what rules approved in the last day
    /// (`spent_today(rule)`), at `now_ms`.
    pub fn decide(
        &self,
        session: &SessionView,
        now_ms: u64,
        spent_today: impl Fn(&str) -> i64,
    ) -> Result<&Rule, String> {
        // Above the confirmation-code limit, no rule may approve: it needs a person on a call.
        if session.needs_confirmation_code {
            return Err(CODE_NEEDED.to_owned());
        }
        let mut why = Vec::new();
        for rule in &self.rules {
            match rule.allows(session, now_ms, spent_today(&rule.name)) {
                Ok(()) => return Ok(rule),
                Err(reason) => why.push(format!("{}: {reason}", rule.name)),
            }
        }
        if why.is_empty() {
            why.push("no rules".into());
        }
        Err(why.join("; "))
    }
}

impl Rule {
    fn allows(&self, s: &SessionView, now_ms: u64, spent_today: i64) -> Result<(), String> {
        if !self.groups.is_empty() && !self.groups.iter().any(|g| s.group_id.starts_with(g)) {
            return Err("another group".into());
        }
        if !s.warnings.is_empty() {
            return Err(format!(
                "the review has warnings: {}",
                s.warnings.join(", ")
            ));
        }
        if let Some(max) = self.max_per_session_sats {
            if s.sent_sats > max {
                return Err(format!("sends {} sats, above {max}", s.sent_sats));
            }
        }
        if let Some(max) = self.max_per_day_sats {
            if spent_today.saturating_add(s.sent_sats) > max {
                return Err(format!(
                    "{} sats today plus {} is above the daily {max}",
                    spent_today, s.sent_sats
                ));
            }
        }
        if !self.destinations.is_empty() {
            for output in s.outputs.iter().filter(|o| !o.is_change) {
                match &output.address {
                    Some(a) if self.destinations.contains(a) => {}
                    Some(a) => return Err(format!("pays {a}, not an allowed destination")),
                    None => return Err("an output has no address".into()),
                }
            }
        }
        if s.outputs.iter().any(|o| o.address.is_none()) {
            return Err("an output cannot be decoded".into());
        }
        if let Some(max) = self.max_fee_sats {
            if s.fee_sats > max {
                return Err(format!("fee {} sats, above {max}", s.fee_sats));
            }
        }
        if let Some([from, to]) = self.hours_utc {
            let hour = ((now_ms / 3_600_000) % 24) as u8;
            if hour < from || hour >= to {
                return Err(format!("{hour}:00 UTC is outside {from}:00–{to}:00"));
            }
        }
        Ok(())
    }
}

const CODE_NEEDED: &str = "it is above this profile's confirmation-code limit: a person must \
    call the proposer for the code";

/// Watches sessions and approves what the policy allows; the rest waits for a person.
pub fn spawn(engine: Arc<Engine>, policy: Policy) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = engine.changes();
        let mut decided: BTreeSet<String> = BTreeSet::new();
        // What each rule approved: (rule, time, sats), for the daily limits; rebuilt from the
        // audit log, so a restart does not hand out a fresh daily budget.
        let mut approved: Vec<(String, u64, i64)> = past_approvals(&engine).await;
        loop {
            let now = crate::unix_now_ms();
            approved.retain(|(_, at, _)| now.saturating_sub(*at) < 24 * 3_600_000);
            if let Ok(sessions) = engine.sessions().await {
                for session in sessions {
                    if session.approved_by_me
                        || session.outcome.is_some()
                        || decided.contains(&session.session_id)
                    {
                        continue;
                    }
                    decided.insert(session.session_id.clone());
                    let spent = |rule: &str| {
                        approved
                            .iter()
                            .filter(|(r, _, _)| r == rule)
                            .map(|(_, _, sats)| sats)
                            .sum()
                    };
                    match policy.decide(&session, now, spent) {
                        Ok(rule) => {
                            let name = rule.name.clone();
                            if approve(&engine, &session, &name).await {
                                approved.push((name, now, session.sent_sats));
                            }
                        }
                        Err(why) => {
                            tracing::info!(session = %session.session_id, "left for a person: {why}");
                            record(&engine, &session, false, "", &why).await;
                        }
                    }
                }
            }
            // Wake on any change, and at least every 5 s (a missed notice is harmless).
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), changes.next()).await;
        }
    })
}

/// The policy's approvals in the audit log: (rule, time, sats sent).
async fn past_approvals(engine: &Engine) -> Vec<(String, u64, i64)> {
    let Ok(log) = engine.audit_export().await else {
        return Vec::new();
    };
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            entry["event"]["kind"] == "policy_decision" && entry["event"]["approved"] == true
        })
        .filter_map(|entry| {
            Some((
                entry["event"]["rule"].as_str()?.to_owned(),
                entry["time_ms"].as_u64()?,
                entry["event"]["sent_sat"].as_i64()?,
            ))
        })
        .collect()
}

async fn record(
    engine: &Engine,
    session: &SessionView,
    approved: bool,
    rule: &str,
    reason: &str,
) -> bool {
    let (Some(session_id), Some(digest)) =
        (hex32(&session.session_id), hex32(&session.review_digest))
    else {
        return false;
    };
    let event = store::AuditEvent::PolicyDecision {
        session_id,
        digest,
        approved,
        sent_sat: session.sent_sats,
        rule: rule.into(),
        reason: reason.into(),
    };
    engine.append_audit(event).await.is_ok()
}

async fn approve(engine: &Engine, session: &SessionView, rule: &str) -> bool {
    // The decision is on record before the approval exists.
    if !record(
        engine,
        session,
        true,
        rule,
        "every condition of the rule holds",
    )
    .await
    {
        return false;
    }
    match engine
        .approve(&session.session_id, &session.review_digest, None)
        .await
    {
        Ok(_) => {
            tracing::info!(session = %session.session_id, rule, "approved by policy");
            true
        }
        Err(e) => {
            tracing::warn!(session = %session.session_id, "policy approval failed: {}", e.message);
            false
        }
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_strictly() {
        let policy = Policy::parse(
            r#"
            [[rule]]
            name = "small"
            max_per_session_sats = 1000
            hours_utc = [8, 20]
            "#,
        )
        .unwrap();
        assert_eq!(policy.rules[0].max_per_session_sats, Some(1000));
        assert!(Policy::parse("[[rule]]\nname = \"x\"\nmax_sats = 1\n").is_err());
        assert!(Policy::parse("[[rule]]\nname = \"x\"\nhours_utc = [20, 8]\n").is_err());
    }

    #[test]
    fn a_policy_leaves_a_payment_above_the_code_limit_to_the_person() {
        let policy = Policy::parse("[[rule]]\nname = \"any\"\n").unwrap();
        let mut session = crate::views::sample_session(5_000, 100);
        assert!(policy.decide(&session, 0, |_| 0).is_ok());
        session.needs_confirmation_code = true;
        let why = policy.decide(&session, 0, |_| 0).unwrap_err();
        assert_eq!(why, CODE_NEEDED);
    }
}
