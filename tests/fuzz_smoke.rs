//! A short, seeded run of every fuzz target's body (the full runs use cargo-fuzz on nightly,
//! see fuzz/): valid encodings mutated byte by byte, truncated, extended and spliced. The seed
//! is printed on failure.

use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::group::GroupId;
use protocol::presence::Presence;

const ROUNDS: usize = 20_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => data.truncate(rng.below(data.len() + 1)),
            3 => data.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
            _ => {
                // Overwrite a 4-byte window (length fields) with an extreme value.
                if data.len() >= 4 {
                    let i = rng.below(data.len() - 3);
                    let v = [0u32, 1, 0xFFFF, u32::MAX][rng.below(4)];
                    data[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    data
}

fn run(name: &str, seeds: &[Vec<u8>], target: fn(&[u8])) {
    let seed = 0x5EED_0000 + name.len() as u64;
    let mut rng = Rng(seed);
    for round in 0..ROUNDS {
        let data = mutate(&mut rng, &seeds[round % seeds.len()]);
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(
            outcome.is_ok(),
            "fuzz target {name} failed at round {round} (rng seed {seed:#x}) on {}",
            hex::encode(&data)
        );
    }
}

fn key() -> lotus::PrivateKey {
    lotus::PrivateKey::from_bytes(&[7; 32]).unwrap()
}

#[test]
fn envelope_and_proposal_decoders_survive_mutations() {
    let envelopes: Vec<Vec<u8>> = MessageKind::ALL
        .iter()
        .map(|kind| {
            let header = Header::new(*kind, GroupId([1; 32]), [2; 32], [3; 32], 1, 0, 1_000);
            Envelope::sign(header, vec![9; 40], &key()).encode()
        })
        .collect();
    run("envelope", &envelopes, protocol::fuzzing::envelope);
    run("proposal", &envelopes, protocol::fuzzing::proposal);
}

#[test]
fn presence_records_survive_mutations() {
    let records = vec![
        Presence::sign(
            &key(),
            vec![0; 38],
            vec![b"/ip4/1.2.3.4/tcp/5".to_vec()],
            1,
            9,
        )
        .encode(),
        Presence::sign(&key(), vec![], vec![], 0, 0).encode(),
    ];
    run("presence", &records, protocol::fuzzing::presence);
}

#[test]
fn direct_messages_survive_mutations() {
    use net::wire::{Request, Response};
    let messages = vec![
        Request::Hello {
            presence: vec![1; 30],
        }
        .encode(),
        Request::Envelope(vec![2; 50]).encode(),
        Response::Hello {
            presence: vec![3; 10],
            members: vec![vec![4; 5]; 3],
        }
        .encode(),
        Response::Refused("busy".into()).encode(),
    ];
    run("direct_message", &messages, net::wire::fuzz_decode);
}

#[test]
fn control_requests_survive_mutations() {
    let requests: Vec<Vec<u8>> = [
        r#"{"command":"session-approve","session":"ab","digest":"cd"}"#,
        r#"{"command":"session-propose","group":"g","pay":["x:1"],"expires_minutes":5}"#,
        r#"{"command":"peers"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run("control_request", &requests, engine::control::fuzz_decode);
}
