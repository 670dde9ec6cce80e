//! The engine core in a child process for the crash-injection harness
//! (crates/engine/tests/crash_injection.rs): framed messages and time on stdin, sends and
//! durable-step notices on stdout, and after each committed durable step it waits for the
//! harness, which may SIGKILL it right there. Test-only: the key comes from the environment.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use engine::runtime::core::Core;
use engine::runtime::stdio::{
    read_frame, to_engine, to_harness, write_to_harness, HarnessClock, StdoutLink,
};
use engine::runtime::EngineEvent;
use lotus::PrivateKey;
use protocol::group::GroupDescriptor;
use protocol::session::{Durable, Event};

/// Replayable salt shares for the harness: SHA256(seed || counter) blocks.
struct SeededEntropy {
    seed: u64,
    counter: u64,
}

impl protocol::Entropy for SeededEntropy {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.counter += 1;
            let block = lotus::hash::sha256(
                &[self.seed.to_be_bytes(), self.counter.to_be_bytes()].concat(),
            );
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

fn durable_notice(durable: &Durable) -> Vec<u8> {
    let (kind, session, attempt) = match durable {
        Durable::NonceReleased {
            session_id,
            attempt,
            ..
        } => (1u8, *session_id, *attempt),
        Durable::AttemptSigning {
            session_id,
            attempt,
            ..
        } => (2, *session_id, *attempt),
        Durable::AttemptClosed {
            session_id,
            attempt,
            ..
        } => (3, *session_id, *attempt),
        Durable::Message { session_id, .. } => (4, *session_id, 0),
        Durable::Signed { session_id, .. } => (5, *session_id, 0),
        Durable::SessionAccepted { session_id, .. } => (6, *session_id, 0),
        Durable::Rejected { session_id, .. } => (7, *session_id, 0),
    };
    let mut notice = vec![kind];
    notice.extend_from_slice(&session);
    notice.extend_from_slice(&attempt.to_be_bytes());
    notice
}

fn main() -> anyhow::Result<()> {
    let store_path = std::env::args()
        .nth(1)
        .context("usage: crash-signer STORE_PATH")?;
    let key_hex = std::env::var("CRASH_SIGNER_KEY").context("CRASH_SIGNER_KEY")?;
    let key = PrivateKey::from_slice(&hex::decode(key_hex)?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let group = GroupDescriptor::from_invite(
        &std::env::var("CRASH_SIGNER_GROUP").context("CRASH_SIGNER_GROUP")?,
    )?;
    let start_ms: u64 = std::env::var("CRASH_SIGNER_NOW")
        .context("CRASH_SIGNER_NOW")?
        .parse()?;

    let clock = HarnessClock::default();
    clock.0.store(start_ms, Ordering::SeqCst);
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let link = StdoutLink(stdout.clone());
    let (events, mut event_rx) = tokio::sync::broadcast::channel(4096);
    let store = store::Store::open(std::path::Path::new(&store_path)).context("open the store")?;
    let mut core = Core::new(
        key,
        store,
        Arc::new(link.clone()),
        Arc::new(link),
        events,
        Box::new(clock.clone()),
    );
    core.add_group(group)?;
    if let Ok(seed) = std::env::var("CRASH_SIGNER_SEED") {
        core.set_entropy(Box::new(SeededEntropy {
            seed: seed.parse()?,
            counter: 0,
        }));
    }

    let hook_out = stdout.clone();
    let hook_clock = clock.clone();
    core.set_persist_hook(Box::new(move |durable| {
        {
            let mut out = hook_out.lock().expect("stdout lock");
            let _ = write_to_harness(&mut *out, to_harness::DURABLE, &durable_notice(durable));
        }
        // The harness answers ACK to continue — or kills us here, between two durable steps.
        match read_frame(&mut std::io::stdin().lock()) {
            Ok(frame) if frame.kind == to_engine::ACK => {
                hook_clock.0.store(frame.now_ms, Ordering::SeqCst)
            }
            _ => std::process::exit(3),
        }
    }));

    core.restore()?;
    let report = |rx: &mut tokio::sync::broadcast::Receiver<EngineEvent>| {
        while let Ok(event) = rx.try_recv() {
            let mut out = stdout.lock().expect("stdout lock");
            match event {
                EngineEvent::Session {
                    session_id,
                    event: Event::ReviewReady { review },
                } => {
                    let mut payload = session_id.0.to_vec();
                    payload.extend_from_slice(&review.digest);
                    let _ = write_to_harness(&mut *out, to_harness::REVIEW, &payload);
                }
                EngineEvent::Session {
                    session_id,
                    event: Event::Signed { .. },
                } => {
                    let _ = write_to_harness(&mut *out, to_harness::SIGNED, &session_id.0);
                }
                _ => {}
            }
        }
    };
    report(&mut event_rx);
    write_to_harness(
        &mut *stdout.lock().expect("stdout lock"),
        to_harness::READY,
        &[],
    )?;

    loop {
        let frame = match read_frame(&mut std::io::stdin().lock()) {
            Ok(frame) => frame,
            Err(_) => return Ok(()), // the harness closed our stdin: done
        };
        clock.0.store(frame.now_ms, Ordering::SeqCst);
        match frame.kind {
            // One pipe from the harness: one connection, as far as budgets go.
            to_engine::DELIVER => {
                let _ = core.receive(&frame.payload, protocol::node::Peer(0));
            }
            to_engine::APPROVE if frame.payload.len() == 64 => {
                let session: [u8; 32] = frame.payload[..32].try_into()?;
                let digest: [u8; 32] = frame.payload[32..].try_into()?;
                // A stale approval (session already closed) is not an error for the harness.
                let _ = core.approve(&session, &digest);
            }
            to_engine::OBSERVED if frame.payload.len() == 32 => {
                core.broadcast_observed(&frame.payload[..].try_into()?)
            }
            to_engine::TICK => core.tick(),
            other => anyhow::bail!("unexpected frame kind {other}"),
        }
        report(&mut event_rx);
        let mut out = stdout.lock().expect("stdout lock");
        write_to_harness(&mut *out, to_harness::IDLE, &[])?;
        out.flush()?;
    }
}
