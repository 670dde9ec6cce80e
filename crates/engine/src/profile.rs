//! One person's installation as the engine, the app and the command line see it: the data
//! folder and its one database (signer record, groups and acceptances, coins, sessions, audit).
//!
//! Profiles made before the one-database layout are imported on open, once: the session store
//! becomes the profile database (its own migrations bring it to the current schema), the app
//! database's signer record and the `groups/` files are copied into its tables, and the old
//! files are renamed with `.migrated` — kept, not deleted, so nothing is lost. Each step can
//! be interrupted and redone: imports are idempotent and the renames come after the commits.

use std::path::{Path, PathBuf};

use protocol::group::{Acceptance, GroupDescriptor, GroupError, GroupId};

use crate::app_db::AppDb;
use crate::data_dir::{legacy, DataDir, DataDirError};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("cannot import the old profile file {path}: {detail}")]
    Legacy { path: PathBuf, detail: String },
    #[error(transparent)]
    Lock(#[from] crate::data_dir::LockError),
    #[error("no group {0} in this profile")]
    UnknownGroup(String),
    #[error("'{0}' matches more than one group; give more of its id")]
    AmbiguousGroup(String),
    #[error("the stored group {id} does not decode ({source}); the database was changed outside the app")]
    BadStoredGroup {
        id: String,
        #[source]
        source: GroupError,
    },
}

pub struct Profile {
    dir: DataDir,
    store: store::Store,
}

/// What [`Profile::open`] imported from an old layout.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub session_store: bool,
    pub signer: bool,
    pub groups: usize,
    pub acceptances: usize,
}

impl Profile {
    /// Opens (creating if needed, importing an old layout once) the profile; `None` is the
    /// platform data folder.
    pub fn open(data_dir: Option<PathBuf>) -> Result<Self, ProfileError> {
        Self::open_reporting(data_dir).map(|(profile, _)| profile)
    }

    /// [`Profile::open`], also saying what it imported.
    pub fn open_reporting(data_dir: Option<PathBuf>) -> Result<(Self, Imported), ProfileError> {
        let dir = DataDir::open(data_dir)?;
        // Held until the import (if any) is done; another program opening meanwhile waits.
        let _opening = dir.lock_opening().map_err(ProfileError::Lock)?;
        let mut imported = Imported::default();
        let database = dir.database_file();
        let old_store = dir.path().join(legacy::SESSION_STORE);
        if !database.exists() && old_store.exists() {
            adopt_session_store(&old_store, &database)?;
            imported.session_store = true;
        }
        let mut profile = Self {
            store: store::Store::open(&database)?,
            dir,
        };
        imported.signer = profile.import_app_database()?;
        let (groups, acceptances) = profile.import_group_files()?;
        imported.groups = groups;
        imported.acceptances = acceptances;
        if imported != Imported::default() {
            tracing::info!(?imported, path = %profile.path().display(), "imported an older profile layout");
        }
        Ok((profile, imported))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    pub fn store(&self) -> &store::Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut store::Store {
        &mut self.store
    }

    /// Saves a group (its canonical descriptor) and any acceptances that verify.
    pub fn save_group(
        &mut self,
        group: &GroupDescriptor,
        acceptances: &[Acceptance],
    ) -> Result<GroupId, ProfileError> {
        group.validate()?;
        let id = group.id();
        let signed: Vec<([u8; 33], Vec<u8>)> = acceptances
            .iter()
            .filter(|a| a.verify(group).is_ok())
            .filter_map(|a| {
                let member = group.members.get(usize::from(a.member))?;
                Some((member.serialize(), a.encode()))
            })
            .collect();
        self.store
            .save_group(&id.0, &group.name, &group.encode(), &signed, now_ms())?;
        Ok(id)
    }

    /// Every group saved in this profile, with its verified acceptances.
    pub fn groups(&self) -> Result<Vec<(GroupDescriptor, Vec<Acceptance>)>, ProfileError> {
        self.store
            .groups()?
            .into_iter()
            .map(|row| {
                let group = GroupDescriptor::decode(&row.descriptor).map_err(|source| {
                    ProfileError::BadStoredGroup {
                        id: hex::encode(row.group_id),
                        source,
                    }
                })?;
                let acceptances = row
                    .acceptances
                    .iter()
                    .filter_map(|bytes| Acceptance::decode(bytes).ok())
                    .filter(|a| a.verify(&group).is_ok())
                    .collect();
                Ok((group, acceptances))
            })
            .collect()
    }

    /// A group by id or by an unambiguous hex prefix of it.
    pub fn group(
        &self,
        id_prefix: &str,
    ) -> Result<(GroupDescriptor, Vec<Acceptance>), ProfileError> {
        let prefix = id_prefix.trim().to_ascii_lowercase();
        let mut matches: Vec<_> = self
            .groups()?
            .into_iter()
            .filter(|(g, _)| !prefix.is_empty() && g.id().to_string().starts_with(&prefix))
            .collect();
        match matches.len() {
            0 => Err(ProfileError::UnknownGroup(id_prefix.to_string())),
            1 => Ok(matches.remove(0)),
            _ => Err(ProfileError::AmbiguousGroup(id_prefix.to_string())),
        }
    }

    /// Copies the old app database's signer record (seconds → milliseconds), then renames it.
    fn import_app_database(&mut self) -> Result<bool, ProfileError> {
        let path = self.dir.path().join(legacy::APP_DATABASE);
        if !path.exists() {
            return Ok(false);
        }
        let legacy_error = |detail: String| ProfileError::Legacy {
            path: path.clone(),
            detail,
        };
        let old =
            AppDb::open(&path, now_ms() as i64 / 1000).map_err(|e| legacy_error(e.to_string()))?;
        let record = old.signer().map_err(|e| legacy_error(e.to_string()))?;
        drop(old);
        let mut copied = false;
        if let Some(record) = record {
            let row = store::SignerRow {
                public_key: record.public_key.serialize(),
                created_ms: record.created_at.max(0) as u64 * 1000,
                backup_confirmed_ms: record.backup_confirmed_at.map(|s| s.max(0) as u64 * 1000),
            };
            match self.store.signer()? {
                Some(existing) if existing.public_key != row.public_key => {
                    return Err(legacy_error(
                        "it names a different signer key than this profile's database".into(),
                    ))
                }
                Some(_) => {}
                None => {
                    self.store.batch(|b| match b.signer()? {
                        None => b.record_signer(&row),
                        Some(_) => Ok(()),
                    })?;
                    copied = true;
                }
            }
        }
        rename_migrated(&path).map_err(|e| legacy_error(e.to_string()))?;
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            if side.exists() {
                rename_migrated(&side).map_err(|e| legacy_error(e.to_string()))?;
            }
        }
        Ok(copied)
    }

    /// Copies `groups/*.group` and their `*.accept-*` files, then renames the folder.
    fn import_group_files(&mut self) -> Result<(usize, usize), ProfileError> {
        let folder = self.dir.path().join(legacy::GROUPS_FOLDER);
        if !folder.is_dir() {
            return Ok((0, 0));
        }
        let legacy_error = |path: &Path, detail: String| ProfileError::Legacy {
            path: path.to_owned(),
            detail,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| legacy_error(&folder, e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let (mut groups, mut acceptances) = (0, 0);
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "group"))
        {
            let bytes = std::fs::read(path).map_err(|e| legacy_error(path, e.to_string()))?;
            let group =
                GroupDescriptor::decode(&bytes).map_err(|e| legacy_error(path, e.to_string()))?;
            let prefix = format!("{}.accept-", group.id());
            let accepted: Vec<Acceptance> = files
                .iter()
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .filter_map(|p| std::fs::read(p).ok())
                .filter_map(|bytes| Acceptance::decode(&bytes).ok())
                .filter(|a| a.verify(&group).is_ok())
                .collect();
            acceptances += accepted.len();
            groups += 1;
            self.save_group(&group, &accepted)?;
        }
        rename_migrated(&folder).map_err(|e| legacy_error(&folder, e.to_string()))?;
        Ok((groups, acceptances))
    }
}

/// The old session store becomes the profile database: checkpointed by opening it once (its
/// migrations run, the WAL is folded in on close), then renamed in place.
fn adopt_session_store(old: &Path, new: &Path) -> Result<(), ProfileError> {
    let store = store::Store::open(old)?;
    store.checkpoint()?;
    drop(store);
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", old.display()));
        if side.exists() {
            // After a clean close SQLite removes them; one left over holds nothing unapplied.
            std::fs::remove_file(&side).map_err(|e| ProfileError::Legacy {
                path: side.clone(),
                detail: e.to_string(),
            })?;
        }
    }
    std::fs::rename(old, new).map_err(|e| ProfileError::Legacy {
        path: old.to_owned(),
        detail: format!("cannot rename it to {}: {e}", new.display()),
    })
}

fn rename_migrated(path: &Path) -> std::io::Result<()> {
    let target = PathBuf::from(format!("{}{}", path.display(), legacy::MIGRATED_SUFFIX));
    std::fs::rename(path, target)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::address::Network;
    use lotus::PrivateKey;

    #[test]
    fn groups_and_acceptances_persist() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PrivateKey> = (1..=3u8)
            .map(|i| PrivateKey::from_bytes(&[i; 32]).unwrap())
            .collect();
        let group = GroupDescriptor::new(
            "vault",
            Network::Mainnet,
            keys.iter().map(|k| k.public_key()).collect(),
        )
        .unwrap();
        let mut profile = Profile::open(Some(dir.path().to_owned())).unwrap();
        let acceptance = Acceptance::sign(&group, &keys[1]).unwrap();
        let id = profile
            .save_group(&group, std::slice::from_ref(&acceptance))
            .unwrap();
        drop(profile);
        let profile = Profile::open(Some(dir.path().to_owned())).unwrap();
        let (loaded, acceptances) = profile.group(&id.to_string()[..8]).unwrap();
        assert_eq!(loaded, group);
        assert_eq!(acceptances, vec![acceptance]);
        assert!(matches!(
            profile.group("ffff"),
            Err(ProfileError::UnknownGroup(_))
        ));
        assert!(matches!(
            profile.group(""),
            Err(ProfileError::UnknownGroup(_))
        ));
        profile.store().verify_audit().unwrap();
        assert!(dir.path().join(crate::data_dir::DATABASE_FILE).is_file());
    }
}
