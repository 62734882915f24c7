//! Non-cryptographic random bytes for probe payloads.
//!
//! The payload only has to differ between runs and between directions so a
//! proxy that echoes, replays or corrupts is caught; a seeded xorshift is
//! enough and avoids a dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fills `buf` with pseudo-random bytes, fresh on every call.
pub fn fill_random(buf: &mut [u8]) {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    // xorshift64* must not start at zero.
    let mut x = h.finish() | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        for (d, s) in chunk.iter_mut().zip(v) {
            *d = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_fills_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a);
        fill_random(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn odd_lengths_are_filled_to_the_end() {
        let mut a = [0u8; 13];
        fill_random(&mut a);
        // Probability of the last 5 bytes all being zero is 2^-40.
        assert_ne!(a.get(8..), Some(&[0u8; 5][..]));
    }
}
