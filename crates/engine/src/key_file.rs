//! The explicit alternative to the OS keychain for headless machines: the signer key in a file,
//! encrypted under a passphrase (Argon2id → XChaCha20-Poly1305).
//!
//! File layout (all fixed-size, 0600): magic "LCKEY\x01" | m_cost KiB (u32 BE) | t_cost (u32 BE)
//! | p_cost (u32 BE) | salt (16) | nonce (24) | ciphertext of the 32-byte key + tag (48).
//! The KDF parameters travel in the file so they can be raised later without breaking old files;
//! the header is authenticated as associated data, so lowering them in place fails to decrypt.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use lotus::PrivateKey;
use zeroize::Zeroizing;

const MAGIC: &[u8; 6] = b"LCKEY\x01";
const HEADER_LEN: usize = 6 + 4 * 3 + 16 + 24;
const FILE_LEN: usize = HEADER_LEN + 32 + 16;

/// Argon2id cost: 64 MiB, 3 passes — about half a second on a laptop core, deliberately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for KdfCost {
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("no key file at {0}")]
    Missing(PathBuf),
    #[error("a key file already exists at {0}; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("wrong passphrase, or the key file was modified")]
    WrongPassphrase,
    #[error("{0} is not a Lotus Cosigner key file (damaged or another format)")]
    NotAKeyFile(PathBuf),
    #[error("the passphrase must be at least 12 characters")]
    WeakPassphrase,
    #[error("key file parameters are unusable: {0}")]
    Parameters(String),
    #[error("cannot read or write the key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the OS random number generator failed: {0}")]
    Randomness(String),
}

fn derive_key(
    passphrase: &str,
    salt: &[u8; 16],
    cost: KdfCost,
) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, Some(32))
        .map_err(|e| KeyFileError::Parameters(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeyFileError::Parameters(e.to_string()))?;
    Ok(key)
}

fn header(cost: KdfCost, salt: &[u8; 16], nonce: &[u8; 24]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&cost.memory_kib.to_be_bytes());
    h.extend_from_slice(&cost.passes.to_be_bytes());
    h.extend_from_slice(&cost.lanes.to_be_bytes());
    h.extend_from_slice(salt);
    h.extend_from_slice(nonce);
    h
}

/// Encrypts `key` into a new file (never overwriting one).
pub fn write(
    path: &Path,
    key: &PrivateKey,
    passphrase: &str,
    cost: KdfCost,
) -> Result<(), KeyFileError> {
    if passphrase.chars().count() < 12 {
        return Err(KeyFileError::WeakPassphrase);
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| KeyFileError::Randomness(e.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|e| KeyFileError::Randomness(e.to_string()))?;
    let wrapping = derive_key(passphrase, &salt, cost)?;
    let cipher = XChaCha20Poly1305::new(wrapping.as_ref().into());
    let aad = header(cost, &salt, &nonce);
    let secret = key.to_bytes();
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: secret.as_ref(),
                aad: &aad,
            },
        )
        .map_err(|_| KeyFileError::Parameters("encryption failed".into()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::Exists(path.to_owned()),
        _ => KeyFileError::Io(e),
    })?;
    file.write_all(&aad)?;
    file.write_all(&ciphertext)?;
    file.sync_all()?;
    Ok(())
}

/// Decrypts the key; a wrong passphrase and a modified file are the same error on purpose.
/// Engine-internal: callers open a [`crate::custody::Custody`] instead.
pub(crate) fn read(path: &Path, passphrase: &str) -> Result<PrivateKey, KeyFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing(path.to_owned()))
        }
        Err(e) => return Err(e.into()),
    };
    if bytes.len() != FILE_LEN || &bytes[..6] != MAGIC {
        return Err(KeyFileError::NotAKeyFile(path.to_owned()));
    }
    let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let cost = KdfCost {
        memory_kib: u32_at(6),
        passes: u32_at(10),
        lanes: u32_at(14),
    };
    // Refuse absurd parameters from a damaged file instead of allocating gigabytes.
    if cost.memory_kib > 4 * 1024 * 1024 || cost.passes > 64 || cost.lanes > 16 {
        return Err(KeyFileError::NotAKeyFile(path.to_owned()));
    }
    let salt: [u8; 16] = bytes[18..34].try_into().expect("16 bytes");
    let nonce: [u8; 24] = bytes[34..58].try_into().expect("24 bytes");
    let wrapping = derive_key(passphrase, &salt, cost)?;
    let cipher = XChaCha20Poly1305::new(wrapping.as_ref().into());
    let secret = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &bytes[HEADER_LEN..],
                    aad: &bytes[..HEADER_LEN],
                },
            )
            .map_err(|_| KeyFileError::WrongPassphrase)?,
    );
    PrivateKey::from_slice(&secret).map_err(|_| KeyFileError::NotAKeyFile(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small cost so tests stay fast; the format is the same.
    const TEST_COST: KdfCost = KdfCost {
        memory_kib: 256,
        passes: 1,
        lanes: 1,
    };

    #[test]
    fn roundtrip_wrong_passphrase_tamper_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.key");
        let key = PrivateKey::from_bytes(&[42; 32]).unwrap();
        assert!(matches!(
            write(&path, &key, "short", TEST_COST),
            Err(KeyFileError::WeakPassphrase)
        ));
        write(&path, &key, "correct horse battery", TEST_COST).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            read(&path, "correct horse battery").unwrap().public_key(),
            key.public_key()
        );
        assert!(matches!(
            read(&path, "correct horse batterz"),
            Err(KeyFileError::WrongPassphrase)
        ));
        assert!(matches!(
            write(&path, &key, "correct horse battery", TEST_COST),
            Err(KeyFileError::Exists(_))
        ));

        let original = std::fs::read(&path).unwrap();
        for i in 0..original.len() {
            let mut tampered = original.clone();
            tampered[i] ^= 1;
            std::fs::write(&path, &tampered).unwrap();
            assert!(
                read(&path, "correct horse battery").is_err(),
                "byte {i} flip must not decrypt"
            );
        }
        std::fs::write(&path, b"not a key file").unwrap();
        assert!(matches!(
            read(&path, "correct horse battery"),
            Err(KeyFileError::NotAKeyFile(_))
        ));
        assert!(matches!(
            read(&dir.path().join("none"), "x"),
            Err(KeyFileError::Missing(_))
        ));
    }
}
