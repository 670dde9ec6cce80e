//! lotusd `ComputeMerkleRoot` (src/consensus/merkle.cpp), used for the txid, the SIGHASH_LOTUS
//! input/output/spent-output roots and block merkle roots.
//!
//! Unlike Bitcoin, an odd level is padded with a 32-byte zero hash, not by duplicating the last
//! node (which removes Bitcoin's CVE-2012-2459 ambiguity), and the tree height is part of what
//! gets committed to.

use crate::hash::Sha256dWriter;

/// A merkle root and the number of levels of its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MerkleRoot {
    pub root: [u8; 32],
    /// 0 for no leaves, 1 for a single leaf, +1 per level above.
    pub height: u8,
}

/// Root of `leaves`: no leaves → zero hash, height 0; otherwise parents are
/// SHA256d(left || right) and an odd level gets a zero hash appended.
pub fn merkle_root(leaves: &[[u8; 32]]) -> MerkleRoot {
    if leaves.is_empty() {
        return MerkleRoot {
            root: [0; 32],
            height: 0,
        };
    }
    let mut level = leaves.to_vec();
    let mut height: u8 = 1;
    while level.len() > 1 {
        // A level of n > 1 nodes has at most usize::BITS levels above it, so this never wraps.
        height = height.saturating_add(1);
        if level.len() % 2 == 1 {
            level.push([0; 32]);
        }
        level = level
            .chunks_exact(2)
            .map(|pair| {
                let mut w = Sha256dWriter::new();
                w.write(&pair[0]).write(&pair[1]);
                w.finish()
            })
            .collect();
    }
    MerkleRoot {
        root: level[0],
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d;

    fn node(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        sha256d(&[a.as_slice(), b.as_slice()].concat())
    }

    #[test]
    fn empty_single_and_padded_levels() {
        assert_eq!(
            merkle_root(&[]),
            MerkleRoot {
                root: [0; 32],
                height: 0
            }
        );
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        assert_eq!(merkle_root(&[a]), MerkleRoot { root: a, height: 1 });
        assert_eq!(
            merkle_root(&[a, b]),
            MerkleRoot {
                root: node(&a, &b),
                height: 2
            }
        );
        // Three leaves: the third is paired with a zero hash, not with itself.
        let want = node(&node(&a, &b), &node(&c, &[0; 32]));
        assert_eq!(
            merkle_root(&[a, b, c]),
            MerkleRoot {
                root: want,
                height: 3
            }
        );
        // Five leaves: 5 (height 1) -> 3 (2) -> 2 (3) -> 1 (4), each odd level padded first.
        assert_eq!(merkle_root(&[a, b, c, a, b]).height, 4);
    }
}
