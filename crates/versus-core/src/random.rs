//! The seeded generator behind every resampling in versus-core (the ratings bootstrap, the
//! paired bootstrap, the sign-flip test's Monte Carlo draws): xoshiro256** (Blackman and Vigna)
//! seeded through SplitMix64, so the same seed gives the same draws on every platform.

/// xoshiro256**: small, fast, and the same on every platform.
pub(crate) struct Xoshiro256StarStar {
    state: [u64; 4],
}

impl Xoshiro256StarStar {
    /// The generator whose state is four SplitMix64 outputs from `seed`.
    pub(crate) fn seeded(seed: u64) -> Xoshiro256StarStar {
        let mut splitmix = seed;
        let mut next = || {
            splitmix = splitmix.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = splitmix;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Xoshiro256StarStar {
            state: [next(), next(), next(), next()],
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.state[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let shifted = self.state[1] << 17;
        self.state[2] ^= self.state[0];
        self.state[3] ^= self.state[1];
        self.state[1] ^= self.state[2];
        self.state[0] ^= self.state[3];
        self.state[2] ^= shifted;
        self.state[3] = self.state[3].rotate_left(45);
        result
    }

    /// Uniform in `0..bound` without modulo bias (Lemire's multiply-and-reject); 0 for a bound
    /// of 0. The rejection threshold (2^64 mod bound) is below `bound`, so it is only computed
    /// when the low half of the product is: the same draws as always computing it, without a
    /// division per draw.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        if (product as u64) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (product as u64) < threshold {
                product = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        (product >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // First outputs of the reference C implementation from state {1, 2, 3, 4}.
        let mut random = Xoshiro256StarStar {
            state: [1, 2, 3, 4],
        };
        let first: Vec<u64> = (0..4).map(|_| random.next_u64()).collect();
        assert_eq!(first, vec![11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn draws_are_uniform_and_in_range() {
        let mut random = Xoshiro256StarStar::seeded(11);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[random.below(5) as usize] += 1;
        }
        for count in counts {
            assert!((9_500..10_500).contains(&count), "{counts:?}");
        }
        assert_eq!(random.below(0), 0);
        assert_eq!(random.below(1), 0);
    }

    #[test]
    fn draws_match_the_always_dividing_form() {
        // The first draws below 7 and below 3·2^62 from seed 42, as the simpler form that always
        // computes the rejection threshold produces them (the ratings bootstrap's draws, which
        // its reference vectors pin, were made by that form).
        fn reference(random: &mut Xoshiro256StarStar, bound: u64) -> u64 {
            let threshold = bound.wrapping_neg() % bound;
            loop {
                let product = u128::from(random.next_u64()) * u128::from(bound);
                if (product as u64) >= threshold {
                    return (product >> 64) as u64;
                }
            }
        }
        for bound in [7u64, 3 << 62, 1 << 63 | 1] {
            let (mut ours, mut theirs) = (
                Xoshiro256StarStar::seeded(42),
                Xoshiro256StarStar::seeded(42),
            );
            for _ in 0..1000 {
                assert_eq!(ours.below(bound), reference(&mut theirs, bound));
            }
        }
    }
}
