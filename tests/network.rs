//! Co-signers as separate processes on real sockets: a devnet process and `lotus-cosigner node`
//! processes, each with its own data folder and encrypted key file, driven only through the
//! command line (the contract external scripts use).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{cli, eventually, BIN, PASSPHRASE};

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

struct Devnet {
    process: Process,
    chain: String,
}

fn devnet(dir: &Path, funds: &[String]) -> Devnet {
    let mut command = Command::new(BIN);
    command.arg("--data-dir").arg(dir).args([
        "devnet",
        "--rpc",
        "127.0.0.1:0",
        "--block-interval",
        "1",
    ]);
    for fund in funds {
        command.args(["--fund", fund]);
    }
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
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

fn start_node(
    dir: &Path,
    chain: &str,
    bootstrap: Option<&str>,
    policy: Option<&Path>,
    fault: Option<&str>,
) -> Node {
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
    if let Some(fault) = fault {
        command.args(["--test-fault", fault]);
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

struct Cluster {
    root: tempfile::TempDir,
    dirs: Vec<PathBuf>,
    group_id: String,
    invite: String,
    devnet: Devnet,
    nodes: Vec<Option<Node>>,
    /// Members that accepted already (a restarted node keeps its groups).
    accepted: Vec<bool>,
    /// Further groups of some members: id, invite, members.
    extra: Vec<(String, String, Vec<usize>)>,
}

/// Options of one node in a cluster.
#[derive(Clone, Copy, Default)]
struct Role<'a> {
    policy: bool,
    fault: Option<&'a str>,
}

/// `n` members with their own folders and key files, a group of them (invite built by a
/// scratch profile, as a creator would), a devnet that funds it. No node runs yet.
fn cluster(n: usize, group_args: &[&str]) -> Cluster {
    cluster_with(n, group_args, &[])
}

/// [`cluster`] plus further groups, each of some members (indices), funded too.
fn cluster_with(n: usize, group_args: &[&str], extra: &[&[usize]]) -> Cluster {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (1..=n)
        .map(|i| root.path().join(format!("member{i}")))
        .collect();
    let keys: Vec<String> = dirs.iter().map(|d| create_key(d)).collect();
    let scratch = root.path().join("scratch");
    let make = |name: &str, members: &[usize]| {
        let mut create = vec!["group", "create", "--name", name, "--network", "regtest"];
        for &i in members {
            create.extend(["--member", keys[i].as_str()]);
        }
        create.extend(group_args);
        cli(&scratch, &create).unwrap()
    };
    let group = make("till", &(0..n).collect::<Vec<_>>());
    let address = group["address"].as_str().unwrap();
    let mut funds = vec![format!("{address}:50000000")];
    let others: Vec<Value> = extra
        .iter()
        .enumerate()
        .map(|(k, members)| make(&format!("extra{k}"), members))
        .collect();
    for other in &others {
        // Several coins: each session spends a confirmed one.
        for _ in 0..4 {
            funds.push(format!("{}:50000000", other["address"].as_str().unwrap()));
        }
    }
    let devnet = devnet(&root.path().join("devnet"), &funds);
    let policy = root.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"small payments\"\nmax_per_session_sats = 2000000\nmax_fee_sats = 100000\n",
    )
    .unwrap();
    Cluster {
        group_id: group["id"].as_str().unwrap().to_owned(),
        invite: group["invite"].as_str().unwrap().to_owned(),
        extra: others
            .iter()
            .zip(extra)
            .map(|(g, members)| {
                (
                    g["id"].as_str().unwrap().to_owned(),
                    g["invite"].as_str().unwrap().to_owned(),
                    members.to_vec(),
                )
            })
            .collect(),
        nodes: (0..n).map(|_| None).collect(),
        accepted: vec![false; n],
        root,
        dirs,
        devnet,
    }
}

impl Cluster {
    /// Starts member `i` (bootstrapping from the first node if it runs) and has it accept.
    fn start(&mut self, i: usize, role: Role) {
        let bootstrap = self.nodes[0].as_ref().map(|n| n.address.clone());
        let policy = self.root.path().join("policy.toml");
        let node = start_node(
            &self.dirs[i],
            &self.devnet.chain,
            bootstrap.as_deref().filter(|_| i != 0),
            role.policy.then_some(policy.as_path()),
            role.fault,
        );
        if !std::mem::replace(&mut self.accepted[i], true) {
            let accepted = cli(&node.dir, &["group", "accept", &self.invite]).unwrap();
            assert_eq!(accepted["id"], self.group_id);
            for (_, invite, members) in &self.extra {
                if members.contains(&i) {
                    cli(&node.dir, &["group", "accept", invite]).unwrap();
                }
            }
        }
        self.nodes[i] = Some(node);
    }

    fn dir(&self, i: usize) -> &Path {
        &self.dirs[i]
    }

    fn kill(&mut self, i: usize) {
        let mut node = self.nodes[i].take().expect("running");
        node.process.child.kill().unwrap();
        node.process.child.wait().unwrap();
    }

    fn propose(&self, from: usize, sats: u64) -> (String, String) {
        self.propose_in(&self.group_id, from, sats)
    }

    fn propose_in(&self, group: &str, from: usize, sats: u64) -> (String, String) {
        let pay = format!("{}:{sats}", lotus_address());
        let proposal = cli(
            self.dir(from),
            &["session", "propose", "--group", group, "--pay", &pay],
        )
        .unwrap();
        (
            proposal["session_id"].as_str().unwrap().to_owned(),
            proposal["review_digest"].as_str().unwrap().to_owned(),
        )
    }

    fn approve(&self, i: usize, session: &str, digest: &str) {
        eventually("the proposal to arrive", Duration::from_secs(90), || {
            cli(self.dir(i), &["session", "show", session]).ok()
        });
        // The approval checks the coins on this member's chain backend, which may lag the
        // proposer's by a poll.
        let start = std::time::Instant::now();
        let approved = loop {
            match cli(
                self.dir(i),
                &["session", "approve", session, "--digest", digest],
            ) {
                Ok(approved) => break approved,
                Err(e) if start.elapsed() > Duration::from_secs(90) => {
                    panic!("member {} could not approve: {e}", i + 1)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        };
        assert_eq!(approved["approved_by_me"], true);
    }

    fn aborted(&self, i: usize, session: &str) -> Value {
        eventually("the session to abort", Duration::from_secs(240), || {
            let shown = cli(self.dir(i), &["session", "show", session]).ok()?;
            (shown["outcome"] == "aborted").then_some(shown)
        })
    }

    /// A payment in a two-member group of members 1 and 2, proposed by `from`, approved by
    /// both, confirmed; first waits until the group's coins are settled on the chain.
    fn pair_payment(&self, group: &str, from: usize, sats: u64) {
        eventually("settled coins", Duration::from_secs(90), || {
            let balance = cli(self.dir(from), &["group", "balance", group]).ok()?;
            (balance["unconfirmed_sats"] == 0).then_some(())
        });
        let (session, digest) = self.propose_in(group, from, sats);
        self.approve(0, &session, &digest);
        self.approve(1, &session, &digest);
        self.confirmed(0, &session);
    }

    fn confirmed(&self, i: usize, session: &str) -> Value {
        eventually("the payment to confirm", Duration::from_secs(240), || {
            let shown = cli(self.dir(i), &["session", "show", session]).ok()?;
            (shown["outcome"] == "confirmed").then_some(shown)
        })
    }

    fn stop(mut self) {
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            node.process.terminate();
        }
        self.devnet.process.terminate();
    }
}

/// Every member accepts, sees all acceptances, proposes from the first, approves by CLI (the
/// last member is a policy co-signer), and the devnet confirms.
fn payment_over_the_network(n: usize) {
    let mut cluster = cluster(n, &["--round-timeout", "60", "--broadcast-slot", "10"]);
    for i in 0..n {
        let role = Role {
            policy: i == n - 1,
            ..Role::default()
        };
        cluster.start(i, role);
    }
    for i in 0..n {
        eventually("every acceptance", Duration::from_secs(90), || {
            let shown = cli(cluster.dir(i), &["group", "show", &cluster.group_id]).ok()?;
            (shown["accepted"] == n).then_some(())
        });
    }
    let peers = cli(cluster.dir(0), &["peers"]).unwrap();
    let members = peers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["member"] == true)
        .count();
    assert_eq!(
        members,
        n - 1,
        "the first node reaches every co-signer: {peers}"
    );

    let (session, digest) = cluster.propose(0, 1_000_000);
    for i in 0..n - 1 {
        cluster.approve(i, &session, &digest);
    }
    let done = cluster.confirmed(1, &session);
    assert!(!done["txid"].as_str().unwrap().is_empty());
    let log = Command::new(BIN)
        .arg("--data-dir")
        .arg(cluster.dir(n - 1))
        .args(["audit", "export"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.contains("policy_decision") && log.contains("small payments"),
        "the policy co-signer's decision and its rule are in its audit log: {log}"
    );
    cluster.stop();
}

#[test]
fn three_nodes_create_a_group_over_the_network_and_complete_a_payment_on_the_devnet() {
    payment_over_the_network(3);
}

#[test]
fn ten_nodes_complete_a_payment_over_the_network() {
    payment_over_the_network(10);
}

/// The elected coordinator (first-signer: member 1) never broadcasts and is killed with SIGKILL
/// once the transaction is signed: the backup in slot 2 broadcasts and the devnet confirms.
#[test]
fn a_backup_broadcasts_when_the_coordinator_is_killed_after_the_partial_signatures() {
    let mut cluster = cluster(
        3,
        &[
            "--election",
            "first-signer",
            "--round-timeout",
            "60",
            "--broadcast-slot",
            "4",
        ],
    );
    cluster.start(
        0,
        Role {
            fault: Some("silent-coordinator"),
            ..Role::default()
        },
    );
    cluster.start(1, Role::default());
    cluster.start(2, Role::default());
    let (session, digest) = cluster.propose(0, 1_000_000);
    for i in 0..3 {
        cluster.approve(i, &session, &digest);
    }
    // Signed: the failover schedule exists at the coordinator.
    let signed = eventually("the signatures", Duration::from_secs(120), || {
        let shown = cli(cluster.dir(0), &["session", "show", &session]).ok()?;
        (!shown["failover"].as_array()?.is_empty()).then_some(shown)
    });
    assert_eq!(
        signed["election"]["priority"][0], 1,
        "member 1 coordinates: {signed}"
    );
    cluster.kill(0);
    let done = cluster.confirmed(1, &session);
    assert_eq!(done["txid"], signed["txid"]);
    let backup_log = audit_log(cluster.dir(1));
    assert!(
        backup_log.contains(r#""step":"coordinator_failed","slot":0"#)
            && backup_log.contains(r#""step":"should_broadcast","slot":1"#),
        "member 2 saw the coordinator's slot fail and broadcast in its own: {backup_log}"
    );
    cluster.stop();
}

/// How long after the proposal the late member starts: past the reference's 5-minute window.
const LATE_START: Duration = Duration::from_secs(5 * 60 + 10);

/// A member starts only after the proposal was made (it pulls it), more than five minutes
/// later; another is killed mid-round and restarts: the session completes in a later attempt,
/// with fresh nonces.
#[test]
fn a_late_member_and_a_member_killed_mid_round_still_complete_the_session() {
    let mut cluster = cluster(3, &["--round-timeout", "60", "--broadcast-slot", "10"]);
    cluster.start(0, Role::default());
    cluster.start(1, Role::default());
    let (session, digest) = cluster.propose(0, 1_000_000);
    cluster.approve(0, &session, &digest);
    // Member 2 has the proposal but does not approve yet: it sends nonces, never partials.
    eventually(
        "member 2 to receive the proposal",
        Duration::from_secs(90),
        || cli(cluster.dir(1), &["session", "show", &session]).ok(),
    );
    // Member 3 was not running when the proposal was made, and starts only after the
    // 5-minute message window of the reference implementation has passed (time itself is the
    // scenario here, so the test waits it out).
    std::thread::sleep(LATE_START);
    cluster.start(2, Role::default());
    eventually(
        "the late member to receive the proposal",
        Duration::from_secs(90),
        || cli(cluster.dir(2), &["session", "show", &session]).ok(),
    );
    // Nonces go out without approval; member 2 dies holding its secret nonces.
    eventually("member 2's nonces", Duration::from_secs(90), || {
        let shown = cli(cluster.dir(0), &["session", "show", &session]).ok()?;
        let waiting = serde_json::to_string(&shown["members"]).ok()?;
        (!waiting.contains("nonces")).then_some(())
    });
    cluster.kill(1);
    cluster.start(1, Role::default());
    cluster.approve(1, &session, &digest);
    cluster.approve(2, &session, &digest);
    let done = cluster.confirmed(2, &session);
    // Attempts count from 0: the restart forced a second one.
    assert!(
        done["attempt"].as_u64().unwrap() >= 1,
        "a new attempt after the restart: {done}"
    );
    let log = audit_log(cluster.dir(1));
    assert!(
        log.contains("attempt_abandoned_at_start"),
        "the restarted member abandoned the attempt whose nonces died with it: {log}"
    );
    cluster.stop();
}

/// A member's audit log as JSON Lines, through its node.
fn audit_log(dir: &Path) -> String {
    let output = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["audit", "export"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Resident memory of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One member turns Byzantine, one way after another (its process restarted in each mode):
/// invalid partial signatures, then two different round-1 messages, then replays of
/// everything it sent (also re-signed under another group it shares with a victim), then a
/// flood of forgeries in the others' names. The honest members blame it with proof each
/// time, complete a session with it while it replays, keep completing sessions of a group it
/// is not in, and their memory stays bounded.
#[test]
fn a_byzantine_member_is_blamed_and_honest_members_keep_completing_sessions() {
    let mut cluster = cluster_with(
        3,
        &["--round-timeout", "30", "--broadcast-slot", "10"],
        &[&[0, 1], &[0, 2]],
    );
    let pair = cluster.extra[0].0.clone();
    cluster.start(0, Role::default());
    cluster.start(1, Role::default());
    let byzantine = |fault| Role {
        fault: Some(fault),
        ..Role::default()
    };
    let mut rss = Vec::new();
    let mut measure = |cluster: &Cluster| {
        let peak = (0..2)
            .map(|i| rss_kib(cluster.nodes[i].as_ref().unwrap().process.child.id()))
            .max()
            .unwrap();
        rss.push(peak);
    };

    // Invalid partials: every member approves; the attempt fails, a retry fails the same way,
    // and the session stops with member 3 blamed.
    cluster.start(2, byzantine("invalid-partials"));
    let (session, digest) = cluster.propose(0, 1_000_000);
    for i in 0..3 {
        cluster.approve(i, &session, &digest);
    }
    for i in 0..2 {
        let aborted = cluster.aborted(i, &session);
        assert_eq!(aborted["blamed_member"], 3, "member 3 blamed: {aborted}");
        assert!(
            aborted["abort_reason"]
                .as_str()
                .unwrap()
                .contains("partial signature"),
            "{aborted}"
        );
    }
    assert!(audit_log(cluster.dir(0)).contains("invalid_partial"));
    cluster.pair_payment(&pair, 0, 100_000);
    measure(&cluster);

    // Equivocation: round 1 needs no approval, so it is caught before anyone approves.
    cluster.kill(2);
    cluster.start(2, byzantine("equivocate"));
    let (session, _) = cluster.propose(0, 1_000_001);
    for i in 0..2 {
        let aborted = cluster.aborted(i, &session);
        assert_eq!(aborted["blamed_member"], 3, "member 3 blamed: {aborted}");
    }
    cluster.pair_payment(&pair, 1, 100_001);
    measure(&cluster);

    // Replays are ignored: a session of the group it is in still completes, nobody blamed.
    cluster.kill(2);
    cluster.start(2, byzantine("replay"));
    let (session, digest) = cluster.propose(2, 1_000_002);
    for i in 0..3 {
        cluster.approve(i, &session, &digest);
    }
    let done = cluster.confirmed(0, &session);
    assert_eq!(done["blamed_member"], Value::Null, "{done}");
    measure(&cluster);

    // Forgeries in the others' names: dropped, the flooder cut off, honest sessions go on.
    cluster.kill(2);
    cluster.start(2, byzantine("flood"));
    eventually("the flooder's proposal", Duration::from_secs(90), || {
        let pay = format!("{}:1000003", lotus_address());
        let till = cluster.group_id.clone();
        cli(
            cluster.dir(2),
            &["session", "propose", "--group", &till, "--pay", &pay],
        )
        .ok()
    });
    cluster.pair_payment(&pair, 0, 100_002);
    measure(&cluster);

    eprintln!("honest nodes' peak RSS after each phase: {rss:?} KiB");
    assert!(
        rss.iter().all(|&kib| kib < 512 * 1024),
        "honest nodes stay under 512 MiB: {rss:?} KiB"
    );
    cluster.stop();
}

fn lotus_address() -> String {
    // A fixed regtest P2PKH address (hash160 of a throwaway key).
    let key = lotus::PrivateKey::from_bytes(&[42; 32]).unwrap();
    lotus::address::p2pkh_address(&key.public_key(), lotus::address::Network::Regtest)
}
