//! The `lotus-cosigner` command line. Subcommands live in their own modules; `main.rs` only
//! parses arguments.

pub mod app_demo;
pub mod audit_cmd;
pub mod bench;
pub mod chain_args;
pub mod demo_cmd;
pub mod demo_kit;
pub mod devnet_cmd;
pub mod entry;
pub mod group_cmd;
pub mod key_cmd;
pub mod node_cmd;
pub mod output;
pub mod remote;
pub mod session_cmd;
pub mod sim_cmd;
pub mod vectors_cmd;
pub mod workload;
