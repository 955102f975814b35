//! One budget for the memory of every decode in the process.
//!
//! Each decode is capped on its own (a file of at most [`super::MAX_FILE_BYTES`], pixels of
//! at most [`super::MAX_DECODE_BYTES`]), but the engine decodes on one thread per core, and
//! eight threads of pictures near the caps would hold several gigabytes at once. So a decode
//! first reserves, from one budget shared by the whole process, what its header says it will
//! hold, and waits until that fits beside what the others hold. Waiting rather than failing:
//! a large picture is only slower, never refused for being unlucky in its neighbours. A
//! decode that needs more than the whole budget waits until it has the whole budget, and runs
//! alone.
//!
//! A decoded image keeps its share (its pixels' bytes) until it is dropped: a caller that kept
//! decoded images while it decoded more could wait for itself. The engine drops each one once
//! its model input and thumbnail are made, and no decode waits inside another.

use std::sync::{Condvar, Mutex, PoisonError};

/// The most bytes that all decodes of this process hold at once: with the model and the rest
/// of the program (about 200 MiB), eight threads decoding large pictures stay under 1 GiB.
pub const DECODE_BUDGET_BYTES: u64 = 640 * 1024 * 1024;

/// Bytes held by decodes now, and a signal for those waiting when some are given back.
static HELD: Mutex<u64> = Mutex::new(0);
static GIVEN_BACK: Condvar = Condvar::new();

/// Bytes of the budget held by one decode, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    bytes: u64,
}

impl Reservation {
    /// Waits until `bytes` (at most the whole budget) fit beside what other decodes hold, and
    /// holds them.
    pub fn take(bytes: u64) -> Reservation {
        let bytes = bytes.min(DECODE_BUDGET_BYTES);
        // A thread that panicked while holding the lock left a plain number behind: still
        // right, since every change to it is a single statement.
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        while *held + bytes > DECODE_BUDGET_BYTES {
            held = GIVEN_BACK
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *held += bytes;
        Reservation { bytes }
    }

    /// Gives back all but `keep` bytes, once a decode knows it holds no more than that.
    pub fn shrink_to(&mut self, keep: u64) {
        if keep < self.bytes {
            give_back(self.bytes - keep);
            self.bytes = keep;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        give_back(self.bytes);
    }
}

fn give_back(bytes: u64) {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    *held = held.saturating_sub(bytes);
    GIVEN_BACK.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// Eight threads asking for 300 MiB each at once, and one for ten times the budget: never
    /// more than the budget is held, every one gets its turn, and two of 300 MiB run together.
    #[test]
    fn reservations_wait_for_room_and_all_get_their_turn() {
        let (most, now, done) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|scope| {
            for i in 0..9u64 {
                let (most, now, done) = (&most, &now, &done);
                scope.spawn(move || {
                    let asked = match i {
                        8 => 10 * DECODE_BUDGET_BYTES,
                        _ => 300 << 20,
                    };
                    let held = Reservation::take(asked);
                    let bytes = held.bytes;
                    most.fetch_max(
                        now.fetch_add(bytes, Ordering::SeqCst) + bytes,
                        Ordering::SeqCst,
                    );
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(bytes, Ordering::SeqCst);
                    drop(held);
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 9);
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= DECODE_BUDGET_BYTES,
            "{} MiB held at once",
            most >> 20
        );
        assert!(
            most >= 600 << 20,
            "two reservations of 300 MiB fit together"
        );
    }

    #[test]
    fn shrinking_gives_back_the_rest() {
        let mut held = Reservation::take(100 << 20);
        held.shrink_to(1 << 20);
        assert_eq!(held.bytes, 1 << 20);
        held.shrink_to(5 << 20);
        assert_eq!(held.bytes, 1 << 20, "shrinking never grows");
    }
}
