//! The desktop app's "Try a demo group". The person is member 3 of a demo group whose other
//! members, Alice and Bob, are headless co-signers: the app's own program run as child
//! processes, each with its own data folder and throwaway key file, approving by a written
//! policy. A local devnet funds the group. The guide then walks through two sessions:
//!
//! 1. Bob proposes 1 XPI and the person reviews and approves it. Alice, the elected
//!    coordinator, never broadcasts ("fails"); Bob, backup #1, broadcasts in his slot; the
//!    devnet confirms.
//! 2. Bob turns faulty and Alice proposes 2 XPI. Bob's partial signature is invalid: every
//!    member blames him with signed proof, which the person can inspect under Co-signers.
//!
//! Everything lives in one temporary folder, removed (children stopped first) when the demo
//! ends. The person's own profile and keychain are never opened.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use engine::views::{DemoStepState, DemoStepView, DemoView, SessionView};
use engine::{Engine, EngineConfig};

use crate::demo_kit::{failover_members, Cosigners, DemoGroup, Launcher, Running, PASSPHRASE};

const ALICE: usize = 0;
const BOB: usize = 1;
const YOU: usize = 2;
/// How long the person may take to review a proposal before the demo gives up on them.
const REVIEW_PATIENCE: Duration = Duration::from_secs(3_600);

/// The demo co-signers approve what the demo proposes, and nothing larger.
const POLICY: &str = r#"
[[rule]]
name = "demo: approve the demo's own payments"
max_per_session_sats = 5000000
"#;

/// Demo folders are `<temp>/lotus-cosigner-demo…`, each holding the pid of the app that owns it.
const FOLDER_PREFIX: &str = "lotus-cosigner-demo";
const OWNER_FILE: &str = "owner.pid";

/// The steps of the guide, in order.
const STEPS: [&str; 6] = [
    "Start a local test chain and two demo co-signers, Alice and Bob",
    "Everyone joins the demo group",
    "Bob proposes paying 1 XPI: review it and approve",
    "Alice, the elected coordinator, fails; a backup broadcasts",
    "Bob turns faulty; Alice proposes 2 XPI: review it and approve",
    "Bob's invalid partial signature is caught and he is blamed",
];

/// What the app keeps of a running demo: the guide to show and a way to end it.
#[derive(Clone)]
pub struct DemoGuide {
    view: Arc<Mutex<DemoView>>,
    stop: Arc<AtomicBool>,
}

impl DemoGuide {
    pub fn view(&self) -> DemoView {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Ends every wait of the demo; its thread then stops the co-signers and removes the folder.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn step(&self, index: usize, state: DemoStepState, detail: Option<String>) {
        self.step_about(index, state, detail, None);
    }

    fn step_about(
        &self,
        index: usize,
        state: DemoStepState,
        detail: Option<String>,
        session_id: Option<String>,
    ) {
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        let step = &mut view.steps[index];
        step.state = state;
        step.detail = detail;
        if session_id.is_some() {
            step.session_id = session_id;
        }
    }

    fn fail(&self, why: String) {
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(step) = view
            .steps
            .iter_mut()
            .find(|s| s.state != DemoStepState::Done)
        {
            step.state = DemoStepState::Failed;
        }
        view.failure = Some(why);
    }
}

/// A prepared demo: its co-signers and devnet run; the app starts its engine with
/// [`Self::engine_config`] and then hands the engine to [`Self::run`].
pub struct AppDemo {
    // Field order is drop order: the co-signers and the devnet stop before the folder goes.
    cosigners: Cosigners,
    _devnet: Running,
    root: tempfile::TempDir,
    group: DemoGroup,
    guide: DemoGuide,
}

impl AppDemo {
    /// Creates the keys and the group, starts the devnet and the two co-signers. Takes a few
    /// seconds; the app shows its window afterwards.
    pub fn prepare(launcher: Launcher) -> anyhow::Result<Self> {
        remove_abandoned_demos(&std::env::temp_dir());
        let root = tempfile::Builder::new()
            .prefix(FOLDER_PREFIX)
            .tempdir()
            .context("cannot create the demo's temporary folder")?;
        std::fs::write(root.path().join(OWNER_FILE), std::process::id().to_string())?;
        let mut cosigners = Cosigners::new(launcher, root.path(), &["alice", "bob", "you"]);
        let keys = cosigners.create_keys()?;
        // First-signer election: Alice coordinates, Bob is backup #1, the person backup #2.
        // A person's review takes no round time (partials wait for approval without a
        // timer), so rounds can be short: the blamed co-signer goes silent after its proof,
        // and the second session ends one round later.
        let group = cosigners.create_group(&keys, 20, 10)?;
        let devnet = cosigners.start_devnet(&group.address)?;
        let policy = root.path().join("policy.toml");
        std::fs::write(&policy, POLICY)?;
        let policy = policy.to_string_lossy().into_owned();
        cosigners.start_node(
            ALICE,
            Some("silent-coordinator"),
            &["--policy", policy.as_str()],
        )?;
        cosigners.start_node(BOB, None, &["--policy", policy.as_str()])?;
        let guide = DemoGuide {
            view: Arc::new(Mutex::new(DemoView {
                steps: STEPS
                    .iter()
                    .map(|title| DemoStepView {
                        title: title.to_string(),
                        state: DemoStepState::Waiting,
                        detail: None,
                        session_id: None,
                    })
                    .collect(),
                failure: None,
            })),
            stop: cosigners.stop_flag(),
        };
        guide.step(
            0,
            DemoStepState::Done,
            Some(
                "A devnet funds the group with 100 test XPI; Alice and Bob run as headless \
                 co-signers with throwaway keys."
                    .into(),
            ),
        );
        Ok(Self {
            cosigners,
            _devnet: devnet,
            root,
            group,
            guide,
        })
    }

    pub fn guide(&self) -> DemoGuide {
        self.guide.clone()
    }

    /// The person's demo profile: its own folder and key file (never the keychain), the
    /// devnet as chain, loopback networking that starts from Alice and Bob.
    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let data_dir = self.cosigners.member_dir(YOU);
        regtest_settings(&data_dir)?;
        let key = engine::custody::Custody::open_file(&self.cosigners.key_file(YOU), PASSPHRASE)?;
        let bootstrap = [ALICE, BOB]
            .iter()
            .filter_map(|&i| self.cosigners.node_address(i))
            .map(|a| a.parse().context("a demo co-signer's address"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(EngineConfig {
            data_dir: Some(data_dir),
            key: Some(Arc::new(key)),
            network: Some(net::NetConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
                bootstrap,
                upnp: false,
                ..net::NetConfig::default()
            }),
            chain: vec![self.cosigners.chain.clone()],
            backup_dir: Some(self.root.path().join("saved")),
            ..EngineConfig::default()
        })
    }

    /// Walks through the demo with the person's engine; the guide says how far it got. Returns
    /// when the demo ends or is stopped; the caller keeps `self` until the window closes.
    pub fn run(&mut self, engine: &Engine) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => return self.guide.fail(format!("cannot run the demo: {e}")),
        };
        if let Err(e) = self.walk(engine, &runtime) {
            tracing::warn!("the demo stopped: {e:#}");
            self.guide.fail(format!("{e:#}"));
        }
    }

    fn walk(&mut self, engine: &Engine, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
        let guide = self.guide.clone();
        let group = &self.group;
        let demo = &mut self.cosigners;

        guide.step(1, DemoStepState::Running, None);
        for i in [ALICE, BOB] {
            demo.cli(&demo.member_dir(i), &["group", "accept", &group.invite])?;
        }
        runtime
            .block_on(engine.accept_invite(&group.invite))
            .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.message))?;
        demo.wait("every member to accept the group", || {
            let view = engine.group(&group.id).ok()?;
            (view.accepted as usize == view.members.len()).then_some(())
        })?;
        guide.step(
            1,
            DemoStepState::Done,
            Some(format!(
                "Alice, Bob and you accepted; the group's address is {}.",
                group.address
            )),
        );

        // Session 1: Alice, the coordinator, stays silent; Bob broadcasts in his slot.
        guide.step(2, DemoStepState::Running, Some("Bob is proposing…".into()));
        let (first, _) = demo.propose(BOB, &group.id, 1_000_000)?;
        let session = |id: &str| runtime.block_on(engine.session(id)).ok();
        ask_to_approve(
            &guide,
            demo,
            &session,
            2,
            &first,
            "Open it from the Inbox, check every line of the review, then Approve. \
             Alice and Bob approve by their policy.",
        )?;
        guide.step(
            3,
            DemoStepState::Running,
            Some("Signing; then Alice's broadcast slot runs out…".into()),
        );
        let done = demo.wait("the payment to confirm", || {
            session(&first).filter(|s| s.outcome.is_some())
        })?;
        if done.outcome.as_deref() != Some("confirmed") {
            bail!(
                "the first payment ended without confirming: {}",
                done.abort_reason.unwrap_or_default()
            );
        }
        let order: Vec<u64> = done
            .election
            .as_ref()
            .map(|e| e.priority.iter().map(|&m| u64::from(m)).collect())
            .unwrap_or_default();
        let (failed, broadcast_by) = failover_members(&demo.audit_log(BOB), &order);
        guide.step_about(
            3,
            DemoStepState::Done,
            Some(format!(
                "Election order {}: {} did not broadcast in its slot, {} did. Confirmed as {}.",
                order
                    .iter()
                    .map(|m| format!("#{m}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                member_name(failed),
                member_name(broadcast_by),
                done.txid
            )),
            Some(first.clone()),
        );

        // Session 2: Bob sends an invalid partial signature.
        guide.step(
            4,
            DemoStepState::Running,
            Some("Bob restarts with a fault; Alice is proposing…".into()),
        );
        demo.stop_node(BOB);
        let policy = self.root.path().join("policy.toml");
        let policy = policy.to_string_lossy().into_owned();
        demo.start_node(
            BOB,
            Some("invalid-partials"),
            &["--policy", policy.as_str()],
        )?;
        let (second, _) = demo.propose(ALICE, &group.id, 2_000_000)?;
        ask_to_approve(
            &guide,
            demo,
            &session,
            4,
            &second,
            "Review and approve this one too: Bob will cheat while signing it.",
        )?;
        guide.step(5, DemoStepState::Running, None);
        let stopped = demo.wait("the faulty session to stop", || {
            session(&second).filter(|s| s.outcome.is_some())
        })?;
        if stopped.blamed_member != Some(BOB as u32 + 1) {
            bail!(
                "the second payment ended without blaming Bob: {}",
                stopped.abort_reason.unwrap_or_default()
            );
        }
        guide.step_about(
            5,
            DemoStepState::Done,
            Some(format!(
                "{} Open Co-signers to see the evidence: the signed message that proves it.",
                stopped.abort_reason.unwrap_or_default()
            )),
            Some(second),
        );
        Ok(())
    }
}

/// The person rejected the proposal or it ended before their approval: the demo cannot go on.
/// Waits for session `id` to reach the person, asks them (guide step `step` says `ask`) and
/// waits for their approval; a session that ends first ends the demo.
fn ask_to_approve(
    guide: &DemoGuide,
    demo: &Cosigners,
    session: &dyn Fn(&str) -> Option<SessionView>,
    step: usize,
    id: &str,
    ask: &str,
) -> anyhow::Result<()> {
    demo.wait("the proposal to reach you", || session(id))?;
    guide.step_about(
        step,
        DemoStepState::YourTurn,
        Some(ask.into()),
        Some(id.to_owned()),
    );
    demo.wait_for("your approval", REVIEW_PATIENCE, &mut || {
        session(id).filter(|s| s.approved_by_me || s.outcome.is_some())
    })
    .and_then(|s| ended_unless_approved(&s))?;
    guide.step(step, DemoStepState::Done, Some("You approved.".into()));
    Ok(())
}

fn ended_unless_approved(session: &SessionView) -> anyhow::Result<()> {
    if session.approved_by_me {
        return Ok(());
    }
    bail!(
        "the payment ended before you approved it ({}): close this window and start the demo \
         again to see the rest",
        session.abort_reason.clone().unwrap_or_default()
    )
}

fn member_name(number: u64) -> &'static str {
    match number {
        1 => "Alice (#1)",
        2 => "Bob (#2)",
        3 => "you (#3)",
        _ => "nobody",
    }
}

/// Removes the folders of demos whose app is gone without cleaning up (killed, or the machine
/// lost power): their co-signers died with it (they are started to), their folders did not.
pub fn remove_abandoned_demos(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(FOLDER_PREFIX)
        {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|pid| pid.trim().parse::<i32>().ok());
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        let alive = owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if owner.is_some() && !alive {
            tracing::info!(folder = %path.display(), "removing an abandoned demo folder");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The demo profile shows regtest addresses (the devnet's).
fn regtest_settings(data_dir: &Path) -> anyhow::Result<()> {
    let dir = engine::data_dir::DataDir::open(Some(data_dir.to_owned()))?;
    let mut settings = engine::settings::Settings::load_or_init(&dir.settings_file())?;
    settings.network = engine::settings::Network::Regtest;
    settings.save(&dir.settings_file())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_of_demos_whose_app_is_gone_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let folder = |name: &str, owner: Option<String>| {
            let path = temp.path().join(name);
            std::fs::create_dir_all(path.join("alice")).unwrap();
            if let Some(pid) = owner {
                std::fs::write(path.join(OWNER_FILE), pid).unwrap();
            }
            path
        };
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let abandoned = folder("lotus-cosigner-demoAAAA", Some(gone.id().to_string()));
        let running = folder(
            "lotus-cosigner-demoBBBB",
            Some(std::process::id().to_string()),
        );
        let unowned = folder("lotus-cosigner-demoCCCC", None);
        let other = folder("somebody-else", Some(gone.id().to_string()));

        remove_abandoned_demos(temp.path());

        assert!(!abandoned.exists());
        assert!(running.exists(), "a demo still running keeps its folder");
        assert!(unowned.exists(), "not known to be a demo's: left alone");
        assert!(other.exists(), "not a demo folder");
    }
}
