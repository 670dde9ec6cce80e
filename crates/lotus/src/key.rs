//! The signer's private key: non-`Copy`, erased on drop, redacted in `Debug`.
//!
//! `secp256k1::SecretKey` is `Copy`, so it must never travel on its own; this wrapper is the
//! only type that holds a long-lived secret key in this workspace.

use secp256k1::PublicKey;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a private key must be a non-zero number below the curve order")]
    OutOfRange,
    #[error("a private key is 32 bytes, got {0}")]
    WrongLength(usize),
}

pub struct PrivateKey {
    secret: secp256k1::SecretKey,
    // Cached: deriving it is a full scalar multiplication, and signing needs it every time.
    public: PublicKey,
}

impl PrivateKey {
    /// Builds a key from 32 big-endian bytes (e.g. fresh CSPRNG output or the keychain).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let secret =
            secp256k1::SecretKey::from_secret_bytes(*bytes).map_err(|_| KeyError::OutOfRange)?;
        Ok(Self {
            public: PublicKey::from_secret_key(&secret),
            secret,
        })
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Self::from_bytes(array)
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The raw bytes, for the key store only; erased when the returned value drops.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_secret_bytes())
    }

    /// Borrow for libsecp256k1's constant-time operations. Callers must not copy it out.
    pub fn as_secp(&self) -> &secp256k1::SecretKey {
        &self.secret
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.secret.non_secure_erase();
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_range_is_checked() {
        let key = PrivateKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(<redacted>)");
        assert_eq!(
            PrivateKey::from_bytes(&[0u8; 32]).unwrap_err(),
            KeyError::OutOfRange
        );
        assert_eq!(
            PrivateKey::from_bytes(&[0xff; 32]).unwrap_err(),
            KeyError::OutOfRange
        );
        assert_eq!(
            PrivateKey::from_slice(&[1u8; 31]).unwrap_err(),
            KeyError::WrongLength(31)
        );
        assert_eq!(*key.to_bytes(), [7u8; 32]);
    }
}
