//! Co-signers as separate processes on real sockets: a devnet process and `lotus-cosigner node`
//! processes, each with its own data folder and encrypted key file, driven only through the
//! command line (the contract external scripts use).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lotus-cosigner");
const PASSPHRASE: &str = "correct horse battery staple";

/// A child process killed if the test fails half-way.
struct Process {
    child: Child,
    name: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn terminate(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} stops cleanly on SIGTERM: {status}",
            self.name
        );
    }
}

fn cli(dir: &Path, args: &[&str]) -> Result<Value, String> {
    let output = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "{args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_str(&stdout).map_err(|e| format!("{args:?}: not JSON ({e}): {stdout}"))
}

/// Retries `f` until it answers `Some`, for at most `limit` (the processes work in parallel).
fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

struct Devnet {
    process: Process,
    chain: String,
}

fn devnet(dir: &Path, fund: &str) -> Devnet {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args([
            "devnet",
            "--rpc",
            "127.0.0.1:0",
            "--block-interval",
            "1",
            "--fund",
            fund,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _rpc = lines.next().unwrap().unwrap();
    let _cookie = lines.next().unwrap().unwrap();
    let chain = lines.next().unwrap().unwrap();
    let chain = chain.strip_prefix("chain ").unwrap().to_owned();
    let _chronik = lines.next().unwrap().unwrap();
    Devnet {
        process: Process {
            child,
            name: "devnet".into(),
        },
        chain,
    }
}

struct Node {
    process: Process,
    dir: PathBuf,
    /// `/ip4/127.0.0.1/tcp/PORT/p2p/ID`
    address: String,
}

fn create_key(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let key = cli(
        dir,
        &[
            "key",
            "create",
            "--file",
            dir.join("key.enc").to_str().unwrap(),
        ],
    )
    .unwrap();
    key["public_key"].as_str().unwrap().to_owned()
}

fn start_node(dir: &Path, chain: &str, bootstrap: Option<&str>, policy: Option<&Path>) -> Node {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(dir)
        .args(["--chain", chain, "node", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .arg("--key-file")
        .arg(dir.join("key.enc"))
        .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::piped());
    if let Some(bootstrap) = bootstrap {
        command.args(["--bootstrap", bootstrap]);
    }
    if let Some(policy) = policy {
        command.arg("--policy").arg(policy);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let peer = lines.next().expect("a peer-id line").unwrap();
    let peer = peer
        .strip_prefix("peer-id ")
        .expect("peer-id <id>")
        .to_owned();
    let listening = lines.next().expect("a listening line").unwrap();
    let listening = listening
        .strip_prefix("listening ")
        .expect("listening <addr>");
    Node {
        process: Process {
            child,
            name: format!("node {}", dir.display()),
        },
        dir: dir.to_owned(),
        address: format!("{listening}/p2p/{peer}"),
    }
}

#[test]
fn three_nodes_create_a_group_over_the_network_and_complete_a_payment_on_the_devnet() {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|i| root.path().join(format!("member{i}")))
        .collect();
    let keys: Vec<String> = dirs.iter().map(|d| create_key(d)).collect();

    // The group as its creator builds it (an offline scratch profile: no key needed).
    let scratch = root.path().join("scratch");
    let mut create = vec!["group", "create", "--name", "till", "--network", "regtest"];
    for key in &keys {
        create.extend(["--member", key.as_str()]);
    }
    create.extend(["--round-timeout", "30", "--broadcast-slot", "10"]);
    let group = cli(&scratch, &create).unwrap();
    let (group_id, address, invite) = (
        group["id"].as_str().unwrap().to_owned(),
        group["address"].as_str().unwrap().to_owned(),
        group["invite"].as_str().unwrap().to_owned(),
    );
    let devnet = devnet(&root.path().join("devnet"), &format!("{address}:50000000"));

    let policy = root.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"small payments\"\nmax_per_session_sats = 2000000\nmax_fee_sats = 100000\n",
    )
    .unwrap();
    let first = start_node(&dirs[0], &devnet.chain, None, None);
    let second = start_node(&dirs[1], &devnet.chain, Some(&first.address), None);
    let third = start_node(&dirs[2], &devnet.chain, Some(&first.address), Some(&policy));
    let nodes = [first, second, third];

    for node in &nodes {
        let accepted = cli(&node.dir, &["group", "accept", &invite]).unwrap();
        assert_eq!(accepted["id"], group_id);
    }
    // Acceptances travel over the network: every member sees all three.
    for node in &nodes {
        eventually("every acceptance", Duration::from_secs(60), || {
            let shown = cli(&node.dir, &["group", "show", &group_id]).ok()?;
            (shown["accepted"] == 3).then_some(())
        });
    }
    let peers = cli(&nodes[0].dir, &["peers"]).unwrap();
    let members: Vec<&Value> = peers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["member"] == true)
        .collect();
    assert_eq!(
        members.len(),
        2,
        "the first node reaches both co-signers: {peers}"
    );

    let recipient = lotus_address();
    let proposal = cli(
        &nodes[0].dir,
        &[
            "session",
            "propose",
            "--group",
            &group_id,
            "--pay",
            &format!("{recipient}:1000000"),
        ],
    )
    .unwrap();
    let session = proposal["session_id"].as_str().unwrap().to_owned();
    let digest = proposal["review_digest"].as_str().unwrap().to_owned();

    // Two people approve through the command line; the third member is a policy co-signer.
    for node in &nodes[..2] {
        eventually("the proposal to arrive", Duration::from_secs(60), || {
            cli(&node.dir, &["session", "show", &session]).ok()
        });
        let approved = cli(
            &node.dir,
            &["session", "approve", &session, "--digest", &digest],
        )
        .unwrap();
        assert_eq!(approved["approved_by_me"], true);
    }
    let done = eventually("the payment to confirm", Duration::from_secs(180), || {
        let shown = cli(&nodes[1].dir, &["session", "show", &session]).ok()?;
        (shown["outcome"] == "confirmed").then_some(shown)
    });
    assert!(!done["txid"].as_str().unwrap().is_empty());
    let policy_log = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(&nodes[2].dir)
        .args(["audit", "export"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&policy_log.stdout);
    assert!(
        log.contains("policy_decision") && log.contains("small payments"),
        "the policy co-signer's decision and its rule are in its audit log: {log}"
    );
    for node in nodes {
        node.process.terminate();
    }
    devnet.process.terminate();
}

fn lotus_address() -> String {
    // A fixed regtest P2PKH address (hash160 of a throwaway key).
    let key = lotus::PrivateKey::from_bytes(&[42; 32]).unwrap();
    lotus::address::p2pkh_address(&key.public_key(), lotus::address::Network::Regtest)
}
