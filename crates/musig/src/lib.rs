//! lotus-sdk MuSig2.
