//! `lotus-cosigner group`: create a group from members' public keys, show its invite, accept one.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use engine::control::ControlRequest;
use engine::group_wallet::{self, GroupView, HistoryKind};
use engine::profile::Profile;
use engine::settings::Settings;
use lotus::address::Network;
use lotus::secp256k1::PublicKey;
use protocol::group::GroupDescriptor;

use crate::chain_args;
use crate::output::{answer, xpi, Context};

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// A member's public key (hex); repeat for each member, in order.
    #[arg(long = "member", required = true)]
    members: Vec<String>,
    /// taproot (default) or p2pkh
    #[arg(long, default_value = "taproot")]
    output: String,
    /// lexicographic, hash-based, first-signer, last-signer, salted, round-robin, reputation-aware
    #[arg(long, default_value = "salted")]
    election: String,
    /// mainnet, testnet or regtest
    #[arg(long, default_value = "mainnet")]
    network: String,
    /// How long each signing round may wait for every member.
    #[arg(long, value_name = "SECONDS")]
    round_timeout: Option<u64>,
    /// Each backup coordinator's broadcast slot after signing.
    #[arg(long, value_name = "SECONDS")]
    broadcast_slot: Option<u64>,
    /// A bootstrap/relay node the group names, /ip4/…/tcp/…/p2p/<peer id> (repeatable, at
    /// most 8): every member dials it as a trusted node. Part of the group (and its id).
    #[arg(long = "peer", value_name = "MULTIADDR")]
    peers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group: members' public keys in order (include your own).
    Create(CreateArgs),
    /// Show a group: members and acceptance, address, fingerprint, invite, last known balance.
    #[command(alias = "show-invite")]
    Show { group: String },
    /// List saved groups.
    List,
    /// Accept an invite: check you are a member, sign the acceptance, save the group.
    Accept {
        invite: String,
        /// Sign with this encrypted key file instead of the keychain key.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// The group's balance, refreshed from the chain backends (--chain or the settings).
    Balance { group: String },
    /// Coins the group received and coins seen spent, newest first (refreshed like balance).
    History { group: String },
}

fn describe(out: &mut dyn Write, view: &GroupView) -> std::io::Result<()> {
    writeln!(out, "group        {}", view.name)?;
    writeln!(out, "id           {}", view.id)?;
    writeln!(
        out,
        "fingerprint  {}   (read it to your co-signers on a call)",
        view.fingerprint
    )?;
    writeln!(out, "address      {}", view.address)?;
    writeln!(
        out,
        "members      {} ({} accepted)",
        view.members.len(),
        view.accepted
    )?;
    for m in &view.members {
        writeln!(
            out,
            "  #{} {}{}{}",
            m.number,
            m.public_key,
            if m.is_me { "  (you)" } else { "" },
            if m.accepted { "  accepted" } else { "" }
        )?;
    }
    writeln!(out, "election     {}", view.election)?;
    for peer in &view.peers {
        writeln!(out, "group peer   {peer}")?;
    }
    writeln!(out, "balance      {}", balance_line(&view.balance))?;
    writeln!(out, "invite       {}", view.invite)?;
    Ok(())
}

fn balance_line(b: &engine::group_wallet::BalanceView) -> String {
    format!(
        "{} confirmed, {} unconfirmed ({} coins{})",
        xpi(b.confirmed_sats),
        xpi(b.unconfirmed_sats),
        b.coins,
        b.backend
            .as_ref()
            .map(|s| format!(", from {s}"))
            .unwrap_or_default()
    )
}

/// Our public key, if the profile has recorded one (no keychain access needed).
fn me(profile: &Profile) -> Option<PublicKey> {
    profile
        .store()
        .signer()
        .ok()
        .flatten()
        .and_then(|s| PublicKey::from_slice(&s.public_key).ok())
}

/// Refreshes the group's coins from the chain backends, if any is configured.
fn refresh(ctx: &Context, profile: &mut Profile, group: &GroupDescriptor) -> anyhow::Result<bool> {
    let settings = Settings::load_or_init(&profile.data_dir().settings_file())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    chain_args::refresh_group(ctx, &settings, profile, group, &runtime)
}

/// A group descriptor from `group create`'s arguments (validated).
pub fn build_group(args: &CreateArgs) -> anyhow::Result<GroupDescriptor> {
    let form = engine::group_form::CreateGroupRequest {
        name: args.name.clone(),
        members: args.members.clone(),
        output: args.output.clone(),
        election: args.election.clone(),
        network: Some(args.network.clone()),
        round_timeout_s: args.round_timeout,
        broadcast_slot_s: args.broadcast_slot,
        peers: args.peers.clone(),
    };
    // The network is always named here, so the default is never used.
    Ok(form.descriptor(Network::Mainnet)?)
}

impl GroupCommand {
    /// The same command as a request to a running node; `None` for what it cannot do.
    pub fn as_request(&self) -> anyhow::Result<Option<ControlRequest>> {
        Ok(Some(match self {
            GroupCommand::Create(args) => ControlRequest::GroupCreate {
                invite: build_group(args)?.invite(),
            },
            GroupCommand::Accept {
                invite,
                key_file: None,
            } => ControlRequest::GroupAccept {
                invite: invite.clone(),
            },
            GroupCommand::List => ControlRequest::GroupList,
            GroupCommand::Show { group } => ControlRequest::GroupShow {
                group: group.clone(),
            },
            GroupCommand::Balance { group } => ControlRequest::GroupBalance {
                group: group.clone(),
            },
            GroupCommand::History { group } => ControlRequest::GroupHistory {
                group: group.clone(),
            },
            _ => return Ok(None),
        }))
    }
}

pub fn run(command: &GroupCommand, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut profile = Profile::open(ctx.data_dir.clone())?;
    match command {
        GroupCommand::Create(args) => {
            let group = build_group(args)?;
            profile.save_group(&group, &[])?;
            let view = group_wallet::view(&profile, &group, &[], me(&profile).as_ref())?;
            answer(ctx, out, &view, |out| describe(out, &view))
        }
        GroupCommand::Show { group } => {
            let (group, acceptances) = profile.group(group)?;
            let view = group_wallet::view(&profile, &group, &acceptances, me(&profile).as_ref())?;
            answer(ctx, out, &view, |out| describe(out, &view))
        }
        GroupCommand::List => {
            let me = me(&profile);
            let views = profile
                .groups()?
                .iter()
                .map(|(g, a)| group_wallet::view(&profile, g, a, me.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            answer(ctx, out, &views, |out| {
                for v in &views {
                    writeln!(
                        out,
                        "{}  {}  {}/{} accepted  {}  {}",
                        v.id,
                        v.fingerprint,
                        v.accepted,
                        v.members.len(),
                        xpi(v.balance.confirmed_sats + v.balance.unconfirmed_sats),
                        v.name
                    )?;
                }
                Ok(())
            })
        }
        GroupCommand::Accept { invite, key_file } => {
            let group = GroupDescriptor::from_invite(invite)?;
            let custody = chain_args::open_custody(key_file)?;
            let acceptance = custody
                .accept(&group)
                .map_err(|e| anyhow::anyhow!("{e}: this invite does not list your public key"))?;
            profile.save_group(&group, std::slice::from_ref(&acceptance))?;
            let (group, acceptances) = profile.group(&group.id().to_string())?;
            let view =
                group_wallet::view(&profile, &group, &acceptances, Some(&custody.public_key()))?;
            let number = group
                .member_index(&custody.public_key())
                .unwrap_or_default()
                + 1;
            answer(ctx, out, &view, |out| {
                writeln!(out, "accepted as member #{number}")?;
                describe(out, &view)
            })
        }
        GroupCommand::Balance { group } => {
            let (group, _) = profile.group(group)?;
            let refreshed = refresh(ctx, &mut profile, &group)?;
            let balance = group_wallet::balance(&profile, &group)?;
            answer(ctx, out, &balance, |out| {
                writeln!(out, "{}", balance_line(&balance))?;
                if !refreshed {
                    writeln!(
                        out,
                        "(last known: no chain backend configured; add --chain rpc://HOST:PORT)"
                    )?;
                }
                Ok(())
            })
        }
        GroupCommand::History { group } => {
            let (group, _) = profile.group(group)?;
            let refreshed = refresh(ctx, &mut profile, &group)?;
            let history = group_wallet::history(&profile, &group)?;
            answer(ctx, out, &history, |out| {
                for h in &history {
                    let sign = if h.kind == HistoryKind::Received {
                        "+"
                    } else {
                        "-"
                    };
                    writeln!(
                        out,
                        "{}  {sign}{}  {}:{}  {}",
                        engine::upgrades::utc(h.time_ms / 1000),
                        xpi(h.amount_sats),
                        h.txid,
                        h.vout,
                        h.height
                            .map(|h| format!("block {h}"))
                            .unwrap_or_else(|| "unconfirmed".into())
                    )?;
                }
                if !refreshed {
                    writeln!(
                        out,
                        "(last known: no chain backend configured; add --chain rpc://HOST:PORT)"
                    )?;
                }
                Ok(())
            })
        }
    }
}
