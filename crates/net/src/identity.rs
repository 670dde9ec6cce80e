//! The network identity comes from the signer key: one backup restores both. The libp2p key is
//! an ed25519 key whose seed is a tagged hash of the signer's secret, so it reveals nothing about
//! the signer key, and peers learn which signer it speaks for only from a signed presence record.

use libp2p::identity::Keypair;
use lotus::PrivateKey;
use zeroize::Zeroizing;

/// The libp2p keypair of this signer.
pub fn network_keypair(signer: &PrivateKey) -> Keypair {
    let secret = signer.to_bytes();
    let mut seed = Zeroizing::new(lotus::hash::tagged_hash(
        "LotusCosigner/libp2p-key",
        &[secret.as_slice()],
    ));
    // `ed25519_from_bytes` zeroizes the buffer it is given; `seed` zeroizes itself too.
    Keypair::ed25519_from_bytes(&mut seed[..]).expect("any 32 bytes are an ed25519 seed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_key_is_a_stable_function_of_the_signer_key() {
        let a = PrivateKey::from_bytes(&[1; 32]).unwrap();
        let b = PrivateKey::from_bytes(&[2; 32]).unwrap();
        assert_eq!(
            network_keypair(&a).public().to_peer_id(),
            network_keypair(&a).public().to_peer_id()
        );
        assert_ne!(
            network_keypair(&a).public().to_peer_id(),
            network_keypair(&b).public().to_peer_id()
        );
    }
}
