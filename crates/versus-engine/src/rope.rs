//! Rotary position embedding: inverse frequencies computed exactly as transformers computes them
//! (default, `llama3`, `longrope`, and llama.cpp's `rope_freqs` factors), and the cos/sin tables
//! for a range of positions.
//!
//! transformers computes all of this in float32. The values here are computed in f64 and rounded
//! to f32 at the points where transformers holds an f32 tensor, so they agree to the last bit or
//! so, which matters at large positions (`position · inv_freq` is an f32 product there too).

use candle_core::{DType, Device, Tensor};

use crate::config::{DecoderConfig, RopeScaling};

/// Which LongRoPE factors a forward pass uses. Models without LongRoPE always use `Short`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorSet {
    Short,
    Long,
}

/// The exponents `2i / d` of the default frequencies, as transformers computes them
/// (`arange(0, d, 2).float() / d`, an f32 division).
fn exponents(rotary_dim: usize) -> impl Iterator<Item = f64> {
    (0..rotary_dim / 2).map(move |i| f64::from((2 * i) as f32 / rotary_dim as f32))
}

/// `θ^(2i/d)` rounded to f32, as torch's f32 `pow` gives it.
fn base_powers(theta: f64, rotary_dim: usize) -> Vec<f32> {
    exponents(rotary_dim)
        .map(|exponent| theta.powf(exponent) as f32)
        .collect()
}

/// `1 / (factor[i] · θ^(2i/d))` in f32 arithmetic, as transformers' LongRoPE does it
/// (`1.0 / (ext_factors * base**inv_freq_shape)` with `ext_factors` an f32 tensor).
fn divided_frequencies(theta: f64, rotary_dim: usize, factors: &[f64]) -> Vec<f32> {
    base_powers(theta, rotary_dim)
        .into_iter()
        .zip(factors)
        .map(|(power, &factor)| 1.0f32 / (factor as f32 * power))
        .collect()
}

/// The inverse frequencies transformers uses for `set` (the set only matters for LongRoPE).
pub fn inverse_frequencies(config: &DecoderConfig, set: FactorSet) -> Vec<f32> {
    let dim = config.rotary_dim;
    let theta = config.rope_theta;
    match &config.rope_scaling {
        RopeScaling::Default => base_powers(theta, dim)
            .into_iter()
            .map(|power| 1.0f32 / power)
            .collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            // transformers' `_compute_llama3_parameters`: wavelengths longer than
            // original/low_freq_factor are divided by `factor`, shorter than
            // original/high_freq_factor are kept, and the band between is interpolated.
            let old_context = *original_max_position_embeddings as f64;
            let low_freq_wavelength = old_context / low_freq_factor;
            let high_freq_wavelength = old_context / high_freq_factor;
            base_powers(theta, dim)
                .into_iter()
                .map(|power| {
                    let inv_freq = f64::from(1.0f32 / power);
                    let wavelength = 2.0 * std::f64::consts::PI / inv_freq;
                    let scaled = if wavelength > low_freq_wavelength {
                        inv_freq / factor
                    } else {
                        inv_freq
                    };
                    let is_medium =
                        (high_freq_wavelength..=low_freq_wavelength).contains(&wavelength);
                    if is_medium {
                        let smooth = (old_context / wavelength - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        ((1.0 - smooth) * scaled / factor + smooth * scaled) as f32
                    } else {
                        scaled as f32
                    }
                })
                .collect()
        }
        // transformers divides by the factors; candle-transformers' phi3 multiplies by them.
        RopeScaling::LongRope {
            short_factor,
            long_factor,
            ..
        } => {
            let factors = match set {
                FactorSet::Short => short_factor,
                FactorSet::Long => long_factor,
            };
            divided_frequencies(theta, dim, factors)
        }
        RopeScaling::FrequencyFactors { factors } => divided_frequencies(theta, dim, factors),
    }
}

/// The factor transformers multiplies cos and sin by (`attention_scaling`): LongRoPE's attention
/// factor, 1 otherwise.
pub fn attention_scaling(config: &DecoderConfig) -> f64 {
    match &config.rope_scaling {
        RopeScaling::LongRope {
            attention_factor, ..
        } => *attention_factor,
        _ => 1.0,
    }
}

/// Inverse frequencies for both factor sets, and the cos/sin tables computed from them on demand
/// (only for the positions of a forward pass, so nothing is sized to the model's context).
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    short: Vec<f32>,
    long: Vec<f32>,
    attention_scaling: f32,
    /// LongRoPE's `original_max_position_embeddings`: longer sequences use the long factors.
    long_beyond: Option<usize>,
    device: Device,
    dtype: DType,
}

impl RotaryEmbedding {
    pub fn new(config: &DecoderConfig, device: &Device, dtype: DType) -> RotaryEmbedding {
        let long_beyond = match &config.rope_scaling {
            RopeScaling::LongRope {
                original_max_position_embeddings,
                ..
            } => Some(*original_max_position_embeddings),
            _ => None,
        };
        RotaryEmbedding {
            short: inverse_frequencies(config, FactorSet::Short),
            long: inverse_frequencies(config, FactorSet::Long),
            attention_scaling: attention_scaling(config) as f32,
            long_beyond,
            device: device.clone(),
            dtype,
        }
    }

    /// The factor set transformers picks for a forward pass whose last position is
    /// `sequence_length - 1`: long when the sequence exceeds the original context.
    pub fn factor_set(&self, sequence_length: usize) -> FactorSet {
        match self.long_beyond {
            Some(original) if sequence_length > original => FactorSet::Long,
            _ => FactorSet::Short,
        }
    }

    pub fn inverse_frequencies(&self, set: FactorSet) -> &[f32] {
        match set {
            FactorSet::Short => &self.short,
            FactorSet::Long => &self.long,
        }
    }

    /// cos and sin, each `(len, rotary_dim / 2)`, for positions `start .. start + len`, already
    /// multiplied by the attention scaling.
    pub fn cos_sin(
        &self,
        start: usize,
        len: usize,
        set: FactorSet,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let inv_freq = self.inverse_frequencies(set);
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for position in start..start + len {
            for &frequency in inv_freq {
                // transformers: `inv_freq @ position_ids` in f32, then f32 cos/sin, then the scaling.
                let angle = f64::from(frequency * position as f32);
                cos.push(angle.cos() as f32 * self.attention_scaling);
                sin.push(angle.sin() as f32 * self.attention_scaling);
            }
        }
        let cos = Tensor::from_vec(cos, (len, half), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (len, half), &self.device)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }
}
