use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MusigError {
    #[error("a MuSig2 group needs at least one key")]
    NoKeys,
    #[error("a MuSig2 group has at most {max} keys, got {got}")]
    TooManyKeys { max: usize, got: usize },
    #[error("the aggregated key is the point at infinity")]
    AggregateKeyInfinity,
    #[error("expected {expected} public nonces, got {got}")]
    NonceCount { expected: usize, got: usize },
    #[error("the aggregated nonce is the point at infinity")]
    NonceAggregateInfinity,
    #[error("signer index {index} is out of range for a group of {size}")]
    SignerIndex { index: usize, size: usize },
    #[error("the private key does not belong to signer {index}")]
    KeyMismatch { index: usize },
    #[error("expected {expected} partial signatures, got {got}")]
    PartialCount { expected: usize, got: usize },
    #[error("a public nonce is 66 bytes (two compressed points), got {0}")]
    PublicNonceLength(usize),
    #[error("a public nonce contains an invalid point")]
    PublicNoncePoint,
    #[error("a partial signature is 32 bytes, got {0}")]
    PartialLength(usize),
    #[error("a partial signature must be below the curve order")]
    PartialOutOfRange,
    #[error("the signature sum is zero; sign again with fresh nonces")]
    ZeroSignature,
    #[error("degenerate nonce or challenge (probability ~2^-256); sign again with fresh nonces")]
    Degenerate,
    #[error("the OS random number generator failed: {0}")]
    Randomness(String),
}
