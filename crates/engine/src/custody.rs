//! Key custody: the signer key lives in the OS keychain or in an encrypted key file, and leaves
//! the engine only as public keys and signatures. Callers (the app, the command line) open a
//! [`Custody`] and ask it to sign what the protocol needs; they never hold the key.

use std::path::{Path, PathBuf};

use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use protocol::group::{Acceptance, AcceptanceError, GroupDescriptor};

use crate::key_file::{self, KdfCost, KeyFileError};
use crate::key_store::{KeyStore, KeyStoreError, KeychainConfig};

/// Where the signer key is kept.
#[derive(Clone, Debug)]
pub enum KeySource {
    Keychain(KeychainConfig),
    /// An encrypted key file; the passphrase is asked for when it is opened.
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error(transparent)]
    Keychain(#[from] KeyStoreError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("there is no signer key in the keychain yet: create one first (`lotus-cosigner key create`, or start the app)")]
    NoKey,
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("no passphrase for the key file: {0}")]
    Passphrase(String),
}

/// An opened signer key. Not `Clone`, and its key is reachable only inside the engine.
pub struct Custody {
    key: PrivateKey,
    location: String,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody")
            .field(
                "public_key",
                &hex::encode(self.key.public_key().serialize()),
            )
            .field("location", &self.location)
            .finish()
    }
}

impl Custody {
    /// The keychain's signer key (after a self-test of the keychain); an absent key is an
    /// error, never created here (the engine's first run does that, and records it).
    pub fn open_keychain(config: &KeychainConfig) -> Result<Self, CustodyError> {
        let store = KeyStore::new(config.clone());
        store.self_test()?;
        let key = store.load()?.ok_or(CustodyError::NoKey)?;
        Ok(Self {
            key,
            location: format!(
                "OS keychain ({}, service {})",
                KeyStore::backend_name(),
                config.service
            ),
        })
    }

    pub fn open_file(path: &Path, passphrase: &str) -> Result<Self, CustodyError> {
        Ok(Self {
            key: key_file::read(path, passphrase)?,
            location: format!("encrypted key file {}", path.display()),
        })
    }

    /// Opens whichever `source` names; `passphrase` is asked for only for a key file.
    pub fn open(
        source: &KeySource,
        passphrase: impl FnOnce() -> Result<zeroize::Zeroizing<String>, CustodyError>,
    ) -> Result<Self, CustodyError> {
        match source {
            KeySource::Keychain(config) => Self::open_keychain(config),
            KeySource::File(path) => Self::open_file(path, &passphrase()?),
        }
    }

    /// Creates a new key straight into an encrypted file (never overwriting one) and returns
    /// its public key.
    pub fn create_file(path: &Path, passphrase: &str) -> Result<PublicKey, CustodyError> {
        let key = generate()?;
        key_file::write(path, &key, passphrase, KdfCost::default())?;
        Ok(key.public_key())
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Where the key lives, for people ("OS keychain (…)", "encrypted key file …").
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Signs this member's acceptance of `group` (refused if the group does not list the key).
    pub fn accept(&self, group: &GroupDescriptor) -> Result<Acceptance, AcceptanceError> {
        Acceptance::sign(group, &self.key)
    }

    /// A copy for the engine's own session runtime, which signs with it (never leaves the
    /// engine crate).
    pub(crate) fn private_key(&self) -> PrivateKey {
        PrivateKey::from_bytes(&self.key.to_bytes()).expect("a valid key stays valid")
    }
}

/// A fresh key from the OS CSPRNG. The buffer is erased on drop; a value outside the curve
/// order (probability ~2^-128) is simply drawn again.
pub(crate) fn generate() -> Result<PrivateKey, CustodyError> {
    loop {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| CustodyError::Random(e.to_string()))?;
        if let Ok(key) = PrivateKey::from_bytes(&bytes) {
            return Ok(key);
        }
    }
}
