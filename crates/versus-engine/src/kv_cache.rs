//! One layer's key/value cache: a buffer sized to the request (prompt plus the tokens to
//! generate), allocated on first use and grown geometrically if a request outgrows it, never sized
//! to the model's maximum context.

use candle_core::{Result, Tensor};

/// Keys and values of shape `(batch, kv_heads, positions, head_dim)`, positions along dim 2.
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: Option<Tensor>,
    values: Option<Tensor>,
    len: usize,
    capacity: usize,
}

/// The positions axis of the cached tensors.
const POSITIONS: usize = 2;

impl KvCache {
    /// An empty cache that will hold `capacity` positions before it has to grow.
    pub fn with_capacity(capacity: usize) -> KvCache {
        KvCache {
            keys: None,
            values: None,
            len: 0,
            capacity: capacity.max(1),
        }
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the buffer holds before it grows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position; the buffer is kept for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole key and value buffers, `(batch, kv_heads, capacity, head_dim)`, of which the
    /// first [`KvCache::len`] positions are filled: for reading the cache in place
    /// (`attention`). `None` before the first append.
    pub fn buffers(&self) -> Option<(&Tensor, &Tensor)> {
        self.keys.as_ref().zip(self.values.as_ref())
    }

    /// Appends the keys and values of new positions and returns those of all positions so far.
    pub fn append(&mut self, keys: &Tensor, values: &Tensor) -> Result<(Tensor, Tensor)> {
        let added = keys.dim(POSITIONS)?;
        let needed = self.len + added;
        if needed > self.capacity || self.keys.is_none() {
            let capacity = if needed > self.capacity {
                needed.max(self.capacity * 2)
            } else {
                self.capacity
            };
            self.keys = Some(grow(self.keys.take(), keys, self.len, capacity)?);
            self.values = Some(grow(self.values.take(), values, self.len, capacity)?);
            self.capacity = capacity;
        }
        let (Some(all_keys), Some(all_values)) = (&self.keys, &self.values) else {
            candle_core::bail!("kv cache buffers were not allocated");
        };
        all_keys.slice_set(&keys.contiguous()?, POSITIONS, self.len)?;
        all_values.slice_set(&values.contiguous()?, POSITIONS, self.len)?;
        self.len = needed;
        Ok((
            all_keys.narrow(POSITIONS, 0, self.len)?,
            all_values.narrow(POSITIONS, 0, self.len)?,
        ))
    }
}

/// A zeroed buffer of `capacity` positions shaped like `like`, holding the first `kept` positions
/// of `old`.
fn grow(old: Option<Tensor>, like: &Tensor, kept: usize, capacity: usize) -> Result<Tensor> {
    let mut shape = like.dims().to_vec();
    shape[POSITIONS] = capacity;
    let buffer = Tensor::zeros(shape, like.dtype(), like.device())?;
    if let Some(old) = old {
        if kept > 0 {
            buffer.slice_set(&old.narrow(POSITIONS, 0, kept)?.contiguous()?, POSITIONS, 0)?;
        }
    }
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn grows_past_its_capacity_and_keeps_what_it_held() -> Result<()> {
        let device = Device::Cpu;
        let mut cache = KvCache::with_capacity(2);
        let step = |start: f32, len: usize| {
            Tensor::arange(start, start + len as f32, &device)?.reshape((1, 1, len, 1))
        };
        cache.append(&step(0.0, 2)?, &step(10.0, 2)?)?;
        let (keys, values) = cache.append(&step(2.0, 3)?, &step(12.0, 3)?)?;
        assert_eq!(cache.len(), 5);
        assert!(cache.capacity() >= 5);
        assert_eq!(
            keys.flatten_all()?.to_vec1::<f32>()?,
            vec![0.0, 1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(
            values.flatten_all()?.to_vec1::<f32>()?,
            vec![10.0, 11.0, 12.0, 13.0, 14.0]
        );
        cache.clear();
        let (keys, _) = cache.append(&step(7.0, 1)?, &step(8.0, 1)?)?;
        assert_eq!(keys.flatten_all()?.to_vec1::<f32>()?, vec![7.0]);
        Ok(())
    }
}
