//! A keyed pseudo-random stream: SHA-256 in counter mode over a derived sub-key. Used to lay
//! out watermark patterns; fast enough for thousands of values, deterministic across
//! platforms (pinned by known-answer tests), and unpredictable without the key.

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Deterministic keyed stream of pseudo-random numbers.
pub struct KeyStream {
    key: [u8; 32],
    counter: u64,
    buf: [u8; 32],
    pos: usize,
}

impl KeyStream {
    /// A stream for `label` under `key`.
    pub fn new(key: &crate::WatermarkKey, label: &str) -> Self {
        KeyStream {
            key: key.derive(label),
            counter: 0,
            buf: [0; 32],
            pos: 32,
        }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos + 4 > 32 {
            let mut h = Sha256::new();
            h.update(self.key);
            h.update(self.counter.to_le_bytes());
            self.buf = h.finalize().into();
            self.counter += 1;
            self.pos = 0;
        }
        let v = u32::from_le_bytes([
            self.buf[self.pos],
            self.buf[self.pos + 1],
            self.buf[self.pos + 2],
            self.buf[self.pos + 3],
        ]);
        self.pos += 4;
        v
    }

    /// A uniform integer in `0..n` (rejection sampling, no modulo bias). `n` must be > 0.
    pub fn below(&mut self, n: u32) -> u32 {
        let n = n.max(1);
        let zone = u32::MAX - (u32::MAX % n);
        loop {
            let v = self.next_u32();
            if v < zone {
                return v % n;
            }
        }
    }

    /// A random sign, +1.0 or -1.0.
    pub fn sign(&mut self) -> f32 {
        if self.next_u32() & 1 == 1 { 1.0 } else { -1.0 }
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

impl Drop for KeyStream {
    fn drop(&mut self) {
        self.key.zeroize();
        self.buf.zeroize();
    }
}
