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
use crate::group_backup::{self, SavedFileView};
use crate::group_form::CreateGroupRequest;
use crate::group_wallet::PaymentPreviewView;
use crate::group_wallet::{self, GroupView, HistoryEntryView};
use crate::payment_form::PaymentForm;
use crate::profile::Profile;
use crate::proposals::{self, ProposalView, ProposeRequest};
use crate::runtime::chain::ChainLink;
use crate::runtime::chain_task::{ChainNews, ChainTask, ChainTaskConfig};
use crate::runtime::faults::{SilentChain, TestFault};
use crate::runtime::network::{self, NetTransport};
use crate::runtime::offline::Offline;
use crate::runtime::transport::Transport;
use crate::runtime::{
    CoreHandle, EngineEvent, ReviewDigest, SessionEngine, SessionId, SystemClock,
};
use crate::settings::Settings;
use crate::views::{self, AuditView, ChainStatusView, Change, ReputationView, SessionView};
use crate::{error_view, open_identity, EngineConfig, ErrorKind, ErrorView, Explain, IdentityView};

mod backup;
mod evidence;
mod import;
mod settings;
mod transaction;

pub use evidence::{AuditEntryView, EvidenceMessageView, EvidenceView};
pub use transaction::TransactionView;

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
    network: Option<net::Network>,
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
        let custody = match &self.config.key {
            Some(custody) => custody.clone(),
            None => Arc::new(Custody::open_keychain(&self.config.keychain).map_err(|e| e.view())?),
        };
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
        let mut link: Arc<dyn ChainLink> = match &chain_task {
            Some(task) => Arc::new(task.clone()),
            None => Arc::new(Offline),
        };
        if let Some(fault) = self.config.test_fault {
            tracing::warn!(
                ?fault,
                "running with a TEST FAULT: this node misbehaves on purpose"
            );
            // A node that keeps its finished signatures to itself must not broadcast either.
            if matches!(
                fault,
                TestFault::SilentCoordinator | TestFault::InvalidPartials
            ) {
                link = Arc::new(SilentChain(link));
            }
        }
        // Offline, nothing arrives: co-signers pull what this profile stored once it is online.
        let (network, transport, inbox, net_events): (
            Option<net::Network>,
            Arc<dyn Transport>,
            _,
            _,
        ) = match &self.config.network {
            Some(config) => {
                let mut config = config.clone();
                config.bootstrap.extend(settings_bootstrap(&settings)?);
                config
                    .anchors_file
                    .get_or_insert_with(|| profile.data_dir().path().join("anchors.txt"));
                match net::spawn(config, custody.private_key()) {
                    Ok((network, inbound, events)) => {
                        network.set_groups(groups.clone());
                        (
                            Some(network.clone()),
                            faulty_transport(
                                Arc::new(NetTransport(network)),
                                self.config.test_fault,
                                &custody,
                                &groups,
                            ),
                            network::inbox_from(inbound),
                            Some(events),
                        )
                    }
                    Err(e) => {
                        drop(inside);
                        runtime.shutdown_background();
                        return Err(error_view(
                            ErrorKind::Network,
                            "The network cannot start",
                            e.to_string(),
                            "Check the listen addresses (a port may be taken) and try again.",
                        ));
                    }
                }
            }
            None => (
                None,
                Arc::new(Offline),
                tokio::sync::mpsc::channel(1).1,
                None,
            ),
        };
        let spawned = SessionEngine::spawn(
            custody.private_key(),
            store,
            groups.clone(),
            transport,
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
        if let (Some(network), Some(events)) = (&network, net_events) {
            follow_network(
                events,
                network.clone(),
                sessions.clone(),
                profile.clone(),
                me,
                self.changes.clone(),
            );
        }
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
            network,
        })
    }

    fn chains(&self, settings: &Settings) -> Result<Option<Chains>, ErrorView> {
        // `--chain` replaces the settings' backends for this run.
        let specs = if self.config.chain.is_empty() {
            &settings.chain
        } else {
            &self.config.chain
        };
        if specs.is_empty() {
            return Ok(None);
        }
        let mut backends = Vec::new();
        for spec in specs {
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
        // A pasted group backup file holds the invite on a line of its own.
        let invite = group_backup::invite_in(invite);
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
        if let Some(network) = &running.network {
            let groups = self.with_profile(|p| saved_groups(p))?;
            network.set_groups(groups);
            let others: Vec<PublicKey> = group
                .members
                .iter()
                .filter(|m| **m != running.me)
                .copied()
                .collect();
            network.send_acceptance(&others, acceptance.encode());
        }
        let _ = self.changes.send(Change::Group { id: id.to_string() });
        self.group(&id.to_string())
    }

    /// Creates a group from members' keys (this key among them): the group is saved and
    /// accepted by us; its invite goes to the others out of band.
    pub async fn create_group(
        &self,
        group: protocol::group::GroupDescriptor,
    ) -> Result<GroupView, ErrorView> {
        self.accept_invite(&group.invite()).await
    }

    /// Creates a group from the app's form (the profile's network unless it names one).
    pub async fn create_group_from(
        &self,
        form: &CreateGroupRequest,
    ) -> Result<GroupView, ErrorView> {
        let network = self.running()?.settings.network.lotus();
        let group = form.descriptor(network).map_err(|e| e.view())?;
        self.create_group(group).await
    }

    /// Where saved files go: the configured folder, else the documents folder (or home).
    pub(crate) fn export_folder(&self) -> Result<std::path::PathBuf, ErrorView> {
        match &self.config.backup_dir {
            Some(dir) => Ok(dir.clone()),
            None => dirs::document_dir().or_else(dirs::home_dir).ok_or_else(|| {
                internal("There is no documents or home folder", "the OS names none")
            }),
        }
    }

    /// Saves the audit log (JSON Lines, every entry with its hash chain) in the documents
    /// folder and answers the file's path.
    pub async fn save_audit_export(&self) -> Result<SavedFileView, ErrorView> {
        let log = self.audit_export().await?;
        let folder = self.export_folder()?;
        let now = crate::unix_now_ms();
        let path = group_backup::write_new(
            &folder,
            &format!("lotus-cosigner-audit-{}", now / 1000),
            "jsonl",
            log.as_bytes(),
        )
        .map_err(|e| {
            error_view(
                ErrorKind::DataFolder,
                "The audit log cannot be saved",
                format!("{}: {e}", folder.display()),
                "Check that the folder exists and is writable, then try again.",
            )
        })?;
        Ok(SavedFileView {
            path: path.display().to_string(),
            saved_at_ms: now,
        })
    }

    /// Saves a session as a file (its signed proposal, and the signed transaction once there
    /// is one) for a co-signer offline or a third party to check; answers the path.
    pub fn save_session_file(&self, id: &str) -> Result<SavedFileView, ErrorView> {
        let session_id: [u8; 32] = hex::decode(id.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| internal("Not a session id", id))?;
        let file = self.with_profile(|profile| {
            crate::session_files::export(profile, &session_id).map_err(|e| e.view())
        })?;
        let json = serde_json::to_string_pretty(&file)
            .map_err(|e| internal("The session cannot be written", e))?
            + "\n";
        let folder = self.export_folder()?;
        let path = group_backup::write_new(
            &folder,
            &format!("lotus-cosigner-session-{}", &file.session_id[..16]),
            "json",
            json.as_bytes(),
        )
        .map_err(|e| {
            error_view(
                ErrorKind::DataFolder,
                "The session file cannot be saved",
                format!("{}: {e}", folder.display()),
                "Check that the folder exists and is writable, then try again.",
            )
        })?;
        Ok(SavedFileView {
            path: path.display().to_string(),
            saved_at_ms: crate::unix_now_ms(),
        })
    }

    /// Saves the group's backup (its member list and rules, no secret) as a text file in the
    /// documents folder, and records that it exists. Answers the file's path.
    pub fn save_group_backup(&self, id: &str) -> Result<SavedFileView, ErrorView> {
        let (group, _) = self.with_profile(|p| p.group(id).map_err(|e| e.view()))?;
        let folder = self.export_folder()?;
        let path = group_backup::write(&folder, &group).map_err(|e| {
            error_view(
                ErrorKind::DataFolder,
                "The group backup cannot be saved",
                format!("{}: {e}", folder.display()),
                "Check that the folder exists and is writable, then try again.",
            )
        })?;
        let now = crate::unix_now_ms();
        self.with_profile(|p| {
            p.store_mut()
                .record_group_backup(&group.id().0, now)
                .map_err(|e| internal("The backup cannot be recorded", e))
        })?;
        let _ = self.changes.send(Change::Group {
            id: group.id().to_string(),
        });
        tracing::info!(group = %group.id(), path = %path.display(), "saved a group backup");
        Ok(SavedFileView {
            path: path.display().to_string(),
            saved_at_ms: now,
        })
    }

    /// What a payment from the form would look like, from the group's stored coins: exactly
    /// what co-signers will review. Nothing is proposed.
    pub fn preview_payment(&self, form: &PaymentForm) -> Result<PaymentPreviewView, ErrorView> {
        let default_fee = self.fee_rate_per_kb()?;
        let recipients = form.recipients().map_err(|e| e.view())?;
        let fee_rate = form.fee_rate(default_fee).map_err(|e| e.view())?;
        self.with_profile(|profile| {
            let (group, _) = profile.group(&form.group).map_err(|e| e.view())?;
            group_wallet::preview_payment(
                profile,
                &group,
                &recipients,
                fee_rate,
                form.allow_unconfirmed,
            )
            .map(|(preview, _)| preview)
            .map_err(|e| e.view())
        })
    }

    /// Proposes the payment the form describes to the group's co-signers.
    pub async fn propose_payment(&self, form: &PaymentForm) -> Result<ProposalView, ErrorView> {
        let request = form
            .request(self.fee_rate_per_kb()?)
            .map_err(|e| e.view())?;
        self.propose(request).await
    }

    /// The audit log as JSON Lines.
    pub async fn audit_export(&self) -> Result<String, ErrorView> {
        let running = self.running()?;
        let bytes = running
            .sessions
            .audit_export()
            .await
            .map_err(|e| e.view())?;
        String::from_utf8(bytes).map_err(|e| internal("The audit log is not text", e))
    }

    /// Appends an entry to the audit log (a policy co-signer's decision).
    pub async fn append_audit(&self, event: store::AuditEvent) -> Result<(), ErrorView> {
        let running = self.running()?;
        running
            .sessions
            .append_audit(event)
            .await
            .map_err(|e| e.view())
    }

    /// The fee rate proposals use unless they name one (settings).
    pub fn fee_rate_per_kb(&self) -> Result<i64, ErrorView> {
        Ok(self.running()?.settings.fee_rate_per_kb)
    }

    /// The peers this node is connected to (empty offline).
    pub async fn peers(&self) -> Result<Vec<net::PeerInfo>, ErrorView> {
        match &self.running()?.network {
            Some(network) => network.peers().await.map_err(|e| net_error(&e)),
            None => Ok(Vec::new()),
        }
    }

    /// The network's health and security counters (`None` offline).
    pub async fn net_status(&self) -> Result<Option<net::NetStatus>, ErrorView> {
        match &self.running()?.network {
            Some(network) => network.status().await.map(Some).map_err(|e| net_error(&e)),
            None => Ok(None),
        }
    }

    /// The addresses the network listens on, once it does (empty offline).
    pub async fn listening(&self) -> Result<Vec<String>, ErrorView> {
        match &self.running()?.network {
            Some(network) => Ok(network
                .listening()
                .await
                .map_err(|e| net_error(&e))?
                .iter()
                .map(|a| a.to_string())
                .collect()),
            None => Ok(Vec::new()),
        }
    }

    /// This node's network peer id (`None` offline).
    pub fn peer_id(&self) -> Result<Option<String>, ErrorView> {
        Ok(self
            .running()?
            .network
            .as_ref()
            .map(|n| n.peer_id().to_string()))
    }

    /// Builds, signs and stores a payment proposal; the co-signers review exactly what it says.
    pub async fn propose(&self, request: ProposeRequest) -> Result<ProposalView, ErrorView> {
        let running = self.running()?;
        // The group's coins as the chain has them now, not as last polled: a coin spent since
        // (by the payment just before, say) would have every co-signer refuse the proposal.
        if running.chains.is_some() && request.inputs.is_empty() {
            if let Err(e) = self.refresh_group(&request.group).await {
                tracing::warn!(group = %request.group, "proposing from the stored coins: {}", e.message);
            }
        }
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

    /// How many sessions wait for this member's review.
    pub async fn waiting_for_me(&self) -> Result<usize, ErrorView> {
        Ok(self
            .sessions()
            .await?
            .iter()
            .filter(|s| s.needs_me())
            .count())
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
        let mut view = views::session_view(&detail, &name, &members, &running.me);
        // Signed with this member's key is not enough: this app must have made it (a stolen
        // key proposing from elsewhere must get no code here to read out).
        let made_here = self.with_profile(|profile| {
            Ok(profile
                .store()
                .session(&session.0)
                .map_err(|e| internal("The session cannot be read", e))?
                .is_some_and(|record| record.proposed_by_me))
        })?;
        let signed_with_my_key =
            members.get(usize::from(detail.review.proposer)) == Some(&running.me);
        if signed_with_my_key && !made_here {
            view.warnings
                .insert(0, views::FOREIGN_PROPOSAL_WARNING.to_owned());
        }
        Ok(Some(views::with_confirmation(
            view,
            &detail.review.digest,
            made_here,
            running.settings.confirm_above_sats,
        )))
    }

    /// Approves exactly the review named by `digest` (a changed proposal has another digest).
    /// Above the amount set for it, `code` must be the confirmation code the proposer read out.
    pub async fn approve(
        &self,
        id: &str,
        digest: &str,
        code: Option<&str>,
    ) -> Result<SessionView, ErrorView> {
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
        let view = self.session(id).await?;
        if view.needs_confirmation_code {
            confirmation_check(code, &digest.0, view.proposer)?;
        }
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
            backends: tips.into_iter().map(Into::into).collect(),
        })
    }
}

/// The out-of-band check of a large payment's approval.
fn confirmation_check(
    code: Option<&str>,
    digest: &[u8; 32],
    proposer: u32,
) -> Result<(), ErrorView> {
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        None => Err(error_view(
            ErrorKind::ProposalRefused,
            "This payment needs the proposer's confirmation code",
            format!("the amount is above the limit set in Settings; member #{proposer}'s app shows a 12-digit code"),
            "Call the proposer on a channel you trust, ask them to read the code out, and type it in.",
        )),
        Some(typed) if !crate::confirmation::matches(typed, digest) => Err(error_view(
            ErrorKind::ProposalRefused,
            "That is not this payment's confirmation code",
            format!("'{typed}' does not match the code of the review on your screen"),
            "Check with the proposer that you both look at the same payment; do not approve if their screen shows something else.",
        )),
        Some(_) => Ok(()),
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

/// The settings' trusted bootstrap nodes; one that does not parse stops the start with a
/// clear error rather than leaving the node quietly without it.
fn settings_bootstrap(settings: &Settings) -> Result<Vec<net::Multiaddr>, ErrorView> {
    settings
        .bootstrap
        .iter()
        .map(|text| {
            net::peer_address(text).map_err(|e| {
                error_view(
                    ErrorKind::Network,
                    "A bootstrap node in the settings is not usable",
                    e.to_string(),
                    "Correct or remove it in settings.json (\"bootstrap\").",
                )
            })
        })
        .collect()
}

/// The transport, misbehaving on purpose when a test asks for a Byzantine node.
fn faulty_transport(
    transport: Arc<dyn Transport>,
    fault: Option<TestFault>,
    custody: &Custody,
    groups: &[protocol::group::GroupDescriptor],
) -> Arc<dyn Transport> {
    match fault {
        None | Some(TestFault::SilentCoordinator) => transport,
        Some(fault) => Arc::new(crate::runtime::faults::ByzantineTransport::new(
            transport,
            custody.private_key(),
            fault,
            groups.to_vec(),
        )),
    }
}

fn net_error(e: &net::NetError) -> ErrorView {
    error_view(
        ErrorKind::Network,
        "The network is not running",
        e.to_string(),
        "Restart the node.",
    )
}

fn saved_groups(profile: &Profile) -> Result<Vec<protocol::group::GroupDescriptor>, ErrorView> {
    Ok(profile
        .groups()
        .map_err(|e| e.view())?
        .into_iter()
        .map(|(group, _)| group)
        .collect())
}

/// Acts on the network's news: a co-signer that became reachable gets our acceptances of the
/// groups we share and makes open sessions pull what they missed; an acceptance that arrives is
/// verified against the saved group and kept.
fn follow_network(
    mut events: tokio::sync::mpsc::Receiver<net::NetEvent>,
    network: net::Network,
    sessions: SessionEngine,
    profile: Arc<Mutex<Profile>>,
    me: PublicKey,
    changes: broadcast::Sender<Change>,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                net::NetEvent::MemberReachable(member) => {
                    let ours = {
                        let profile = profile.lock().unwrap_or_else(|p| p.into_inner());
                        profile.groups().unwrap_or_default()
                    };
                    for (group, acceptances) in ours {
                        if !group.members.contains(&member) {
                            continue;
                        }
                        let mine = group.member_index(&me);
                        for acceptance in acceptances.iter().filter(|a| Some(a.member) == mine) {
                            network.send_acceptance(&[member], acceptance.encode());
                        }
                    }
                    sessions.reconnected().await;
                }
                net::NetEvent::Acceptance { bytes } => {
                    let Ok(acceptance) = protocol::group::Acceptance::decode(&bytes) else {
                        continue;
                    };
                    // A new acceptance is answered with ours: the sender may have accepted
                    // before it could hear from us (ours went out before it held the group).
                    let answer = {
                        let mut profile = profile.lock().unwrap_or_else(|p| p.into_inner());
                        let id = acceptance.group_id.to_string();
                        match profile.group(&id) {
                            Ok((group, known)) if acceptance.verify(&group).is_ok() => {
                                let new = !known.iter().any(|a| a.member == acceptance.member);
                                let saved = profile
                                    .save_group(&group, std::slice::from_ref(&acceptance))
                                    .is_ok();
                                let mine = group.member_index(&me);
                                let ours = known.into_iter().find(|a| Some(a.member) == mine);
                                let sender = group.members.get(acceptance.member as usize).copied();
                                saved.then_some((new, ours, sender))
                            }
                            _ => None,
                        }
                    };
                    if let Some((new, ours, sender)) = answer {
                        if let (true, Some(ours), Some(sender)) = (new, ours, sender) {
                            network.send_acceptance(&[sender], ours.encode());
                        }
                        let _ = changes.send(Change::Group {
                            id: acceptance.group_id.to_string(),
                        });
                    }
                }
            }
        }
    });
}
