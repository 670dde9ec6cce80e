//! A framed stdin/stdout link so a test harness can run the engine core in a child process,
//! feed it messages and time, and SIGKILL it between any two durable steps.
//!
//! Frames are `kind u8 | now_ms u64 | len u32 | payload` from the harness and
//! `kind u8 | len u32 | payload` from the engine.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lotus::secp256k1::PublicKey;
use lotus::tx::Transaction;
use tokio::sync::broadcast;

use super::chain::{ChainLink, LinkError};
use super::transport::Transport;
use super::Clock;

/// Harness → engine.
pub mod to_engine {
    pub const DELIVER: u8 = 1;
    pub const APPROVE: u8 = 2;
    pub const OBSERVED: u8 = 3;
    pub const TICK: u8 = 4;
    pub const ACK: u8 = 5;
}

/// Engine → harness.
pub mod to_harness {
    pub const SEND: u8 = 0x81;
    pub const DURABLE: u8 = 0x82;
    pub const REVIEW: u8 = 0x83;
    pub const BROADCAST: u8 = 0x84;
    pub const READY: u8 = 0x85;
    pub const IDLE: u8 = 0x86;
    pub const SIGNED: u8 = 0x87;
}

pub struct Frame {
    pub kind: u8,
    pub now_ms: u64,
    pub payload: Vec<u8>,
}

/// Largest frame either side accepts, so a garbled length never drives a huge allocation.
const MAX_FRAME: usize = 1 << 22;

/// Reads a big-endian u32 length (the last four bytes of `head`) and then that many bytes.
fn read_payload(input: &mut impl Read, head: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u32::from_be_bytes(head[head.len() - 4..].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    Ok(payload)
}

pub fn read_frame(input: &mut impl Read) -> std::io::Result<Frame> {
    let mut head = [0u8; 13];
    input.read_exact(&mut head)?;
    let payload = read_payload(input, &head)?;
    Ok(Frame {
        kind: head[0],
        now_ms: u64::from_be_bytes(head[1..9].try_into().expect("8 bytes")),
        payload,
    })
}

pub fn write_to_engine(
    output: &mut impl Write,
    kind: u8,
    now_ms: u64,
    payload: &[u8],
) -> std::io::Result<()> {
    output.write_all(&[kind])?;
    output.write_all(&now_ms.to_be_bytes())?;
    output.write_all(&(payload.len() as u32).to_be_bytes())?;
    output.write_all(payload)?;
    output.flush()
}

pub fn write_to_harness(output: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    output.write_all(&[kind])?;
    output.write_all(&(payload.len() as u32).to_be_bytes())?;
    output.write_all(payload)?;
    output.flush()
}

pub fn read_from_engine(input: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head)?;
    Ok((head[0], read_payload(input, &head)?))
}

/// Time as the harness last said it was.
#[derive(Clone, Default)]
pub struct HarnessClock(pub Arc<AtomicU64>);

impl Clock for HarnessClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sends go to stdout; the harness routes them to the other members.
#[derive(Clone)]
pub struct StdoutLink(pub Arc<Mutex<std::io::Stdout>>);

impl Transport for StdoutLink {
    fn send(&self, _to: &[PublicKey], bytes: &[u8]) {
        let mut out = self.0.lock().expect("stdout lock");
        // A closed pipe means the harness is gone; the process is about to be killed anyway.
        let _ = write_to_harness(&mut *out, to_harness::SEND, bytes);
    }
}

impl ChainLink for StdoutLink {
    fn submit(&self, tx: &Transaction) -> Result<(), LinkError> {
        let mut out = self.0.lock().expect("stdout lock");
        write_to_harness(&mut *out, to_harness::BROADCAST, &tx.encode())
            .map_err(|e| LinkError::Unreachable(e.to_string()))
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        // Observations arrive as OBSERVED frames instead.
        broadcast::channel(1).1
    }
}
