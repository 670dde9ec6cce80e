//! Broadcast failover: after aggregation every participant arms one deadline per priority
//! slot. Slot k's holder broadcasts at T0 + k·timeout unless a broadcast was already observed
//! (the transaction seen on chain or in the mempool, or a verified receipt). Everyone runs the
//! same schedule, so a silent coordinator is replaced without any extra message, and
//! re-broadcasting the same signed transaction is harmless.

/// Milliseconds on the protocol's injected clock.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverEvent {
    /// This participant holds `slot` and should broadcast now.
    ShouldBroadcast { slot: usize },
    /// The holder of `slot` let its deadline pass without a broadcast being observed.
    CoordinatorFailed { slot: usize, member: u16 },
    /// Every slot's deadline passed with no broadcast observed.
    FailoverExhausted,
    /// A broadcast of the transaction was observed; the schedule stops.
    BroadcastConfirmed { txid: [u8; 32] },
}

/// One broadcast slot of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub member: u16,
    pub starts_ms: Millis,
    pub fails_ms: Millis,
    /// Its deadline passed without a broadcast being observed.
    pub failed: bool,
}

/// One participant's view of the schedule.
#[derive(Debug, Clone)]
pub struct Failover {
    priority: Vec<u16>,
    me: u16,
    start: Millis,
    timeout: Millis,
    /// How many top slots broadcast at T0 in parallel (1 = strictly one at a time).
    parallel: usize,
    /// Slots whose deadline has been processed.
    slots_done: usize,
    told_to_broadcast: bool,
    finished: bool,
}

impl Failover {
    pub fn new(
        priority: Vec<u16>,
        me: u16,
        start: Millis,
        timeout: Millis,
        parallel: usize,
    ) -> Self {
        Self {
            priority,
            me,
            start,
            timeout: timeout.max(1),
            parallel: parallel.max(1),
            slots_done: 0,
            told_to_broadcast: false,
            finished: false,
        }
    }

    /// This participant's slot.
    pub fn my_slot(&self) -> Option<usize> {
        self.priority.iter().position(|&m| m == self.me)
    }

    /// When slot k's holder is due to broadcast: T0 for the parallel top slots, else
    /// T0 + (k − parallel + 1)·timeout.
    pub fn slot_start(&self, slot: usize) -> Millis {
        let offset = (slot + 1).saturating_sub(self.parallel) as u64;
        self.start
            .saturating_add(offset.saturating_mul(self.timeout))
    }

    /// The slot currently expected to broadcast (the last one whose start has passed).
    pub fn current_slot(&self, now: Millis) -> usize {
        (0..self.priority.len())
            .rev()
            .find(|&k| self.slot_start(k) <= now)
            .unwrap_or(0)
    }

    /// Every slot: its member, when it is due to broadcast, and when it counts as failed.
    pub fn schedule(&self) -> Vec<Slot> {
        (0..self.priority.len())
            .map(|k| Slot {
                member: self.priority[k],
                starts_ms: self.slot_start(k),
                fails_ms: self.deadline_of(k),
                failed: k < self.slots_done,
            })
            .collect()
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next instant `poll` has something to do, for the driver's timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.finished {
            return None;
        }
        if !self.told_to_broadcast {
            if let Some(slot) = self.my_slot() {
                return Some(self.slot_start(slot).min(self.deadline_of(self.slots_done)));
            }
        }
        Some(self.deadline_of(self.slots_done))
    }

    /// Slot k has failed when its holder had a full timeout without a broadcast observed.
    fn deadline_of(&self, slot: usize) -> Millis {
        self.slot_start(slot).saturating_add(self.timeout)
    }

    /// Advances to `now`, returning what happened since the last call.
    pub fn poll(&mut self, now: Millis) -> Vec<FailoverEvent> {
        let mut events = Vec::new();
        if self.finished {
            return events;
        }
        while self.slots_done < self.priority.len() && self.deadline_of(self.slots_done) <= now {
            let slot = self.slots_done;
            events.push(FailoverEvent::CoordinatorFailed {
                slot,
                member: self.priority[slot],
            });
            self.slots_done += 1;
        }
        // Even if our own slot has already run out (we were away), a late broadcast of the
        // same transaction is harmless and may still help.
        if !self.told_to_broadcast {
            if let Some(slot) = self.my_slot() {
                if self.slot_start(slot) <= now {
                    self.told_to_broadcast = true;
                    events.push(FailoverEvent::ShouldBroadcast { slot });
                }
            }
        }
        if self.slots_done == self.priority.len() {
            self.finished = true;
            events.push(FailoverEvent::FailoverExhausted);
        }
        events
    }

    /// A broadcast was observed (chain backend or a verified receipt): stop the schedule.
    pub fn observe_broadcast(&mut self, txid: [u8; 32]) -> Option<FailoverEvent> {
        if self.finished {
            return None;
        }
        self.finished = true;
        Some(FailoverEvent::BroadcastConfirmed { txid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_000;

    /// Every participant of a 4-member group, with the coordinator list [2, 0, 3, 1].
    fn schedules() -> Vec<Failover> {
        (0..4)
            .map(|me| Failover::new(vec![2, 0, 3, 1], me, 10_000, T, 1))
            .collect()
    }

    #[test]
    fn k_silent_coordinators_hand_over_in_order() {
        for silent in 0..4usize {
            let mut all = schedules();
            let mut broadcast_by = None;
            let mut now = 10_000;
            'run: while now <= 10_000 + 5 * T {
                for f in all.iter_mut() {
                    for event in f.poll(now) {
                        if let FailoverEvent::ShouldBroadcast { slot } = event {
                            if slot >= silent {
                                broadcast_by = Some(slot);
                                break 'run;
                            }
                        }
                    }
                }
                now += T / 4;
            }
            let slot = broadcast_by.expect("someone broadcasts");
            assert_eq!(
                slot, silent,
                "slot {silent} takes over after {silent} silent coordinators"
            );
            // Everyone observes it and stops.
            for f in all.iter_mut() {
                assert!(matches!(
                    f.observe_broadcast([7; 32]),
                    Some(FailoverEvent::BroadcastConfirmed { .. })
                ));
                assert!(f.poll(now + 100 * T).is_empty());
            }
        }
    }

    #[test]
    fn all_silent_exhausts_with_one_failure_per_slot() {
        let mut f = Failover::new(vec![1, 0, 2], 0, 0, T, 1);
        let mut events = Vec::new();
        let mut now = 0;
        while !f.is_finished() {
            now = f.next_deadline().expect("a deadline while running");
            events.extend(f.poll(now));
        }
        assert_eq!(
            events,
            vec![
                FailoverEvent::CoordinatorFailed { slot: 0, member: 1 },
                FailoverEvent::ShouldBroadcast { slot: 1 },
                FailoverEvent::CoordinatorFailed { slot: 1, member: 0 },
                FailoverEvent::CoordinatorFailed { slot: 2, member: 2 },
                FailoverEvent::FailoverExhausted,
            ]
        );
        assert_eq!(now, 3 * T);
    }

    #[test]
    fn parallel_top_slots_broadcast_at_once() {
        let starts: Vec<Millis> = (0..4)
            .map(|k| Failover::new(vec![0, 1, 2, 3], 0, 0, T, 2).slot_start(k))
            .collect();
        assert_eq!(starts, vec![0, 0, T, 2 * T]);
        let mut backup = Failover::new(vec![0, 1, 2, 3], 1, 0, T, 2);
        assert_eq!(
            backup.poll(0),
            vec![FailoverEvent::ShouldBroadcast { slot: 1 }]
        );
    }
}
