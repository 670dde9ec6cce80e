//! `lotus-cosigner demo`: a whole group on this machine, so a newcomer (or a script) can watch
//! what co-signing looks like. It starts a local devnet and three headless co-signers (this
//! same binary, each a child process with its own data folder and key file), creates and funds
//! a demo group, then runs two sessions:
//!
//! 1. a payment whose elected coordinator "fails" (it never broadcasts): a backup broadcasts
//!    in its slot and the devnet confirms;
//! 2. a payment where one co-signer sends an invalid partial signature: it is blamed with
//!    signed proof and the session stops.
//!
//! Everything is removed afterwards unless `--keep`. The misbehaviour uses the node's hidden
//! test faults; nothing here touches the person's own profile or key.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;
use serde_json::Value;

use crate::output::{answer, Context};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo's folders (devnet, co-signers) in this folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The demo co-signers' key files' passphrase (throwaway keys on a throwaway chain).
const PASSPHRASE: &str = "demo only - throwaway keys";
const NAMES: [&str; 3] = ["alice", "bob", "carol"];
/// How long any one step may take before the demo gives up and says which.
const STEP: Duration = Duration::from_secs(180);

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub group_id: String,
    pub group_address: String,
    pub failover: FailoverReport,
    pub blame: BlameReport,
}

#[derive(Debug, Serialize)]
pub struct FailoverReport {
    pub session_id: String,
    /// 1-based member numbers, coordinator first.
    pub coordinators: Vec<u64>,
    /// The member whose slot failed, and the one that broadcast.
    pub failed_coordinator: u64,
    pub broadcast_by: u64,
    pub txid: String,
}

#[derive(Debug, Serialize)]
pub struct BlameReport {
    pub session_id: String,
    pub blamed_member: u64,
    pub reason: String,
}

/// A child process stopped (and waited for) when the demo ends, however it ends.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Demo {
    bin: PathBuf,
    root: PathBuf,
    chain: String,
    nodes: Vec<Option<(Running, String)>>,
    say: Box<dyn FnMut(&str)>,
}

impl Demo {
    fn member_dir(&self, i: usize) -> PathBuf {
        self.root.join(NAMES[i])
    }

    /// Runs this binary with `--json` on member `i`'s folder (or `dir`); its answer.
    fn cli(&self, dir: &Path, args: &[&str]) -> anyhow::Result<Value> {
        let output = Command::new(&self.bin)
            .arg("--data-dir")
            .arg(dir)
            .arg("--json")
            .args(args)
            .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .output()?;
        let value: Value = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "{args:?} answered no JSON: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        if !output.status.success() {
            bail!("{args:?} failed: {}", value["error"]);
        }
        Ok(value)
    }

    /// Retries until `f` answers, for at most one step.
    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
        let start = Instant::now();
        loop {
            if let Some(value) = f() {
                return Ok(value);
            }
            if start.elapsed() > STEP {
                bail!("the demo gave up waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn start_node(&mut self, i: usize, fault: Option<&str>) -> anyhow::Result<()> {
        let dir = self.member_dir(i);
        let mut command = Command::new(&self.bin);
        command
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "--chain",
                &self.chain,
                "node",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .arg("--key-file")
            .arg(dir.join("key.enc"))
            .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((_, first)) = self.nodes[0].as_ref().filter(|_| i != 0) {
            command.args(["--bootstrap", first]);
        }
        if let Some(fault) = fault {
            command.args(["--test-fault", fault]);
        }
        let mut child = command.spawn().context("cannot start a demo co-signer")?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut next = || -> anyhow::Result<String> {
            Ok(lines
                .next()
                .context("a demo co-signer stopped at start")??)
        };
        let peer = next()?;
        let listening = next()?;
        std::thread::spawn(move || for _ in lines {});
        let address = format!(
            "{}/p2p/{}",
            listening.trim_start_matches("listening "),
            peer.trim_start_matches("peer-id ")
        );
        self.nodes[i] = Some((Running { child }, address));
        Ok(())
    }

    fn stop_node(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    fn propose(&self, from: usize, group: &str, sats: u64) -> anyhow::Result<(String, String)> {
        let to = demo_address();
        let pay = format!("{to}:{sats}");
        let proposal = self.wait("coins to spend", || {
            self.cli(
                &self.member_dir(from),
                &["session", "propose", "--group", group, "--pay", &pay],
            )
            .ok()
        })?;
        Ok((
            proposal["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            proposal["review_digest"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
    }

    fn approve_all(&mut self, session: &str, digest: &str) -> anyhow::Result<()> {
        for (i, name) in NAMES.iter().enumerate() {
            let dir = self.member_dir(i);
            self.wait(&format!("{name} to receive the proposal"), || {
                self.cli(&dir, &["session", "show", session]).ok()
            })?;
            self.wait(&format!("{name}'s approval"), || {
                self.cli(&dir, &["session", "approve", session, "--digest", digest])
                    .ok()
            })?;
            (self.say)(&format!("  {} reviewed the payment and approved it", name));
        }
        Ok(())
    }

    /// Member `i`'s audit log (JSON Lines), through its node.
    fn audit_log(&self, i: usize) -> String {
        Command::new(&self.bin)
            .arg("--data-dir")
            .arg(self.member_dir(i))
            .args(["audit", "export"])
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn session(&self, i: usize, session: &str) -> Option<Value> {
        self.cli(&self.member_dir(i), &["session", "show", session])
            .ok()
    }
}

/// A fixed regtest address the demo pays (a throwaway key's).
fn demo_address() -> String {
    let key = lotus::PrivateKey::from_bytes(&[7; 32]).expect("a valid key");
    lotus::address::p2pkh_address(&key.public_key(), lotus::address::Network::Regtest)
}

pub fn run(args: &DemoArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let temporary;
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("lotus-cosigner-demo")
                .tempdir()?;
            temporary.path().to_owned()
        }
    };
    std::fs::create_dir_all(&root)?;
    let quiet = ctx.json;
    let mut printer = std::io::stderr();
    let say: Box<dyn FnMut(&str)> = Box::new(move |line: &str| {
        if !quiet {
            let _ = writeln!(printer, "{line}");
        }
    });
    let report = run_in(&root, say)?;
    answer(ctx, out, &report, |out| {
        writeln!(out, "demo finished: group {}", report.group_id)?;
        writeln!(
            out,
            "  session 1: coordinator #{} failed, #{} broadcast {}",
            report.failover.failed_coordinator, report.failover.broadcast_by, report.failover.txid
        )?;
        writeln!(
            out,
            "  session 2: member #{} blamed: {}",
            report.blame.blamed_member, report.blame.reason
        )
    })
}

fn run_in(root: &Path, say: Box<dyn FnMut(&str)>) -> anyhow::Result<DemoReport> {
    let mut demo = Demo {
        bin: std::env::current_exe()?,
        root: root.to_owned(),
        chain: String::new(),
        nodes: vec![None, None, None],
        say,
    };
    (demo.say)("Creating three demo co-signers: alice, bob and carol (throwaway keys)…");
    let mut keys = Vec::new();
    for i in 0..NAMES.len() {
        let dir = demo.member_dir(i);
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("key.enc");
        let key = demo.cli(&dir, &["key", "create", "--file", &file.to_string_lossy()])?;
        keys.push(key["public_key"].as_str().unwrap_or_default().to_owned());
    }
    // First-signer election: alice (member 1) coordinates, then bob, then carol.
    let scratch = root.join("creator");
    let mut create = vec![
        "group",
        "create",
        "--name",
        "demo",
        "--network",
        "regtest",
        "--election",
        "first-signer",
        "--round-timeout",
        "20",
        "--broadcast-slot",
        "5",
    ];
    for key in &keys {
        create.extend(["--member", key.as_str()]);
    }
    let group = demo.cli(&scratch, &create)?;
    let group_id = group["id"].as_str().unwrap_or_default().to_owned();
    let address = group["address"].as_str().unwrap_or_default().to_owned();
    let invite = group["invite"].as_str().unwrap_or_default().to_owned();

    (demo.say)("Starting a local devnet that funds the group with 100 XPI…");
    let devnet_dir = root.join("devnet");
    let mut devnet = Command::new(&demo.bin)
        .arg("--data-dir")
        .arg(&devnet_dir)
        .args(["devnet", "--rpc", "127.0.0.1:0", "--block-interval", "1"])
        .args(["--fund", &format!("{address}:50000000")])
        .args(["--fund", &format!("{address}:50000000")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the devnet")?;
    let mut lines = BufReader::new(devnet.stdout.take().expect("piped")).lines();
    let mut chain = None;
    for _ in 0..4 {
        let line = lines.next().context("the devnet stopped at start")??;
        if let Some(spec) = line.strip_prefix("chain ") {
            chain = Some(spec.to_owned());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let _devnet = Running { child: devnet };
    demo.chain = chain.context("the devnet did not say where its chain is")?;

    (demo.say)(
        "Starting the co-signers on the peer-to-peer network; alice will 'fail' as coordinator…",
    );
    demo.start_node(0, Some("silent-coordinator"))?;
    demo.start_node(1, None)?;
    demo.start_node(2, None)?;
    for i in 0..NAMES.len() {
        demo.cli(&demo.member_dir(i), &["group", "accept", &invite])?;
    }
    demo.wait("every acceptance", || {
        let shown = demo
            .cli(&demo.member_dir(0), &["group", "show", &group_id])
            .ok()?;
        (shown["accepted"] == NAMES.len()).then_some(())
    })?;
    (demo.say)(&format!(
        "Group {group_id} accepted by all three; address {address}"
    ));

    // Session 1: the coordinator never broadcasts; a backup does in its slot.
    (demo.say)("Session 1: bob proposes paying 1 XPI…");
    let (first, digest) = demo.propose(1, &group_id, 1_000_000)?;
    demo.approve_all(&first, &digest)?;
    let done = demo.wait("the payment to confirm", || {
        let shown = demo.session(1, &first)?;
        (shown["outcome"] == "confirmed").then_some(shown)
    })?;
    let coordinators: Vec<u64> = done["election"]["priority"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    // Bob's audit log records each slot that failed and the one he broadcast in.
    let log = demo.audit_log(1);
    let slot_of = |step: &str| {
        (0..coordinators.len())
            .find(|slot| log.contains(&format!(r#""step":"{step}","slot":{slot}"#)))
    };
    let member_in =
        |slot: Option<usize>| slot.and_then(|s| coordinators.get(s)).copied().unwrap_or(0);
    let failed_coordinator = member_in(slot_of("coordinator_failed"));
    let broadcast_by = member_in(slot_of("should_broadcast"));
    let txid = done["txid"].as_str().unwrap_or_default().to_owned();
    (demo.say)(&format!(
        "  election order {coordinators:?}: #{failed_coordinator} did not broadcast, backup #{broadcast_by} did; confirmed {txid}"
    ));

    // Session 2: carol sends an invalid partial signature.
    (demo.say)("Session 2: carol turns faulty and sends an invalid partial signature…");
    demo.stop_node(2);
    demo.start_node(2, Some("invalid-partials"))?;
    let (second, digest) = demo.propose(1, &group_id, 2_000_000)?;
    demo.approve_all(&second, &digest)?;
    let stopped = demo.wait("the faulty session to stop", || {
        let shown = demo.session(1, &second)?;
        (shown["outcome"] == "aborted").then_some(shown)
    })?;
    let blame = BlameReport {
        session_id: second,
        blamed_member: stopped["blamed_member"].as_u64().unwrap_or(0),
        reason: stopped["abort_reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    (demo.say)(&format!("  stopped: {}", blame.reason));
    for i in 0..NAMES.len() {
        demo.stop_node(i);
    }
    Ok(DemoReport {
        group_id,
        group_address: address,
        failover: FailoverReport {
            session_id: first,
            coordinators,
            failed_coordinator,
            broadcast_by,
            txid,
        },
        blame,
    })
}
