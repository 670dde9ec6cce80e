//! `lotus-cosigner audit verify|export`: the tamper-evident log of the session store.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use engine::profile::Profile;

use crate::output::Context;

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
pub fn run(command: &AuditCommand, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<bool> {
    let profile = Profile::open(ctx.data_dir.clone())?;
    // With the profile's key on record, the signed heads are checked too (a log cut back and
    // re-hashed by someone without the key is caught).
    let signer = profile
        .store()
        .signer()?
        .and_then(|s| lotus::secp256k1::PublicKey::from_slice(&s.public_key).ok());
    let verified = match &signer {
        Some(key) => profile.store().verify_audit_signed_by(key),
        None => profile.store().verify_audit(),
    };
    match command {
        AuditCommand::Verify if ctx.json => {
            let answer = match &verified {
                Ok(summary) => serde_json::json!({
                    "verified": true,
                    "entries": summary.entries,
                    "anchors": summary.anchors,
                    "signed_by_profile_key": signer.is_some(),
                    "peers": summary.peers.iter().map(|p| serde_json::json!({
                        "signer": hex::encode(p.signer),
                        "heads": p.heads,
                        "latest_seq": p.latest_seq,
                        "rewritten_at": p.rewritten_at,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({"verified": false, "error": e.to_string()}),
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
            Ok(verified.is_ok())
        }
        AuditCommand::Verify => match verified {
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
            if ctx.json {
                writeln!(out, "{}", serde_json::json!({"exported": n, "path": path}))?;
            } else {
                writeln!(out, "exported {n} entries to {}", path.display())?;
            }
            Ok(true)
        }
        AuditCommand::Export { out: None } => {
            profile.store().export_audit_jsonl(out)?;
            Ok(true)
        }
    }
}
