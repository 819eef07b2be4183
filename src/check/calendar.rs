//! The checkers' own timer wheel: wake-ups filed by tick of a fixed grid,
//! so that the daemon's timer heap holds one timer for all of them.
//!
//! Every probe used to push two timers on the loop's heap (the probe's
//! deadline, then the next round) and cancel one; with a thousand checkers
//! a heap operation costs hundreds of instructions. Here filing a wake-up
//! appends to the bucket of its tick, and the loop timer is re-armed once
//! per tick that has anything filed, not per probe. Entries are never
//! removed when a checker re-files: the engine recognises stale ones when
//! their tick comes (see [`Entry`]). No clock and no I/O here: ticks in,
//! entries out.
//!
//! The ticks of the next [`WHEEL_TICKS`] (10 s of the engine's 10 ms grid,
//! more than the usual delay_loop plus connect_timeout) have a bucket each
//! in a ring, found by index and, for the earliest, by a bitmap; later
//! ticks wait in an ordered map and move into the ring as it turns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The grid's step. Idle checkers wake on the grid, so checkers due
/// within one tick start in the same loop turn and share the poller's
/// sleeps and wake-ups (one epoll_wait per batch instead of per probe). A
/// probe starts at most this much after its due time, far below
/// delay_loop's seconds.
pub const TICK: Duration = Duration::from_millis(10);
const TICK_NANOS: u64 = 10_000_000;
const _: () = assert!(TICK.as_nanos() == TICK_NANOS as u128);

/// Instants as nanoseconds since an origin (the engine's start), so that
/// deadlines compare and round to ticks in integer arithmetic, where
/// `Instant` arithmetic normalises seconds and nanoseconds each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    origin: Instant,
}

impl Grid {
    pub fn new(origin: Instant) -> Self {
        Grid { origin }
    }

    /// Nanoseconds from the origin to `at` (0 for anything before it).
    pub fn nanos(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.origin))
    }

    /// The instant `nanos` after the origin.
    pub fn instant(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }

    /// When `tick` falls.
    pub fn tick_instant(&self, tick: u64) -> Instant {
        self.instant(tick.saturating_mul(TICK_NANOS))
    }
}

/// The first tick at or after `nanos`.
pub fn ceil_tick(nanos: u64) -> u64 {
    nanos.div_ceil(TICK_NANOS)
}

/// The last tick at or before `nanos`.
pub fn floor_tick(nanos: u64) -> u64 {
    nanos / TICK_NANOS
}

/// Whole nanoseconds, saturating (u64 nanoseconds last 584 years).
pub fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// One filed wake-up: which checker slot, and the slot's generation when
/// filed. It is current only if the checker still has this slot and
/// generation and still waits for the tick it is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub index: u32,
    pub generation: u32,
}

/// Ticks with a bucket of their own in the ring.
pub const WHEEL_TICKS: u64 = 1024;

/// The most room (entries) a vector keeps when it goes back into the ring.
/// Buckets trade vectors with the caller at every take, so without a cap
/// the large vector of one burst (every checker due in one tick after the
/// daemon was stalled) would circulate through the ring for good, and
/// after a few bursts most of the 1024 buckets would hold one: megabytes
/// of RSS that never come back (tests/bench/host_check_stall_rss.sh).
/// With the cap the ring keeps at most 1024 x 32 entries of room (256 KiB);
/// a bucket that needs more (5,000 checkers at delay_loop 1 file about 100
/// entries per tick) grows again while it fills, a few reallocations.
const KEEP_CAPACITY: usize = 32;
const WORDS: usize = (WHEEL_TICKS / 64) as usize;
// The occupancy bitmap covers the ring exactly: slot / 64 < WORDS.
const _: () = assert!(WHEEL_TICKS % 64 == 0);

/// Buckets of entries by tick; see the module docs.
#[derive(Debug)]
pub struct Calendar {
    /// The bucket of tick `t` (from `cursor` to `cursor + WHEEL_TICKS - 1`)
    /// is `ring[t % WHEEL_TICKS]`.
    ring: Vec<Vec<Entry>>,
    /// Bit `t % WHEEL_TICKS` set while the ring's bucket of tick `t` holds entries.
    occupied: [u64; WORDS],
    /// Ticks from `cursor + WHEEL_TICKS` on.
    later: BTreeMap<u64, Vec<Entry>>,
    /// The earliest tick not taken out yet.
    cursor: u64,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            ring: (0..WHEEL_TICKS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            later: BTreeMap::new(),
            cursor: 0,
        }
    }
}

fn slot(tick: u64) -> usize {
    (tick % WHEEL_TICKS) as usize
}

impl Calendar {
    /// Files `entry` under `tick` (a tick already taken out counts as the
    /// earliest one left).
    #[inline]
    pub fn file(&mut self, tick: u64, entry: Entry) {
        let tick = tick.max(self.cursor);
        if tick - self.cursor >= WHEEL_TICKS {
            self.file_later(tick, entry);
            return;
        }
        let slot = slot(tick);
        if let Some(bucket) = self.ring.get_mut(slot) {
            bucket.push(entry);
            self.occupied[slot / 64] |= 1 << (slot % 64);
        }
    }

    #[cold]
    #[inline(never)]
    fn file_later(&mut self, tick: u64, entry: Entry) {
        self.later.entry(tick).or_default().push(entry);
    }

    /// The earliest tick with entries.
    pub fn first_tick(&self) -> Option<u64> {
        self.first_in_ring()
            .or_else(|| self.later.first_key_value().map(|(&tick, _)| tick))
    }

    /// The earliest occupied ring tick (all of them precede `later`).
    fn first_in_ring(&self) -> Option<u64> {
        let start = slot(self.cursor);
        let (word, bit) = (start / 64, start % 64);
        // From the cursor to the end of the ring, then around to it.
        let head = self.occupied[word] & (u64::MAX << bit);
        let found = if head != 0 {
            Some(word * 64 + head.trailing_zeros() as usize)
        } else {
            (1..=WORDS).find_map(|step| {
                let w = (word + step) % WORDS;
                let mut bits = self.occupied[w];
                if w == word {
                    bits &= !(u64::MAX << bit);
                }
                (bits != 0).then(|| w * 64 + bits.trailing_zeros() as usize)
            })
        }?;
        let ahead = (found + WHEEL_TICKS as usize - start) % WHEEL_TICKS as usize;
        Some(self.cursor + ahead as u64)
    }

    /// Takes out the earliest bucket if its tick is at most `last`: its
    /// entries are swapped into `out` (which must be empty; its capacity,
    /// cut to [`KEEP_CAPACITY`], goes to the ring), and its tick returned.
    /// Ticks up to the one returned (or up to `last` when none is) count as
    /// taken out.
    pub fn take_due(&mut self, last: u64, out: &mut Vec<Entry>) -> Option<u64> {
        let due = self.first_tick().filter(|&tick| tick <= last);
        let taken_through = due.unwrap_or(last.max(self.cursor.saturating_sub(1)));
        if let Some(tick) = due {
            if tick - self.cursor < WHEEL_TICKS {
                let slot = slot(tick);
                if let Some(bucket) = self.ring.get_mut(slot) {
                    out.clear();
                    out.shrink_to(KEEP_CAPACITY);
                    std::mem::swap(out, bucket);
                    self.occupied[slot / 64] &= !(1 << (slot % 64));
                }
            } else if let Some(bucket) = self.later.remove(&tick) {
                out.extend(bucket);
            }
        }
        self.advance(taken_through.saturating_add(1));
        due
    }

    /// Moves the cursor to `to` (every earlier tick is empty by now) and
    /// brings later ticks that now fit into the ring.
    fn advance(&mut self, to: u64) {
        if to <= self.cursor {
            return;
        }
        self.cursor = to;
        while let Some(entry) = self.later.first_entry() {
            let tick = *entry.key();
            if tick - self.cursor >= WHEEL_TICKS {
                break;
            }
            let entries = entry.remove();
            let slot = slot(tick);
            if let Some(bucket) = self.ring.get_mut(slot) {
                bucket.extend(entries);
                self.occupied[slot / 64] |= 1 << (slot % 64);
            }
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        for bucket in &mut self.ring {
            bucket.clear();
        }
        self.occupied = [0; WORDS];
        self.later.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.occupied.iter().all(|&w| w == 0) && self.later.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn e(index: u32) -> Entry {
        Entry {
            index,
            generation: 0,
        }
    }

    /// Every bucket due through `last`, as (tick, entries).
    fn drain(calendar: &mut Calendar, last: u64) -> Vec<(u64, Vec<u32>)> {
        let mut out = Vec::new();
        let mut taken = Vec::new();
        while let Some(tick) = calendar.take_due(last, &mut out) {
            taken.push((tick, out.iter().map(|e| e.index).collect()));
            out.clear();
        }
        taken
    }

    #[test]
    fn ticks_round_both_ways() {
        let origin = Instant::now();
        let grid = Grid::new(origin);
        let at = |d: Duration| grid.nanos(origin + d);
        assert_eq!(ceil_tick(at(Duration::ZERO)), 0);
        assert_eq!(floor_tick(at(Duration::ZERO)), 0);
        assert_eq!(ceil_tick(at(20 * MS)), 2);
        assert_eq!(floor_tick(at(20 * MS)), 2);
        let just_after = 20 * MS + Duration::from_nanos(1);
        assert_eq!(ceil_tick(at(just_after)), 3);
        assert_eq!(floor_tick(at(just_after)), 2);
        assert_eq!(grid.tick_instant(3), origin + 30 * MS);
        assert_eq!(grid.instant(at(just_after)), origin + just_after);
        // Before the origin (cannot happen once started): 0.
        assert_eq!(Grid::new(origin + 5 * MS).nanos(origin), 0);
        assert_eq!(nanos(Duration::new(3, 7)), 3_000_000_007);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }

    /// Room held by the ring's buckets, in entries.
    fn ring_capacity(calendar: &Calendar) -> usize {
        calendar.ring.iter().map(Vec::capacity).sum()
    }

    #[test]
    fn bursts_do_not_leave_their_room_in_the_ring() {
        // As the engine does: one vector, drained and handed back each take.
        let mut calendar = Calendar::default();
        let mut out = Vec::new();
        let mut tick = 0;
        let steady = |calendar: &mut Calendar, out: &mut Vec<Entry>, tick: &mut u64| {
            // Three revolutions of the ring with a few entries per tick.
            for _ in 0..3 * WHEEL_TICKS {
                *tick += 1;
                for i in 0..4 {
                    calendar.file(*tick + 100, e(i));
                }
                while calendar.take_due(*tick, out).is_some() {
                    out.clear();
                }
            }
        };
        steady(&mut calendar, &mut out, &mut tick);
        let before = ring_capacity(&calendar);
        // Ten bursts: 5,000 checkers due in one tick, each time.
        for _ in 0..10 {
            for i in 0..5000 {
                calendar.file(tick + 1, e(i));
            }
            steady(&mut calendar, &mut out, &mut tick);
        }
        // Each burst may leave one vector of KEEP_CAPACITY behind, never
        // its own room (thousands of entries).
        let after = ring_capacity(&calendar);
        assert!(
            after <= before + 10 * KEEP_CAPACITY,
            "ring room grew from {before} to {after} entries"
        );
        let largest = calendar.ring.iter().map(Vec::capacity).max();
        assert!(largest <= Some(KEEP_CAPACITY), "{largest:?}");
        assert!(out.capacity() <= 5000 + KEEP_CAPACITY);
    }

    #[test]
    fn buckets_come_out_in_tick_order_with_filing_order_kept() {
        let mut calendar = Calendar::default();
        calendar.file(7, e(1));
        calendar.file(3, e(2));
        calendar.file(7, e(3));
        calendar.file(5, e(4));
        assert_eq!(calendar.first_tick(), Some(3));
        assert_eq!(drain(&mut calendar, 2), vec![]);
        assert_eq!(drain(&mut calendar, 6), vec![(3, vec![2]), (5, vec![4])]);
        assert_eq!(calendar.first_tick(), Some(7));
        assert_eq!(drain(&mut calendar, 7), vec![(7, vec![1, 3])]);
        assert!(calendar.is_empty());
        assert_eq!(calendar.first_tick(), None);
        // A tick already taken out files as the earliest one left.
        calendar.file(2, e(5));
        assert_eq!(calendar.first_tick(), Some(8));
        calendar.clear();
        assert!(calendar.is_empty());
    }

    #[test]
    fn far_ticks_wait_beyond_the_ring_and_keep_their_order() {
        let mut calendar = Calendar::default();
        let far = 3 * WHEEL_TICKS + 5;
        calendar.file(far, e(1));
        calendar.file(far + 1, e(2));
        calendar.file(WHEEL_TICKS - 1, e(3));
        assert_eq!(calendar.first_tick(), Some(WHEEL_TICKS - 1));
        assert_eq!(
            drain(&mut calendar, WHEEL_TICKS - 1),
            vec![(WHEEL_TICKS - 1, vec![3])]
        );
        assert_eq!(calendar.first_tick(), Some(far));
        // The ring turns past the far ticks' slots without taking them early.
        assert_eq!(drain(&mut calendar, far - 1), vec![]);
        calendar.file(far, e(4));
        assert_eq!(
            drain(&mut calendar, far + 10),
            vec![(far, vec![1, 4]), (far + 1, vec![2])]
        );
        assert!(calendar.is_empty());
    }

    #[test]
    fn the_ring_wraps_around() {
        let mut calendar = Calendar::default();
        for round in 0..5 * WHEEL_TICKS / 100 {
            let tick = round * 100 + 99;
            calendar.file(tick, e(round as u32));
            calendar.file(tick + 50, e(round as u32 + 1000));
            assert_eq!(calendar.first_tick(), Some(tick));
            assert_eq!(
                drain(&mut calendar, tick + 60),
                vec![
                    (tick, vec![round as u32]),
                    (tick + 50, vec![round as u32 + 1000])
                ]
            );
        }
        assert!(calendar.is_empty());
    }
}
