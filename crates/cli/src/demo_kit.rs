//! What both demos are made of (the `lotus-cosigner demo` command and the desktop app's "Try a
//! demo group"): throwaway co-signers, each this same program run as a child process with its
//! own data folder and key file, a local devnet, and the commands that drive them. Nothing here
//! touches the person's own profile or key.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

/// The demo key files' passphrase (throwaway keys on a throwaway chain).
pub const PASSPHRASE: &str = "demo only - throwaway keys";
/// How long any one automatic step may take before the demo gives up and says which.
pub const STEP: Duration = Duration::from_secs(180);
/// Each devnet coin funding a demo group, satoshis (50 XPI).
const FUNDING_COIN_SATS: u64 = 50_000_000;

/// How to run this program's command line: the `lotus-cosigner` binary itself, or the desktop
/// app's hidden headless mode (`lotus-cosigner-app --headless …`).
#[derive(Debug, Clone)]
pub struct Launcher {
    pub bin: PathBuf,
    pub prefix: Vec<String>,
}

impl Launcher {
    /// The running program, its arguments after `prefix`.
    pub fn this_program(prefix: &[&str]) -> std::io::Result<Self> {
        Ok(Self {
            bin: std::env::current_exe()?,
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(&self.prefix);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // A demo child never outlives the program that started it, even one killed hard.
            // (Linux sends this when the spawning *thread* ends: children are started from the
            // main thread or the demo's director thread, which both live as long as the demo.)
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
        }
        command
    }
}

/// A child process stopped (and waited for) when the demo ends, however it ends.
pub struct Running {
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

/// A group created for a demo: its id, address and invite.
pub struct DemoGroup {
    pub id: String,
    pub address: String,
    pub invite: String,
}

/// The demo's headless co-signers, by name, under one root folder.
pub struct Cosigners {
    launcher: Launcher,
    root: PathBuf,
    names: Vec<&'static str>,
    /// The devnet's `--chain` spec, once it runs.
    pub chain: String,
    nodes: Vec<Option<(Running, String)>>,
    /// Set from outside to end every wait early (the app closing mid-demo).
    stop: Arc<AtomicBool>,
}

impl Cosigners {
    pub fn new(launcher: Launcher, root: &Path, names: &[&'static str]) -> Self {
        Self {
            launcher,
            root: root.to_owned(),
            names: names.to_vec(),
            chain: String::new(),
            nodes: names.iter().map(|_| None).collect(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that, once set, makes every wait give up.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn name(&self, i: usize) -> &'static str {
        self.names[i]
    }

    pub fn member_dir(&self, i: usize) -> PathBuf {
        self.root.join(self.names[i])
    }

    /// Runs the command line with `--json` on the folder `dir`; its answer.
    pub fn cli(&self, dir: &Path, args: &[&str]) -> anyhow::Result<Value> {
        let output = self
            .launcher
            .command()
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

    /// Retries until `f` answers, for at most one step (or until stopped).
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
        self.wait_for(what, STEP, &mut f)
    }

    /// Retries until `f` answers, for at most `patience`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        patience: Duration,
        f: &mut dyn FnMut() -> Option<T>,
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                bail!("the demo was stopped while waiting for {what}");
            }
            if let Some(value) = f() {
                return Ok(value);
            }
            if start.elapsed() > patience {
                bail!("the demo gave up waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Member `i`'s key file (created by [`Self::create_keys`]).
    pub fn key_file(&self, i: usize) -> PathBuf {
        self.member_dir(i).join("key.enc")
    }

    /// A key file per member; their public keys (hex), in member order.
    pub fn create_keys(&self) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        for i in 0..self.names.len() {
            let dir = self.member_dir(i);
            std::fs::create_dir_all(&dir)?;
            let file = self.key_file(i);
            let key = self.cli(&dir, &["key", "create", "--file", &file.to_string_lossy()])?;
            keys.push(key["public_key"].as_str().unwrap_or_default().to_owned());
        }
        Ok(keys)
    }

    /// A regtest group of `keys` with first-signer election (member 1 coordinates, then 2…),
    /// created in a scratch folder of its own.
    pub fn create_group(
        &self,
        keys: &[String],
        round_timeout_s: u32,
        broadcast_slot_s: u32,
    ) -> anyhow::Result<DemoGroup> {
        let (round, slot) = (round_timeout_s.to_string(), broadcast_slot_s.to_string());
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
            &round,
            "--broadcast-slot",
            &slot,
        ];
        for key in keys {
            create.extend(["--member", key.as_str()]);
        }
        let group = self.cli(&self.root.join("creator"), &create)?;
        let text = |field: &str| group[field].as_str().unwrap_or_default().to_owned();
        Ok(DemoGroup {
            id: text("id"),
            address: text("address"),
            invite: text("invite"),
        })
    }

    /// A local devnet funding `address` with two coins of 50 XPI, a block a second. Sets
    /// [`Self::chain`].
    pub fn start_devnet(&mut self, address: &str) -> anyhow::Result<Running> {
        let fund = format!("{address}:{FUNDING_COIN_SATS}");
        let mut devnet = self
            .launcher
            .command()
            .arg("--data-dir")
            .arg(self.root.join("devnet"))
            .args(["devnet", "--rpc", "127.0.0.1:0", "--block-interval", "1"])
            .args(["--fund", &fund, "--fund", &fund])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the devnet")?;
        let mut lines = BufReader::new(devnet.stdout.take().expect("piped")).lines();
        let running = Running { child: devnet };
        let mut chain = None;
        for _ in 0..4 {
            let line = lines.next().context("the devnet stopped at start")??;
            if let Some(spec) = line.strip_prefix("chain ") {
                chain = Some(spec.to_owned());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.chain = chain.context("the devnet did not say where its chain is")?;
        Ok(running)
    }

    /// Starts member `i`'s node on loopback (bootstrapping from member 0's unless it is member
    /// 0), with a test fault and further node arguments.
    pub fn start_node(
        &mut self,
        i: usize,
        fault: Option<&str>,
        extra: &[&str],
    ) -> anyhow::Result<()> {
        let dir = self.member_dir(i);
        let mut command = self.launcher.command();
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
            .arg(self.key_file(i))
            .args(extra)
            .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(first) = self.node_address(0).filter(|_| i != 0) {
            command.args(["--bootstrap", first]);
        }
        if let Some(fault) = fault {
            command.args(["--test-fault", fault]);
        }
        let mut child = command.spawn().context("cannot start a demo co-signer")?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let running = Running { child };
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
        self.nodes[i] = Some((running, address));
        Ok(())
    }

    /// Member `i`'s node's address (`…/p2p/<peer id>`) while it runs.
    pub fn node_address(&self, i: usize) -> Option<&str> {
        self.nodes[i].as_ref().map(|(_, address)| address.as_str())
    }

    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Member `from` proposes paying `sats` to the demo address; the session id and the
    /// review digest.
    pub fn propose(&self, from: usize, group: &str, sats: u64) -> anyhow::Result<(String, String)> {
        let pay = format!("{}:{sats}", demo_address());
        let proposal = self.wait("coins to spend", || {
            self.cli(
                &self.member_dir(from),
                &["session", "propose", "--group", group, "--pay", &pay],
            )
            .ok()
        })?;
        let text = |field: &str| proposal[field].as_str().unwrap_or_default().to_owned();
        Ok((text("session_id"), text("review_digest")))
    }

    /// Member `i` approves the session once it has it.
    pub fn approve(&self, i: usize, session: &str, digest: &str) -> anyhow::Result<()> {
        let dir = self.member_dir(i);
        let name = self.name(i);
        self.wait(&format!("{name} to receive the proposal"), || {
            self.cli(&dir, &["session", "show", session]).ok()
        })?;
        self.wait(&format!("{name}'s approval"), || {
            self.cli(&dir, &["session", "approve", session, "--digest", digest])
                .ok()
        })?;
        Ok(())
    }

    /// Member `i`'s audit log (JSON Lines), through its node.
    pub fn audit_log(&self, i: usize) -> String {
        self.launcher
            .command()
            .arg("--data-dir")
            .arg(self.member_dir(i))
            .args(["audit", "export"])
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Member `i`'s view of a session, if it has one.
    pub fn session(&self, i: usize, session: &str) -> Option<Value> {
        self.cli(&self.member_dir(i), &["session", "show", session])
            .ok()
    }
}

/// From a member's audit log, the failover slot that failed and the one that broadcast, as
/// 1-based member numbers of `coordinators` (0: not found).
pub fn failover_members(log: &str, coordinators: &[u64]) -> (u64, u64) {
    let slot_of = |step: &str| {
        (0..coordinators.len())
            .find(|slot| log.contains(&format!(r#""step":"{step}","slot":{slot}"#)))
    };
    let member_in =
        |slot: Option<usize>| slot.and_then(|s| coordinators.get(s)).copied().unwrap_or(0);
    (
        member_in(slot_of("coordinator_failed")),
        member_in(slot_of("should_broadcast")),
    )
}

/// A fixed regtest address the demo pays (a throwaway key's).
pub fn demo_address() -> String {
    let key = lotus::PrivateKey::from_bytes(&[7; 32]).expect("a valid key");
    lotus::address::p2pkh_address(&key.public_key(), lotus::address::Network::Regtest)
}
