//! Monotonic timer queue.
//!
//! A binary min-heap of `(deadline, sequence)` with lazy cancellation: each
//! armed timer owns a slot in a slab, and the heap entry names its slot and
//! sequence. Cancelling frees the slot at once (O(1)); the heap entry left
//! behind is recognised as stale when it surfaces and dropped then, and the
//! heap is rebuilt without stale entries whenever they outnumber the live
//! ones, so memory follows the number of armed timers, however many are
//! cancelled. Ties keep insertion order. Checkers re-arm one timer twice per
//! probe; a heap push is a few comparisons where a B-tree insert and remove
//! searched and shifted nodes (profiled: ~1,800 instructions per probe).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

/// Handle to one armed timer; stays unique for the life of its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    deadline: Instant,
    sequence: u64,
    slot: u32,
}

impl Ord for TimerId {
    fn cmp(&self, other: &Self) -> Ordering {
        // The sequence is unique, so the slot never decides.
        (self.deadline, self.sequence).cmp(&(other.deadline, other.sequence))
    }
}

impl PartialOrd for TimerId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl TimerId {
    /// When this timer fires (or would have fired, if cancelled).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[derive(Debug)]
struct Armed<K> {
    sequence: u64,
    key: K,
}

/// Timers keyed by caller data `K`, popped earliest first.
#[derive(Debug)]
pub struct TimerQueue<K> {
    heap: BinaryHeap<Reverse<TimerId>>,
    slots: Vec<Option<Armed<K>>>,
    free: Vec<u32>,
    live: usize,
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
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            next_sequence: 0,
        }
    }

    /// Arms a timer firing at `deadline` and carrying `key`.
    pub fn insert(&mut self, deadline: Instant, key: K) -> TimerId {
        let sequence = self.next_sequence;
        // A u64 sequence cannot wrap in practice (one timer per ns for 584 years).
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let armed = Some(Armed { sequence, key });
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(entry) = self.slots.get_mut(slot as usize) {
                    *entry = armed;
                }
                slot
            }
            None => {
                self.slots.push(armed);
                // More than 2^32 timers armed at once cannot happen: each
                // one belongs to a checker, instance or child.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let id = TimerId {
            deadline,
            sequence,
            slot,
        };
        self.heap.push(Reverse(id));
        self.live += 1;
        id
    }

    /// Disarms a timer; false if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        if self.take(id).is_none() {
            return false;
        }
        self.drop_stale_top();
        if self.heap.len() > 2 * self.live + 64 {
            let slots = &self.slots;
            self.heap.retain(|Reverse(entry)| is_armed(slots, entry));
        }
        true
    }

    /// The earliest armed deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        // The top is never stale (see `drop_stale_top`).
        self.heap.peek().map(|Reverse(id)| id.deadline)
    }

    /// Removes and returns the earliest timer whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, K)> {
        let &Reverse(first) = self.heap.peek()?;
        if first.deadline > now {
            return None;
        }
        self.heap.pop();
        let key = self.take(first);
        self.drop_stale_top();
        key.map(|key| (first, key))
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Frees `id`'s slot if it still holds that timer.
    fn take(&mut self, id: TimerId) -> Option<K> {
        let entry = self.slots.get_mut(id.slot as usize)?;
        if entry.as_ref()?.sequence != id.sequence {
            return None;
        }
        let armed = entry.take()?;
        self.free.push(id.slot);
        self.live -= 1;
        Some(armed.key)
    }

    /// Keeps the invariant that the heap's top is an armed timer.
    fn drop_stale_top(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if is_armed(&self.slots, top) {
                return;
            }
            self.heap.pop();
        }
    }
}

fn is_armed<K>(slots: &[Option<Armed<K>>], id: &TimerId) -> bool {
    slots
        .get(id.slot as usize)
        .and_then(Option::as_ref)
        .is_some_and(|armed| armed.sequence == id.sequence)
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

    #[test]
    fn stale_entries_are_purged_and_order_holds_under_churn() {
        let base = Instant::now();
        let mut queue = TimerQueue::new();
        // Like a checker: each of 100 timers is cancelled and re-armed
        // later many times; only the last arming of each may fire.
        let mut ids: Vec<TimerId> = (0..100u64).map(|k| queue.insert(base + ms(k), k)).collect();
        for round in 1..200u64 {
            for (k, id) in ids.iter_mut().enumerate() {
                assert!(queue.cancel(*id));
                *id = queue.insert(base + ms(round * 1000 + (k as u64 * 7919) % 1000), k as u64);
            }
            assert_eq!(queue.len(), 100);
            assert!(
                queue.heap.len() <= 2 * 100 + 64,
                "heap {}",
                queue.heap.len()
            );
        }
        let mut last = None;
        let mut fired = Vec::new();
        while let Some((id, key)) = queue.pop_expired(base + ms(1_000_000)) {
            assert!(last.map_or(true, |l| l <= id.deadline()), "out of order");
            last = Some(id.deadline());
            assert_eq!(ids[key as usize], id, "only the last arming fires");
            fired.push(key);
        }
        fired.sort_unstable();
        assert_eq!(fired, (0..100).collect::<Vec<_>>());
        assert!(queue.is_empty());
        assert_eq!(queue.next_deadline(), None);
    }

    #[test]
    fn next_deadline_skips_cancelled_earliest() {
        let base = Instant::now();
        let mut queue = TimerQueue::new();
        let a = queue.insert(base + ms(1), 1u64);
        let b = queue.insert(base + ms(2), 2u64);
        queue.insert(base + ms(3), 3u64);
        assert!(queue.cancel(b));
        assert!(queue.cancel(a));
        assert_eq!(queue.next_deadline(), Some(base + ms(3)));
        assert!(queue.pop_expired(base + ms(2)).is_none());
        assert_eq!(queue.pop_expired(base + ms(3)).map(|(_, k)| k), Some(3));
    }
}
