//! A group's backup file: its invite (the member list and rules, no secret) with a header
//! that says what it is and how to restore it. An n-of-n group can only be rebuilt from every
//! member's key *and* this list, so each member keeps one.

use std::io::Write;
use std::path::{Path, PathBuf};

use protocol::group::{GroupDescriptor, INVITE_PREFIX};
use serde::Serialize;
use ts_rs::TS;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
/// A file the app saved for the person (a group backup, an audit log export).
pub struct SavedFileView {
    /// Where the file was saved.
    pub path: String,
    #[ts(type = "number")]
    pub saved_at_ms: u64,
}

/// The file's text.
pub fn contents(group: &GroupDescriptor) -> String {
    format!(
        "# Lotus Cosigner group backup: {name}\n\
         # Fingerprint {fingerprint} · {members} members · {network}\n\
         # No secret is in this file. Rebuilding the group needs it AND every member's key\n\
         # (each member's recovery phrase). To restore: Lotus Cosigner → Groups → paste the\n\
         # line below into \"Join a group\", or `lotus-cosigner group accept <line>`.\n\
         {invite}\n",
        name = group.name,
        fingerprint = group.fingerprint(),
        members = group.members.len(),
        network = crate::group_wallet::network_name(group.network),
        invite = group.invite(),
    )
}

/// The invite in a pasted text: the line that is one (a backup file), or the whole text.
pub fn invite_in(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with(INVITE_PREFIX))
        .unwrap_or(text.trim())
}

/// Writes the backup into `folder` under a name of its own (never over another file) and
/// answers its path.
pub fn write(folder: &Path, group: &GroupDescriptor) -> std::io::Result<PathBuf> {
    let name: String = group
        .name
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let stem = format!(
        "lotus-cosigner-group-{}-{}",
        name.trim_matches('-'),
        group.fingerprint().replace([' ', '-'], "")
    );
    write_new(folder, &stem, "txt", contents(group).as_bytes())
}

/// Writes `bytes` to `<stem>.<extension>` in `folder`, or `<stem>-2.<extension>` and so on:
/// never over an existing file. Synced before it answers.
pub fn write_new(
    folder: &Path,
    stem: &str,
    extension: &str,
    bytes: &[u8],
) -> std::io::Result<PathBuf> {
    for n in 1..1000 {
        let file = if n == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{n}.{extension}")
        };
        let path = folder.join(file);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut out) => {
                out.write_all(bytes)?;
                out.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "999 files named {stem} exist already"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupDescriptor {
        let key = |b| {
            lotus::PrivateKey::from_bytes(&[b; 32])
                .unwrap()
                .public_key()
        };
        GroupDescriptor::new(
            "Till / shop",
            lotus::address::Network::Regtest,
            vec![key(1), key(2)],
        )
        .unwrap()
    }

    #[test]
    fn a_backup_file_restores_the_same_group_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), &group()).unwrap();
        let second = write(dir.path(), &group()).unwrap();
        assert_ne!(first, second);
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("lotus-cosigner-group-Till---shop-"),
            "{name}"
        );
        let text = std::fs::read_to_string(&first).unwrap();
        assert!(text.contains(&group().fingerprint()));
        let back = GroupDescriptor::from_invite(invite_in(&text)).unwrap();
        assert_eq!(back.id(), group().id());
        // A bare invite is its own invite.
        assert_eq!(invite_in(&group().invite()), group().invite());
    }
}
