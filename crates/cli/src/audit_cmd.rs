//! `lotus-cosigner audit verify|export`: the tamper-evident log of the session store.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use engine::profile::Profile;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exits non-zero at the first broken entry.
    Verify,
    /// Write every entry as JSON Lines (to --out, or standard output).
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Returns false when the chain does not verify.
pub fn run(
    command: &AuditCommand,
    data_dir: Option<PathBuf>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let profile = Profile::open(data_dir)?;
    match command {
        AuditCommand::Verify => match profile.store().verify_audit() {
            Ok(summary) => {
                writeln!(out, "audit chain verified: {} entries", summary.entries)?;
                // What the co-signers' signed heads (from their round-1 messages) say.
                for peer in &summary.peers {
                    let who = hex::encode(peer.signer);
                    match peer.rewritten_at.as_slice() {
                        [] => writeln!(
                            out,
                            "co-signer {who}: {} signed heads, latest at entry {}, consistent",
                            peer.heads, peer.latest_seq
                        )?,
                        seqs => writeln!(
                            out,
                            "co-signer {who}: LOG REWRITTEN: it signed two different heads at entries {seqs:?}"
                        )?,
                    }
                }
                Ok(true)
            }
            Err(e) => {
                writeln!(out, "audit chain BROKEN: {e}")?;
                Ok(false)
            }
        },
        AuditCommand::Export { out: Some(path) } => {
            let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
            let n = profile.store().export_audit_jsonl(&mut file)?;
            file.flush()?;
            writeln!(out, "exported {n} entries to {}", path.display())?;
            Ok(true)
        }
        AuditCommand::Export { out: None } => {
            profile.store().export_audit_jsonl(out)?;
            Ok(true)
        }
    }
}
