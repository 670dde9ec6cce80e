//! Backup and restore of the signer key: the recovery phrase shown once and confirmed, and
//! a restore that puts the phrase's key into the keychain and starts the engine again.

use std::sync::Arc;

use super::{internal, Engine};
use crate::identity;
use crate::profile::Profile;
use crate::recovery::{self, BackupAnswer, RecoveryPhrase, RecoveryPhraseView};
use crate::views::Change;
use crate::{error_view, ErrorKind, ErrorView, Explain, IdentityView};

impl Engine {
    /// The signer key's recovery phrase, for the one deliberate display, and the word
    /// positions to ask back before the backup counts as done.
    pub fn recovery_phrase(&self) -> Result<RecoveryPhraseView, ErrorView> {
        self.identity()?;
        let phrase = RecoveryPhrase::of(&self.signer_key()?);
        let check_positions = recovery::positions_to_check()
            .map_err(|e| e.view())?
            .into_iter()
            .map(|p| p as u8)
            .collect();
        tracing::info!("the recovery phrase was shown");
        Ok(RecoveryPhraseView {
            words: phrase.words().to_vec(),
            check_positions,
        })
    }

    /// Records the key's backup once the words typed back match the phrase.
    pub async fn confirm_backup(
        &self,
        answers: &[BackupAnswer],
    ) -> Result<IdentityView, ErrorView> {
        let identity = self.identity()?;
        RecoveryPhrase::of(&self.signer_key()?)
            .check(answers)
            .map_err(|e| e.view())?;
        let now = crate::unix_now_ms();
        self.with_profile(|profile| {
            profile
                .store_mut()
                .confirm_backup(now)
                .map_err(|e| internal("The backup cannot be recorded", e))
        })?;
        self.audit_key(store::KeyAction::BackupConfirmed, &identity)
            .await;
        let mut cached = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        let view = IdentityView {
            backup_confirmed_at_ms: Some(now),
            ..identity
        };
        *cached = Some(view.clone());
        Ok(view)
    }

    /// Restores the signer key from its recovery phrase into the keychain, then starts again
    /// with it. Works from a failed start too (the key missing from the keychain). Refused
    /// when the profile's groups belong to another key; see [`identity::restore`].
    pub async fn restore_key(&self, phrase: &str) -> Result<IdentityView, ErrorView> {
        if self.config.key.is_some() {
            return Err(error_view(
                ErrorKind::RestoreRefused,
                "This node uses a key file",
                "A restore puts the key into the OS keychain, and this node reads an encrypted key file instead.".to_owned(),
                "Restore in the desktop app, or write a new key file with `lotus-cosigner key create --file`.",
            ));
        }
        let key = RecoveryPhrase::parse(phrase)
            .and_then(|p| p.key())
            .map_err(|e| e.view())?;
        self.stop_running();
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let restored = (|| -> Result<(), crate::EngineError> {
            let dir = crate::data_dir::DataDir::open(self.config.data_dir.clone())?;
            let mut profile = Profile::open(Some(dir.path().to_owned()))?;
            let keys = crate::KeyStore::new(self.config.keychain.clone());
            keys.self_test()?;
            identity::restore(&keys, profile.store_mut(), &key, crate::unix_now_ms())?;
            Ok(())
        })();
        drop(key);
        if let Err(e) = restored {
            tracing::warn!(error = %e, "restore refused");
            // Whatever ran before starts again as it was.
            let _ = self.running();
            return Err(e.view());
        }
        let view = self.identity()?;
        tracing::info!(public_key = %view.public_key_hex, "restored the signer key from its recovery phrase");
        // The key is restored whatever happens next; a failed start shows on every screen
        // and is retried from there.
        match self.running() {
            Ok(_) => self.audit_key(store::KeyAction::Imported, &view).await,
            Err(e) => tracing::warn!(error = %e.message, "restored, but the engine did not start"),
        }
        let _ = self.changes.send(Change::Everything);
        Ok(view)
    }

    /// The signer key itself, for the backup display only.
    fn signer_key(&self) -> Result<lotus::PrivateKey, ErrorView> {
        match &self.config.key {
            Some(custody) => Ok(custody.private_key()),
            None => crate::KeyStore::new(self.config.keychain.clone())
                .load()
                .map_err(|e| e.view())?
                .ok_or_else(|| {
                    error_view(
                        ErrorKind::KeyMissing,
                        "Your signing key is missing from the keychain",
                        "The keychain has no signer key.".to_owned(),
                        "Restore the key from your recovery phrase.",
                    )
                }),
        }
    }

    async fn audit_key(&self, action: store::KeyAction, identity: &IdentityView) {
        let Ok(bytes) = hex::decode(&identity.public_key_hex) else {
            return;
        };
        let Ok(public_key) = <[u8; 33]>::try_from(bytes.as_slice()) else {
            return;
        };
        if let Err(e) = self
            .append_audit(store::AuditEvent::Key { action, public_key })
            .await
        {
            tracing::warn!(error = %e.message, "the key event is not in the audit log");
        }
    }

    /// Stops the session core, the network and the chain task, and waits until their threads
    /// and sockets are gone (on a thread of its own: a runtime cannot be waited for from
    /// inside an async task).
    pub(super) fn stop_running(&self) {
        let taken = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(running) = taken {
            let waited = std::thread::spawn(move || {
                if let Ok(mut running) = Arc::try_unwrap(running) {
                    if let Some(runtime) = running.runtime.take() {
                        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
                    }
                }
            })
            .join();
            if waited.is_err() {
                tracing::warn!("the engine did not stop cleanly");
            }
        }
    }
}
