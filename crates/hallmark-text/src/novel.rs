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

    /// Room for `positions` more positions without rehashing (every position records its
    /// shortest context; longer ones are recorded only where that repeats).
    pub(crate) fn reserve(&mut self, positions: usize) {
        if let Some(first) = self.maps.first_mut() {
            first.reserve(positions);
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

/// Largest token id + 1 for which [`long_text`] counts one-token contexts in an array.
const MAX_ARRAY_VOCAB: usize = 1 << 22;

/// A long text's bookkeeping, all at once (for texts where a map lookup per position would
/// miss the cache on most lookups): see [`long_text`].
#[derive(Debug)]
pub(crate) struct LongText {
    /// For positions `start..n` (index `i - start`): [`Novelty::step`]'s answer as if called
    /// for each position in order, 0 for None. Empty unless asked for.
    pub(crate) widths: Vec<u8>,
    /// For positions `start..n`: whether the `h + 1` tokens ending at the position (its
    /// context and itself: a green-list pair) occur there for the first time among the
    /// positions from `start`. Empty unless asked for.
    pub(crate) first_pairs: Vec<bool>,
}

/// [`LongText`] for `tokens` from `start` (at least `h`), with context widths `h..=hmax` when
/// `widths` and the `(h + 1)`-token pairs when `pairs`.
///
/// Contexts are compared by hash, as [`Novelty`] does, by sorting (hash, position) keys and
/// reading runs of equal hashes. Width by width, only positions whose shorter context repeats
/// are sorted: a width-`w` context can only repeat where its width-`w - 1` suffix does (the
/// same restriction [`Novelty`] applies lazily), so past the first width the sorts shrink
/// fast. A token's pair is the next position's width-`h + 1` context, so one sort serves both.
/// Position `n` (after the last token) takes part only to give the last token's pair.
pub(crate) fn long_text(
    tokens: &[u32],
    start: usize,
    h: usize,
    hmax: usize,
    widths: bool,
    pairs: bool,
) -> LongText {
    let n = tokens.len();
    let mut out = LongText {
        widths: vec![0u8; if widths { n.saturating_sub(start) } else { 0 }],
        first_pairs: vec![true; if pairs { n.saturating_sub(start) } else { 0 }],
    };
    let top = if widths { hmax.max(h) } else { h }.max(if pairs { h + 1 } else { h });
    if start >= n || n >= PROMOTED as usize || top > usize::from(u8::MAX) || h == 0 {
        return out;
    }
    // Positions (contexts) taking part: up to n when pairs are asked for.
    let last = if pairs { n } else { n - 1 };
    let (mut keys, mut tmp): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    // Positions whose context at the current width repeats (candidates for the next width).
    let mut repeated: Vec<u32> = Vec::new();
    for w in h..=top {
        let from = start.max(w);
        if from > last {
            break;
        }
        let record_width = widths && w <= hmax;
        let record_pairs = pairs && w == h + 1;
        // One token: first occurrences and counts through an array indexed by token id (for
        // vocabularies of real tokenizers; arbitrary ids take the sorting path below).
        let vocab = if w == 1 {
            (from - 1..last).map(|i| tokens[i]).max().unwrap_or(0) as usize + 1
        } else {
            usize::MAX
        };
        if w == h && vocab <= MAX_ARRAY_VOCAB {
            let mut count = vec![0u8; vocab];
            for i in from..=last {
                let t = tokens[i - 1] as usize;
                if count[t] == 0 && record_width && i < n {
                    out.widths[i - start] = 1;
                }
                count[t] = count[t].saturating_add(1);
            }
            repeated.clear();
            repeated.extend(
                (from..=last)
                    .filter(|&i| count[tokens[i - 1] as usize] > 1)
                    .map(|i| i as u32),
            );
            continue;
        }
        keys.clear();
        let hash = |i: usize| u64::from(ctx_hash(&tokens[i - w..i])) << 32 | i as u64;
        if w == h {
            keys.extend((from..=last).map(hash));
        } else {
            keys.extend(
                repeated
                    .iter()
                    .map(|&i| i as usize)
                    .filter(|&i| i >= w)
                    .map(hash),
            );
        }
        radix_sort_by_high_half(&mut keys, &mut tmp);
        repeated.clear();
        let mut g = 0;
        while g < keys.len() {
            let group = keys[g] >> 32;
            let mut e = g + 1;
            while e < keys.len() && keys[e] >> 32 == group {
                e += 1;
            }
            let pos = |k: u64| k as u32 as usize;
            if record_width && pos(keys[g]) < n {
                let slot = &mut out.widths[pos(keys[g]) - start];
                if *slot == 0 {
                    *slot = w as u8;
                }
            }
            if e - g > 1 {
                repeated.extend(keys[g..e].iter().map(|&k| k as u32));
                if record_pairs {
                    // The token before each position closes a pair; positions from
                    // start + 1 count (the pair of the token at start onwards).
                    let mut first = true;
                    for &k in &keys[g..e] {
                        if pos(k) > start {
                            if !first {
                                out.first_pairs[pos(k) - 1 - start] = false;
                            }
                            first = false;
                        }
                    }
                }
            }
            g = e;
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
            if case % 7 == 6 {
                // Ids far beyond any vocabulary (the sorting path for one-token contexts).
                t.iter_mut().for_each(|x| *x = *x * 200_000_000 + 7);
            }
            let (h, hmax) = [(1, 1), (1, 2), (1, 3), (2, 4), (1, 5)][case % 5];
            let start = case % 7;
            let want = eager(&t, start, h, hmax);
            // All at once by sorting (0 for none).
            let all: Vec<Option<usize>> = long_text(&t, start, h, hmax, true, case % 2 == 0)
                .widths
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
    fn first_pairs_match_a_set() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for case in 0..100 {
            let t: Vec<u32> = (0..300)
                .map(|_| rng.gen_range(0..[2u32, 4, 50][case % 3]))
                .collect();
            let h = 1 + case % 3;
            let start = h + case % 5;
            let mut seen = std::collections::HashSet::new();
            let want: Vec<bool> = (start..t.len())
                .map(|i| seen.insert(t[i - h..=i].to_vec()))
                .collect();
            let got = long_text(&t, start, h, h + case % 2, case % 4 < 2, true).first_pairs;
            assert_eq!(got, want, "case {case}");
        }
    }
}
