//! The signer key's only home: the operating system's keychain.
//!
//! The store is picked per platform at compile time (Secret Service, macOS Keychain, Windows
//! Credential Manager) and never falls back to keyring's in-memory mock: a key that vanishes at
//! the next start is worse than an app that refuses to start. [`KeyStore::self_test`] proves the
//! store keeps what it is given before any real key goes in.

use keyring::Entry;
use lotus::PrivateKey;
use zeroize::Zeroizing;

/// Which keychain entry holds the signer key. Tests use their own service name so they never
/// touch a real profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeychainConfig {
    pub service: String,
    pub user: String,
}

impl KeychainConfig {
    pub const DEFAULT_SERVICE: &'static str = "lotus-cosigner";
    pub const DEFAULT_USER: &'static str = "signer-key";
}

impl Default for KeychainConfig {
    fn default() -> Self {
        Self {
            service: Self::DEFAULT_SERVICE.to_owned(),
            user: Self::DEFAULT_USER.to_owned(),
        }
    }
}

/// What went wrong with the keychain, sorted by what the person has to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("no Secret Service is running ({detail})")]
    NoSecretService { detail: String },
    #[error("no D-Bus session bus to reach the keychain ({detail})")]
    NoSessionBus { detail: String },
    #[error("the {backend} is locked ({detail})")]
    Locked {
        backend: &'static str,
        detail: String,
    },
    #[error("the {backend} failed: {detail}")]
    Platform {
        backend: &'static str,
        detail: String,
    },
    #[error("the {backend} accepted a test secret but did not give it back ({detail})")]
    NotPersistent {
        backend: &'static str,
        detail: &'static str,
    },
    #[error("the keychain entry {service}/{user} does not hold a signer key: {reason}")]
    Corrupt {
        service: String,
        user: String,
        reason: String,
    },
    #[error("this platform has no supported OS keychain")]
    UnsupportedPlatform,
}

impl KeyStoreError {
    /// One sentence on what to do next, shown under the error in the UI.
    pub fn action(&self) -> String {
        match self {
            Self::NoSecretService { .. } => "Start a Secret Service provider: gnome-keyring \
                (`gnome-keyring-daemon --start --components=secrets`) or KeePassXC with Secret \
                Service integration turned on, then try again."
                .to_owned(),
            Self::NoSessionBus { .. } => "Start Lotus Cosigner from your desktop session (it needs \
                the D-Bus session bus), or wrap it in `dbus-run-session` with gnome-keyring \
                running, then try again."
                .to_owned(),
            Self::Locked { backend, .. } => {
                format!("Unlock the {backend} (for example by logging in to your desktop, or in your password manager), then try again.")
            }
            Self::Platform { backend, .. } => format!(
                "Check that the {backend} works (for example with your system's password manager), then try again."
            ),
            Self::NotPersistent { backend, .. } => format!(
                "The {backend} does not keep secrets between calls, so your key would be lost. Use a persistent keychain and try again."
            ),
            Self::Corrupt { service, user, .. } => format!(
                "Inspect the keychain item \"{user}\" of service \"{service}\" in your password manager. Do not delete it unless you hold a backup of the key."
            ),
            Self::UnsupportedPlatform => {
                "Use Linux (Secret Service), macOS or Windows.".to_owned()
            }
        }
    }
}

/// Access to one keychain entry (service, user) plus a probe entry next to it for the self-test.
#[derive(Clone, Debug)]
pub struct KeyStore {
    config: KeychainConfig,
}

impl KeyStore {
    pub fn new(config: KeychainConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &KeychainConfig {
        &self.config
    }

    /// The name people know this platform's keychain by.
    pub fn backend_name() -> &'static str {
        platform::NAME
    }

    /// Writes a random value to a probe entry, reads it back through a fresh handle, deletes it
    /// and checks it is gone. Fails if any step fails or the store does not persist.
    pub fn self_test(&self) -> Result<(), KeyStoreError> {
        let probe_user = format!("{}.self-test", self.config.user);
        let mut token = [0u8; 16];
        getrandom::fill(&mut token).map_err(|e| KeyStoreError::Platform {
            backend: platform::NAME,
            detail: format!("OS random number generator: {e}"),
        })?;

        self.entry(&probe_user)?
            .set_secret(&token)
            .map_err(classify)?;
        // A fresh Entry: the mock store, for one, only remembers within a single handle.
        match self.entry(&probe_user)?.get_secret() {
            Ok(back) if back == token => {}
            Ok(_) => {
                return Err(KeyStoreError::NotPersistent {
                    backend: platform::NAME,
                    detail: "read back a different value",
                })
            }
            Err(keyring::Error::NoEntry) => {
                return Err(KeyStoreError::NotPersistent {
                    backend: platform::NAME,
                    detail: "the entry was gone on the next read",
                })
            }
            Err(e) => return Err(classify(e)),
        }
        self.entry(&probe_user)?
            .delete_credential()
            .map_err(classify)?;
        match self.entry(&probe_user)?.get_secret() {
            Err(keyring::Error::NoEntry) => Ok(()),
            Ok(_) => Err(KeyStoreError::Platform {
                backend: platform::NAME,
                detail: "a deleted test entry could still be read".to_owned(),
            }),
            Err(e) => Err(classify(e)),
        }
    }

    /// The public key of the stored signer key, or `None` if the entry does not exist.
    pub fn stored_public_key(&self) -> Result<Option<secp256k1::PublicKey>, KeyStoreError> {
        Ok(self.load()?.map(|k| k.public_key()))
    }

    /// The stored signer key, or `None` if the entry does not exist. Engine-internal: callers
    /// open a [`crate::custody::Custody`] instead.
    pub(crate) fn load(&self) -> Result<Option<PrivateKey>, KeyStoreError> {
        let bytes = match self.entry(&self.config.user)?.get_secret() {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(keyring::Error::NoEntry) => return Ok(None),
            Err(e) => return Err(classify(e)),
        };
        PrivateKey::from_slice(&bytes)
            .map(Some)
            .map_err(|e| KeyStoreError::Corrupt {
                service: self.config.service.clone(),
                user: self.config.user.clone(),
                reason: e.to_string(),
            })
    }

    /// Stores the signer key, replacing any previous value of this entry.
    pub fn store(&self, key: &PrivateKey) -> Result<(), KeyStoreError> {
        self.entry(&self.config.user)?
            .set_secret(key.to_bytes().as_slice())
            .map_err(classify)
    }

    /// Removes the signer key entry. Succeeds if there was none.
    pub fn delete(&self) -> Result<(), KeyStoreError> {
        match self.entry(&self.config.user)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    fn entry(&self, user: &str) -> Result<Entry, KeyStoreError> {
        platform::entry(&self.config.service, user)
    }
}

/// Turns keyring's errors into ones that say what is missing. The Secret Service errors only
/// differ in their D-Bus message text, so that text is what gets inspected.
fn classify(error: keyring::Error) -> KeyStoreError {
    let detail = error.to_string();
    match error {
        keyring::Error::NoStorageAccess(_) => KeyStoreError::Locked {
            backend: platform::NAME,
            detail,
        },
        keyring::Error::PlatformFailure(_) => {
            if detail.contains("IsLocked") || detail.contains("locked") {
                KeyStoreError::Locked {
                    backend: platform::NAME,
                    detail,
                }
            } else if detail.contains("org.freedesktop.secrets")
                || detail.contains("ServiceUnknown")
            {
                KeyStoreError::NoSecretService { detail }
            } else if detail.contains("autolaunch")
                || detail.contains("DBUS_SESSION_BUS_ADDRESS")
                || detail.contains("Failed to connect to socket")
                || detail.contains("NoServer")
            {
                KeyStoreError::NoSessionBus { detail }
            } else {
                KeyStoreError::Platform {
                    backend: platform::NAME,
                    detail,
                }
            }
        }
        _ => KeyStoreError::Platform {
            backend: platform::NAME,
            detail,
        },
    }
}

/// Each platform's store, named explicitly: keyring's default builder would pick the mock
/// store on a platform whose feature is missing.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
mod platform {
    pub const NAME: &str = "Secret Service keyring";

    pub fn entry(service: &str, user: &str) -> Result<keyring::Entry, super::KeyStoreError> {
        let credential = keyring::secret_service::default_credential_builder()
            .build(None, service, user)
            .map_err(super::classify)?;
        Ok(keyring::Entry::new_with_credential(credential))
    }
}

#[cfg(target_os = "macos")]
mod platform {
    pub const NAME: &str = "macOS Keychain";

    pub fn entry(service: &str, user: &str) -> Result<keyring::Entry, super::KeyStoreError> {
        let credential = keyring::macos::default_credential_builder()
            .build(None, service, user)
            .map_err(super::classify)?;
        Ok(keyring::Entry::new_with_credential(credential))
    }
}

#[cfg(target_os = "windows")]
mod platform {
    pub const NAME: &str = "Windows Credential Manager";

    pub fn entry(service: &str, user: &str) -> Result<keyring::Entry, super::KeyStoreError> {
        let credential = keyring::windows::default_credential_builder()
            .build(None, service, user)
            .map_err(super::classify)?;
        Ok(keyring::Entry::new_with_credential(credential))
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
mod platform {
    pub const NAME: &str = "OS keychain";

    pub fn entry(_service: &str, _user: &str) -> Result<keyring::Entry, super::KeyStoreError> {
        Err(super::KeyStoreError::UnsupportedPlatform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_failures_are_sorted_by_what_to_do() {
        let failure =
            |text: &str| classify(keyring::Error::PlatformFailure(text.to_owned().into()));
        assert!(matches!(
            failure("D-Bus error: The name org.freedesktop.secrets was not provided by any .service files"),
            KeyStoreError::NoSecretService { .. }
        ));
        assert!(matches!(
            failure("D-Bus error: Unable to autolaunch a dbus-daemon without a $DISPLAY for X11"),
            KeyStoreError::NoSessionBus { .. }
        ));
        assert!(matches!(
            failure("Cannot create an item in a locked collection (org.freedesktop.Secret.Error.IsLocked)"),
            KeyStoreError::Locked { .. }
        ));
        assert!(matches!(
            failure("something else"),
            KeyStoreError::Platform { .. }
        ));
        assert!(matches!(
            classify(keyring::Error::NoStorageAccess("denied".to_owned().into())),
            KeyStoreError::Locked { .. }
        ));
    }
}
