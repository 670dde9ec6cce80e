//! One person's installation as the command line and the app see it: the data folder, the
//! session store inside it, and the groups this signer belongs to.

use std::path::{Path, PathBuf};

use protocol::group::{Acceptance, GroupDescriptor, GroupError, GroupId};

use crate::data_dir::{DataDir, DataDirError};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("cannot read or write group files in {path}: {source}")]
    Groups {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no group {0} in this profile")]
    UnknownGroup(String),
}

pub struct Profile {
    dir: DataDir,
    store: store::Store,
}

impl Profile {
    /// Opens (creating if needed) the profile; `None` is the platform data folder.
    pub fn open(data_dir: Option<PathBuf>) -> Result<Self, ProfileError> {
        let dir = DataDir::open(data_dir)?;
        let store = store::Store::open(dir.path().join("sessions.sqlite3"))?;
        Ok(Self { dir, store })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> &store::Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut store::Store {
        &mut self.store
    }

    fn groups_dir(&self) -> PathBuf {
        self.dir.path().join("groups")
    }

    /// Saves a group (its canonical descriptor, named by group id) and any acceptances.
    pub fn save_group(
        &self,
        group: &GroupDescriptor,
        acceptances: &[Acceptance],
    ) -> Result<GroupId, ProfileError> {
        let dir = self.groups_dir();
        let io = |source| ProfileError::Groups {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let id = group.id();
        write_atomically(&dir.join(format!("{id}.group")), &group.encode()).map_err(io)?;
        for acceptance in acceptances {
            let path = dir.join(format!("{id}.accept-{}", acceptance.member));
            write_atomically(&path, &acceptance.encode()).map_err(io)?;
        }
        Ok(id)
    }

    /// Every group saved in this profile, with its verified acceptances.
    pub fn groups(&self) -> Result<Vec<(GroupDescriptor, Vec<Acceptance>)>, ProfileError> {
        let dir = self.groups_dir();
        let io = |source| ProfileError::Groups {
            path: dir.clone(),
            source,
        };
        let mut groups = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(groups),
            Err(e) => return Err(io(e)),
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "group"))
        {
            let group = GroupDescriptor::decode(&std::fs::read(path).map_err(io)?)?;
            let prefix = format!("{}.accept-", group.id());
            let acceptances = files
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
            groups.push((group, acceptances));
        }
        Ok(groups)
    }

    /// A group by id or by an unambiguous hex prefix of it.
    pub fn group(
        &self,
        id_prefix: &str,
    ) -> Result<(GroupDescriptor, Vec<Acceptance>), ProfileError> {
        let mut matches: Vec<_> = self
            .groups()?
            .into_iter()
            .filter(|(g, _)| g.id().to_string().starts_with(id_prefix))
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            _ => Err(ProfileError::UnknownGroup(id_prefix.to_string())),
        }
    }
}

/// Write to a temporary file, fsync, rename: a crash leaves the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
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
        let profile = Profile::open(Some(dir.path().to_owned())).unwrap();
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
        profile.store().verify_audit().unwrap();
    }
}
