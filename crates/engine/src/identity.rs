//! The signer identity: one secp256k1 key, created once from the OS CSPRNG and kept in the
//! keychain; its public key and the Lotus addresses derived from it.

use std::path::Path;

use secp256k1::PublicKey;
use serde::Serialize;
use ts_rs::TS;

use crate::key_store::{KeyStore, KeyStoreError};
use crate::settings::Network;
use store::{Batch, SignerRow};

/// What the UI shows about the identity. Public data only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct IdentityView {
    /// Compressed public key (33 bytes), lowercase hex.
    pub public_key_hex: String,
    /// P2PKH XAddress of the public key.
    pub p2pkh_address: String,
    /// Taproot (key path only) XAddress of the key's commitment.
    pub taproot_address: String,
    pub network: Network,
    /// Where the secret lives, e.g. "OS keychain (Secret Service keyring)".
    pub key_store: String,
    pub data_dir: String,
    /// Unix milliseconds when this profile first recorded the key.
    #[ts(type = "number")]
    pub created_at_ms: u64,
    /// Unix milliseconds when a backup was confirmed; `null` while there is none.
    #[ts(type = "number | null")]
    pub backup_confirmed_at_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    Database(#[from] store::Error),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    /// The profile has a key on record but the keychain no longer has it. Never answered by
    /// creating a new key: funds may be locked to the old one.
    #[error("this profile's signer key {public_key} is missing from the keychain")]
    KeyMissing { public_key: String },
    /// The keychain holds a different key than the one this profile recorded.
    #[error("the keychain holds key {found}, but this profile belongs to key {expected}")]
    KeyMismatch { expected: String, found: String },
    /// A restore of another key into a profile whose groups need the current one.
    #[error("this profile's key {current} is a member of {groups} group(s); another key cannot take its place")]
    KeyInGroups { current: String, groups: usize },
}

/// Which way [`load_or_create`] found the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Created,
    Loaded,
    /// The keychain had a key that this (new) data folder had not recorded yet.
    Adopted,
}

/// Loads the signer key from the keychain and checks it against the profile's record; on the
/// very first run creates it. Returns only public data: the secret is dropped (and erased)
/// before this returns. `now` is unix seconds.
pub fn load_or_create(
    store: &KeyStore,
    db: &mut store::Store,
    now_ms: u64,
) -> Result<(SignerRow, Origin), IdentityError> {
    db.exclusive(|db| reconcile(store, db, now_ms))
}

/// Records a key opened elsewhere (an encrypted key file) as this profile's signer, or checks
/// it is the one recorded.
pub fn adopt(
    public_key: PublicKey,
    db: &mut store::Store,
    now_ms: u64,
) -> Result<(SignerRow, Origin), IdentityError> {
    db.exclusive(|db| match db.signer()? {
        None => {
            let row = signer(public_key, now_ms);
            db.record_signer(&row)?;
            Ok((row, Origin::Adopted))
        }
        Some(record) if record.public_key == public_key.serialize() => Ok((record, Origin::Loaded)),
        Some(record) => Err(IdentityError::KeyMismatch {
            expected: hex::encode(record.public_key),
            found: hex::encode(public_key.serialize()),
        }),
    })
}

fn reconcile(
    store: &KeyStore,
    db: &mut Batch<'_>,
    now: u64,
) -> Result<(SignerRow, Origin), IdentityError> {
    let record = db.signer()?;
    let stored = store.load()?;
    match (record, stored) {
        (None, None) => {
            let key = crate::custody::generate().map_err(|e| match e {
                crate::custody::CustodyError::Random(detail) => IdentityError::Random(detail),
                other => IdentityError::Random(other.to_string()),
            })?;
            store.store(&key)?;
            // Read back through the keychain so a store that dropped it fails now, not later.
            let reread = store.load()?.ok_or(KeyStoreError::NotPersistent {
                backend: KeyStore::backend_name(),
                detail: "the new key was gone right after it was stored",
            })?;
            let public_key = key.public_key();
            if reread.public_key() != public_key {
                return Err(IdentityError::KeyMismatch {
                    expected: hex::encode(public_key.serialize()),
                    found: hex::encode(reread.public_key().serialize()),
                });
            }
            let row = signer(public_key, now);
            db.record_signer(&row)?;
            Ok((row, Origin::Created))
        }
        (None, Some(key)) => {
            let public_key = key.public_key();
            let row = signer(public_key, now);
            db.record_signer(&row)?;
            Ok((row, Origin::Adopted))
        }
        (Some(record), None) => Err(IdentityError::KeyMissing {
            public_key: hex::encode(record.public_key),
        }),
        (Some(record), Some(key)) => {
            let found = key.public_key();
            if found.serialize() != record.public_key {
                return Err(IdentityError::KeyMismatch {
                    expected: hex::encode(record.public_key),
                    found: hex::encode(found.serialize()),
                });
            }
            Ok((record, Origin::Loaded))
        }
    }
}

/// Puts a key restored from its recovery phrase into the keychain and the profile, and
/// records its backup as confirmed (the person just typed it). The recorded key itself is
/// always accepted (its keychain entry was lost, say); another key only into a profile in no
/// group, because the groups and their coins belong to the recorded key. Idempotent, so a
/// crash between the keychain and the database is mended by restoring again.
pub fn restore(
    store: &KeyStore,
    db: &mut store::Store,
    key: &lotus::PrivateKey,
    now_ms: u64,
) -> Result<SignerRow, IdentityError> {
    let public_key = key.public_key();
    db.exclusive(|db| {
        let record = db.signer()?;
        if let Some(record) = &record {
            let groups = db.group_count()?;
            if record.public_key != public_key.serialize() && groups > 0 {
                return Err(IdentityError::KeyInGroups {
                    current: hex::encode(record.public_key),
                    groups,
                });
            }
        }
        // The keychain first: should the database step fail, the transaction rolls back and
        // restoring again writes the same entry.
        store.store(key)?;
        let reread = store.load()?.ok_or(KeyStoreError::NotPersistent {
            backend: KeyStore::backend_name(),
            detail: "the restored key was gone right after it was stored",
        })?;
        if reread.public_key() != public_key {
            return Err(IdentityError::KeyMismatch {
                expected: hex::encode(public_key.serialize()),
                found: hex::encode(reread.public_key().serialize()),
            });
        }
        let row = SignerRow {
            public_key: public_key.serialize(),
            created_ms: record.as_ref().map_or(now_ms, |r| {
                if r.public_key == public_key.serialize() {
                    r.created_ms
                } else {
                    now_ms
                }
            }),
            backup_confirmed_ms: Some(now_ms),
        };
        match record {
            None => db.record_signer(&row)?,
            Some(_) => db.replace_signer(&row)?,
        }
        Ok(row)
    })
}

/// The public view of a recorded key.
pub fn view(record: &SignerRow, network: Network, data_dir: &Path) -> IdentityView {
    let net = network.lotus();
    let public_key = &PublicKey::from_slice(&record.public_key)
        .expect("the store keeps only keys recorded from a valid public key");
    IdentityView {
        public_key_hex: hex::encode(public_key.serialize()),
        p2pkh_address: lotus::address::p2pkh_address(public_key, net),
        taproot_address: lotus::address::taproot_address(
            &lotus::taproot::commitment(public_key),
            net,
        ),
        network,
        key_store: format!("OS keychain ({})", KeyStore::backend_name()),
        data_dir: data_dir.display().to_string(),
        created_at_ms: record.created_ms,
        backup_confirmed_at_ms: record.backup_confirmed_ms,
    }
}

fn signer(public_key: PublicKey, created_ms: u64) -> SignerRow {
    SignerRow {
        public_key: public_key.serialize(),
        created_ms,
        backup_confirmed_ms: None,
    }
}
