//! `lotus-cosigner key`: the signer key in the OS keychain (or an encrypted file).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use engine::custody::Custody;
use engine::{Engine, EngineConfig};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create the signer key in the OS keychain if there is none, then show it.
    Create {
        /// Instead of the keychain: a new encrypted key file (passphrase from
        /// LOTUS_COSIGNER_PASSPHRASE, or the first line of standard input).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Show the public key and its addresses.
    Show {
        /// Read the key from this encrypted key file instead of the keychain.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Print only the public key (hex), for co-signers to add you to a group.
    Export {
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn passphrase() -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("LOTUS_COSIGNER_PASSPHRASE") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line)?;
    Ok(zeroize::Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

fn show_public(out: &mut impl Write, public_hex: &str) -> anyhow::Result<()> {
    let key = lotus::secp256k1::PublicKey::from_slice(&hex::decode(public_hex)?)?;
    let commitment = lotus::taproot::commitment(&key);
    writeln!(out, "public key   {public_hex}")?;
    writeln!(
        out,
        "taproot      {}",
        lotus::address::taproot_address(&commitment, lotus::address::Network::Mainnet)
    )?;
    writeln!(
        out,
        "p2pkh        {}",
        lotus::address::p2pkh_address(&key, lotus::address::Network::Mainnet)
    )?;
    Ok(())
}

pub fn run(
    command: &KeyCommand,
    data_dir: Option<PathBuf>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { file: Some(path) } => {
            let public = Custody::create_file(path, &passphrase()?)?;
            writeln!(out, "created an encrypted key file at {}", path.display())?;
            show_public(out, &hex::encode(public.serialize()))
        }
        KeyCommand::Show { file: Some(path) } | KeyCommand::Export { file: Some(path) } => {
            let custody = Custody::open_file(path, &passphrase()?)?;
            let public = hex::encode(custody.public_key().serialize());
            match command {
                KeyCommand::Export { .. } => writeln!(out, "{public}").map_err(Into::into),
                _ => show_public(out, &public),
            }
        }
        _ => {
            let config = EngineConfig {
                data_dir,
                ..EngineConfig::from_env()
            };
            let identity = Engine::start(config)
                .identity()
                .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.action))?;
            match command {
                KeyCommand::Export { .. } => writeln!(out, "{}", identity.public_key_hex)?,
                _ => {
                    show_public(out, &identity.public_key_hex)?;
                    writeln!(out, "stored in    {}", identity.key_store)?;
                }
            }
            Ok(())
        }
    }
}
