//! The keyed pseudo-random function: a 64-bit sub-key from the watermark key (SHA-256 with a
//! domain label), then a SplitMix64-style mixer over the context hash and the token id.
//! About a nanosecond per token, so a 50k vocabulary costs tens of microseconds per step.
//! Not a cryptographic PRF on its own; the key stays secret and only detection statistics
//! leave the detector.

use hallmark_core::WatermarkKey;

/// The keyed function behind both schemes.
#[derive(Clone)]
pub struct Prf {
    k0: u64,
    k1: u64,
    k2: u64,
}

impl std::fmt::Debug for Prf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prf { .. }")
    }
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `gamma` as a threshold on 64-bit outputs.
pub(crate) fn threshold(gamma: f64) -> u64 {
    (gamma.clamp(0.0, 1.0) * 18_446_744_073_709_551_616.0) as u64
}

impl Prf {
    /// The function for `key`.
    pub fn new(key: &WatermarkKey) -> Self {
        let d = key.derive("text/prf/v1");
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        let mut c = [0u8; 8];
        a.copy_from_slice(&d[..8]);
        b.copy_from_slice(&d[8..16]);
        c.copy_from_slice(&d[16..24]);
        Prf {
            k0: u64::from_le_bytes(a),
            k1: u64::from_le_bytes(b),
            k2: u64::from_le_bytes(c),
        }
    }

    /// Seed for a context (the previous h tokens, oldest first).
    pub fn context_seed(&self, ctx: &[u32]) -> u64 {
        let mut h = self.k0;
        for &t in ctx {
            h = mix(h ^ u64::from(t).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        h
    }

    /// 64 keyed bits for `token` after a context seed.
    #[inline]
    pub fn token_bits(&self, seed: u64, token: u32) -> u64 {
        mix(seed ^ self.k1 ^ u64::from(token).wrapping_mul(0xd6e8_feb8_6659_fd93))
    }

    /// A keyed uniform number in (0, 1).
    #[inline]
    pub fn token_uniform(&self, seed: u64, token: u32) -> f64 {
        to_uniform(self.token_bits(seed, token))
    }

    /// A second, independent stream of 64 keyed bits for `token` after a context seed (its own
    /// sub-key and multiplier): the hybrid scheme draws its green list from
    /// [`Prf::token_bits`] and its sampling numbers from here.
    #[inline]
    pub fn token_bits_2(&self, seed: u64, token: u32) -> u64 {
        self.bits_2(self.stream_2(seed), token)
    }

    /// The per-context part of [`Prf::token_bits_2`] (computed once per sampling step).
    #[inline]
    pub(crate) fn stream_2(&self, seed: u64) -> u64 {
        mix(seed ^ self.k2)
    }

    /// [`Prf::token_bits_2`] from [`Prf::stream_2`]'s output.
    #[inline]
    pub(crate) fn bits_2(&self, stream: u64, token: u32) -> u64 {
        mix(stream ^ u64::from(token).wrapping_mul(0xa076_1d64_78bd_642f))
    }

    /// [`Prf::token_bits_2`] as a uniform number in (0, 1).
    #[inline]
    pub fn token_uniform_2(&self, seed: u64, token: u32) -> f64 {
        to_uniform(self.token_bits_2(seed, token))
    }
}

/// The top 53 bits as a uniform number in (0, 1) (never 0 or 1).
#[inline]
pub(crate) fn to_uniform(bits: u64) -> f64 {
    ((bits >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}
