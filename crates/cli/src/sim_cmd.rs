//! `lotus-cosigner sim`: runs seeded simulations and prints the table.

use std::io::Write;

use clap::Args;
use protocol::election::ElectionMethod;
use sim::{Byzantine, Scenario};

#[derive(Debug, Args)]
pub struct SimArgs {
    #[arg(long, default_value_t = 20)]
    pub nodes: usize,
    #[arg(long, default_value_t = 4)]
    pub groups: usize,
    #[arg(long, default_value_t = 3)]
    pub signers: usize,
    /// Proposals per group.
    #[arg(long, default_value_t = 2)]
    pub sessions: usize,
    /// Inputs per proposal.
    #[arg(long, default_value_t = 2)]
    pub inputs: usize,
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    #[arg(long, default_value_t = 0.0)]
    pub duplicate: f64,
    /// lexicographic, hash-based, first-signer, last-signer, salted, round-robin, reputation-aware
    #[arg(long)]
    pub election: Option<String>,
    #[arg(long)]
    pub no_commit_round: bool,
    /// One of: invalid-partial, equivocating-nonces, impersonation, replay,
    /// withhold-commitment, withhold-nonces, withhold-partials, silent-coordinator,
    /// flood-proposals, oversized, malformed, wrong-election-proof,
    /// cross-group-impersonation, forged-evidence, proposer-equivocation, nonce-equivocation,
    /// outsider-budget-exhaustion, early-buffer-flood, sequence-steering, salt-reroll
    #[arg(long)]
    pub byzantine: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub byzantine_per_group: usize,
    /// Crash probability before each durable step.
    #[arg(long, default_value_t = 0.0)]
    pub crash_rate: f64,
    /// The asynchronous scenario: members online 2 × 1 h a day at random hours over 3
    /// simulated days, proposals living 24 h. `sleep`: laptops sleep (secret nonces kept);
    /// `quit`: the app is quit and restarted (secret nonces lost).
    #[arg(long)]
    pub away: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
}

fn election(name: &str) -> Option<ElectionMethod> {
    ElectionMethod::ALL
        .into_iter()
        .find(|m| m.name().replace(' ', "-") == name)
}

/// Returns true when no invariant was violated.
pub fn run(args: &SimArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let election = match &args.election {
        Some(name) => Some(
            election(name).ok_or_else(|| anyhow::anyhow!("unknown election method {name:?}"))?,
        ),
        None => None,
    };
    let byzantine = match &args.byzantine {
        Some(name) => Some(
            Byzantine::from_name(name)
                .ok_or_else(|| anyhow::anyhow!("unknown Byzantine behaviour {name:?}"))?,
        ),
        None => None,
    };
    anyhow::ensure!(
        args.signers >= 2 && args.signers <= 100,
        "--signers must be 2..=100"
    );
    anyhow::ensure!(
        args.nodes >= args.signers,
        "--nodes must be at least --signers"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.loss),
        "--loss must be between 0 and 1"
    );
    let base = match &args.away {
        Some(name) => {
            let away = sim::Away::from_name(name)
                .ok_or_else(|| anyhow::anyhow!("--away must be sleep or quit, not {name:?}"))?;
            Scenario::asynchronous(args.first_seed, away)
        }
        None => Scenario::default(),
    };
    let scenario = Scenario {
        seed: args.first_seed,
        nodes: args.nodes,
        groups: args.groups,
        signers: args.signers,
        sessions_per_group: args.sessions,
        inputs: args.inputs,
        election: election.unwrap_or(base.election),
        commit_round: base.commit_round && !args.no_commit_round,
        loss: args.loss,
        duplicate: args.duplicate,
        byzantine,
        byzantine_per_group: if byzantine.is_some() {
            args.byzantine_per_group
        } else {
            0
        },
        crash_rate: args.crash_rate,
        ..base
    };
    let started = std::time::Instant::now();
    let report = sim::run_seeds(&scenario, args.seeds);
    writeln!(
        out,
        "seeds {}..{} ({} runs), wall time {:.1} s",
        args.first_seed,
        args.first_seed + args.seeds - 1,
        args.seeds,
        started.elapsed().as_secs_f64()
    )?;
    write!(out, "{}", report.table())?;
    for violation in &report.violations {
        writeln!(out, "VIOLATION {violation}")?;
    }
    Ok(report.violations.is_empty())
}
