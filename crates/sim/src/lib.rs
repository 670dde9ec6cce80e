//! Deterministic simulation of Lotus Cosigner nodes: the real `protocol` state machines over
//! a simulated network (latency, loss, duplication, reordering, partitions, clock skew), with
//! crashes at durable steps and Byzantine members. Every run is reproducible from its seed;
//! invariants (safety, nonce use, blame, liveness) are checked at the end and a violation
//! carries the command that replays it.

mod durable;
pub mod fixtures;
pub mod lossless;
pub mod report;
pub mod rng;
pub mod scenario;
mod world;

pub use report::Report;
pub use scenario::{Availability, Away, Byzantine, Partition, Scenario};

/// Runs one seeded scenario.
pub fn run(scenario: Scenario) -> Report {
    world::World::new(scenario).run()
}

/// Runs `seeds` consecutive seeds from `scenario.seed` and merges the reports.
pub fn run_seeds(scenario: &Scenario, seeds: u64) -> Report {
    let mut total = Report::default();
    for offset in 0..seeds {
        let mut s = scenario.clone();
        s.seed = scenario.seed + offset;
        total.merge(&run(s));
    }
    total
}
