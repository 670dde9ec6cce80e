//! What the UI receives about sessions and the chain (generated to TypeScript with ts-rs).
//! Public data only: ids and keys as hex, amounts in satoshis, times in Unix milliseconds.

use lotus::secp256k1::PublicKey;
use protocol::session::{AbortReason, Outcome, WaitingFor};
use serde::Serialize;
use ts_rs::TS;

use crate::runtime::SessionDetail;

/// A signing session as its screen shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct SessionView {
    pub session_id: String,
    pub group_id: String,
    pub group_name: String,
    /// 1-based member number of the proposer.
    pub proposer: u32,
    pub attempt: u32,
    /// `commitments`, `nonces`, `signatures`, `signed` or `closed`.
    pub phase: String,
    /// The digest an approval is bound to.
    pub review_digest: String,
    pub txid: String,
    pub outputs: Vec<SessionOutputView>,
    pub inputs: Vec<SessionInputView>,
    #[ts(type = "number")]
    pub sent_sats: i64,
    #[ts(type = "number")]
    pub change_sats: i64,
    #[ts(type = "number")]
    pub fee_sats: i64,
    #[ts(type = "number")]
    pub fee_rate_sat_per_kb: u64,
    pub signed_size_bytes: u32,
    /// Plain-language warnings to read before approving.
    pub warnings: Vec<String>,
    #[ts(type = "number")]
    pub created_ms: u64,
    #[ts(type = "number")]
    pub expires_ms: u64,
    pub approved_by_me: bool,
    pub members: Vec<SessionMemberView>,
    pub election: Option<ElectionView>,
    /// The broadcast slots once the transaction is signed.
    pub failover: Vec<FailoverSlotView>,
    /// `confirmed` or `aborted` once the session ended.
    pub outcome: Option<String>,
    /// Why it ended without a signature, in plain words.
    pub abort_reason: Option<String>,
    /// The member a verified blame names (1-based), if any.
    pub blamed_member: Option<u32>,
    /// Approving needs the code the proposer reads out (sent plus fee is above the setting).
    pub needs_confirmation_code: bool,
    /// The code to read out, only in the app that made the proposal.
    pub confirmation_code: Option<String>,
    /// This app made the proposal (signed with this member's key is not enough).
    pub made_here: bool,
}

impl SessionView {
    /// Waiting for this member's review: still open and not approved by them (the Inbox's
    /// "Waiting for you", the tray count).
    pub fn needs_me(&self) -> bool {
        self.outcome.is_none()
            && !self.approved_by_me
            && self.phase != "signed"
            && self.phase != "closed"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct SessionOutputView {
    pub address: Option<String>,
    #[ts(type = "number")]
    pub amount_sats: i64,
    pub is_change: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct SessionInputView {
    pub outpoint: String,
    #[ts(type = "number")]
    pub amount_sats: i64,
}

/// One member's part in the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct SessionMemberView {
    pub number: u32,
    pub public_key: String,
    pub is_me: bool,
    pub approved: bool,
    /// What we still wait for from them: `approval`, `commitment`, `nonces`, `partials`.
    pub waiting_for: Vec<String>,
    #[ts(type = "number | null")]
    pub last_heard_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ElectionView {
    pub method: String,
    /// 1-based member numbers: the coordinator first, then the backups in failover order.
    pub priority: Vec<u32>,
    /// What every round-2 message carries, so all members can check they elected the same.
    pub proof: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct FailoverSlotView {
    pub member: u32,
    #[ts(type = "number")]
    pub starts_ms: u64,
    #[ts(type = "number")]
    pub fails_ms: u64,
    pub failed: bool,
}

/// What changed; the UI fetches a fresh snapshot of it (a slow listener loses nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Session {
        id: String,
    },
    Group {
        id: String,
    },
    Chain,
    /// Notices were missed: refetch everything shown.
    Everything,
}

/// The chain backends and what each last said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ChainStatusView {
    pub seen_quorum: u32,
    pub backends: Vec<BackendView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct BackendView {
    pub label: String,
    pub height: Option<u32>,
    pub tip: Option<String>,
    /// Why it did not answer.
    pub error: Option<String>,
}

impl From<chain::multi::Report<chain::Tip>> for BackendView {
    fn from(report: chain::multi::Report<chain::Tip>) -> Self {
        match report.answer {
            Ok(tip) => BackendView {
                label: report.backend,
                height: Some(tip.height),
                tip: Some(tip.hash),
                error: None,
            },
            Err(e) => BackendView {
                label: report.backend,
                height: None,
                tip: None,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Builds the view; `members` are the group's keys in member order.
pub fn session_view(
    detail: &SessionDetail,
    group_name: &str,
    members: &[PublicKey],
    me: &PublicKey,
) -> SessionView {
    let review = &detail.review;
    let closed = detail.summary.closed;
    let signed = detail.summary.signed_txid.is_some();
    let phase = if closed {
        "closed"
    } else if signed {
        "signed"
    } else {
        detail.phase.name()
    };
    let (outcome, abort_reason, blamed_member) = match &detail.outcome {
        None => (None, None, None),
        Some(Outcome::Confirmed { .. }) => (Some("confirmed".to_owned()), None, None),
        Some(Outcome::Aborted(reason)) => (
            Some("aborted".to_owned()),
            Some(describe_abort(reason)),
            reason.culprit().map(|m| u32::from(m) + 1),
        ),
    };
    SessionView {
        session_id: detail.summary.session_id.to_string(),
        group_id: detail.summary.group_id.to_string(),
        group_name: group_name.to_owned(),
        proposer: u32::from(review.proposer) + 1,
        attempt: detail.summary.attempt,
        phase: phase.to_owned(),
        review_digest: hex::encode(review.digest),
        txid: review.txid.to_display_hex(),
        outputs: review
            .outputs
            .iter()
            .map(|o| SessionOutputView {
                address: o.address.clone(),
                amount_sats: o.amount_sat,
                is_change: o.is_change,
            })
            .collect(),
        inputs: detail
            .inputs
            .iter()
            .map(|(outpoint, output)| SessionInputView {
                outpoint: format!("{}:{}", outpoint.txid.to_display_hex(), outpoint.vout),
                amount_sats: output.value,
            })
            .collect(),
        sent_sats: review.sent_sat,
        change_sats: review.change_sat,
        fee_sats: review.fee_sat,
        fee_rate_sat_per_kb: review.fee_rate_sat_per_kb,
        signed_size_bytes: review.signed_size_bytes as u32,
        warnings: review.warnings.iter().map(|w| format!("{w:?}")).collect(),
        created_ms: review.created_ms,
        expires_ms: review.expires_ms,
        approved_by_me: detail.summary.approved,
        members: members
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let index = i as u16;
                let waiting = detail.waiting.iter().find(|w| w.member == index);
                SessionMemberView {
                    number: i as u32 + 1,
                    public_key: hex::encode(key.serialize()),
                    is_me: key == me,
                    approved: detail.approvals.contains(&index),
                    waiting_for: waiting
                        .map(|w| w.waiting_for.iter().map(|f| waiting_name(*f)).collect())
                        .unwrap_or_default(),
                    last_heard_ms: waiting.and_then(|w| w.last_heard_ms),
                }
            })
            .collect(),
        election: detail.election.as_ref().map(|e| ElectionView {
            method: e.method.name().to_owned(),
            priority: e.priority.iter().map(|&m| u32::from(m) + 1).collect(),
            proof: hex::encode(e.proof),
        }),
        failover: detail
            .failover
            .iter()
            .flatten()
            .map(|slot| FailoverSlotView {
                member: u32::from(slot.member) + 1,
                starts_ms: slot.starts_ms,
                fails_ms: slot.fails_ms,
                failed: slot.failed,
            })
            .collect(),
        outcome,
        abort_reason,
        blamed_member,
        needs_confirmation_code: false,
        confirmation_code: None,
        made_here: false,
    }
}

/// Shown first on a proposal signed with this member's key that this app did not make.
pub const FOREIGN_PROPOSAL_WARNING: &str = "This proposal is signed with YOUR key, but this app \
    did not make it: your key may be in someone else's hands. Reject it, tell your co-signers, \
    and move the group's funds to a new group with a new key.";

/// Adds the out-of-band confirmation (see [`crate::confirmation`]): the app that made the
/// proposal shows the code to read out; any other member must type it to approve once what
/// leaves the group (sent plus fee) is above `confirm_above_sats`.
pub fn with_confirmation(
    mut view: SessionView,
    digest: &[u8; 32],
    made_here: bool,
    confirm_above_sats: Option<i64>,
) -> SessionView {
    view.made_here = made_here;
    if made_here {
        view.confirmation_code = Some(crate::confirmation::code(digest));
    } else {
        let leaving = view.sent_sats.saturating_add(view.fee_sats);
        view.needs_confirmation_code = confirm_above_sats.is_some_and(|limit| leaving > limit);
    }
    view
}

fn waiting_name(what: WaitingFor) -> String {
    match what {
        WaitingFor::Approval => "approval",
        WaitingFor::Commitment => "commitment",
        WaitingFor::Nonces => "nonces",
        WaitingFor::Partials => "partials",
    }
    .to_owned()
}

/// An abort reason in plain words, members numbered from 1 as the screens show them.
pub fn describe_abort(reason: &AbortReason) -> String {
    let n = |m: &u16| u32::from(*m) + 1;
    match reason {
        AbortReason::RejectedBy { member, reason } => {
            format!("member {} rejected the proposal: {reason}", n(member))
        }
        AbortReason::InvalidPartial { member } => format!(
            "member {} sent a partial signature that does not verify (blamed, with proof)",
            n(member)
        ),
        AbortReason::Equivocation { member } => format!(
            "member {} sent two different messages for the same step (blamed, with proof)",
            n(member)
        ),
        AbortReason::ConflictingProposals { proposer } => format!(
            "member {} signed two different proposals for this session; nothing was signed",
            n(proposer)
        ),
        AbortReason::MalformedContribution { member } => {
            format!("member {} sent a malformed contribution", n(member))
        }
        AbortReason::Expired => "the proposal expired before everyone signed".to_owned(),
        AbortReason::NonceRegistryConflict => {
            "a nonce was already marked used; the session stopped to stay safe".to_owned()
        }
        AbortReason::Restart { member } => {
            format!("member {} restarted during the attempt", n(member))
        }
        AbortReason::TooManyRestarts { member } => {
            format!("member {} restarted more attempts than allowed", n(member))
        }
        AbortReason::DegenerateNonces => "the nonces summed to an unusable point".to_owned(),
        AbortReason::PoolUnusable => "the prepared nonces could not be used".to_owned(),
        AbortReason::AttemptsExhausted => "every attempt failed".to_owned(),
        AbortReason::Evicted => {
            "dropped to make room: too many proposals were waiting for approval".to_owned()
        }
    }
}

/// The tamper-evident audit log, as checked just now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct AuditView {
    /// `false` when an entry was altered, removed or reordered (see `problem`).
    pub intact: bool,
    #[ts(type = "number")]
    pub entries: u64,
    #[ts(type = "number | null")]
    pub head_seq: Option<u64>,
    pub head_hash: Option<String>,
    /// Signed heads checked against the log.
    #[ts(type = "number")]
    pub anchors: u64,
    /// What co-signers' signed heads say about their own logs.
    pub peers: Vec<PeerAuditView>,
    /// The first broken entry and what is wrong with it.
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct PeerAuditView {
    pub signer: String,
    #[ts(type = "number")]
    pub heads: u64,
    #[ts(type = "number")]
    pub latest_seq: u64,
    /// Sequence numbers at which it signed two different histories (it rewrote its log).
    pub rewritten_at: Vec<String>,
}

/// A co-signer's record, from the evidence this profile holds.
#[derive(Clone, Debug, PartialEq, Serialize, TS)]
pub struct ReputationView {
    pub signer: String,
    #[ts(type = "number")]
    pub sessions_succeeded: u64,
    #[ts(type = "number")]
    pub sessions_failed: u64,
    /// Verified blames (each with proof).
    #[ts(type = "number")]
    pub blame_count: u64,
    /// The analysis's §8.1 score (0 to 1).
    pub score: f64,
    #[ts(type = "number | null")]
    pub last_seen_ms: Option<u64>,
    /// Why and since when it is refused, if blacklisted.
    pub blacklisted: Option<String>,
    /// The score's parts: the share of sessions completed, and how recently it was seen
    /// (each 0 to 1).
    pub success_rate: f64,
    pub recency: f64,
    /// Timeouts by phase (commitments, nonces, signatures, broadcast), zeros included.
    pub timeouts: Vec<PhaseCountView>,
    /// Response times by signing round: the Co-signers chart.
    pub responses: Vec<ResponseTimesView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct PhaseCountView {
    pub phase: String,
    #[ts(type = "number")]
    pub count: u64,
}

/// How long after a round's first message this co-signer's arrived, in one round kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ResponseTimesView {
    pub phase: String,
    #[ts(type = "number")]
    pub count: u64,
    #[ts(type = "number | null")]
    pub mean_ms: Option<u64>,
    /// Upper bounds (the bucket the quantile falls in); `null` with no data or above the
    /// last bucket.
    #[ts(type = "number | null")]
    pub p50_ms: Option<u64>,
    #[ts(type = "number | null")]
    pub p95_ms: Option<u64>,
    /// Rounds it was the last of two or more to answer, of such rounds.
    #[ts(type = "number")]
    pub last_in_round: u64,
    #[ts(type = "number")]
    pub contested_rounds: u64,
    pub buckets: Vec<LatencyBucketView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct LatencyBucketView {
    /// This bucket holds answers up to this many ms (after the previous bucket's bound);
    /// `null`: slower than every bound.
    #[ts(type = "number | null")]
    pub up_to_ms: Option<u64>,
    #[ts(type = "number")]
    pub count: u64,
}

pub fn audit_view(result: Result<store::AuditSummary, String>) -> AuditView {
    match result {
        Ok(summary) => AuditView {
            intact: true,
            entries: summary.entries,
            head_seq: summary.head.as_ref().map(|h| h.seq),
            head_hash: summary.head.as_ref().map(|h| hex::encode(h.hash)),
            anchors: summary.anchors,
            peers: summary
                .peers
                .iter()
                .map(|p| PeerAuditView {
                    signer: hex::encode(p.signer),
                    heads: p.heads,
                    latest_seq: p.latest_seq,
                    rewritten_at: p.rewritten_at.iter().map(u64::to_string).collect(),
                })
                .collect(),
            problem: None,
        },
        Err(problem) => AuditView {
            intact: false,
            entries: 0,
            head_seq: None,
            head_hash: None,
            anchors: 0,
            peers: Vec::new(),
            problem: Some(problem),
        },
    }
}

fn response_times_view(
    phase: store::RoundPhase,
    stats: &store::ResponseStats,
) -> ResponseTimesView {
    let bounded = |ms: Option<u64>| ms.filter(|&ms| ms != u64::MAX);
    ResponseTimesView {
        phase: phase.as_str().to_owned(),
        count: stats.count,
        mean_ms: stats.mean_ms().map(|ms| ms.round() as u64),
        p50_ms: bounded(stats.p50_ms()),
        p95_ms: bounded(stats.p95_ms()),
        last_in_round: stats.last_in_round,
        contested_rounds: stats.contested_rounds,
        buckets: stats
            .histogram
            .iter()
            .enumerate()
            .map(|(i, &count)| LatencyBucketView {
                up_to_ms: store::reputation::LATENCY_BUCKETS_MS.get(i).copied(),
                count,
            })
            .collect(),
    }
}

pub fn reputation_view(stats: &store::SignerStats, now_ms: u64) -> ReputationView {
    let score = stats.score(now_ms);
    let none = store::ResponseStats::default();
    ReputationView {
        success_rate: score.success_rate,
        recency: score.recency,
        timeouts: store::reputation::TimeoutPhase::ALL
            .iter()
            .map(|phase| PhaseCountView {
                phase: phase.as_str().to_owned(),
                count: stats.timeouts.get(phase).copied().unwrap_or(0),
            })
            .collect(),
        responses: store::RoundPhase::ALL
            .iter()
            .map(|phase| response_times_view(*phase, stats.responses.get(phase).unwrap_or(&none)))
            .collect(),
        signer: hex::encode(stats.signer),
        sessions_succeeded: stats.sessions_succeeded,
        sessions_failed: stats.sessions_failed,
        blame_count: stats.blame_count,
        score: score.value,
        last_seen_ms: stats.last_seen_ms,
        blacklisted: stats
            .blacklisted
            .as_ref()
            .map(|b| format!("{} (since {} ms)", b.reason, b.since_ms)),
    }
}

/// The Network screen: how this laptop reaches its co-signers, and what the network layer
/// refused. `status` is `null` offline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct NetworkView {
    pub status: Option<NetStatusView>,
    pub peers: Vec<PeerView>,
    /// Trusted bootstrap/relay nodes from the settings.
    pub bootstrap: Vec<String>,
    /// Distinct subnets (/24, /48) among direct connections: few means easy to eclipse.
    pub subnets: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct NetStatusView {
    pub peer_id: String,
    pub listening: Vec<String>,
    pub connected_peers: u32,
    pub members_reachable: u32,
    pub members_known: u32,
    /// "public", "private" or "unknown" (AutoNAT).
    pub nat: String,
    /// Messages refused, by reason.
    #[ts(type = "Record<string, number>")]
    pub rejected: std::collections::BTreeMap<String, u64>,
    #[ts(type = "number")]
    pub ignored: u64,
    #[ts(type = "number")]
    pub rate_limited: u64,
    #[ts(type = "number")]
    pub connections_refused: u64,
    #[ts(type = "number")]
    pub banned_peers: u64,
    /// Possible eclipse or isolation, in words.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct PeerView {
    pub peer_id: String,
    /// The signer key (hex) this peer proved, if it did.
    pub signer: Option<String>,
    pub member: bool,
    pub address: String,
    /// "direct", "relayed" or "hole-punched".
    pub path: String,
}

impl From<net::NetStatus> for NetStatusView {
    fn from(s: net::NetStatus) -> Self {
        Self {
            peer_id: s.peer_id,
            listening: s.listening,
            connected_peers: s.connected_peers as u32,
            members_reachable: s.members_reachable as u32,
            members_known: s.members_known as u32,
            nat: s.nat,
            rejected: s.rejected,
            ignored: s.ignored,
            rate_limited: s.rate_limited,
            connections_refused: s.connections_refused,
            banned_peers: s.banned_peers,
            warnings: s.warnings,
        }
    }
}

impl From<net::PeerInfo> for PeerView {
    fn from(p: net::PeerInfo) -> Self {
        Self {
            peer_id: p.peer_id,
            signer: p.signer,
            member: p.member,
            address: p.address,
            path: p.path.to_owned(),
        }
    }
}

/// The Settings screen: what `settings.json` holds, and where things are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct SettingsView {
    pub network: crate::Network,
    pub chain: Vec<String>,
    pub seen_quorum: u32,
    #[ts(type = "number")]
    pub fee_rate_per_kb: i64,
    pub bootstrap: Vec<String>,
    pub settings_file: String,
    pub data_dir: String,
    pub key_store: String,
    /// Whether the app is on the peer-to-peer network (it is, unless started offline).
    pub online: bool,
    /// Above this many satoshis, approving needs the proposer's confirmation code.
    #[ts(type = "number | null")]
    pub confirm_above_sats: Option<i64>,
    /// Desktop notifications for proposals, expiry, blame, failover and confirmations.
    pub notifications: bool,
}

/// What the Settings screen saves. The network is not among it: a profile's groups and
/// addresses belong to one network.
#[derive(Clone, Debug, serde::Deserialize, TS)]
pub struct SettingsForm {
    pub chain: Vec<String>,
    pub seen_quorum: u32,
    #[ts(type = "number")]
    pub fee_rate_per_kb: i64,
    pub bootstrap: Vec<String>,
    /// XPI as typed; empty: never ask for a confirmation code.
    pub confirm_above_xpi: String,
    pub notifications: bool,
}

/// One chain backend tried before it is saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ChainTestView {
    pub backend: BackendView,
}

/// The guide of the app's demo ("Try a demo group"): its steps as they happen. Only a demo
/// window has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct DemoView {
    pub steps: Vec<DemoStepView>,
    /// Why the demo stopped early, in plain words.
    pub failure: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct DemoStepView {
    pub title: String,
    pub state: DemoStepState,
    /// What happened, or what the person is asked to do.
    pub detail: Option<String>,
    /// The session the step is about, to open it.
    pub session_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DemoStepState {
    Waiting,
    Running,
    /// The person is asked to act (review and approve).
    YourTurn,
    Done,
    Failed,
}

/// An open payment session for tests: `sent_sats` out, `fee_sats` fee, nobody approved.
#[cfg(test)]
pub(crate) fn sample_session(sent_sats: i64, fee_sats: i64) -> SessionView {
    SessionView {
        session_id: String::new(),
        group_id: String::new(),
        group_name: String::new(),
        proposer: 1,
        attempt: 0,
        phase: "commitments".into(),
        review_digest: String::new(),
        txid: String::new(),
        outputs: vec![],
        inputs: vec![],
        sent_sats,
        change_sats: 0,
        fee_sats,
        fee_rate_sat_per_kb: 1_000,
        signed_size_bytes: 0,
        warnings: vec![],
        created_ms: 0,
        expires_ms: 0,
        approved_by_me: false,
        members: vec![],
        election: None,
        failover: vec![],
        outcome: None,
        abort_reason: None,
        blamed_member: None,
        needs_confirmation_code: false,
        confirmation_code: None,
        made_here: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::reputation::TimeoutPhase;

    fn payment(sent_sats: i64, fee_sats: i64) -> SessionView {
        sample_session(sent_sats, fee_sats)
    }

    #[test]
    fn the_code_is_asked_when_sent_plus_fee_is_above_the_limit_and_shown_only_where_it_was_made() {
        let digest = [5; 32];
        let asks = |sent, fee, limit| {
            with_confirmation(payment(sent, fee), &digest, false, limit).needs_confirmation_code
        };
        assert!(!asks(900, 100, Some(1_000)), "at the limit");
        assert!(asks(901, 100, Some(1_000)), "one satoshi above");
        assert!(asks(100, 901, Some(1_000)), "the fee leaves the group too");
        assert!(!asks(i64::MAX, 1, None), "no limit set");
        let other = with_confirmation(payment(5_000, 100), &digest, false, Some(1_000));
        assert_eq!(
            other.confirmation_code, None,
            "an approver never sees the code"
        );
        let mine = with_confirmation(payment(5_000, 100), &digest, true, Some(1_000));
        assert_eq!(
            mine.confirmation_code,
            Some(crate::confirmation::code(&digest))
        );
        assert!(!mine.needs_confirmation_code);
    }

    #[test]
    fn a_cosigners_record_shows_its_score_parts_timeouts_and_response_times() {
        // Three answers: two within 250 ms, one within 5 s.
        let mut histogram = [0; store::reputation::BUCKETS];
        histogram[0] = 2;
        histogram[4] = 1;
        let nonces = store::ResponseStats {
            count: 3,
            total_ms: 100 + 200 + 4_000,
            histogram,
            contested_rounds: 3,
            last_in_round: 1,
        };
        let stats = store::SignerStats {
            signer: [2; 33],
            sessions_succeeded: 3,
            sessions_failed: 1,
            blame_count: 0,
            timeouts: [(TimeoutPhase::Broadcast, 2)].into_iter().collect(),
            responses: [(store::RoundPhase::Nonces, nonces)].into_iter().collect(),
            first_seen_ms: Some(0),
            last_seen_ms: Some(1_000),
            blacklisted: None,
        };
        let view = reputation_view(&stats, 1_000);
        assert_eq!(view.success_rate, 0.75);
        let timeouts: Vec<(&str, u64)> = view
            .timeouts
            .iter()
            .map(|t| (t.phase.as_str(), t.count))
            .collect();
        assert_eq!(
            timeouts,
            [
                ("commitments", 0),
                ("nonces", 0),
                ("signatures", 0),
                ("broadcast", 2)
            ]
        );
        let phases: Vec<&str> = view.responses.iter().map(|r| r.phase.as_str()).collect();
        assert_eq!(phases, ["commitments", "nonces", "signatures"]);
        let answered = &view.responses[1];
        assert_eq!(
            (
                answered.count,
                answered.mean_ms,
                answered.p50_ms,
                answered.p95_ms
            ),
            (3, Some(1_433), Some(250), Some(5_000))
        );
        assert_eq!(answered.buckets.len(), store::reputation::BUCKETS);
        assert_eq!(answered.buckets[0].up_to_ms, Some(250));
        assert_eq!(
            answered.buckets.last().unwrap().up_to_ms,
            None,
            "the open bucket"
        );
        let counted: u64 = answered.buckets.iter().map(|b| b.count).sum();
        assert_eq!(counted, 3);
        assert_eq!(view.responses[0].count, 0);
        assert_eq!(view.responses[0].p50_ms, None);
    }
}
