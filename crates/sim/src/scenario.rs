//! What a simulation run looks like: sizes, faults, attackers, the seed.

use protocol::election::ElectionMethod;

/// A Byzantine behaviour; each is an actor that runs the honest protocol but tampers with what
/// it sends (re-signing with its own key, as a real attacker would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Byzantine {
    /// Sends a partial signature that does not verify.
    InvalidPartial,
    /// Sends two different signed round-1 messages.
    EquivocatingNonces,
    /// Sends messages claiming to be another member (signed with its own key).
    Impersonation,
    /// Re-sends old messages of this and other sessions.
    Replay,
    /// Never sends its round-0 commitment.
    WithholdCommitment,
    /// Never sends its round-1 nonces.
    WithholdNonces,
    /// Never sends its round-2 partial signatures.
    WithholdPartials,
    /// Never broadcasts when elected (the failover must cover it).
    SilentCoordinator,
    /// Sends far more proposals than the rate limit allows.
    FloodProposals,
    /// Sends messages above the size limit.
    Oversized,
    /// Sends undecodable bytes.
    Malformed,
    /// Puts a wrong election proof in its round-2 message.
    WrongElectionProof,
    /// Re-signs its messages under another group it shares with the victim, with the index it
    /// has there (the same index as another member of this group).
    CrossGroupImpersonation,
    /// Pairs an honest member's genuine Nonces with a proposal of its own that reuses the
    /// session id, and sends that "evidence" in an abort notice.
    ForgedEvidence,
    /// As proposer, sends one proposal to half the members and another (same session id) to
    /// the rest.
    ProposerEquivocation,
    /// Sends one round-1 message to some members and a different one to the others.
    NonceEquivocation,
    /// Floods junk claiming to be the other members, to exhaust their verification budget.
    OutsiderBudgetExhaustion,
    /// Floods signed messages for sessions that don't exist, to fill the early buffer.
    EarlyBufferFlood,
    /// Proposes with far-off or overflowing sequence numbers (to pick the round-robin
    /// coordinator).
    SequenceSteering,
    /// Whenever an election does not make it coordinator, claims a restart to re-roll it.
    SaltReroll,
}

impl Byzantine {
    pub const ALL: [Byzantine; 20] = [
        Byzantine::InvalidPartial,
        Byzantine::EquivocatingNonces,
        Byzantine::Impersonation,
        Byzantine::Replay,
        Byzantine::WithholdCommitment,
        Byzantine::WithholdNonces,
        Byzantine::WithholdPartials,
        Byzantine::SilentCoordinator,
        Byzantine::FloodProposals,
        Byzantine::Oversized,
        Byzantine::Malformed,
        Byzantine::WrongElectionProof,
        Byzantine::CrossGroupImpersonation,
        Byzantine::ForgedEvidence,
        Byzantine::ProposerEquivocation,
        Byzantine::NonceEquivocation,
        Byzantine::OutsiderBudgetExhaustion,
        Byzantine::EarlyBufferFlood,
        Byzantine::SequenceSteering,
        Byzantine::SaltReroll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Byzantine::InvalidPartial => "invalid-partial",
            Byzantine::EquivocatingNonces => "equivocating-nonces",
            Byzantine::Impersonation => "impersonation",
            Byzantine::Replay => "replay",
            Byzantine::WithholdCommitment => "withhold-commitment",
            Byzantine::WithholdNonces => "withhold-nonces",
            Byzantine::WithholdPartials => "withhold-partials",
            Byzantine::SilentCoordinator => "silent-coordinator",
            Byzantine::FloodProposals => "flood-proposals",
            Byzantine::Oversized => "oversized",
            Byzantine::Malformed => "malformed",
            Byzantine::WrongElectionProof => "wrong-election-proof",
            Byzantine::CrossGroupImpersonation => "cross-group-impersonation",
            Byzantine::ForgedEvidence => "forged-evidence",
            Byzantine::ProposerEquivocation => "proposer-equivocation",
            Byzantine::NonceEquivocation => "nonce-equivocation",
            Byzantine::OutsiderBudgetExhaustion => "outsider-budget-exhaustion",
            Byzantine::EarlyBufferFlood => "early-buffer-flood",
            Byzantine::SequenceSteering => "sequence-steering",
            Byzantine::SaltReroll => "salt-reroll",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether the behaviour leaves signed proof that honest members must turn into blame.
    pub fn is_provable(self) -> bool {
        matches!(
            self,
            Byzantine::InvalidPartial
                | Byzantine::EquivocatingNonces
                | Byzantine::WrongElectionProof
                | Byzantine::ProposerEquivocation
                | Byzantine::NonceEquivocation
        )
    }

    /// Whether the attacker proposes (its own sessions are not owed liveness).
    pub fn proposes(self) -> bool {
        matches!(
            self,
            Byzantine::FloodProposals
                | Byzantine::ProposerEquivocation
                | Byzantine::SequenceSteering
        )
    }

    /// Whether sessions can still complete with this attacker in the group.
    pub fn allows_completion(self) -> bool {
        matches!(
            self,
            Byzantine::Impersonation
                | Byzantine::Replay
                | Byzantine::SilentCoordinator
                | Byzantine::FloodProposals
                | Byzantine::Oversized
                | Byzantine::Malformed
                | Byzantine::WrongElectionProof
                | Byzantine::CrossGroupImpersonation
                | Byzantine::ForgedEvidence
                | Byzantine::ProposerEquivocation
                | Byzantine::OutsiderBudgetExhaustion
                | Byzantine::EarlyBufferFlood
                | Byzantine::SequenceSteering
        )
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub nodes: usize,
    pub groups: usize,
    pub signers: usize,
    /// Proposals per group.
    pub sessions_per_group: usize,
    /// Inputs per proposal (each a parallel MuSig2 instance).
    pub inputs: usize,
    pub election: ElectionMethod,
    pub commit_round: bool,
    /// Probability that a message is lost / duplicated.
    pub loss: f64,
    pub duplicate: f64,
    /// One-way latency bounds, ms (reordering comes from the spread).
    pub latency_ms: (u64, u64),
    /// Max absolute clock skew per node, ms.
    pub skew_ms: u64,
    /// Attacker behaviour and how many members of each group have it (placed first in the
    /// priority order where that matters, e.g. silent coordinators).
    pub byzantine: Option<Byzantine>,
    pub byzantine_per_group: usize,
    /// Crash probability before each durable step a node executes.
    pub crash_rate: f64,
    /// Crash node `.0` right before its `.1`-th durable step (0-based), deterministically.
    pub crash_at: Option<(usize, usize)>,
    /// How long a crashed node stays down, ms.
    pub downtime_ms: u64,
    pub round_ms: u64,
    pub broadcast_slot_ms: u64,
    pub proposal_ttl_ms: u64,
    /// How long the simulated users take to approve, ms (uniform up to this).
    pub approval_delay_ms: u64,
    pub network_partition: Option<Partition>,
    /// Co-signers who are online only in windows (None: always online).
    pub availability: Option<Availability>,
}

/// What a member's laptop does outside its online windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Away {
    /// The laptop sleeps: the process (and its secret nonces) survives; no network, no timers.
    Sleep,
    /// The app is quit: in-memory state (secret nonces) is lost; it restarts from its store.
    Quit,
}

impl Away {
    pub fn name(self) -> &'static str {
        match self {
            Away::Sleep => "sleep",
            Away::Quit => "quit",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Away::Sleep, Away::Quit]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// Members online in random windows each day (e.g. 2 × 1 h at different hours), proposals
/// made by an online proposer at random times over `days`.
#[derive(Debug, Clone, Copy)]
pub struct Availability {
    pub away: Away,
    pub windows_per_day: usize,
    pub window_ms: u64,
    pub days: u64,
}

impl Availability {
    pub fn new(away: Away) -> Self {
        Self {
            away,
            windows_per_day: 2,
            window_ms: 3_600_000,
            days: 3,
        }
    }
}

/// A window of time in which members on different sides cannot reach each other.
#[derive(Debug, Clone, Copy)]
pub struct Partition {
    pub from_ms: u64,
    pub until_ms: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            seed: 1,
            nodes: 12,
            groups: 3,
            signers: 3,
            sessions_per_group: 2,
            inputs: 2,
            election: ElectionMethod::Salted,
            commit_round: true,
            loss: 0.0,
            duplicate: 0.0,
            latency_ms: (5, 80),
            skew_ms: 500,
            byzantine: None,
            byzantine_per_group: 0,
            crash_rate: 0.0,
            crash_at: None,
            downtime_ms: 3_000,
            round_ms: 4_000,
            broadcast_slot_ms: 6_000,
            proposal_ttl_ms: 30 * 60_000,
            approval_delay_ms: 3_000,
            network_partition: None,
            availability: None,
        }
    }
}

impl Scenario {
    /// The asynchronous scenario: members online `2 × 1 h` a day at random hours, proposals
    /// living 24 h, 10-minute silence records, and a group as `GroupDescriptor::new` makes it
    /// (salted election, commit round). Attempt 0 signs with pooled nonces, one visit each;
    /// a later attempt (after a restart) runs the interactive rounds.
    pub fn asynchronous(seed: u64, away: Away) -> Self {
        Self {
            seed,
            commit_round: true,
            election: ElectionMethod::Salted,
            nodes: 12,
            groups: 4,
            signers: 3,
            sessions_per_group: 3,
            round_ms: 600_000,
            broadcast_slot_ms: 60_000,
            proposal_ttl_ms: 24 * 3_600_000,
            approval_delay_ms: 5 * 60_000,
            availability: Some(Availability::new(away)),
            ..Self::default()
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "lotus-cosigner sim --nodes {} --groups {} --signers {} --sessions {} --inputs {} --loss {} --duplicate {} --election {} --seeds 1 --first-seed {}",
            self.nodes,
            self.groups,
            self.signers,
            self.sessions_per_group,
            self.inputs,
            self.loss,
            self.duplicate,
            self.election.name().replace(' ', "-"),
            self.seed
        );
        if !self.commit_round {
            cmd.push_str(" --no-commit-round");
        }
        if let Some(b) = self.byzantine {
            cmd.push_str(&format!(
                " --byzantine {} --byzantine-per-group {}",
                b.name(),
                self.byzantine_per_group
            ));
        }
        if self.crash_rate > 0.0 {
            cmd.push_str(&format!(" --crash-rate {}", self.crash_rate));
        }
        if let Some(a) = self.availability {
            cmd.push_str(&format!(" --away {}", a.away.name()));
        }
        cmd
    }
}
