//! The Network and Settings screens: peers and counters from the network task, and the
//! settings file, changed only whole and checked, then applied by starting the engine again.

use chain::multi::Chains;
use chain::ChainSpec;

use super::{internal, Engine};
use crate::settings::Settings;
use crate::views::{ChainTestView, Change, NetworkView, PeerView, SettingsForm, SettingsView};
use crate::{error_view, ErrorKind, ErrorView};

/// Why a settings form cannot be saved.
fn invalid(field: &str, detail: String) -> ErrorView {
    error_view(
        ErrorKind::InvalidSettings,
        "These settings cannot be saved",
        format!("{field}: {detail}"),
        "Correct the field named above; nothing was changed.",
    )
}

impl Engine {
    pub async fn network_view(&self) -> Result<NetworkView, ErrorView> {
        let running = self.running()?;
        let peers: Vec<PeerView> = self.peers().await?.into_iter().map(Into::into).collect();
        let status = self.net_status().await?.map(Into::into);
        let mut subnets: Vec<String> = peers
            .iter()
            .filter(|p| p.path == "direct")
            .filter_map(|p| p.address.parse::<net::Multiaddr>().ok())
            .filter_map(|a| net::policy::ip_of(&a))
            .filter(|ip| !ip.is_loopback())
            .map(net::policy::subnet_of)
            .collect();
        subnets.sort();
        subnets.dedup();
        Ok(NetworkView {
            status,
            peers,
            bootstrap: running.settings.bootstrap.clone(),
            subnets: subnets.len() as u32,
        })
    }

    pub fn settings_view(&self) -> Result<SettingsView, ErrorView> {
        let identity = self.identity()?;
        let running = self.running()?;
        let settings = &running.settings;
        Ok(SettingsView {
            network: settings.network,
            chain: settings.chain.clone(),
            seen_quorum: settings.seen_quorum as u32,
            fee_rate_per_kb: settings.fee_rate_per_kb,
            bootstrap: settings.bootstrap.clone(),
            settings_file: self.settings_path()?.display().to_string(),
            data_dir: identity.data_dir,
            key_store: identity.key_store,
            online: running.network.is_some(),
            confirm_above_sats: settings.confirm_above_sats,
            notifications: settings.notifications,
        })
    }

    /// Checks the form whole, writes `settings.json`, and starts the engine again with it
    /// (chain backends and bootstrap nodes are used from the start). A bad field changes
    /// nothing.
    pub fn save_settings(&self, form: &SettingsForm) -> Result<SettingsView, ErrorView> {
        let path = self.settings_path()?;
        let mut settings = Settings::load_or_init(&path)
            .map_err(|e| internal("The settings cannot be read", e))?;
        let chain: Vec<String> = form
            .chain
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for spec in &chain {
            ChainSpec::parse(spec).map_err(|e| invalid("chain backend", e.to_string()))?;
        }
        let bootstrap: Vec<String> = form
            .bootstrap
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for peer in &bootstrap {
            net::peer_address(peer).map_err(|e| invalid("bootstrap node", e.to_string()))?;
        }
        if form.fee_rate_per_kb < lotus::policy::DEFAULT_RELAY_FEE_PER_KB {
            return Err(invalid(
                "fee rate",
                format!(
                    "{} sat/kB is below the relay floor of {} sat/kB",
                    form.fee_rate_per_kb,
                    lotus::policy::DEFAULT_RELAY_FEE_PER_KB
                ),
            ));
        }
        let quorum = form.seen_quorum as usize;
        if quorum == 0 || quorum > chain.len().max(1) {
            return Err(invalid(
                "seen quorum",
                format!(
                    "{quorum} must be between 1 and the number of backends ({})",
                    chain.len().max(1)
                ),
            ));
        }
        let confirm_above = form.confirm_above_xpi.trim();
        settings.confirm_above_sats = if confirm_above.is_empty() {
            None
        } else {
            Some(
                crate::payment_form::parse_xpi(confirm_above)
                    .map_err(|e| invalid("confirmation code above", e))?,
            )
        };
        settings.chain = chain;
        settings.bootstrap = bootstrap;
        settings.fee_rate_per_kb = form.fee_rate_per_kb;
        settings.seen_quorum = quorum;
        settings.notifications = form.notifications;
        settings
            .save(&path)
            .map_err(|e| internal("The settings cannot be saved", e))?;
        tracing::info!(path = %path.display(), "saved the settings; starting again with them");
        self.stop_running();
        let view = self.settings_view()?;
        let _ = self.changes.send(Change::Everything);
        Ok(view)
    }

    /// Asks one chain backend for its tip, before it is saved.
    pub async fn test_chain_backend(&self, spec: &str) -> Result<ChainTestView, ErrorView> {
        let running = self.running()?;
        let backend = ChainSpec::parse(spec.trim())
            .map_err(|e| e.to_string())
            .and_then(|spec| chain::backend(&spec).map_err(|e| e.to_string()))
            .map_err(|e| invalid("chain backend", e))?;
        let chains = Chains::new(vec![backend], 1);
        let tips = running
            .handle()
            .spawn(async move { chains.tips().await })
            .await
            .map_err(|e| internal("The chain question failed", e))?;
        let report = tips
            .into_iter()
            .next()
            .ok_or_else(|| internal("The chain question failed", "no answer"))?;
        Ok(ChainTestView {
            backend: report.into(),
        })
    }

    fn settings_path(&self) -> Result<std::path::PathBuf, ErrorView> {
        let dir = crate::data_dir::DataDir::open(self.config.data_dir.clone())
            .map_err(|e| internal("The data folder cannot be opened", e))?;
        Ok(dir.settings_file())
    }
}
