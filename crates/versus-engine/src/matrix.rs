//! A weight matrix as the decoder uses it: the bytes as the file stores them (memory-mapped from
//! a GGUF file, or copied once from safetensors), multiplied by versus's own kernels on the CPU
//! for the formats they cover (Q4_K, Q5_K, Q6_K, Q8_0, F16, BF16), or a candle `QMatMul` for everything else
//! (a GPU, other quantizations, the kernels turned off).
//!
//! Keeping the stored form is what keeps memory at the file's size: a GGUF's pages are the
//! file's (shared with the page cache, loaded as they are first read), and half-precision
//! weights stay two bytes a weight instead of being widened to f32 on load.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use candle_core::quantized::{ggml_file, GgmlDType, QMatMul};
use candle_core::{Device, Tensor};
use memmap2::Mmap;

use crate::kernels::half::{self, Bf16, HalfKind, F16};
use crate::kernels::{
    self, q4k::Q4K, q4k_x8, q5k::Q5K, q5k_x8, q6k::Q6K, q6k_x8, q8_0::Q8_0, q8_0_x8,
};

/// The formats versus's kernels multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredFormat {
    Q4K,
    Q5K,
    Q6K,
    Q8_0,
    F16,
    Bf16,
}

impl StoredFormat {
    /// The format of a GGUF tensor type, if the kernels cover it.
    pub fn from_ggml(dtype: GgmlDType) -> Option<StoredFormat> {
        match dtype {
            GgmlDType::Q4K => Some(StoredFormat::Q4K),
            GgmlDType::Q5K => Some(StoredFormat::Q5K),
            GgmlDType::Q6K => Some(StoredFormat::Q6K),
            GgmlDType::Q8_0 => Some(StoredFormat::Q8_0),
            GgmlDType::F16 => Some(StoredFormat::F16),
            GgmlDType::BF16 => Some(StoredFormat::Bf16),
            _ => None,
        }
    }

    /// Whether the format is a quantized one (blocks of integers and scales), not half
    /// precision.
    pub fn is_quantized(self) -> bool {
        !matches!(self, StoredFormat::F16 | StoredFormat::Bf16)
    }

    pub fn ggml(self) -> GgmlDType {
        match self {
            StoredFormat::Q4K => GgmlDType::Q4K,
            StoredFormat::Q5K => GgmlDType::Q5K,
            StoredFormat::Q6K => GgmlDType::Q6K,
            StoredFormat::Q8_0 => GgmlDType::Q8_0,
            StoredFormat::F16 => GgmlDType::F16,
            StoredFormat::Bf16 => GgmlDType::BF16,
        }
    }

    /// Bytes of a row of `cols` weights, or `None` when the row does not fill whole blocks.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        let dtype = self.ggml();
        cols.is_multiple_of(dtype.block_size())
            .then(|| cols / dtype.block_size() * dtype.type_size())
    }
}

/// Where a matrix's bytes live: a memory-mapped file or an owned buffer, shared by every
/// matrix cut from it.
#[derive(Clone)]
enum Owner {
    Mapped(Arc<Mmap>),
    Owned(Arc<[u8]>),
}

/// A range of bytes of a mapped file or of a buffer.
#[derive(Clone)]
pub struct StoredBytes {
    owner: Owner,
    start: usize,
    len: usize,
}

impl StoredBytes {
    /// `len` bytes of `map` from `start`, or `None` when that runs past its end.
    pub fn mapped(map: &Arc<Mmap>, start: usize, len: usize) -> Option<StoredBytes> {
        (start.checked_add(len)? <= map.len()).then(|| StoredBytes {
            owner: Owner::Mapped(Arc::clone(map)),
            start,
            len,
        })
    }

    /// Tells the kernel the pages of a mapped range will not be read again soon, so they stop
    /// counting as the process's memory (a later read faults them in from the file again).
    /// Owned bytes stay as they are.
    fn release(&self) {
        if let Owner::Mapped(map) = &self.owner {
            // SAFETY: the map is a read-only mapping of a file; `DontNeed` drops its pages from
            // this process, and a later read of them loads the same bytes from the file, so no
            // reference into the map sees different contents. The range is inside the map
            // (checked in `mapped`).
            #[allow(unsafe_code)]
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, self.start, self.len)
            };
        }
    }

    /// Whether the bytes are a mapped file's pages (which [`StoredBytes::release`] gives back).
    fn is_mapped(&self) -> bool {
        matches!(self.owner, Owner::Mapped(_))
    }

    /// A copy of `bytes`.
    pub fn owned(bytes: &[u8]) -> StoredBytes {
        StoredBytes {
            owner: Owner::Owned(Arc::from(bytes)),
            start: 0,
            len: bytes.len(),
        }
    }
}

impl Deref for StoredBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let all: &[u8] = match &self.owner {
            Owner::Mapped(map) => map,
            Owner::Owned(buffer) => buffer,
        };
        &all[self.start..self.start + self.len]
    }
}

/// A `rows x cols` matrix in a stored format. Cheap to clone (tied embeddings share one).
#[derive(Clone)]
pub struct StoredMatrix {
    bytes: StoredBytes,
    format: StoredFormat,
    rows: usize,
    cols: usize,
    /// candle's form of the same matrix, made on first use when the kernels are turned off.
    fallback: Arc<OnceLock<Result<QMatMul, String>>>,
    /// Which kernel its products go through: chosen by [`StoredMatrix::for_matmul`].
    kernel: Kernel,
}

/// The kernel a [`StoredMatrix`]'s products go through.
#[derive(Clone)]
enum Kernel {
    /// A row at a time (`kernels::matmul`), or candle's matmul when the kernels are off.
    Rows,
    /// Eight rows at a time, from `copy`, the matrix interleaved for `interleaving`'s kernel.
    ///
    /// Where the kernel's results can be had bit for bit from the stored bytes
    /// ([`Interleaving::reads_stored`]), the copy is made by the background thread (see
    /// [`wait_for_background_work`]) and the matrix is read as stored until it is set; when the
    /// switch happens then changes no answer. Elsewhere the copy is made on load.
    ///
    /// Why not always on load: the copy is written into fresh memory, and on the 2-core
    /// development machine the kernel's zeroing of those pages made a 1.8 GB Q8_0 file load in
    /// 1.3-2.5 s against 0.14 s without, and a Q5_K_M file in 0.42-0.96 s against 0.14-0.21.
    /// Why not read as stored for good: the copy is faster to multiply (for Q8_0, one 64-byte
    /// load where stored rows need eight loads and four shuffles; eight sequences decoded
    /// together measured 122-158 tokens/s from the copy, then made on load, against 107-114 as
    /// stored, `--bench engine -- --profile batch8`, interleaved runs).
    Interleaved {
        interleaving: Interleaving,
        copy: Arc<OnceLock<kernels::Interleaved>>,
    },
}

/// The eight-row interleaved kernels, by the format they take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interleaving {
    /// `kernels::q4k_x8`.
    Q4K,
    /// `kernels::q5k_x8`.
    Q5K,
    /// `kernels::q6k_x8`.
    Q6K,
    /// `kernels::q8_0_x8`.
    Q8_0,
    /// `kernels::half`'s interleaved F16 (one stream a decode tile, the same arithmetic).
    F16,
    /// The same for BF16.
    Bf16,
}

impl Interleaving {
    /// The interleaved kernel for a `rows x cols` matrix of `format` on `isa`, if one applies.
    fn of(format: StoredFormat, isa: kernels::Isa, rows: usize, cols: usize) -> Option<Self> {
        match format {
            StoredFormat::Q4K if q4k_x8::applies(isa, rows, cols) => Some(Interleaving::Q4K),
            StoredFormat::Q5K if q5k_x8::applies(isa, rows, cols) => Some(Interleaving::Q5K),
            StoredFormat::Q6K if q6k_x8::applies(isa, rows, cols) => Some(Interleaving::Q6K),
            StoredFormat::Q8_0 if q8_0_x8::applies(isa, rows, cols) => Some(Interleaving::Q8_0),
            StoredFormat::F16 if half::interleaves(isa, rows, cols) => Some(Interleaving::F16),
            StoredFormat::Bf16 if half::interleaves(isa, rows, cols) => Some(Interleaving::Bf16),
            _ => None,
        }
    }

    /// Whether [`Interleaving::matmul_stored`] gives [`Interleaving::matmul`]'s results bit
    /// for bit on `isa`, so that the copy can be made in the background.
    fn reads_stored(self, isa: kernels::Isa) -> bool {
        match self {
            Interleaving::Q4K => q4k_x8::reads_stored(isa),
            Interleaving::Q5K => q5k_x8::reads_stored(isa),
            Interleaving::Q6K => q6k_x8::reads_stored(isa),
            Interleaving::Q8_0 | Interleaving::F16 | Interleaving::Bf16 => true,
        }
    }

    /// Whether the copy is worth making of bytes that stay in memory after it (`owned`: not a
    /// file's pages, which are given back once copied). Half-precision weights are the
    /// largest there are (a Phi-4 in F16 is 28 GB) and gain least from the copy (no unpacking
    /// saved, only the order of the reads), so theirs is made only of a mapped file.
    fn copies_owned_bytes(self) -> bool {
        !matches!(self, Interleaving::F16 | Interleaving::Bf16)
    }

    /// The interleaved copy of `bytes`, made on `threads` threads (Q8_0's on one).
    fn interleave(
        self,
        bytes: &[u8],
        rows: usize,
        cols: usize,
        threads: usize,
    ) -> Option<kernels::Interleaved> {
        match self {
            Interleaving::Q4K => q4k_x8::interleave(bytes, rows, cols, threads),
            Interleaving::Q5K => q5k_x8::interleave(bytes, rows, cols, threads),
            Interleaving::Q6K => q6k_x8::interleave(bytes, rows, cols, threads),
            Interleaving::Q8_0 => q8_0_x8::interleave(bytes, rows, cols),
            Interleaving::F16 | Interleaving::Bf16 => half::interleave(bytes, rows, cols, threads),
        }
    }

    fn matmul(self, copy: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
        match self {
            Interleaving::Q4K => q4k_x8::matmul(copy, rows, cols, xs, out),
            Interleaving::Q5K => q5k_x8::matmul(copy, rows, cols, xs, out),
            Interleaving::Q6K => q6k_x8::matmul(copy, rows, cols, xs, out),
            Interleaving::Q8_0 => q8_0_x8::matmul(copy, rows, cols, xs, out),
            Interleaving::F16 => F16::matmul_interleaved(copy, rows, cols, xs, out),
            Interleaving::Bf16 => Bf16::matmul_interleaved(copy, rows, cols, xs, out),
        }
    }

    fn matmul_stored(self, stored: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
        match self {
            Interleaving::Q4K => q4k_x8::matmul_stored(stored, rows, cols, xs, out),
            Interleaving::Q5K => q5k_x8::matmul_stored(stored, rows, cols, xs, out),
            Interleaving::Q6K => q6k_x8::matmul_stored(stored, rows, cols, xs, out),
            Interleaving::Q8_0 => q8_0_x8::matmul_stored(stored, rows, cols, xs, out),
            Interleaving::F16 => F16::matmul(stored, rows, cols, xs, out),
            Interleaving::Bf16 => Bf16::matmul(stored, rows, cols, xs, out),
        }
    }
}

/// A matrix's interleaved copy still to be made by the background thread.
struct BackgroundCopy {
    interleaving: Interleaving,
    bytes: StoredBytes,
    rows: usize,
    cols: usize,
    /// Where the copy goes; dropped with the matrix, and then the copy is not made.
    copy: std::sync::Weak<OnceLock<kernels::Interleaved>>,
}

/// The background thread's queue, and how many copies it has yet to finish.
struct Background {
    queue: std::sync::Mutex<std::sync::mpsc::Sender<BackgroundCopy>>,
    pending: std::sync::Mutex<usize>,
    finished: std::sync::Condvar,
}

/// The one thread that makes interleaved copies, in the order the matrices were loaded, started
/// on first use. One thread, not the kernel pool: it runs while the model already answers.
fn background() -> &'static Background {
    static BACKGROUND: OnceLock<Background> = OnceLock::new();
    BACKGROUND.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<BackgroundCopy>();
        // If the thread cannot start, `receiver` is dropped with its closure, every send fails
        // and every matrix stays read as stored: slower, never wrong.
        let _ = std::thread::Builder::new()
            .name("versus-interleave".into())
            .spawn(move || {
                for job in receiver {
                    // A copy that panics is given up (its matrix stays read as stored), not
                    // the thread: the jobs queued behind it are still made, and the count
                    // that `wait_for_background_work` waits on still comes down.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make_copy(&job)));
                    background().one_done();
                }
            });
        Background {
            queue: std::sync::Mutex::new(sender),
            pending: std::sync::Mutex::new(0),
            finished: std::sync::Condvar::new(),
        }
    })
}

/// Makes one queued copy, unless its matrix is gone.
fn make_copy(job: &BackgroundCopy) {
    let Some(copy) = job.copy.upgrade() else {
        return;
    };
    if let Some(interleaved) = job
        .interleaving
        .interleave(&job.bytes, job.rows, job.cols, 1)
    {
        if copy.set(interleaved).is_ok() {
            // The file's pages of it are not read again; memory returns to the file's size.
            job.bytes.release();
        }
    }
}

impl Background {
    /// Queues a copy for the thread.
    fn enqueue(&self, job: BackgroundCopy) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let queued = self.queue.lock().is_ok_and(|queue| queue.send(job).is_ok());
        if !queued {
            // No thread to do it: nothing will be finished.
            self.one_done();
        }
    }

    /// One queued copy made, or given up.
    fn one_done(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending = pending.saturating_sub(1);
        self.finished.notify_all();
    }
}

/// Blocks until the background thread has made every interleaved copy asked of it so far, so
/// that what follows runs at full speed (the benchmarks' steady state).
pub fn wait_for_background_work() {
    let background = background();
    let mut pending = background.pending.lock().unwrap_or_else(|e| e.into_inner());
    while *pending > 0 {
        pending = background
            .finished
            .wait(pending)
            .unwrap_or_else(|e| e.into_inner());
    }
}

impl std::fmt::Debug for StoredMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMatrix")
            .field("format", &self.format)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish()
    }
}

impl StoredMatrix {
    /// Checks that `bytes` hold exactly `rows x cols` weights of `format`.
    pub fn new(
        bytes: StoredBytes,
        format: StoredFormat,
        rows: usize,
        cols: usize,
    ) -> Result<StoredMatrix, String> {
        let row_bytes = format
            .row_bytes(cols)
            .ok_or_else(|| format!("rows of {cols} do not fill whole {format:?} blocks"))?;
        if rows.checked_mul(row_bytes) != Some(bytes.len) {
            return Err(format!(
                "{} bytes for {rows} x {cols} {format:?} weights, which take {}",
                bytes.len,
                rows.saturating_mul(row_bytes)
            ));
        }
        Ok(StoredMatrix {
            bytes,
            format,
            rows,
            cols,
            fallback: Arc::new(OnceLock::new()),
            kernel: Kernel::Rows,
        })
    }

    /// The matrix readied for its matmul: a Q4_K, Q5_K, Q6_K or Q8_0 matrix whose rows fill groups
    /// of eight goes through an eight-row kernel where this CPU has one, and so does an F16 or
    /// BF16 one mapped from a file (`Interleaving::copies_owned_bytes` says why only then). Its
    /// interleaved copy is made in the background where the matrix can be read as stored with
    /// the same results meanwhile, else now (see `Kernel`); the file's pages of it are then
    /// released, so memory returns to the file's size. Every product of the matrix then goes
    /// through that kernel (or, for a prefill, its panels, with the same bits), whatever the
    /// number of activation rows, so a row's result never depends on its batch. The stored
    /// bytes stay for candle's fallback.
    pub fn for_matmul(mut self) -> StoredMatrix {
        if !self.uses_kernels() {
            return self;
        }
        let isa = kernels::isa();
        let Some(interleaving) = Interleaving::of(self.format, isa, self.rows, self.cols) else {
            return self;
        };
        if !interleaving.copies_owned_bytes() && !self.bytes.is_mapped() {
            return self;
        }
        let copy = Arc::new(OnceLock::new());
        if interleaving.reads_stored(isa) {
            background().enqueue(BackgroundCopy {
                interleaving,
                bytes: self.bytes.clone(),
                rows: self.rows,
                cols: self.cols,
                copy: Arc::downgrade(&copy),
            });
        } else {
            match interleaving.interleave(&self.bytes, self.rows, self.cols, kernels::threads()) {
                Some(made) => {
                    let _ = copy.set(made);
                    self.bytes.release();
                }
                // No memory for the copy: rows one at a time.
                None => return self,
            }
        }
        self.kernel = Kernel::Interleaved { interleaving, copy };
        self
    }

    /// Whether products go through an eight-row interleaved kernel once its copy is made (until
    /// then, see [`StoredMatrix::reads_stored_at_first`]).
    pub fn is_interleaved(&self) -> bool {
        !matches!(self.kernel, Kernel::Rows)
    }

    pub fn format(&self) -> StoredFormat {
        self.format
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the matrix takes as stored.
    pub fn storage_bytes(&self) -> u64 {
        self.bytes.len as u64
    }

    /// `xs (n x cols) · Wᵀ` as `n x rows` f32 values, by versus's kernels.
    pub fn matmul(&self, xs: &[f32]) -> Vec<f32> {
        let n = xs.len() / self.cols.max(1);
        let mut out = vec![0f32; n * self.rows];
        let (bytes, rows, cols) = (&*self.bytes, self.rows, self.cols);
        match &self.kernel {
            Kernel::Interleaved { interleaving, copy } => {
                match copy.get() {
                    Some(copy) => interleaving.matmul(copy, rows, cols, xs, &mut out),
                    None => interleaving.matmul_stored(bytes, rows, cols, xs, &mut out),
                }
                return out;
            }
            Kernel::Rows => {}
        }
        match self.format {
            StoredFormat::Q4K => kernels::matmul::<Q4K>(bytes, rows, cols, xs, &mut out),
            StoredFormat::Q5K => kernels::matmul::<Q5K>(bytes, rows, cols, xs, &mut out),
            StoredFormat::Q6K => kernels::matmul::<Q6K>(bytes, rows, cols, xs, &mut out),
            StoredFormat::Q8_0 => kernels::matmul::<Q8_0>(bytes, rows, cols, xs, &mut out),
            StoredFormat::F16 => F16::matmul(bytes, rows, cols, xs, &mut out),
            StoredFormat::Bf16 => Bf16::matmul(bytes, rows, cols, xs, &mut out),
        }
        out
    }

    /// [`StoredMatrix::matmul`] as a matrix whose interleaved copy is made in the background
    /// gives it before the copy is made (the same results, bit for bit), for the benchmarks to
    /// time; any other matrix's `matmul`.
    pub fn matmul_as_stored(&self, xs: &[f32]) -> Vec<f32> {
        match &self.kernel {
            Kernel::Interleaved { interleaving, .. }
                if interleaving.reads_stored(kernels::isa()) =>
            {
                let n = xs.len() / self.cols.max(1);
                let mut out = vec![0f32; n * self.rows];
                interleaving.matmul_stored(&self.bytes, self.rows, self.cols, xs, &mut out);
                out
            }
            _ => self.matmul(xs),
        }
    }

    /// Whether the matrix is read as stored until a background copy is made (see `Kernel`).
    pub fn reads_stored_at_first(&self) -> bool {
        match &self.kernel {
            Kernel::Interleaved { interleaving, .. } => interleaving.reads_stored(kernels::isa()),
            Kernel::Rows => false,
        }
    }

    /// Whether versus's kernels multiply this matrix, or candle's matmul does
    /// (`kernels::used_for`).
    pub fn uses_kernels(&self) -> bool {
        kernels::used_for(self.format.is_quantized())
    }

    /// candle's form of the matrix (made once, on first use): for the CPU when versus's kernels
    /// are turned off. Half-precision weights become f32 there, as candle needs them.
    pub fn candle(&self) -> candle_core::Result<&QMatMul> {
        let made = self.fallback.get_or_init(|| {
            ggml_file::qtensor_from_ggml(
                self.format.ggml(),
                &self.bytes,
                vec![self.rows, self.cols],
                &Device::Cpu,
            )
            .and_then(QMatMul::from_qtensor)
            .map_err(|error| error.to_string())
        });
        made.as_ref()
            .map_err(|reason| candle_core::Error::Msg(reason.clone()))
    }

    /// Rows `ids` as f32, `(ids.len(), cols)`: an embedding lookup, each row dequantized (or
    /// widened) as it is read, so the table itself never exists in f32.
    pub fn rows_f32(&self, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        let row_bytes = self.bytes.len / self.rows.max(1);
        let mut values = Vec::with_capacity(ids.len() * self.cols);
        for &id in ids {
            let id = id as usize;
            if id >= self.rows {
                candle_core::bail!("row {id} of a matrix of {} rows", self.rows);
            }
            let row = &self.bytes[id * row_bytes..(id + 1) * row_bytes];
            match self.format {
                StoredFormat::F16 | StoredFormat::Bf16 => {
                    let kind = if self.format == StoredFormat::F16 {
                        HalfKind::F16
                    } else {
                        HalfKind::Bf16
                    };
                    values.extend(row.chunks_exact(2).map(|b| kind.to_f32([b[0], b[1]])));
                }
                StoredFormat::Q4K | StoredFormat::Q5K | StoredFormat::Q6K | StoredFormat::Q8_0 => {
                    let block = ggml_file::qtensor_from_ggml(
                        self.format.ggml(),
                        row,
                        vec![self.cols],
                        &Device::Cpu,
                    )?;
                    values.extend(block.dequantize(&Device::Cpu)?.to_vec1::<f32>()?);
                }
            }
        }
        Tensor::from_vec(values, (ids.len(), self.cols), device)
    }
}

/// A projection's weight: stored bytes for versus's kernels, or candle's matmul.
#[derive(Debug, Clone)]
pub enum Projection {
    Stored(StoredMatrix),
    Candle(QMatMul),
}

impl Projection {
    /// `xs Wᵀ` for `xs (..., cols)`: versus's kernels for stored f32 activations on the CPU,
    /// candle otherwise.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        match self {
            Projection::Candle(matmul) => matmul.forward(xs),
            Projection::Stored(matrix) => {
                if matrix.uses_kernels()
                    && xs.device().is_cpu()
                    && xs.dtype() == candle_core::DType::F32
                    && xs.dim(candle_core::D::Minus1)? == matrix.cols
                {
                    let input = xs.flatten_all()?.to_vec1::<f32>()?;
                    let mut dims = xs.dims().to_vec();
                    if let Some(last) = dims.last_mut() {
                        *last = matrix.rows;
                    }
                    Tensor::from_vec(matrix.matmul(&input), dims, xs.device())
                } else {
                    matrix
                        .candle()?
                        .forward(&xs.to_dtype(candle_core::DType::F32)?)?
                        .to_dtype(xs.dtype())
                }
            }
        }
    }

    /// Bytes the weight takes.
    pub fn storage_bytes(&self) -> u64 {
        match self {
            Projection::Stored(matrix) => matrix.storage_bytes(),
            Projection::Candle(QMatMul::QTensor(tensor)) => tensor.storage_size_in_bytes() as u64,
            Projection::Candle(QMatMul::Tensor(tensor) | QMatMul::TensorF16(tensor)) => {
                (tensor.elem_count() * tensor.dtype().size_in_bytes()) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::Module;

    fn dense(rows: usize, cols: usize) -> Tensor {
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 2003) as f32 / 1001.0 - 1.0) * 0.1)
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).expect("tensor")
    }

    /// The matrix in `format`, stored as llama.cpp would store it: half-precision weights
    /// mapped from a file, as a GGUF's are (their interleaved copy is made only of a file's
    /// pages), quantized ones in memory.
    fn stored(weights: &Tensor, format: StoredFormat) -> StoredMatrix {
        let (rows, cols) = weights.dims2().expect("2-d");
        let tensor = QTensor::quantize(weights, format.ggml()).expect("quantize");
        let data = tensor.data().expect("data");
        let bytes = match format {
            StoredFormat::F16 | StoredFormat::Bf16 => mapped(&data),
            _ => StoredBytes::owned(&data),
        };
        StoredMatrix::new(bytes, format, rows, cols).expect("stored")
    }

    /// `data` written to a file of its own and mapped.
    fn mapped(data: &[u8]) -> StoredBytes {
        use std::io::Write;
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(data).expect("write");
        // SAFETY: the file is unnamed, this test's alone, and not written while mapped.
        #[allow(unsafe_code)]
        let map = Arc::new(unsafe { Mmap::map(&file) }.expect("map"));
        StoredBytes::mapped(&map, 0, data.len()).expect("inside the map")
    }

    const FORMATS: [StoredFormat; 6] = [
        StoredFormat::Q4K,
        StoredFormat::Q5K,
        StoredFormat::Q6K,
        StoredFormat::Q8_0,
        StoredFormat::F16,
        StoredFormat::Bf16,
    ];

    /// A matrix whose interleaved copy is made in the background (every format with AVX-512)
    /// gives the same results, bit for bit, read as stored and from that copy; a matrix
    /// dropped before its copy is made leaves nothing waiting.
    #[test]
    fn a_matrix_answers_the_same_as_stored_and_from_its_background_copy() {
        kernels::set_enabled(true);
        let weights = dense(40, 512);
        for format in FORMATS {
            drop(stored(&weights, format).for_matmul());
            let matrix = stored(&weights, format).for_matmul();
            // A decode batch, and a prefill's (which Q4_K, Q5_K and Q6_K take through panels).
            let batches: Vec<Vec<f32>> = [9, 40]
                .iter()
                .map(|&n| {
                    (0..n * 512)
                        .map(|i| (i * 31 % 97) as f32 / 48.0 - 1.0)
                        .collect()
                })
                .collect();
            let as_stored: Vec<Vec<f32>> = batches
                .iter()
                .map(|xs| matrix.matmul_as_stored(xs))
                .collect();
            wait_for_background_work();
            let Kernel::Interleaved { copy, .. } = &matrix.kernel else {
                assert!(
                    Interleaving::of(format, kernels::isa(), 40, 512).is_none(),
                    "{format:?}: an eight-row kernel applies"
                );
                continue;
            };
            assert!(copy.get().is_some(), "{format:?}: the copy is made");
            let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            if matrix.reads_stored_at_first() {
                for (xs, as_stored) in batches.iter().zip(&as_stored) {
                    let from_copy = matrix.matmul(xs);
                    assert_eq!(
                        bits(&from_copy),
                        bits(as_stored),
                        "{format:?}, {} rows",
                        xs.len() / 512
                    );
                }
            }
        }
    }

    /// Half-precision weights held in memory (safetensors') are not copied: the copy would
    /// double the largest weights there are, since owned bytes cannot be given back.
    #[test]
    fn half_precision_weights_in_memory_are_read_as_stored() {
        kernels::set_enabled(true);
        let weights = dense(40, 512);
        for format in [StoredFormat::F16, StoredFormat::Bf16] {
            let tensor = QTensor::quantize(&weights, format.ggml()).expect("quantize");
            let bytes = StoredBytes::owned(&tensor.data().expect("data"));
            let matrix = StoredMatrix::new(bytes, format, 40, 512)
                .expect("stored")
                .for_matmul();
            assert!(!matrix.is_interleaved(), "{format:?}");
        }
    }

    /// The matrix as stored, and readied for its matmul (interleaved where an eight-row kernel
    /// applies), its background copy made: so that which kernel runs does not depend on timing
    /// (reading as stored is held to the copy's results by
    /// `a_matrix_answers_the_same_as_stored_and_from_its_background_copy`).
    fn both_kernels(weights: &Tensor, format: StoredFormat) -> [StoredMatrix; 2] {
        kernels::set_enabled(true);
        let readied = stored(weights, format).for_matmul();
        wait_for_background_work();
        [stored(weights, format), readied]
    }

    /// versus's kernels and candle's matmul on the same stored weights agree within the
    /// activations' rounding, for a decode step, a batch and a prefill alike, whether the
    /// matrix goes through a row-at-a-time kernel or an interleaved one.
    #[test]
    fn the_kernels_and_candles_matmul_agree_at_every_row_count() {
        let weights = dense(40, 512);
        for matrix in FORMATS
            .iter()
            .flat_map(|&format| both_kernels(&weights, format))
        {
            let format = matrix.format();
            let projection = Projection::Stored(matrix.clone());
            for rows in [1, 3, 4, 5, 9, 130] {
                let xs: Vec<f32> = (0..rows * 512)
                    .map(|i| (i * 31 % 97) as f32 / 48.0 - 1.0)
                    .collect();
                let xs = Tensor::from_vec(xs, (1, rows, 512), &Device::Cpu).expect("xs");
                kernels::set_enabled(true);
                let ours = projection.forward(&xs).expect("ours");
                let theirs = matrix
                    .candle()
                    .expect("candle")
                    .forward(&xs)
                    .expect("theirs");
                assert_eq!(ours.dims(), &[1, rows, 40]);
                let ours = ours
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("ours");
                let theirs = theirs
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("theirs");
                for (a, b) in ours.iter().zip(&theirs) {
                    assert!(
                        (a - b).abs() <= 2e-2 * b.abs().max(1.0),
                        "{format:?}, {rows} rows: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// A row of the result does not depend on the other rows it is computed with.
    #[test]
    fn a_row_is_computed_the_same_whatever_its_batch() {
        let weights = dense(24, 256);
        for matrix in FORMATS
            .iter()
            .flat_map(|&format| both_kernels(&weights, format))
        {
            let format = matrix.format();
            let xs: Vec<f32> = (0..7 * 256)
                .map(|i| (i * 13 % 89) as f32 / 40.0 - 1.0)
                .collect();
            let all = matrix.matmul(&xs);
            for j in 0..7 {
                let alone = matrix.matmul(&xs[j * 256..(j + 1) * 256]);
                assert_eq!(
                    &all[j * 24..(j + 1) * 24],
                    alone.as_slice(),
                    "{format:?} row {j}"
                );
            }
        }
    }

    /// Embedding rows read from the stored form equal the dequantized (or widened) table's.
    #[test]
    fn rows_are_dequantized_as_they_are_read() {
        let weights = dense(10, 256);
        for format in FORMATS {
            let matrix = stored(&weights, format);
            let table = matrix.candle().expect("candle");
            let full = match table {
                QMatMul::QTensor(tensor) => tensor.dequantize(&Device::Cpu).expect("dequantize"),
                QMatMul::Tensor(tensor) | QMatMul::TensorF16(tensor) => tensor.clone(),
            };
            let rows = matrix.rows_f32(&[7, 0, 7], &Device::Cpu).expect("rows");
            for (got, id) in [(0, 7), (1, 0), (2, 7)] {
                assert_eq!(
                    rows.get(got).and_then(|t| t.to_vec1::<f32>()).expect("row"),
                    full.get(id)
                        .and_then(|t| t.to_dtype(candle_core::DType::F32))
                        .and_then(|t| t.to_vec1::<f32>())
                        .expect("row"),
                    "{format:?} row {id}"
                );
            }
            assert!(
                matrix.rows_f32(&[10], &Device::Cpu).is_err(),
                "out of range"
            );
        }
    }

    #[test]
    fn bytes_that_do_not_match_the_shape_are_refused() {
        let bytes = StoredBytes::owned(&[0u8; 34 * 3]);
        assert!(StoredMatrix::new(bytes.clone(), StoredFormat::Q8_0, 3, 32).is_ok());
        assert!(StoredMatrix::new(bytes.clone(), StoredFormat::Q8_0, 2, 32).is_err());
        assert!(StoredMatrix::new(bytes, StoredFormat::Q8_0, 3, 31).is_err());
    }
}
