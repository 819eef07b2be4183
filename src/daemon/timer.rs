//! Monotonic timer queue.
//!
//! Timers live in a `BTreeMap` ordered by `(deadline, sequence)`: the earliest
//! deadline comes first and ties keep insertion order. A `TimerId` carries its
//! own key into the map, so cancelling removes the entry at once: nothing is
//! left behind, however many timers are cancelled.

use std::collections::BTreeMap;
use std::time::Instant;

/// Handle to one armed timer; stays unique for the life of its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    deadline: Instant,
    sequence: u64,
}

impl TimerId {
    /// When this timer fires (or would have fired, if cancelled).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Timers keyed by caller data `K`, popped earliest first.
#[derive(Debug)]
pub struct TimerQueue<K> {
    timers: BTreeMap<TimerId, K>,
    next_sequence: u64,
}

impl<K> Default for TimerQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> TimerQueue<K> {
    pub fn new() -> Self {
        TimerQueue {
            timers: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    /// Arms a timer firing at `deadline` and carrying `key`.
    pub fn insert(&mut self, deadline: Instant, key: K) -> TimerId {
        let id = TimerId {
            deadline,
            sequence: self.next_sequence,
        };
        // A u64 sequence cannot wrap in practice (one timer per ns for 584 years).
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.timers.insert(id, key);
        id
    }

    /// Disarms a timer; false if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        self.timers.remove(&id).is_some()
    }

    /// The earliest armed deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.keys().next().map(|id| id.deadline)
    }

    /// Removes and returns the earliest timer whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, K)> {
        let first = *self.timers.keys().next()?;
        if first.deadline > now {
            return None;
        }
        self.timers.remove(&first).map(|key| (first, key))
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.timers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pops_in_deadline_order_then_insertion_order() {
        let base = Instant::now();
        let mut queue = TimerQueue::new();
        queue.insert(base + ms(30), "c");
        queue.insert(base + ms(10), "a1");
        queue.insert(base + ms(20), "b");
        queue.insert(base + ms(10), "a2");
        assert_eq!(queue.next_deadline(), Some(base + ms(10)));
        let order: Vec<_> = std::iter::from_fn(|| queue.pop_expired(base + ms(100)))
            .map(|(_, key)| key)
            .collect();
        assert_eq!(order, ["a1", "a2", "b", "c"]);
        assert!(queue.is_empty());
        assert_eq!(queue.next_deadline(), None);
    }

    #[test]
    fn does_not_pop_future_timers() {
        let base = Instant::now();
        let mut queue = TimerQueue::new();
        let id = queue.insert(base + ms(10), 1u64);
        assert!(queue.pop_expired(base).is_none());
        assert!(queue.pop_expired(base + ms(9)).is_none());
        let (popped, key) = queue.pop_expired(base + ms(10)).expect("due at deadline");
        assert_eq!((popped, key), (id, 1));
        assert_eq!(popped.deadline(), base + ms(10));
    }

    #[test]
    fn cancel_removes_and_reports_once() {
        let base = Instant::now();
        let mut queue = TimerQueue::new();
        let early = queue.insert(base + ms(1), 1u64);
        let late = queue.insert(base + ms(2), 2u64);
        assert!(queue.cancel(early));
        assert!(!queue.cancel(early));
        assert_eq!(queue.next_deadline(), Some(base + ms(2)));
        assert_eq!(queue.pop_expired(base + ms(5)), Some((late, 2)));
        assert!(!queue.cancel(late), "a fired timer cannot be cancelled");
    }

    #[test]
    fn cancelled_timers_do_not_accumulate() {
        let base = Instant::now();
        let mut queue = TimerQueue::new();
        for round in 0..10_000u64 {
            let id = queue.insert(base + ms(round % 7), round);
            assert!(queue.cancel(id));
        }
        assert_eq!(queue.len(), 0);
    }
}
