//! The runtime's links when this process has no network and no chain (a one-shot command such
//! as `session propose`): what it would send stays in the store, and the co-signers pull it
//! when a node of this profile is online (Protocol v2's pull of missing messages).

use lotus::secp256k1::PublicKey;
use lotus::tx::Transaction;
use tokio::sync::broadcast;

use super::chain::{ChainLink, LinkError};
use super::transport::Transport;

#[derive(Clone, Copy, Debug, Default)]
pub struct Offline;

impl Transport for Offline {
    fn send(&self, _to: &[PublicKey], _bytes: &[u8]) {}
}

impl ChainLink for Offline {
    fn submit(&self, _tx: &Transaction) -> Result<(), LinkError> {
        Err(LinkError::Unreachable(
            "this command runs without a chain backend; the node broadcasts".into(),
        ))
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        broadcast::channel(1).1
    }
}

/// The session runtime over this profile's database with [`Offline`] links, signing with the
/// custody's key: for one-shot commands. Returns the handle, the core (call
/// [`super::CoreHandle::finish`] after dropping the handle), a sender for local deliveries, and
/// the profile's engine lock (hold it until the core finished: the app or a node must not run
/// a second core on the same database meanwhile).
pub fn spawn_for_profile(
    profile: &crate::profile::Profile,
    custody: &crate::custody::Custody,
) -> Result<
    (
        super::SessionEngine,
        super::CoreHandle,
        tokio::sync::mpsc::Sender<super::transport::Delivery>,
        crate::data_dir::ProfileLock,
    ),
    OfflineError,
> {
    let lock = profile.data_dir().lock_engine()?;
    let store = store::Store::open(profile.data_dir().database_file())?;
    let groups = profile
        .groups()
        .map_err(|e| OfflineError::Profile(Box::new(e)))?
        .into_iter()
        .map(|(group, _)| group)
        .collect();
    let (deliver, inbox) = tokio::sync::mpsc::channel(1);
    let (engine, core) = super::SessionEngine::spawn(
        custody.private_key(),
        store,
        groups,
        std::sync::Arc::new(Offline),
        inbox,
        std::sync::Arc::new(Offline),
        Box::new(super::SystemClock),
    )?;
    Ok((engine, core, deliver, lock))
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Store(Box<store::Error>),
    #[error(transparent)]
    Runtime(Box<super::RuntimeError>),
    #[error(transparent)]
    Profile(Box<crate::profile::ProfileError>),
    #[error(transparent)]
    Busy(#[from] crate::data_dir::LockError),
}

impl From<store::Error> for OfflineError {
    fn from(e: store::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<super::RuntimeError> for OfflineError {
    fn from(e: super::RuntimeError) -> Self {
        Self::Runtime(Box::new(e))
    }
}
