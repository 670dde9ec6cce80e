//! Real packet loss and partitions between co-signer processes: each node runs in a network
//! namespace the test creates (veth pairs on a bridge in a hub namespace, where the devnet
//! runs); loss is an nftables `numgen random` rule on each node's input hook (the `netem`
//! qdisc is not available on these machines). The host's own network is never touched. Needs
//! root, `ip` and `nft`; without them the test says it is skipped and why.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{cli, eventually, BIN, PASSPHRASE};

const HUB_IP: &str = "10.77.0.254";

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: network namespaces need root".into());
    }
    for tool in ["ip", "nft"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!(
                "`{tool}` is not installed (Debian: iproute2, nftables)"
            ));
        }
    }
    None
}

/// The namespaces of one test: a hub with a bridge, and one namespace per node.
struct Lab {
    prefix: String,
    nodes: usize,
}

impl Lab {
    /// `tag`: one letter per test, so tests running at once never share a namespace name.
    fn new(tag: char, nodes: usize) -> Result<Self, String> {
        let prefix = format!("lc{}{tag}", std::process::id() % 100_000);
        let lab = Self { prefix, nodes };
        let hub = lab.hub();
        run(&["ip", "netns", "add", &hub])?;
        run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run(&[
            "ip",
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_IP}/24"),
            "dev",
            "br0",
        ])?;
        run(&["ip", "-n", &hub, "link", "set", "br0", "up"])?;
        run(&["ip", "-n", &hub, "link", "set", "lo", "up"])?;
        for i in 0..nodes {
            let ns = lab.node(i);
            let (inside, outside) = (format!("{}v{i}", lab.prefix), format!("{}h{i}", lab.prefix));
            run(&["ip", "netns", "add", &ns])?;
            run(&[
                "ip", "link", "add", &inside, "netns", &ns, "type", "veth", "peer", "name",
                &outside, "netns", &hub,
            ])?;
            run(&["ip", "-n", &hub, "link", "set", &outside, "master", "br0"])?;
            run(&["ip", "-n", &hub, "link", "set", &outside, "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", lab.ip(i)),
                "dev",
                &inside,
            ])?;
            run(&["ip", "-n", &ns, "link", "set", &inside, "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&[
                "ip", "netns", "exec", &ns, "nft", "add", "table", "inet", "lab",
            ])?;
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "nft",
                "add chain inet lab input { type filter hook input priority 0 ; policy accept ; }",
            ])?;
        }
        Ok(lab)
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    fn node(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    fn ip(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Drops `percent`% of the packets arriving at node `i`.
    fn loss(&self, i: usize, percent: u32) {
        let rule = format!("add rule inet lab input numgen random mod 100 < {percent} drop");
        run(&["ip", "netns", "exec", &self.node(i), "nft", &rule]).unwrap();
    }

    /// Node `i` hears nothing from the other nodes (the chain stays reachable).
    fn isolate(&self, i: usize) {
        let rule =
            format!("add rule inet lab input ip saddr 10.77.0.0/24 ip saddr != {HUB_IP} drop");
        run(&["ip", "netns", "exec", &self.node(i), "nft", &rule]).unwrap();
    }

    /// Node `i` drops every packet from node `j` (one direction; call twice for both).
    fn block(&self, i: usize, j: usize) {
        let rule = format!("add rule inet lab input ip saddr {} drop", self.ip(j));
        run(&["ip", "netns", "exec", &self.node(i), "nft", &rule]).unwrap();
    }

    fn heal(&self, i: usize) {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.node(i),
            "nft",
            "flush chain inet lab input",
        ])
        .unwrap();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.nodes {
            let _ = run(&["ip", "netns", "del", &self.node(i)]);
        }
        let _ = run(&["ip", "netns", "del", &self.hub()]);
    }
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `args` inside namespace `ns`; answers the process and its first `lines` of output.
fn spawn_in(ns: &str, args: &[&str], lines: usize) -> (Process, Vec<String>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, BIN])
        .args(args)
        .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap()).lines();
    let out = (0..lines)
        .map(|_| reader.next().unwrap().unwrap())
        .collect();
    // Keep reading in the background so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader {});
    (Process(child), out)
}

struct Setup {
    _lab: Lab,
    _processes: Vec<Process>,
    dirs: Vec<PathBuf>,
    /// The members' signer keys (hex).
    keys: Vec<String>,
    group: String,
    _root: tempfile::TempDir,
}

/// Three members in their namespaces, the devnet in the hub, the group accepted by all. With
/// `relay`, the first member runs as relay (and bootstrap) for the others.
fn setup(lab: Lab, relay: bool) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..3).map(|i| root.path().join(format!("m{i}"))).collect();
    let mut keys = Vec::new();
    for dir in &dirs {
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
        keys.push(key["public_key"].as_str().unwrap().to_owned());
    }
    let scratch = root.path().join("scratch");
    let mut create = vec![
        "group",
        "create",
        "--name",
        "lab",
        "--network",
        "regtest",
        "--round-timeout",
        "90",
        "--broadcast-slot",
        "15",
    ];
    for key in &keys {
        create.extend(["--member", key.as_str()]);
    }
    let group = cli(&scratch, &create).unwrap();
    let fund = format!("{}:50000000", group["address"].as_str().unwrap());
    let devnet_dir = root.path().join("devnet");
    let (devnet, out) = spawn_in(
        &lab.hub(),
        &[
            "--data-dir",
            devnet_dir.to_str().unwrap(),
            "devnet",
            "--rpc",
            &format!("{HUB_IP}:18999"),
            "--block-interval",
            "2",
            "--fund",
            &fund,
        ],
        4,
    );
    let chain = out[2].strip_prefix("chain ").unwrap().to_owned();
    let mut processes = vec![devnet];
    let mut first = String::new();
    for (i, dir) in dirs.iter().enumerate() {
        let listen = format!("/ip4/{}/tcp/4001", lab.ip(i));
        let mut args = vec![
            "--data-dir",
            dir.to_str().unwrap(),
            "--chain",
            &chain,
            "node",
            "--listen",
            &listen,
            "--key-file",
        ];
        let key_file = dir.join("key.enc");
        args.push(key_file.to_str().unwrap());
        if i > 0 {
            args.extend(["--bootstrap", first.as_str()]);
        } else if relay {
            args.push("--relay");
        }
        let (node, out) = spawn_in(&lab.node(i), &args, 2);
        let peer = out[0].strip_prefix("peer-id ").unwrap().to_owned();
        if i == 0 {
            first = format!("{listen}/p2p/{peer}");
        }
        processes.push(node);
        cli(dir, &["group", "accept", group["invite"].as_str().unwrap()]).unwrap();
    }
    Setup {
        _lab: lab,
        _processes: processes,
        dirs,
        keys,
        group: group["id"].as_str().unwrap().to_owned(),
        _root: root,
    }
}

fn pay(setup: &Setup) -> (String, String) {
    let key = lotus::PrivateKey::from_bytes(&[42; 32]).unwrap();
    let to = lotus::address::p2pkh_address(&key.public_key(), lotus::address::Network::Regtest);
    let proposal = cli(
        &setup.dirs[0],
        &[
            "session",
            "propose",
            "--group",
            &setup.group,
            "--pay",
            &format!("{to}:1000000"),
        ],
    )
    .unwrap();
    (
        proposal["session_id"].as_str().unwrap().to_owned(),
        proposal["review_digest"].as_str().unwrap().to_owned(),
    )
}

fn approve_all(setup: &Setup, session: &str, digest: &str) {
    for dir in &setup.dirs {
        eventually("the proposal", Duration::from_secs(180), || {
            cli(dir, &["session", "show", session]).ok()
        });
        eventually("the approval", Duration::from_secs(120), || {
            cli(dir, &["session", "approve", session, "--digest", digest]).ok()
        });
    }
}

fn outcome(setup: &Setup, i: usize, session: &str) -> Value {
    cli(&setup.dirs[i], &["session", "show", session]).unwrap_or(Value::Null)
}

#[test]
fn sessions_complete_with_thirty_percent_packet_loss_between_namespaces() {
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let lab = Lab::new('l', 3).unwrap();
    let setup = setup(lab, false);
    for i in 0..3 {
        setup._lab.loss(i, 30);
    }
    let (session, digest) = pay(&setup);
    approve_all(&setup, &session, &digest);
    eventually(
        "confirmation under 30% loss",
        Duration::from_secs(600),
        || (outcome(&setup, 1, &session)["outcome"] == "confirmed").then_some(()),
    );
}

#[test]
fn a_partition_that_heals_completes_or_aborts_cleanly() {
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let lab = Lab::new('p', 3).unwrap();
    let setup = setup(lab, false);
    let (session, digest) = pay(&setup);
    for dir in &setup.dirs {
        eventually("the proposal", Duration::from_secs(180), || {
            cli(dir, &["session", "show", &session]).ok()
        });
    }
    // Member 3 is cut off from the others (not from the chain) while everyone approves and the
    // rounds start; then the partition heals.
    setup._lab.isolate(2);
    approve_all(&setup, &session, &digest);
    setup._lab.heal(2);
    let end = eventually(
        "an end after the partition healed",
        Duration::from_secs(600),
        || {
            let shown = outcome(&setup, 0, &session);
            let ended = shown["outcome"]
                .as_str()
                .is_some_and(|o| o == "confirmed" || o.starts_with("aborted"));
            ended.then_some(shown)
        },
    );
    // No nonce reuse: every member's store refuses a duplicate nonce and aborts the session;
    // a clean end has no such abort.
    let reason = end["abort_reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        !reason.contains("nonce"),
        "ended without nonce trouble: {end}"
    );
}

/// Members 2 and 3 cannot reach each other directly (each drops the other's packets, as two
/// NATs would); member 1 is an always-on server running as relay. Each reserves a slot on it,
/// finds the other's relayed address in its signed presence record, and the session completes.
#[test]
fn members_that_cannot_reach_each_other_directly_meet_through_the_relay() {
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let lab = Lab::new('r', 3).unwrap();
    lab.block(1, 2);
    lab.block(2, 1);
    let setup = setup(lab, true);
    // Both ends list the other as relayed through a circuit address: the one that dialled
    // and the one that accepted (whose remote address alone would be a bare `/p2p/<id>`).
    for (me, other) in [(1, 2), (2, 1)] {
        let other_key = setup.keys[other].clone();
        let peer = eventually(
            "the other member through the relay",
            Duration::from_secs(240),
            || {
                let peers = cli(&setup.dirs[me], &["peers"]).ok()?;
                peers
                    .as_array()?
                    .iter()
                    .find(|p| p["signer"] == other_key.as_str() && p["path"] == "relayed")
                    .cloned()
            },
        );
        assert!(
            peer["address"].as_str().unwrap().contains("p2p-circuit"),
            "member {} sees {peer}",
            me + 1
        );
    }
    let (session, digest) = pay(&setup);
    approve_all(&setup, &session, &digest);
    eventually("confirmation", Duration::from_secs(300), || {
        (outcome(&setup, 2, &session)["outcome"] == "confirmed").then_some(())
    });
}
