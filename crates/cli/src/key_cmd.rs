//! `lotus-cosigner key`: the signer key in the OS keychain (or an encrypted file).

use std::io::Write;
use std::path::PathBuf;

use crate::output::{answer, Context};

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

pub fn passphrase() -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("LOTUS_COSIGNER_PASSPHRASE") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line)?;
    Ok(zeroize::Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// The public key and its addresses (mainnet), as `key` commands answer.
#[derive(serde::Serialize)]
struct KeyAnswer {
    public_key: String,
    taproot_address: String,
    p2pkh_address: String,
    stored_in: String,
}

fn key_answer(public: &lotus::secp256k1::PublicKey, stored_in: String) -> KeyAnswer {
    let commitment = lotus::taproot::commitment(public);
    KeyAnswer {
        public_key: hex::encode(public.serialize()),
        taproot_address: lotus::address::taproot_address(
            &commitment,
            lotus::address::Network::Mainnet,
        ),
        p2pkh_address: lotus::address::p2pkh_address(public, lotus::address::Network::Mainnet),
        stored_in,
    }
}

fn show(
    ctx: &Context,
    out: &mut dyn Write,
    key: &KeyAnswer,
    only_public: bool,
) -> anyhow::Result<()> {
    answer(ctx, out, key, |out| {
        if only_public {
            return writeln!(out, "{}", key.public_key);
        }
        writeln!(out, "public key   {}", key.public_key)?;
        writeln!(out, "taproot      {}", key.taproot_address)?;
        writeln!(out, "p2pkh        {}", key.p2pkh_address)?;
        writeln!(out, "stored in    {}", key.stored_in)
    })
}

pub fn run(command: &KeyCommand, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { file: Some(path) } => {
            let public = Custody::create_file(path, &passphrase()?)?;
            if !ctx.json {
                writeln!(out, "created an encrypted key file at {}", path.display())?;
            }
            show(
                ctx,
                out,
                &key_answer(&public, format!("encrypted key file {}", path.display())),
                false,
            )
        }
        KeyCommand::Show { file: Some(path) } | KeyCommand::Export { file: Some(path) } => {
            let custody = Custody::open_file(path, &passphrase()?)?;
            let key = key_answer(&custody.public_key(), custody.location().to_owned());
            show(ctx, out, &key, matches!(command, KeyCommand::Export { .. }))
        }
        _ => {
            let config = EngineConfig {
                data_dir: ctx.data_dir.clone(),
                ..EngineConfig::from_env()
            };
            let identity = Engine::start(config)
                .identity()
                .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.action))?;
            let public =
                lotus::secp256k1::PublicKey::from_slice(&hex::decode(&identity.public_key_hex)?)?;
            show(
                ctx,
                out,
                &key_answer(&public, identity.key_store),
                matches!(command, KeyCommand::Export { .. }),
            )
        }
    }
}
