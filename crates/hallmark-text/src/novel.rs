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
}

const PROMOTED: u32 = 1 << 31;

impl Novelty {
    pub(crate) fn new(h: usize, hmax: usize) -> Self {
        Novelty {
            h,
            maps: (h..=hmax.max(h)).map(|_| FxHashMap::default()).collect(),
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

/// Every position's answer at once for positions `start..tokens.len()` (index `i - start` of
/// the result; 0 where [`Novelty::step`] answers None), as if `step` were called for each in
/// order: for long texts. A context is new at a position when it is the first occurrence of
/// its hash among the positions that have that width, found by sorting (position, context)
/// pairs by hash, which reads memory in order where a hash map would miss the cache on most
/// lookups of a long text.
pub(crate) fn widths(tokens: &[u32], start: usize, h: usize, hmax: usize) -> Vec<u8> {
    let n = tokens.len();
    let mut out = vec![0u8; n.saturating_sub(start)];
    if n >= PROMOTED as usize || hmax > usize::from(u8::MAX) {
        return out;
    }
    let (mut keys, mut tmp): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for w in h..=hmax.max(h) {
        let from = start.max(w);
        if from >= n {
            break;
        }
        if w == 1 {
            // One token: first occurrences through an array indexed by token id.
            let mut seen = vec![false; 1 << 16];
            for i in from..n {
                let t = tokens[i - 1] as usize;
                if t >= seen.len() {
                    seen.resize((t + 1).next_power_of_two(), false);
                }
                if !seen[t] {
                    seen[t] = true;
                    if out[i - start] == 0 {
                        out[i - start] = 1;
                    }
                }
            }
            continue;
        }
        keys.clear();
        keys.extend((from..n).map(|i| u64::from(ctx_hash(&tokens[i - w..i])) << 32 | i as u64));
        radix_sort_by_high_half(&mut keys, &mut tmp);
        let mut prev = None;
        for &k in &keys {
            let hash = (k >> 32) as u32;
            if prev != Some(hash) {
                prev = Some(hash);
                let slot = &mut out[k as u32 as usize - start];
                if *slot == 0 {
                    *slot = w as u8;
                }
            }
        }
    }
    out
}

/// For positions `start..tokens.len()`: whether the `len` tokens ending at the position
/// (inclusive) occur there for the first time among the positions from `start` that have
/// that many tokens (the green list's (context, token) pairs when `len` is `h + 1`). Hash
/// equality, like [`Novelty`]; sorted, for long texts.
pub(crate) fn first_windows(tokens: &[u32], start: usize, len: usize) -> Vec<bool> {
    let n = tokens.len();
    let mut out = vec![false; n.saturating_sub(start)];
    let from = start.max(len.saturating_sub(1));
    if from >= n || n >= PROMOTED as usize {
        return out;
    }
    let mut keys: Vec<u64> = (from..n)
        .map(|i| u64::from(ctx_hash(&tokens[i + 1 - len..=i])) << 32 | i as u64)
        .collect();
    radix_sort_by_high_half(&mut keys, &mut Vec::new());
    let mut prev = None;
    for &k in &keys {
        let hash = (k >> 32) as u32;
        if prev != Some(hash) {
            prev = Some(hash);
            out[k as u32 as usize - start] = true;
        }
    }
    out
}

/// Sorts by the high 32 bits, stably (equal hashes keep their position order): least
/// significant digit first, three counting passes of 11, 11 and 10 bits.
fn radix_sort_by_high_half(keys: &mut Vec<u64>, tmp: &mut Vec<u64>) {
    tmp.clear();
    tmp.resize(keys.len(), 0);
    let mut count = vec![0usize; 2049];
    for shift in [32u32, 43, 54] {
        count.iter_mut().for_each(|c| *c = 0);
        for &k in keys.iter() {
            count[((k >> shift) & 0x7ff) as usize + 1] += 1;
        }
        if count.contains(&keys.len()) {
            continue; // every key has this digit in common
        }
        for b in 0..2048 {
            count[b + 1] += count[b];
        }
        for &k in keys.iter() {
            let b = ((k >> shift) & 0x7ff) as usize;
            tmp[count[b]] = k;
            count[b] += 1;
        }
        std::mem::swap(keys, tmp);
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
            // All at once by sorting (0 for none).
            let all: Vec<Option<usize>> = widths(&t, start, h, hmax)
                .into_iter()
                .map(|w| (w > 0).then_some(usize::from(w)))
                .collect();
            assert_eq!(all, want, "case {case}, sorted");
            // One at a time (the sampler; the detector on short texts).
            let mut n = Novelty::new(h, hmax);
            let got: Vec<Option<usize>> = (start..t.len()).map(|i| n.step(&t[..i])).collect();
            assert_eq!(got, want, "case {case}");
        }
    }

    #[test]
    fn first_windows_match_a_set() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for case in 0..100 {
            let t: Vec<u32> = (0..300)
                .map(|_| rng.gen_range(0..[2u32, 4, 50][case % 3]))
                .collect();
            let (start, len) = (case % 5, 1 + case % 3);
            let mut seen = std::collections::HashSet::new();
            let want: Vec<bool> = (start..t.len())
                .map(|i| i + 1 >= len && seen.insert(t[i + 1 - len..=i].to_vec()))
                .collect();
            assert_eq!(first_windows(&t, start, len), want, "case {case}");
        }
    }
}
