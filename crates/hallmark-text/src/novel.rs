//! Which context the exponential-minimum rule keys on at each position of a text: the
//! shortest one, from `h` up to `hmax` tokens, that no earlier position of the same text had.
//! Generator ([`crate::Sampler`]) and detector run the same bookkeeping over the same tokens.

use rustc_hash::FxHashMap;

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

/// The contexts that earlier positions of a text had, kept lazily: a position's longer
/// contexts are only recorded once its shorter one repeats (until then no later position can
/// ask about them), so a text whose one-token contexts are mostly new costs one map
/// operation per position.
///
/// `maps[w - h]` holds width-`w` contexts, each mapped to the first position that had it; the
/// high bit marks entries whose next-longer context has been recorded in `maps[w - h + 1]`.
/// Invariant: when a position looks up width `w`, every earlier position sharing its width
/// `w - 1` context has its width-`w` context recorded (the first one promoted on demand,
/// later ones recorded on their own lookup), so the answer equals that of recording every
/// width at every position.
#[derive(Clone, Debug)]
pub(crate) struct Novelty {
    h: usize,
    maps: Vec<FxHashMap<u32, u32>>,
    /// Width 1 (when `h` is 1) for token ids below [`DENSE_IDS`] in long texts: the map's
    /// entries in an array indexed by token id ([`ABSENT`] where none), which stays in cache.
    dense: Option<Vec<u32>>,
}

const PROMOTED: u32 = 1 << 31;
const ABSENT: u32 = u32::MAX;
const DENSE_IDS: u32 = 1 << 20;

impl Novelty {
    pub(crate) fn new(h: usize, hmax: usize) -> Self {
        Self::with_capacity(h, hmax, 0)
    }

    /// Room for `n` positions at the shortest width without rehashing.
    pub(crate) fn with_capacity(h: usize, hmax: usize, n: usize) -> Self {
        Novelty {
            h,
            maps: (h..=hmax.max(h))
                .map(|w| {
                    let mut m = FxHashMap::default();
                    m.reserve(match w {
                        // Width 1 of a long text lives in the array.
                        1 if h == 1 && n >= 4096 => 0,
                        w if w == h => n.min(1 << 16),
                        // Longer contexts are recorded only once a shorter one repeats.
                        _ => (n / 2).min(1 << 16),
                    });
                    m
                })
                .collect(),
            // Filling the array costs about as much as hashing a few thousand tokens.
            dense: (h == 1 && n >= 4096).then(Vec::new),
        }
    }

    /// For the position right after `prefix` (its index is `prefix.len()`): the shortest
    /// width in `h..=hmax` whose context (the last `width` tokens of `prefix`) no earlier
    /// position had, or None when every available width repeats. Records the position.
    pub(crate) fn step(&mut self, prefix: &[u32]) -> Option<usize> {
        let i = prefix.len();
        if i >= PROMOTED as usize {
            return None;
        }
        let last = self.maps.len() - 1;
        for j in 0..=last {
            let w = self.h + j;
            if i < w {
                return None;
            }
            if let Some(dense) = self
                .dense
                .as_mut()
                .filter(|_| w == 1 && prefix[i - 1] < DENSE_IDS)
            {
                let t = prefix[i - 1] as usize;
                if dense.len() <= t {
                    dense.resize((t + 1).next_power_of_two().max(1 << 16), ABSENT);
                }
                let v = dense[t];
                if v == ABSENT {
                    dense[t] = i as u32;
                    return Some(1);
                }
                if v & PROMOTED != 0 || j == last {
                    continue;
                }
                dense[t] = v | PROMOTED;
                let first = v as usize;
                if first > 1 {
                    let k = ctx_hash(&prefix[first - 2..first]);
                    self.maps[j + 1].entry(k).or_insert(first as u32);
                }
                continue;
            }
            let key = ctx_hash(&prefix[i - w..i]);
            let first = match self.maps[j].entry(key) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i as u32);
                    return Some(w);
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let v = *e.get();
                    if v & PROMOTED != 0 || j == last {
                        continue;
                    }
                    e.insert(v | PROMOTED);
                    v as usize
                }
            };
            // The first position with this context: record its next-longer context now.
            if first > w {
                let k = ctx_hash(&prefix[first - w - 1..first]);
                self.maps[j + 1].entry(k).or_insert(first as u32);
            }
        }
        None
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

    /// The definition, recording every width at every position.
    fn eager(t: &[u32], start: usize, h: usize, hmax: usize) -> Vec<Option<usize>> {
        let mut sets: Vec<std::collections::HashSet<Vec<u32>>> = vec![Default::default(); hmax + 1];
        (start..t.len())
            .map(|i| {
                let mut found = None;
                for w in h..=hmax {
                    if i < w {
                        break;
                    }
                    if sets[w].insert(t[i - w..i].to_vec()) && found.is_none() {
                        found = Some(w);
                    }
                }
                found
            })
            .collect()
    }

    #[test]
    fn lazy_bookkeeping_matches_the_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for case in 0..300 {
            // Small vocabularies and copied stretches: plenty of repeated contexts.
            let vocab = [2u32, 3, 5, 20][case % 4];
            let mut t: Vec<u32> = (0..200).map(|_| rng.gen_range(0..vocab)).collect();
            if case % 3 == 0 {
                let copy = t[10..60].to_vec();
                t.splice(100..150, copy);
            }
            let (h, hmax) = [(1, 1), (1, 2), (1, 3), (2, 4), (1, 5)][case % 5];
            let start = case % 7;
            let want = eager(&t, start, h, hmax);
            // The hashed and (for long texts) the array-backed bookkeeping.
            for cap in [0, 1 << 20] {
                let mut n = Novelty::with_capacity(h, hmax, cap);
                let got: Vec<Option<usize>> = (start..t.len()).map(|i| n.step(&t[..i])).collect();
                assert_eq!(got, want, "case {case}, capacity {cap}");
            }
        }
    }
}
