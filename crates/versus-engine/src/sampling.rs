//! Choosing the next token from logits: greedy, or sampling with temperature, top-k, top-p and
//! min-p, after a repetition penalty, in the order transformers applies them, with a seeded
//! generator so the same seed and inputs give the same output.

/// How to pick tokens. `temperature == 0` (or `None` with no other setting) means greedy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SamplingParams {
    pub temperature: Option<f64>,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub min_p: Option<f64>,
    /// transformers' `repetition_penalty`: 1.0 is none.
    pub repetition_penalty: Option<f64>,
    pub seed: Option<u64>,
}

impl SamplingParams {
    pub fn is_greedy(&self) -> bool {
        self.temperature.is_none_or(|t| t <= 0.0)
    }
}

/// A small, fast, seedable generator (xoshiro256**, seeded through splitmix64). Written here rather
/// than taken from `rand` so that a seed gives the same tokens across dependency upgrades.
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            state: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks tokens for one generation.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
}

impl Sampler {
    /// `fallback_seed` is used when the parameters carry no seed (e.g. derived from the clock).
    pub fn new(params: SamplingParams, fallback_seed: u64) -> Sampler {
        let seed = params.seed.unwrap_or(fallback_seed);
        Sampler {
            params,
            rng: Rng::new(seed),
        }
    }

    /// The next token given the logits at the last position and every token so far (prompt
    /// included, for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], previous: &[u32]) -> u32 {
        let mut scores: Vec<f32> = logits.to_vec();
        if let Some(penalty) = self.params.repetition_penalty.filter(|p| *p != 1.0) {
            apply_repetition_penalty(&mut scores, previous, penalty as f32);
        }
        if self.params.is_greedy() {
            return argmax(&scores);
        }
        let temperature = self.params.temperature.unwrap_or(1.0) as f32;
        for score in &mut scores {
            *score /= temperature;
        }
        // Candidates as (id, score), best first; the warpers below only ever cut its tail.
        let mut candidates: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .map(|(i, s)| (i as u32, *s))
            .collect();
        if candidates.is_empty() {
            return argmax(logits);
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = self.params.top_k.filter(|k| *k > 0) {
            // transformers keeps every token scoring at least the k-th score (ties included).
            let threshold = candidates[(k.min(candidates.len())) - 1].1;
            candidates.retain(|c| c.1 >= threshold);
        }
        let mut probs = softmax(&candidates);
        if let Some(top_p) = self.params.top_p.filter(|p| *p < 1.0) {
            // Keep the smallest prefix whose mass reaches top_p (at least one token).
            let mut mass = 0.0;
            let mut keep = 0;
            for p in &probs {
                keep += 1;
                mass += p;
                if mass >= top_p {
                    break;
                }
            }
            candidates.truncate(keep.max(1));
            probs = softmax(&candidates);
        }
        if let Some(min_p) = self.params.min_p.filter(|p| *p > 0.0) {
            let cut = probs[0] * min_p;
            let keep = probs.iter().take_while(|p| **p >= cut).count().max(1);
            candidates.truncate(keep);
            probs = softmax(&candidates);
        }
        let draw = self.rng.next_f64();
        let mut cumulative = 0.0;
        for (candidate, p) in candidates.iter().zip(&probs) {
            cumulative += p;
            if draw < cumulative {
                return candidate.0;
            }
        }
        candidates[candidates.len() - 1].0
    }
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: every token seen so far has its score divided
/// by the penalty if positive, multiplied if negative.
fn apply_repetition_penalty(scores: &mut [f32], previous: &[u32], penalty: f32) {
    let mut seen = vec![false; scores.len()];
    for &id in previous {
        if let Some(flag) = seen.get_mut(id as usize) {
            *flag = true;
        }
    }
    for (score, seen) in scores.iter_mut().zip(seen) {
        if seen {
            *score = if *score < 0.0 {
                *score * penalty
            } else {
                *score / penalty
            };
        }
    }
}

/// The index of the highest score; the lowest index among ties, as torch.argmax gives.
pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, score) in scores.iter().enumerate() {
        if *score > scores[best] {
            best = i;
        }
    }
    best as u32
}

fn softmax(candidates: &[(u32, f32)]) -> Vec<f64> {
    let max = candidates
        .iter()
        .map(|c| c.1)
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = candidates
        .iter()
        .map(|c| (c.1 as f64 - max).exp())
        .collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(params: SamplingParams) -> Sampler {
        Sampler::new(params, 0)
    }

    /// How often each token is drawn in `n` samples.
    fn histogram(params: SamplingParams, logits: &[f32], n: usize) -> Vec<usize> {
        let mut s = sampler(params);
        let mut counts = vec![0; logits.len()];
        for _ in 0..n {
            counts[s.sample(logits, &[]) as usize] += 1;
        }
        counts
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = sampler(SamplingParams::default());
        assert_eq!(s.sample(&[0.1, 3.0, 3.0, -1.0], &[]), 1);
    }

    #[test]
    fn repetition_penalty_matches_transformers() {
        let mut scores = vec![2.0, -2.0, 1.0];
        apply_repetition_penalty(&mut scores, &[0, 1, 1], 2.0);
        assert_eq!(scores, vec![1.0, -4.0, 1.0]);
        // With the penalty, greedy moves off the repeated token.
        let mut s = sampler(SamplingParams {
            repetition_penalty: Some(3.0),
            ..Default::default()
        });
        assert_eq!(s.sample(&[2.0, 1.0], &[0]), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let params = SamplingParams {
            temperature: Some(1.0),
            seed: Some(42),
            ..Default::default()
        };
        let logits = [1.0, 1.1, 0.9, 1.2, 0.5];
        let draw = |p: SamplingParams| {
            let mut s = Sampler::new(p, 7);
            (0..50).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(params.clone()), draw(params.clone()));
        let other = SamplingParams {
            seed: Some(43),
            ..params.clone()
        };
        assert_ne!(draw(params), draw(other));
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // softmax([ln 1, ln 3]) = [0.25, 0.75]
        let logits = [0.0, 3f32.ln()];
        let counts = histogram(
            SamplingParams {
                temperature: Some(1.0),
                ..Default::default()
            },
            &logits,
            20_000,
        );
        let share = counts[1] as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.02, "share {share}");
    }

    #[test]
    fn warpers_cut_the_tail() {
        let logits = [3.0, 2.0, 1.0, 0.0];
        let only = |params: SamplingParams| {
            histogram(params, &logits, 2000)
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        let base = SamplingParams {
            temperature: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            only(SamplingParams {
                top_k: Some(2),
                ..base.clone()
            }),
            vec![0, 1]
        );
        // Probabilities ~ [0.644, 0.237, 0.087, 0.032]: top_p 0.8 keeps two tokens.
        assert_eq!(
            only(SamplingParams {
                top_p: Some(0.8),
                ..base.clone()
            }),
            vec![0, 1]
        );
        // min_p 0.3 keeps tokens with at least 0.3 * 0.644 = 0.193.
        assert_eq!(
            only(SamplingParams {
                min_p: Some(0.3),
                ..base.clone()
            }),
            vec![0, 1]
        );
        assert_eq!(
            only(SamplingParams {
                top_k: Some(1),
                ..base
            }),
            vec![0]
        );
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut rng = Rng::new(1);
        let mean: f64 = (0..10_000).map(|_| rng.next_f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02);
    }
}
