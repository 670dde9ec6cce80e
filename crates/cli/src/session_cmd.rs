//! `lotus-cosigner session`: propose a payment from a group (the wallet selects the coins, or
//! `--input` names them), and list the profile's sessions.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use engine::control::ControlRequest;
use engine::profile::Profile;
use engine::proposals::{self, ProposeRequest};
use engine::settings::Settings;
use lotus::tx::OutPoint;
use wallet::Amount;

use crate::chain_args;
use crate::output::{answer, xpi, Context};

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Propose a payment: the proposal is signed, stored, and reviewed by every co-signer.
    Propose {
        /// The group (id or an unambiguous prefix).
        #[arg(long)]
        group: String,
        /// XADDR:SATS, or XADDR:all for everything the group holds; repeatable.
        #[arg(long = "pay", required = true, value_name = "XADDR:SATS")]
        pay: Vec<String>,
        /// Spend exactly these coins of the group (no chain backend needed); repeatable.
        #[arg(long = "input", value_name = "TXID:VOUT:SATS")]
        inputs: Vec<String>,
        /// Fee rate in satoshis per 1000 bytes (default: the settings', the relay floor).
        #[arg(long, value_name = "SATS_PER_KB")]
        fee_rate: Option<i64>,
        /// Minutes until the proposal expires.
        #[arg(long, value_name = "MINUTES", default_value_t = 24 * 60)]
        expires: u64,
        /// Also spend coins that are still unconfirmed.
        #[arg(long)]
        allow_unconfirmed: bool,
        /// Sign with this encrypted key file instead of the keychain key.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// The profile's sessions, newest first.
    List,
    /// One session: state, review and its digest, members' status and whom it waits for,
    /// election (method, priority list, proof), failover slots, txid and outcome.
    Show { session: String },
    /// Approve exactly the review whose digest `session show` printed.
    Approve {
        session: String,
        #[arg(long, value_name = "HEX")]
        digest: String,
        /// The proposer's confirmation code, for a payment above the profile's limit
        /// (`confirm_above_sats` in the settings).
        #[arg(long, value_name = "DIGITS")]
        code: Option<String>,
    },
    /// Refuse the proposal (signed; the co-signers see the reason).
    Reject {
        session: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Write a session to a file: its signed proposal, and the signed transaction once there
    /// is one (review on another machine, broadcast from anywhere).
    Export {
        session: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Read a session file: shows its review (validated in full, as if it came from a
    /// co-signer) and, with --broadcast, sends its signed transaction to the chain backends.
    Import {
        file: PathBuf,
        #[arg(long)]
        broadcast: bool,
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Cancel a signed transaction that was never seen: propose paying one of its coins back
    /// to the group (once that confirms, the old transaction can never be valid).
    Cancel {
        /// The session whose signed transaction to cancel.
        session: String,
        #[arg(long, value_name = "SATS_PER_KB")]
        fee_rate: Option<i64>,
        #[arg(long, value_name = "MINUTES", default_value_t = 24 * 60)]
        expires: u64,
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

fn parse_pay(spec: &str) -> anyhow::Result<(String, Amount)> {
    proposals::parse_pay(spec).map_err(anyhow::Error::msg)
}

fn parse_input(spec: &str) -> anyhow::Result<(OutPoint, i64)> {
    proposals::parse_input(spec).map_err(anyhow::Error::msg)
}

fn session_id(text: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("'{text}' is not a session id (64 hex characters)"))
}

fn print_proposal(out: &mut dyn Write, proposal: &proposals::ProposalView) -> std::io::Result<()> {
    writeln!(out, "session      {}", proposal.session_id)?;
    writeln!(out, "txid         {}", proposal.payment.txid)?;
    for o in &proposal.payment.outputs {
        let change = if o.is_change {
            "  (change, back to the group)"
        } else {
            ""
        };
        writeln!(
            out,
            "pay          {}  {}{change}",
            xpi(o.amount_sats),
            o.address
        )?;
    }
    writeln!(
        out,
        "fee          {}  ({} bytes at {} sat/kB)",
        xpi(proposal.payment.fee_sats),
        proposal.payment.size_bytes,
        proposal.payment.fee_rate_per_kb
    )?;
    writeln!(out, "review       {}", proposal.review_digest)?;
    writeln!(
        out,
        "expires      {} UTC",
        engine::upgrades::utc(proposal.expires_ms / 1000)
    )
}

/// Without a node: an engine in this process answers (offline).
fn ask_engine(command: &SessionCommand, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let request = command
        .as_request()
        .ok_or_else(|| anyhow::anyhow!("this command needs a node"))?;
    crate::remote::ask_here(request, ctx, out).map(drop)
}

impl SessionCommand {
    /// The same command as a request to a running node (or an in-process engine); `None` for
    /// commands that work on files or need the key themselves.
    pub fn as_request(&self) -> Option<ControlRequest> {
        Some(match self {
            SessionCommand::Propose {
                group,
                pay,
                inputs,
                fee_rate,
                expires,
                allow_unconfirmed,
                key_file: None,
            } => ControlRequest::SessionPropose {
                group: group.clone(),
                pay: pay.clone(),
                inputs: inputs.clone(),
                fee_rate: *fee_rate,
                expires_minutes: *expires,
                allow_unconfirmed: *allow_unconfirmed,
            },
            SessionCommand::List => ControlRequest::SessionList,
            SessionCommand::Show { session } => ControlRequest::SessionShow {
                session: session.clone(),
            },
            SessionCommand::Approve {
                session,
                digest,
                code,
            } => ControlRequest::SessionApprove {
                session: session.clone(),
                digest: digest.clone(),
                code: code.clone(),
            },
            SessionCommand::Reject { session, reason } => ControlRequest::SessionReject {
                session: session.clone(),
                reason: reason.clone(),
            },
            _ => return None,
        })
    }
}

pub fn run(command: &SessionCommand, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut profile = Profile::open(ctx.data_dir.clone())?;
    let settings = Settings::load_or_init(&profile.data_dir().settings_file())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        SessionCommand::Show { .. }
        | SessionCommand::Approve { .. }
        | SessionCommand::Reject { .. } => ask_engine(command, ctx, out),
        SessionCommand::Propose {
            group,
            pay,
            inputs,
            fee_rate,
            expires,
            allow_unconfirmed,
            key_file,
        } => {
            let pay = pay
                .iter()
                .map(|p| parse_pay(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let inputs = inputs
                .iter()
                .map(|i| parse_input(i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if inputs.is_empty() {
                // The wallet selects from the group's coins: bring them up to date first.
                let (descriptor, _) = profile.group(group)?;
                chain_args::refresh_group(ctx, &settings, &mut profile, &descriptor, &runtime)?;
            }
            let custody = chain_args::open_custody(key_file)?;
            let request = ProposeRequest {
                group: group.clone(),
                pay,
                inputs,
                fee_rate_per_kb: fee_rate.unwrap_or(settings.fee_rate_per_kb),
                expires_minutes: *expires,
                allow_unconfirmed: *allow_unconfirmed,
            };
            let proposal = runtime.block_on(proposals::propose(&mut profile, &custody, request))?;
            answer(ctx, out, &proposal, |out| print_proposal(out, &proposal))
        }
        SessionCommand::Export { session, out: path } => {
            let id = session_id(session)?;
            let file = engine::session_files::export(&profile, &id)?;
            std::fs::write(path, serde_json::to_string_pretty(&file)? + "\n")?;
            let summary = serde_json::json!({
                "session_id": file.session_id,
                "path": path,
                "signed": file.signed_tx.is_some(),
            });
            answer(ctx, out, &summary, |out| {
                let signed = if file.signed_tx.is_some() {
                    " (with its signed transaction)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "wrote session {} to {}{signed}",
                    file.session_id,
                    path.display()
                )
            })
        }
        SessionCommand::Import {
            file,
            broadcast,
            key_file,
        } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let parsed = engine::session_files::parse(&text)?;
            let custody = chain_args::open_custody(key_file)?;
            let view =
                runtime.block_on(engine::session_files::import(&profile, &custody, &parsed))?;
            let mut sent = Vec::new();
            if *broadcast {
                let hex_tx = view.signed_tx.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("the file has no signed transaction to broadcast yet")
                })?;
                let tx = chain::rpc::decode_tx_hex(hex_tx).map_err(|e| {
                    anyhow::anyhow!("the signed transaction in the file does not decode: {e}")
                })?;
                let chains = chain_args::chains(ctx, &settings)?.ok_or_else(|| {
                    anyhow::anyhow!("no chain backend configured: add --chain rpc://HOST:PORT")
                })?;
                let report = runtime.block_on(chains.broadcast(&tx));
                for r in &report.reports {
                    sent.push(serde_json::json!({
                        "backend": r.backend,
                        "accepted": r.answer.is_ok(),
                        "error": r.answer.as_ref().err().map(|e| e.to_string()),
                    }));
                }
                if report.accepted_by() == 0 {
                    let why: Vec<String> = report
                        .reports
                        .iter()
                        .filter_map(|r| r.answer.as_ref().err().map(|e| e.to_string()))
                        .collect();
                    anyhow::bail!("no backend accepted the transaction: {}", why.join("; "));
                }
            }
            let summary = serde_json::json!({"review": view, "broadcast": sent});
            answer(ctx, out, &summary, |out| {
                writeln!(out, "session      {}", view.session_id)?;
                writeln!(out, "txid         {}", view.txid)?;
                for o in &view.outputs {
                    let change = if o.is_change {
                        "  (change, back to the group)"
                    } else {
                        ""
                    };
                    let to = o.address.as_deref().unwrap_or("(data)");
                    writeln!(out, "pay          {}  {to}{change}", xpi(o.amount_sats))?;
                }
                writeln!(out, "fee          {}", xpi(view.fee_sats))?;
                writeln!(out, "review       {}", view.review_digest)?;
                for s in &sent {
                    let verdict = if s["accepted"] == true {
                        "accepted"
                    } else {
                        "refused"
                    };
                    writeln!(
                        out,
                        "broadcast    {} {verdict}",
                        s["backend"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            })
        }
        SessionCommand::Cancel {
            session,
            fee_rate,
            expires,
            key_file,
        } => {
            let id: [u8; 32] = hex::decode(session.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("'{session}' is not a session id (64 hex characters)")
                })?;
            let custody = chain_args::open_custody(key_file)?;
            let fee_rate = fee_rate.unwrap_or(settings.fee_rate_per_kb);
            let proposal = runtime.block_on(proposals::propose_cancel(
                &mut profile,
                &custody,
                &id,
                fee_rate,
                *expires,
            ))?;
            answer(ctx, out, &proposal, |out| {
                writeln!(
                    out,
                    "proposed paying the first coin of that transaction back to the group:"
                )?;
                print_proposal(out, &proposal)
            })
        }
        SessionCommand::List => {
            let mut sessions = profile.store().sessions(None)?;
            sessions.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
            let rows: Vec<serde_json::Value> = sessions
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "session_id": hex::encode(s.session_id),
                        "group_id": hex::encode(s.group_id),
                        "proposed_by_me": s.proposed_by_me,
                        "created_ms": s.created_ms,
                        "approved": s.approval.is_some(),
                        "signed": s.signed_tx.is_some(),
                        // The finished transaction, to check against any node
                        // (`lotus-cli testmempoolaccept '["HEX"]'`) or broadcast from anywhere.
                        "signed_tx_hex": s.signed_tx.as_ref().map(hex::encode),
                        "outcome": s.outcome.as_ref().map(|o| format!("{o:?}")),
                    })
                })
                .collect();
            answer(ctx, out, &rows, |out| {
                for s in &sessions {
                    writeln!(
                        out,
                        "{}  group {}  {}  {}",
                        hex::encode(s.session_id),
                        &hex::encode(s.group_id)[..12],
                        if s.proposed_by_me {
                            "proposed by me"
                        } else {
                            "from a co-signer"
                        },
                        match (&s.outcome, s.approval.is_some()) {
                            (Some(o), _) => format!("{o:?}"),
                            (None, true) => "approved".into(),
                            (None, false) => "waiting for review".into(),
                        }
                    )?;
                }
                Ok(())
            })
        }
    }
}
