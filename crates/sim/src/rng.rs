//! A tiny seeded random number generator (SplitMix64) and stable hashing, so that one seed gives the
//! same world on every platform and every version of every dependency.

/// Mixes 64 bits into 64 well-distributed bits (the SplitMix64 finaliser).
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Stable hash of a sequence of words; used to derive sub-seeds and per-minute noise.
pub(crate) fn hash_words(words: &[u64]) -> u64 {
    words.iter().fold(0x6a09_e667_f3bc_c908, |acc, w| {
        mix64(acc ^ w.wrapping_add(0x9e37_79b9_7f4a_7c15))
    })
}

/// Stable 64-bit hash of a string (FNV-1a, then mixed).
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// A uniform value in [0, 1) from a hash.
pub(crate) fn unit_from_hash(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Deterministic generator: SplitMix64 over a 64-bit state.
#[derive(Debug, Clone)]
pub(crate) struct SimRng {
    state: u64,
}

impl SimRng {
    pub(crate) fn new(seed: u64) -> Self {
        SimRng {
            state: mix64(seed ^ 0x5851_f42d_4c95_7f2d),
        }
    }

    /// A generator for one named purpose under a seed, independent of how much other purposes drew.
    pub(crate) fn derive(seed: u64, purpose: &str, index: u64) -> Self {
        SimRng::new(hash_words(&[seed, hash_str(purpose), index]))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        unit_from_hash(self.next_u64())
    }

    /// Uniform in [low, high).
    pub(crate) fn range_f64(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in [low, high]; `low <= high`.
    pub(crate) fn range_i64(&mut self, low: i64, high: i64) -> i64 {
        debug_assert!(low <= high);
        let span = (high - low) as u64 + 1;
        low + (self.next_u64() % span) as i64
    }

    /// Uniform index below `len`; `len > 0`.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        debug_assert!(len > 0);
        (self.next_u64() % len as u64) as usize
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        if out.iter().all(|b| *b == 0) {
            out[0] = 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_purposes_are_independent() {
        let mut a = SimRng::derive(7, "topology", 0);
        let mut b = SimRng::derive(7, "topology", 0);
        let mut c = SimRng::derive(7, "faults", 0);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = SimRng::new(3);
        for _ in 0..10_000 {
            let v = rng.range_i64(-3, 4);
            assert!((-3..=4).contains(&v));
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
