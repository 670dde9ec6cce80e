//! `lotus-cosigner group`: create a group from members' public keys, show its invite, accept one.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use engine::custody::{Custody, KeySource};
use engine::profile::Profile;
use lotus::address::Network;
use lotus::secp256k1::PublicKey;
use protocol::election::ElectionMethod;
use protocol::group::{GroupDescriptor, OutputType};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group: members' public keys in order (include your own).
    Create {
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
    },
    /// Show a saved group's invite (text and QR payload), fingerprint and address.
    ShowInvite { group: String },
    /// List saved groups.
    List,
    /// Accept an invite: check you are a member, sign the acceptance, save the group.
    Accept {
        invite: String,
        /// Sign with this encrypted key file instead of the keychain key.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

fn describe(out: &mut impl Write, group: &GroupDescriptor, accepted: usize) -> anyhow::Result<()> {
    writeln!(out, "group        {}", group.name)?;
    writeln!(out, "id           {}", group.id())?;
    writeln!(
        out,
        "fingerprint  {}   (read it to your co-signers on a call)",
        group.fingerprint()
    )?;
    writeln!(out, "address      {}", group.address()?)?;
    writeln!(
        out,
        "members      {} ({} accepted)",
        group.members.len(),
        accepted
    )?;
    writeln!(out, "election     {}", group.election.name())?;
    writeln!(out, "invite       {}", group.invite())?;
    Ok(())
}

/// The signer key's custody: an encrypted key file (passphrase from
/// LOTUS_COSIGNER_PASSPHRASE) or the keychain. The command never holds the key itself.
fn custody(key_file: &Option<PathBuf>) -> anyhow::Result<Custody> {
    let source = match key_file {
        Some(path) => KeySource::File(path.clone()),
        None => KeySource::Keychain(engine::EngineConfig::from_env().keychain),
    };
    Ok(Custody::open(&source, || {
        std::env::var("LOTUS_COSIGNER_PASSPHRASE")
            .map(zeroize::Zeroizing::new)
            .map_err(|_| {
                engine::custody::CustodyError::Passphrase("set LOTUS_COSIGNER_PASSPHRASE".into())
            })
    })?)
}

pub fn run(
    command: &GroupCommand,
    data_dir: Option<PathBuf>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut profile = Profile::open(data_dir.clone())?;
    match command {
        GroupCommand::Create {
            name,
            members,
            output,
            election,
            network,
        } => {
            let members = members
                .iter()
                .map(|m| Ok(PublicKey::from_slice(&hex::decode(m.trim())?)?))
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "a member key is not a 33-byte compressed public key in hex: {e}"
                    )
                })?;
            let network = match network.as_str() {
                "mainnet" => Network::Mainnet,
                "testnet" => Network::Testnet,
                "regtest" => Network::Regtest,
                other => anyhow::bail!("unknown network {other:?}"),
            };
            let mut group = GroupDescriptor::new(name, network, members)?;
            group.output = match output.as_str() {
                "taproot" => OutputType::Taproot,
                "p2pkh" => OutputType::P2pkh,
                other => anyhow::bail!("unknown output type {other:?} (taproot or p2pkh)"),
            };
            group.election = ElectionMethod::ALL
                .into_iter()
                .find(|m| m.name().replace(' ', "-") == *election)
                .ok_or_else(|| anyhow::anyhow!("unknown election method {election:?}"))?;
            group.validate()?;
            profile.save_group(&group, &[])?;
            describe(out, &group, 0)
        }
        GroupCommand::ShowInvite { group } => {
            let (group, acceptances) = profile.group(group)?;
            describe(out, &group, acceptances.len())
        }
        GroupCommand::List => {
            for (group, acceptances) in profile.groups()? {
                writeln!(
                    out,
                    "{}  {}  {}/{} accepted  {}",
                    group.id(),
                    group.fingerprint(),
                    acceptances.len(),
                    group.members.len(),
                    group.name
                )?;
            }
            Ok(())
        }
        GroupCommand::Accept { invite, key_file } => {
            let group = GroupDescriptor::from_invite(invite)?;
            let custody = custody(key_file)?;
            let acceptance = custody
                .accept(&group)
                .map_err(|e| anyhow::anyhow!("{e}: this invite does not list your public key"))?;
            profile.save_group(&group, &[acceptance])?;
            writeln!(
                out,
                "accepted as member #{}",
                group
                    .member_index(&custody.public_key())
                    .unwrap_or_default()
                    + 1
            )?;
            describe(out, &group, 1)
        }
    }
}
