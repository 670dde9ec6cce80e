//! Building blocks the simulator's drivers and other crates' tests share: a member's protocol
//! node, and a spend of a group's own outputs.

use lotus::hash::sha256;
use lotus::script::Script;
use lotus::secp256k1::PublicKey;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use protocol::group::GroupDescriptor;
use protocol::node::{Node, NodeConfig};

/// A protocol node for `key`, already a member of `group`.
pub fn member_node(key: &PublicKey, group: &GroupDescriptor) -> Node {
    member_node_with(key, group, NodeConfig::default())
}

/// The same with a chosen configuration.
pub fn member_node_with(key: &PublicKey, group: &GroupDescriptor, config: NodeConfig) -> Node {
    let mut node = Node::new(*key, config);
    node.add_group(group.clone())
        .expect("the key is a member of the group");
    node
}

/// Spends two 10-XPI outputs of the group (outpoints derived from `tag`, so different tags give
/// different transactions): 15 XPI to an outside P2PKH, the rest back to the group less a fee.
pub fn two_input_spend(group: &GroupDescriptor, tag: &[u8]) -> (Transaction, Vec<TxOut>) {
    let script = group.script_pubkey().expect("a valid group has a script");
    let inputs = (0..2u8)
        .map(|i| TxIn {
            prev_out: OutPoint::new(TxId(sha256(&[tag, &[i]].concat())), 0),
            script_sig: Script::new(),
            sequence: TxIn::SEQUENCE_FINAL,
        })
        .collect();
    let spent = vec![TxOut::new(10_000_000, script.clone()); 2];
    let outputs = vec![
        TxOut::new(15_000_000, Script::p2pkh(&lotus::hash::hash160(tag))),
        TxOut::new(4_990_000, script),
    ];
    (
        Transaction {
            version: 2,
            inputs,
            outputs,
            lock_time: 0,
        },
        spent,
    )
}
