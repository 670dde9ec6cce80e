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

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::demo_kit::{failover_members, Cosigners, Launcher};
use crate::output::{answer, Context};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo's folders (devnet, co-signers) in this folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

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

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

fn run_in(root: &Path, mut say: Box<dyn FnMut(&str)>) -> anyhow::Result<DemoReport> {
    let mut demo = Cosigners::new(Launcher::this_program(&[])?, root, &NAMES);
    say("Creating three demo co-signers: alice, bob and carol (throwaway keys)…");
    let keys = demo.create_keys()?;
    // First-signer election: alice (member 1) coordinates, then bob, then carol.
    let group = demo.create_group(&keys, 20, 5)?;

    say("Starting a local devnet that funds the group with 100 XPI…");
    let _devnet = demo.start_devnet(&group.address)?;

    say("Starting the co-signers on the peer-to-peer network; alice will 'fail' as coordinator…");
    demo.start_node(0, Some("silent-coordinator"), &[])?;
    demo.start_node(1, None, &[])?;
    demo.start_node(2, None, &[])?;
    for i in 0..NAMES.len() {
        demo.cli(&demo.member_dir(i), &["group", "accept", &group.invite])?;
    }
    demo.wait("every acceptance", || {
        let shown = demo
            .cli(&demo.member_dir(0), &["group", "show", &group.id])
            .ok()?;
        (shown["accepted"] == NAMES.len()).then_some(())
    })?;
    say(&format!(
        "Group {} accepted by all three; address {}",
        group.id, group.address
    ));

    // Session 1: the coordinator never broadcasts; a backup does in its slot.
    say("Session 1: bob proposes paying 1 XPI…");
    let (first, digest) = demo.propose(1, &group.id, 1_000_000)?;
    for (i, name) in NAMES.iter().enumerate() {
        demo.approve(i, &first, &digest)?;
        say(&format!("  {name} reviewed the payment and approved it"));
    }
    let done = demo.wait("the payment to confirm", || {
        let shown = demo.session(1, &first)?;
        (shown["outcome"] == "confirmed").then_some(shown)
    })?;
    let coordinators: Vec<u64> = done["election"]["priority"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    // Bob's audit log records each slot that failed and the one he broadcast in.
    let (failed_coordinator, broadcast_by) = failover_members(&demo.audit_log(1), &coordinators);
    let txid = done["txid"].as_str().unwrap_or_default().to_owned();
    say(&format!(
        "  election order {coordinators:?}: #{failed_coordinator} did not broadcast, backup #{broadcast_by} did; confirmed {txid}"
    ));

    // Session 2: carol sends an invalid partial signature.
    say("Session 2: carol turns faulty and sends an invalid partial signature…");
    demo.stop_node(2);
    demo.start_node(2, Some("invalid-partials"), &[])?;
    let (second, digest) = demo.propose(1, &group.id, 2_000_000)?;
    for (i, name) in NAMES.iter().enumerate() {
        demo.approve(i, &second, &digest)?;
        say(&format!("  {name} reviewed the payment and approved it"));
    }
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
    say(&format!("  stopped: {}", blame.reason));
    for i in 0..NAMES.len() {
        demo.stop_node(i);
    }
    Ok(DemoReport {
        group_id: group.id,
        group_address: group.address,
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
