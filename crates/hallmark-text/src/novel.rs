//! Which context the exponential-minimum rule keys on at each position of a text: the
//! shortest one, from `h` up to `hmax` tokens, that no earlier position of the same text had.
//! Generator ([`crate::Sampler`]) and detector run the same bookkeeping over the same tokens.

use rustc_hash::FxHashSet;

/// Unkeyed 32-bit hash of a short token sequence: bookkeeping only, never a score. A
/// collision (about 1 in 40,000 per position in a 100,000-token text) can only make a new
/// context look repeated (a longer one is used, or none), never reuse a seed; 32 bits keep
/// the sets small enough to stay in cache.
#[inline]
fn ctx_hash(ctx: &[u32]) -> u32 {
    let mut x = ctx.len() as u64;
    for &t in ctx {
        x = (x ^ u64::from(t))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    (x >> 32) as u32
}

/// The contexts of every width that earlier positions of a text had.
#[derive(Clone, Debug)]
pub(crate) struct Novelty {
    h: usize,
    /// Width 1 (when `h` is 1): one bit per token id below 2^20, cache-friendly.
    single: Vec<u64>,
    sets: Vec<FxHashSet<u32>>,
}

/// Token ids below this get a bit in [`Novelty::single`]; larger ones (no real vocabulary
/// has them) go through the hash set.
const SINGLE_IDS: u32 = 1 << 20;

impl Novelty {
    pub(crate) fn new(h: usize, hmax: usize) -> Self {
        Self::with_capacity(h, hmax, 0)
    }

    /// Room for `n` positions without rehashing.
    pub(crate) fn with_capacity(h: usize, hmax: usize, n: usize) -> Self {
        Novelty {
            h,
            single: Vec::new(),
            sets: (h..=hmax.max(h))
                .map(|w| {
                    let mut s = FxHashSet::default();
                    // Width 1 lives in the bit set (bar huge ids).
                    s.reserve(if w == 1 { 0 } else { n });
                    s
                })
                .collect(),
        }
    }

    /// For the position right after `prefix`: the shortest width in `h..=hmax` whose context
    /// (the last `width` tokens of `prefix`) no earlier position had, or None when every
    /// available width repeats. Records this position's contexts of every width.
    pub(crate) fn step(&mut self, prefix: &[u32]) -> Option<usize> {
        let mut found = None;
        for (j, set) in self.sets.iter_mut().enumerate() {
            let w = self.h + j;
            if prefix.len() < w {
                break;
            }
            let ctx = &prefix[prefix.len() - w..];
            // A context whose suffix is new is new too, but is still recorded for later.
            let new = if w == 1 && ctx[0] < SINGLE_IDS {
                let t = ctx[0] as usize;
                if self.single.len() <= t / 64 {
                    self.single.resize(t / 64 + 1, 0);
                }
                let bit = 1u64 << (t % 64);
                let was = self.single[t / 64] & bit != 0;
                self.single[t / 64] |= bit;
                !was
            } else {
                set.insert(ctx_hash(ctx))
            };
            if new && found.is_none() {
                found = Some(w);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_new_context_then_longer_then_none() {
        let mut n = Novelty::new(1, 2);
        let t = [7u32, 1, 7, 1, 7, 2, 7, 1];
        let got: Vec<Option<usize>> = (1..t.len()).map(|i| n.step(&t[..i])).collect();
        // The contexts (width 1, width 2) before positions 1..=7.
        assert_eq!(
            got,
            vec![
                Some(1), // [7]
                Some(1), // [1] (and [7 1] recorded)
                Some(2), // [7] seen, [1 7] new
                None,    // [1] seen, [7 1] seen
                None,    // [7] seen, [1 7] seen
                Some(1), // [2] new
                Some(2), // [7] seen, [2 7] new
            ]
        );
    }
}
