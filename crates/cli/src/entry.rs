//! The whole command line: arguments, dispatch, and errors as people (or `--json`) read them.
//! `main.rs` only calls [`main_with`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lotus-cosigner",
    version,
    about = "Lotus Cosigner headless tools"
)]
struct Cli {
    /// The profile's data folder (default: the platform data folder, or LOTUS_COSIGNER_DATA_DIR).
    #[arg(long, global = true, env = "LOTUS_COSIGNER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Answer with one JSON document (stable field names) instead of lines for people.
    #[arg(long, global = true)]
    json: bool,
    /// A chain backend, replacing the profile's for this run: rpc://[USER:PASS@]HOST:PORT
    /// [?cookie=PATH] (lotusd or the devnet) or chronik+https://HOST[/PATH]. Repeatable.
    #[arg(long, global = true, value_name = "SPEC")]
    chain: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The signer key: create, show, export the public key.
    #[command(subcommand)]
    Key(crate::key_cmd::KeyCommand),
    /// Groups: create, show the invite, accept an invite, list.
    #[command(subcommand)]
    Group(crate::group_cmd::GroupCommand),
    /// Signing sessions: propose a payment, list sessions.
    #[command(subcommand)]
    Session(crate::session_cmd::SessionCommand),
    /// The tamper-evident audit log: verify or export.
    #[command(subcommand)]
    Audit(crate::audit_cmd::AuditCommand),
    /// Run the engine on the peer-to-peer network (headless), serving the other commands.
    Node(crate::node_cmd::NodeArgs),
    /// The peers a running node is connected to: peer id, signer key if a member, address,
    /// direct or relayed.
    Peers,
    /// A local Lotus test chain (not a node) serving lotusd's JSON-RPC, for demos and tests.
    Devnet(crate::devnet_cmd::DevnetArgs),
    /// A whole demo group on this machine: a devnet and three co-signers run two sessions
    /// (a coordinator that fails and a backup that broadcasts; a co-signer blamed for an
    /// invalid signature). Touches nothing of your own profile.
    Demo(crate::demo_cmd::DemoArgs),
    /// Check known-answer vector files (lotusd / lotus-sdk schemas); files or folders.
    Vectors {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print every failing case, not just the first few per file.
        #[arg(long)]
        verbose: bool,
    },
    /// Simulate many nodes over a faulty network with attackers; prints a table and the
    /// invariant violations (0 is the only acceptable count).
    Sim(crate::sim_cmd::SimArgs),
    /// Benchmark Lotus Schnorr and MuSig2 against libsecp256k1 BIP340/BIP327 in one process.
    Bench {
        /// Group sizes for the MuSig2 session benchmark.
        #[arg(long, value_delimiter = ',', default_values_t = vec![3, 10, 100])]
        sizes: Vec<usize>,
        /// Timed batches per measurement (the median is reported).
        #[arg(long, default_value_t = 15)]
        rounds: usize,
    },
}

/// Runs the command line on `args` (the program name first), as `lotus-cosigner` does; the
/// desktop app runs its hidden headless mode through here too (the demo's co-signers).
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    // Logs go to standard error (RUST_LOG overrides); a node says more than a one-shot command.
    let level = if matches!(cli.command, Command::Node(_)) {
        "info,libp2p=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            report(&error, json);
            ExitCode::FAILURE
        }
    }
}

/// The engine's explanation (what happened, what to do) of the first cause that has one.
fn explain(error: &anyhow::Error) -> Option<engine::ErrorView> {
    use engine::Explain;
    error.chain().find_map(|cause| {
        let any = cause;
        any.downcast_ref::<engine::group_wallet::GroupWalletError>()
            .map(Explain::view)
            .or_else(|| {
                any.downcast_ref::<engine::proposals::ProposeError>()
                    .map(Explain::view)
            })
            .or_else(|| {
                any.downcast_ref::<engine::session_files::SessionFileError>()
                    .map(Explain::view)
            })
            .or_else(|| {
                any.downcast_ref::<engine::custody::CustodyError>()
                    .map(Explain::view)
            })
            .or_else(|| {
                any.downcast_ref::<engine::profile::ProfileError>()
                    .map(Explain::view)
            })
            .or_else(|| {
                any.downcast_ref::<engine::key_store::KeyStoreError>()
                    .map(Explain::view)
            })
            .or_else(|| {
                any.downcast_ref::<crate::remote::NodeRefused>()
                    .map(|refused| refused.0.clone())
            })
    })
}

/// Errors go to standard error for people; with --json, `{"error": ErrorView}` on standard
/// output (the same fields the app shows: kind, title, message, action).
fn report(error: &anyhow::Error, json: bool) {
    let view = explain(error).unwrap_or_else(|| engine::ErrorView {
        kind: engine::ErrorKind::Internal,
        title: "The command failed".into(),
        message: format!("{error:#}"),
        action: "Check the arguments and the message above; `--help` lists them.".into(),
    });
    if json {
        println!("{}", serde_json::json!({ "error": view }));
    } else {
        eprintln!(
            "error: {}: {}\n  what to do: {}",
            view.title, view.message, view.action
        );
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let data_dir = cli.data_dir;
    let ctx = crate::output::Context {
        data_dir: data_dir.clone(),
        json: cli.json,
        chain: cli.chain,
    };
    // While a node runs on this profile, it answers (it holds the profile).
    if let Some(socket) = crate::remote::node_socket(&ctx) {
        if let Command::Audit(crate::audit_cmd::AuditCommand::Export { out }) = &cli.command {
            let log = crate::remote::fetch(&socket, &engine::control::ControlRequest::AuditExport)?;
            let text = log.as_str().unwrap_or_default();
            match out {
                Some(path) => std::fs::write(path, text)?,
                None => std::io::Write::write_all(&mut stdout, text.as_bytes())?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        let request = match &cli.command {
            Command::Group(command) => command.as_request()?,
            Command::Session(command) => command.as_request(),
            Command::Audit(crate::audit_cmd::AuditCommand::Verify) => {
                Some(engine::control::ControlRequest::AuditVerify)
            }
            Command::Peers => Some(engine::control::ControlRequest::Peers),
            _ => None,
        };
        if let Some(request) = request {
            crate::remote::ask(&socket, &request, &ctx, &mut stdout)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    match cli.command {
        Command::Node(args) => {
            crate::node_cmd::run(&args, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Peers => {
            crate::remote::ask_here(engine::control::ControlRequest::Peers, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(command) => {
            crate::key_cmd::run(&command, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Group(command) => {
            crate::group_cmd::run(&command, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Session(command) => {
            crate::session_cmd::run(&command, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(command) => {
            let ok = crate::audit_cmd::run(&command, &ctx, &mut stdout)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Devnet(args) => {
            crate::devnet_cmd::run(&args, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            crate::demo_cmd::run(&args, &ctx, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Vectors { paths, verbose } => {
            let ok = crate::vectors_cmd::run(&paths, verbose, &mut stdout)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Sim(args) => {
            let ok = crate::sim_cmd::run(&args, &mut stdout)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench { sizes, rounds } => {
            anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
            anyhow::ensure!(
                sizes.iter().all(|&n| (1..=1000).contains(&n)),
                "sizes must be 1..=1000"
            );
            let options = crate::bench::Options {
                sizes,
                rounds,
                ..Default::default()
            };
            crate::bench::run(&options, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
