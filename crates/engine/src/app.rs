//! [`Engine`]: the one object the desktop shell (and, for its long-running work, the CLI) talks
//! to. It owns the data folder and its one database, key custody, the session core (on its own
//! thread), and the chain task; the network task attaches here later. Callers get views and
//! [`Change`] notices, never a key.
//!
//! Startup failures are kept, not fatal: the UI shows them and asks again once the person fixed
//! the cause (started the keyring, say). Each question re-reads the database, so a change
//! notice that arrives late or twice is harmless.

use std::sync::{Arc, Mutex};

use chain::multi::Chains;
use chain::ChainSpec;
use lotus::secp256k1::PublicKey;
use tokio::sync::broadcast;

use crate::custody::Custody;
use crate::group_wallet::{self, GroupView, HistoryEntryView};
use crate::profile::Profile;
use crate::proposals::{self, ProposalView, ProposeRequest};
use crate::runtime::chain::ChainLink;
use crate::runtime::chain_task::{ChainNews, ChainTask, ChainTaskConfig};
use crate::runtime::offline::Offline;
use crate::runtime::{
    CoreHandle, EngineEvent, ReviewDigest, SessionEngine, SessionId, SystemClock,
};
use crate::settings::Settings;
use crate::views::{
    self, AuditView, BackendView, ChainStatusView, Change, ReputationView, SessionView,
};
use crate::{error_view, open_identity, EngineConfig, ErrorKind, ErrorView, Explain, IdentityView};

/// The running engine. Cheap to share (`&Engine` from any thread).
pub struct Engine {
    config: EngineConfig,
    identity: Mutex<Option<IdentityView>>,
    running: Mutex<Option<Arc<Running>>>,
    changes: broadcast::Sender<Change>,
}

/// A listener's stream of [`Change`] notices.
pub struct Changes(broadcast::Receiver<Change>);

impl Changes {
    /// The next notice; [`Change::Everything`] after notices were missed (a slow listener);
    /// `None` once the engine is gone.
    pub async fn next(&mut self) -> Option<Change> {
        match self.0.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Everything),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// What runs once the identity is loaded.
struct Running {
    _lock: crate::data_dir::ProfileLock,
    /// `Option` so that `Drop` can shut it down without blocking an async caller.
    runtime: Option<tokio::runtime::Runtime>,
    profile: Arc<Mutex<Profile>>,
    sessions: SessionEngine,
    _core: CoreHandle,
    chains: Option<Chains>,
    chain_task: Option<ChainTask>,
    settings: Settings,
    me: PublicKey,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The core thread ends by itself once every handle to it is gone.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Running {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as Running")
            .handle()
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> ErrorView {
    error_view(
        ErrorKind::Internal,
        what,
        e.to_string(),
        "Restart the app; if it persists, the profile's database may be damaged.",
    )
}

impl Engine {
    /// Opens the data folder, self-tests the keychain, loads (or on the first run creates) the
    /// signer key, then starts the session core and the chain task. Failures are logged and
    /// answered by the calls that need what failed.
    pub fn start(config: EngineConfig) -> Self {
        let engine = Self {
            config,
            identity: Mutex::new(None),
            running: Mutex::new(None),
            changes: broadcast::channel(1024).0,
        };
        if engine.identity().is_ok() {
            // The error is logged inside and served to the UI on request.
            let _ = engine.running();
        }
        engine
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The public identity, opening (again) if the last attempt failed.
    pub fn identity(&self) -> Result<IdentityView, ErrorView> {
        let mut cached = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(view) = cached.as_ref() {
            return Ok(view.clone());
        }
        match open_identity(&self.config) {
            Ok(view) => {
                *cached = Some(view.clone());
                Ok(view)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the signer identity");
                Err(e.view())
            }
        }
    }

    /// "Session X / group Y / the chain changed": fetch a fresh view of it.
    pub fn changes(&self) -> Changes {
        Changes(self.changes.subscribe())
    }

    fn running(&self) -> Result<Arc<Running>, ErrorView> {
        self.identity()?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = running.as_ref() {
            return Ok(running.clone());
        }
        let started = Arc::new(self.start_running()?);
        *running = Some(started.clone());
        Ok(started)
    }

    fn start_running(&self) -> Result<Running, ErrorView> {
        // Lock before opening: the open may import an old layout, which must not race another
        // instance (the opening lock inside `Profile::open` covers programs that only read).
        let dir = crate::data_dir::DataDir::open(self.config.data_dir.clone())
            .map_err(|e| internal("The data folder cannot be opened", e))?;
        let lock = dir.lock_engine().map_err(|e| {
            error_view(
                ErrorKind::DataFolder,
                "This profile is already open",
                e.to_string(),
                "Close the other Lotus Cosigner window or node using this data folder, then try again.",
            )
        })?;
        let profile = Profile::open(Some(dir.path().to_owned())).map_err(|e| e.view())?;
        let settings = Settings::load_or_init(&profile.data_dir().settings_file())
            .map_err(|e| internal("The settings cannot be read", e))?;
        let custody = Custody::open_keychain(&self.config.keychain).map_err(|e| e.view())?;
        let me = custody.public_key();
        let chains = self.chains(&settings)?;
        let groups: Vec<_> = profile
            .groups()
            .map_err(|e| e.view())?
            .into_iter()
            .map(|(group, _)| group)
            .collect();
        let store = store::Store::open(profile.data_dir().database_file())
            .map_err(|e| internal("The session database cannot be opened", e))?;

        // Everything that can fail before the runtime exists has been done: a runtime dropped
        // inside the caller's async task would panic.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("engine")
            .enable_all()
            .build()
            .map_err(|e| internal("The engine cannot start its threads", e))?;
        let inside = runtime.enter();
        let chain_task = chains
            .clone()
            .map(|chains| ChainTask::spawn(chains, ChainTaskConfig::default()).0);
        let link: Arc<dyn ChainLink> = match &chain_task {
            Some(task) => Arc::new(task.clone()),
            None => Arc::new(Offline),
        };
        // The network task (not built yet) will deliver here; until then the co-signers pull
        // what this profile stored when a node of it is online.
        let (_deliver, inbox) = tokio::sync::mpsc::channel(1024);
        let spawned = SessionEngine::spawn(
            custody.private_key(),
            store,
            groups.clone(),
            Arc::new(Offline),
            inbox,
            link,
            Box::new(SystemClock),
        );
        let (sessions, core) = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                drop(inside);
                runtime.shutdown_background();
                return Err(internal("The session engine cannot start", e));
            }
        };
        let profile = Arc::new(Mutex::new(profile));
        forward_session_events(sessions.events(), self.changes.clone());
        if let Some(task) = &chain_task {
            // Listen before asking, so the first answer is not missed.
            forward_chain_news(task.news(), profile.clone(), self.changes.clone());
            for group in &groups {
                if let Ok(script) = group.script_pubkey() {
                    let _ = task.watch_script(script);
                }
            }
        }
        drop(inside);
        Ok(Running {
            _lock: lock,
            runtime: Some(runtime),
            profile,
            sessions,
            _core: core,
            chains,
            chain_task,
            settings,
            me,
        })
    }

    fn chains(&self, settings: &Settings) -> Result<Option<Chains>, ErrorView> {
        if settings.chain.is_empty() {
            return Ok(None);
        }
        let mut backends = Vec::new();
        for spec in &settings.chain {
            let backend = ChainSpec::parse(spec)
                .map_err(|e| e.to_string())
                .and_then(|spec| chain::backend(&spec).map_err(|e| e.to_string()))
                .map_err(|e| {
                    error_view(
                        ErrorKind::ChainUnreachable,
                        "A chain backend in the settings cannot be used",
                        e,
                        "Correct or remove it in settings.json (the `chain` list).",
                    )
                })?;
            backends.push(backend);
        }
        Ok(Some(Chains::new(backends, settings.seen_quorum)))
    }

    fn with_profile<T>(
        &self,
        f: impl FnOnce(&mut Profile) -> Result<T, ErrorView>,
    ) -> Result<T, ErrorView> {
        let running = self.running()?;
        let mut profile = running.profile.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut profile)
    }

    pub fn groups(&self) -> Result<Vec<GroupView>, ErrorView> {
        let me = self.running()?.me;
        self.with_profile(|profile| {
            profile
                .groups()
                .map_err(|e| e.view())?
                .iter()
                .map(|(group, acceptances)| {
                    group_wallet::view(profile, group, acceptances, Some(&me)).map_err(|e| e.view())
                })
                .collect()
        })
    }

    /// One group, by id or an unambiguous prefix.
    pub fn group(&self, id: &str) -> Result<GroupView, ErrorView> {
        let me = self.running()?.me;
        self.with_profile(|profile| {
            let (group, acceptances) = profile.group(id).map_err(|e| e.view())?;
            group_wallet::view(profile, &group, &acceptances, Some(&me)).map_err(|e| e.view())
        })
    }

    pub fn history(&self, id: &str) -> Result<Vec<HistoryEntryView>, ErrorView> {
        self.with_profile(|profile| {
            let (group, _) = profile.group(id).map_err(|e| e.view())?;
            group_wallet::history(profile, &group).map_err(|e| e.view())
        })
    }

    /// Asks the chain backends for the group's coins now, then answers its view.
    pub async fn refresh_group(&self, id: &str) -> Result<GroupView, ErrorView> {
        let running = self.running()?;
        let Some(chains) = running.chains.clone() else {
            return Err(group_wallet::GroupWalletError::NoChain.view());
        };
        let group = self.with_profile(|p| p.group(id).map(|(g, _)| g).map_err(|e| e.view()))?;
        // Ask on the engine's runtime (the caller's may not be tokio's), without holding the
        // profile across the wait.
        let script = group
            .script_pubkey()
            .map_err(|e| internal("The group's script cannot be built", e))?;
        let answer = running
            .handle()
            .spawn(async move { chains.unspent(&script).await })
            .await
            .map_err(|e| internal("The chain question failed", e))?;
        self.with_profile(|profile| {
            group_wallet::store_answer(profile, &group, answer, crate::unix_now_ms())
                .map(drop)
                .map_err(|e| e.view())
        })?;
        let _ = self.changes.send(Change::Group {
            id: group.id().to_string(),
        });
        self.group(id)
    }

    /// Joins a group from its invite: checks this key is a member, signs the acceptance (the
    /// key stays in the core), saves the group and starts watching its address.
    pub async fn accept_invite(&self, invite: &str) -> Result<GroupView, ErrorView> {
        let running = self.running()?;
        let group = protocol::group::GroupDescriptor::from_invite(invite.trim()).map_err(|e| {
            error_view(
                ErrorKind::InvalidFile,
                "This is not a group invite",
                e.to_string(),
                "Paste the whole invite text the group's creator sent you.",
            )
        })?;
        let (id, acceptance) = running
            .sessions
            .accept_invite(invite.trim().to_owned())
            .await
            .map_err(|e| e.view())?;
        self.with_profile(|profile| {
            profile
                .save_group(&group, std::slice::from_ref(&acceptance))
                .map(drop)
                .map_err(|e| e.view())
        })?;
        if let (Some(task), Ok(script)) = (&running.chain_task, group.script_pubkey()) {
            let _ = task.watch_script(script);
        }
        let _ = self.changes.send(Change::Group { id: id.to_string() });
        self.group(&id.to_string())
    }

    /// Builds, signs and stores a payment proposal; the co-signers review exactly what it says.
    pub async fn propose(&self, request: ProposeRequest) -> Result<ProposalView, ErrorView> {
        let running = self.running()?;
        let prepared = self
            .with_profile(|profile| proposals::prepare(profile, &request).map_err(|e| e.view()))?;
        let view = proposals::submit(&running.sessions, prepared)
            .await
            .map_err(|e| e.view())?;
        let _ = self.changes.send(Change::Session {
            id: view.session_id.clone(),
        });
        Ok(view)
    }

    /// The sessions this engine holds, newest first.
    pub async fn sessions(&self) -> Result<Vec<SessionView>, ErrorView> {
        let running = self.running()?;
        let summaries = running.sessions.sessions().await.map_err(|e| e.view())?;
        let mut views = Vec::new();
        for summary in summaries {
            if let Some(view) = self.session_view(&running, summary.session_id).await? {
                views.push(view);
            }
        }
        views.sort_by_key(|v| std::cmp::Reverse(v.created_ms));
        Ok(views)
    }

    pub async fn session(&self, id: &str) -> Result<SessionView, ErrorView> {
        let running = self.running()?;
        let session = parse_session_id(id)?;
        self.session_view(&running, session)
            .await?
            .ok_or_else(|| unknown_session(id))
    }

    async fn session_view(
        &self,
        running: &Running,
        session: SessionId,
    ) -> Result<Option<SessionView>, ErrorView> {
        let Some(detail) = running
            .sessions
            .session_detail(session)
            .await
            .map_err(|e| e.view())?
        else {
            return Ok(None);
        };
        let group_id = detail.summary.group_id.to_string();
        let (name, members) = self.with_profile(|profile| {
            let (group, _) = profile.group(&group_id).map_err(|e| e.view())?;
            Ok((group.name.clone(), group.members.clone()))
        })?;
        Ok(Some(views::session_view(
            &detail,
            &name,
            &members,
            &running.me,
        )))
    }

    /// Approves exactly the review named by `digest` (a changed proposal has another digest).
    pub async fn approve(&self, id: &str, digest: &str) -> Result<SessionView, ErrorView> {
        let running = self.running()?;
        let session = parse_session_id(id)?;
        let digest = ReviewDigest::from_hex(digest).ok_or_else(|| {
            error_view(
                ErrorKind::ProposalRefused,
                "That approval is not for this review",
                format!("'{digest}' is not a review digest (64 hex characters)"),
                "Open the session again and approve what it shows.",
            )
        })?;
        running
            .sessions
            .approve(session, digest)
            .await
            .map_err(|e| e.view())?;
        self.session(id).await
    }

    pub async fn reject(&self, id: &str, reason: &str) -> Result<SessionView, ErrorView> {
        let running = self.running()?;
        let session = parse_session_id(id)?;
        running
            .sessions
            .reject(session, reason.to_owned())
            .await
            .map_err(|e| e.view())?;
        self.session(id).await
    }

    /// Checks the audit log now: intact or the first broken entry, and the co-signers' heads.
    pub async fn audit(&self) -> Result<AuditView, ErrorView> {
        let running = self.running()?;
        Ok(views::audit_view(
            match running.sessions.audit_verify().await {
                Ok(summary) => Ok(summary),
                // Only a broken chain means the log was altered; other failures are errors.
                Err(crate::runtime::RuntimeError::Store(e @ store::Error::AuditBroken(_))) => {
                    Err(e.to_string())
                }
                Err(e) => return Err(e.view()),
            },
        ))
    }

    /// Every co-signer this profile has a record of, best score first.
    pub async fn reputation(&self) -> Result<Vec<ReputationView>, ErrorView> {
        let running = self.running()?;
        let now = crate::unix_now_ms();
        let mut views: Vec<ReputationView> = running
            .sessions
            .reputation()
            .await
            .map_err(|e| e.view())?
            .iter()
            .map(|stats| views::reputation_view(stats, now))
            .collect();
        views.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(views)
    }

    /// Every backend's tip (or why it did not answer).
    pub async fn chain_status(&self) -> Result<ChainStatusView, ErrorView> {
        let running = self.running()?;
        let Some(chains) = running.chains.clone() else {
            return Ok(ChainStatusView {
                seen_quorum: running.settings.seen_quorum as u32,
                backends: Vec::new(),
            });
        };
        let tips = running
            .handle()
            .spawn(async move { chains.tips().await })
            .await
            .map_err(|e| internal("The chain question failed", e))?;
        Ok(ChainStatusView {
            seen_quorum: running.settings.seen_quorum as u32,
            backends: tips
                .into_iter()
                .map(|report| match report.answer {
                    Ok(tip) => BackendView {
                        label: report.backend,
                        height: Some(tip.height),
                        tip: Some(tip.hash),
                        error: None,
                    },
                    Err(e) => BackendView {
                        label: report.backend,
                        height: None,
                        tip: None,
                        error: Some(e.to_string()),
                    },
                })
                .collect(),
        })
    }
}

fn parse_session_id(id: &str) -> Result<SessionId, ErrorView> {
    SessionId::from_hex(id).ok_or_else(|| unknown_session(id))
}

fn unknown_session(id: &str) -> ErrorView {
    error_view(
        ErrorKind::UnknownSession,
        "No such session",
        format!("no session {id} in this profile"),
        "Pick a session from the list.",
    )
}

/// Session events become "session X changed" (a lagging listener is told to refetch all).
fn forward_session_events(
    mut events: broadcast::Receiver<EngineEvent>,
    changes: broadcast::Sender<Change>,
) {
    tokio::spawn(async move {
        loop {
            let change = match events.recv().await {
                Ok(EngineEvent::Session { session_id, .. })
                | Ok(EngineEvent::StorageFailure { session_id, .. })
                | Ok(EngineEvent::BroadcastFailed { session_id, .. }) => Change::Session {
                    id: session_id.to_string(),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => Change::Everything,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let _ = changes.send(change);
        }
    });
}

/// The chain task's news: a group's coins are stored (then "group Y changed"); statuses and
/// broadcasts say "the chain changed".
fn forward_chain_news(
    mut news: broadcast::Receiver<ChainNews>,
    profile: Arc<Mutex<Profile>>,
    changes: broadcast::Sender<Change>,
) {
    tokio::spawn(async move {
        loop {
            let change = match news.recv().await {
                Ok(ChainNews::Unspent {
                    script,
                    backend,
                    utxos,
                }) => {
                    let mut profile = profile.lock().unwrap_or_else(|p| p.into_inner());
                    let groups = profile.groups().unwrap_or_default();
                    let Some((group, _)) = groups
                        .iter()
                        .find(|(g, _)| g.script_pubkey().ok().as_ref() == Some(&script))
                    else {
                        continue;
                    };
                    if let Err(e) = group_wallet::store_unspent(
                        &mut profile,
                        group,
                        &backend,
                        &utxos,
                        crate::unix_now_ms(),
                    ) {
                        tracing::error!(group = %group.id(), "cannot store the group's coins: {e}");
                        continue;
                    }
                    Change::Group {
                        id: group.id().to_string(),
                    }
                }
                Ok(_) => Change::Chain,
                Err(broadcast::error::RecvError::Lagged(_)) => Change::Everything,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let _ = changes.send(change);
        }
    });
}
