//! F16 and BF16 matrices times f32 activations, the weights used as stored: two bytes a weight
//! read (half of what widening them to f32 on load reads, and half the memory), converted to
//! f32 in registers (F16C's `vcvtph2ps`, or a 16-bit shift for BF16) and multiplied in f32, so
//! the result is what f32 weights would give, within the order of the float sums.
//!
//! Why not candle's: its CPU matmul takes F16 weights only with F16 activations (rounding the
//! activations, and slower than f32 on the CPU), which is why versus used to widen every half
//! weight to f32 on load: twice the memory and, for a decode step, twice the bytes read.

use half::{bf16, f16};

use super::Isa;

/// How the two bytes of a weight encode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfKind {
    F16,
    Bf16,
}

impl HalfKind {
    /// One weight (two little-endian bytes) as f32.
    pub fn to_f32(self, bytes: [u8; 2]) -> f32 {
        match self {
            HalfKind::F16 => f16::from_le_bytes(bytes).to_f32(),
            HalfKind::Bf16 => bf16::from_le_bytes(bytes).to_f32(),
        }
    }
}

/// Bytes per weight.
pub const WEIGHT_BYTES: usize = 2;

/// One row (its half-precision bytes) dotted with an f32 row, by the scalar reference: each
/// product fused into one of sixteen f32 partial sums as the kernels sum them (two accumulators
/// of eight lanes, so that two chains of fused multiply-adds are in flight: weight `i` goes to
/// accumulator `(i / 8) % 2`, lane `i % 8`), then the accumulators added and the lanes added
/// pairwise.
pub fn dot_reference(kind: HalfKind, row: &[u8], x: &[f32]) -> f32 {
    let mut partial = [[0f32; 8]; 2];
    for (i, (bytes, &x)) in row.chunks_exact(WEIGHT_BYTES).zip(x).enumerate() {
        let w = kind.to_f32([bytes[0], bytes[1]]);
        let sum = &mut partial[(i / 8) % 2][i % 8];
        *sum = w.mul_add(x, *sum);
    }
    add_lanes(std::array::from_fn(|l| partial[0][l] + partial[1][l]))
}

/// Eight lanes added as the reference and every kernel add them: lane `l` with lane `l + 4`,
/// then those four pairwise.
fn add_lanes(lanes: [f32; 8]) -> f32 {
    let quads = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    (quads[0] + quads[2]) + (quads[1] + quads[3])
}

/// Half-precision weights of kind `KIND` (0: F16, 1: BF16) with f32 activations.
pub struct Half<const KIND: u8>;

/// F16 weights.
pub type F16 = Half<0>;
/// BF16 weights.
pub type Bf16 = Half<1>;

impl<const KIND: u8> Half<KIND> {
    const KIND: HalfKind = if KIND == 0 {
        HalfKind::F16
    } else {
        HalfKind::Bf16
    };
}

impl<const KIND: u8> super::Format for Half<KIND> {
    type Activation = f32;
    /// Eight weights: one AVX2 register.
    const BLOCK: usize = 8;
    const BLOCK_BYTES: usize = 8 * WEIGHT_BYTES;

    fn activations(xs: &[f32]) -> Vec<f32> {
        xs.to_vec()
    }

    fn dot_reference(row: &[u8], xs: &[f32]) -> f32 {
        dot_reference(Self::KIND, row, xs)
    }

    fn dot_tile(isa: Isa, row: &[u8], xs: &[&[f32]], out: &mut [f32]) {
        let cols = row.len() / WEIGHT_BYTES;
        assert!(
            xs.iter().all(|x| x.len() == cols),
            "activation rows of {cols}"
        );
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` offers `Avx512` and `Avx2` only when the CPU has AVX2, FMA and F16C; every
            // activation row has `cols` values (asserted above), a multiple of 8 (`BLOCK`).
            #[allow(unsafe_code)]
            Isa::Avx512 | Isa::Avx2 if cols.is_multiple_of(8) => unsafe {
                super::dispatch_tile!(xs, out, |tile| avx2::dot_tile(Self::KIND, row, tile))
            },
            _ => {
                for (out, x) in out.iter_mut().zip(xs) {
                    *out = dot_reference(Self::KIND, row, x);
                }
            }
        }
    }
}

/// The most activation rows an AVX-512 register tile takes at once.
#[cfg(target_arch = "x86_64")]
const TILE_ACTIVATIONS: usize = 6;
/// Groups of rows a thread takes together: each tile of activations meets all of them while
/// their bytes are in L2.
#[cfg(target_arch = "x86_64")]
const GROUPS_PER_BLOCK: usize = 4;

impl<const KIND: u8> Half<KIND> {
    /// `out (n x rows) = xs (n x cols) · Wᵀ` for the half-precision matrix `weights`: on AVX-512,
    /// register tiles of four weight rows by up to six activation rows, so that each weight
    /// register (converted once) meets six activations and each activation register four rows;
    /// elsewhere the one-row kernel ([`super::matmul`]). Every result equals
    /// [`dot_reference`] bit for bit, whatever the tile, batch or instruction set.
    ///
    /// Why a tile of its own: one row at a time, a prefill of 128 activation rows loaded an
    /// activation for every fused multiply-add and ran at a quarter of llama.cpp's speed; a
    /// decode step kept only two chains of multiply-adds in flight per row.
    pub fn matmul(weights: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa() == super::Isa::Avx512 && cols.is_multiple_of(8) {
            let row_bytes = cols * WEIGHT_BYTES;
            return matmul_avx512::<KIND, 32>(weights, rows, cols, xs, out, |r| r * row_bytes);
        }
        super::matmul::<Half<KIND>>(weights, rows, cols, xs, out)
    }
}

/// The AVX-512 matmul: for a decode step (one or two activation rows) tiles of eight weight
/// rows by up to two activations, so that eight chains of multiply-adds hide their latency and
/// eight rows stream at once; for a batch, four rows by up to six activations (24 accumulators,
/// four weight registers and one activation register of the 32), so that each converted weight
/// register meets six activations and each activation register four rows.
///
/// `row_start(r)` is where row `r`'s first chunk of sixteen weights lies in `weights`, its next
/// `STRIDE` bytes on: `r · row bytes` and 32 as stored, in its group with
/// [`INTERLEAVED_STRIDE`] interleaved.
#[cfg(target_arch = "x86_64")]
fn matmul_avx512<const KIND: u8, const STRIDE: usize>(
    weights: &[u8],
    rows: usize,
    cols: usize,
    xs: &[f32],
    out: &mut [f32],
    row_start: impl Fn(usize) -> usize + Sync,
) {
    let row_bytes = cols * WEIGHT_BYTES;
    assert_eq!(
        weights.len(),
        rows * row_bytes,
        "weight bytes for {rows} rows"
    );
    assert!(
        xs.len().is_multiple_of(cols.max(1)),
        "activation rows of {cols}"
    );
    let n = xs.len() / cols.max(1);
    assert_eq!(out.len(), rows * n, "outputs for {rows} rows");
    if n == 0 || rows == 0 {
        return;
    }
    let weight_rows = |r: usize| weights[row_start(r)..].as_ptr();
    let activation = |j: usize| xs[j * cols..(j + 1) * cols].as_ptr();
    if n <= 2 {
        tiled::<KIND, 8, 2, STRIDE>(rows, n, cols, &weight_rows, &activation, out);
    } else {
        tiled::<KIND, 4, TILE_ACTIVATIONS, STRIDE>(rows, n, cols, &weight_rows, &activation, out);
    }
}

/// Weights of one row in a chunk of the interleaved form: one AVX-512 register's worth.
const CHUNK_WEIGHTS: usize = 16;
/// Bytes from one chunk of a row to its next in the interleaved form: a chunk of each of the
/// group's eight rows, one after another.
const INTERLEAVED_STRIDE: usize = super::GROUP_ROWS * CHUNK_WEIGHTS * WEIGHT_BYTES;

/// Whether a `rows x cols` half-precision matrix is multiplied from an interleaved copy on
/// `isa` ([`interleave`]): with AVX-512, rows in whole groups of eight and columns in whole
/// chunks of sixteen.
pub fn interleaves(isa: Isa, rows: usize, cols: usize) -> bool {
    super::eight_rows_apply(isa == Isa::Avx512, rows, cols, CHUNK_WEIGHTS)
}

/// The matrix (`rows x cols` weights of two bytes, rows one after another) with each group of
/// eight rows interleaved: the group's sixteen weights of chunk `c` of row `m` at
/// `c · 256 + 32 · m`, the group's chunks one after another. `None` when the shape is not
/// whole groups and chunks, the bytes are not the matrix's, or the system will not map memory
/// for the copy.
///
/// Why: the results are the stored rows' bit for bit (the same products into the same
/// accumulators in the same order, [`Half::matmul_interleaved`]), but a decode step reads the
/// eight rows of its tile as one stream instead of eight. On the 2-core development machine,
/// summing a 3.4 GB memory-mapped F16 file on two threads read 45-55 GB/s as one stream a
/// thread against 39-44 as eight streams of 10 KB rows (the rows of a Phi-4 projection) and
/// 23-26 as two, the four patterns interleaved in the same runs; llama.cpp, which reads a row
/// after another, decoded the F16 file 10-25% faster than versus's eight-stream tiles.
pub fn interleave(
    bytes: &[u8],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Option<super::Interleaved> {
    let row_bytes = cols.checked_mul(WEIGHT_BYTES)?;
    if rows == 0
        || !rows.is_multiple_of(super::GROUP_ROWS)
        || !cols.is_multiple_of(CHUNK_WEIGHTS)
        || bytes.len() != rows.checked_mul(row_bytes)?
    {
        return None;
    }
    let group_bytes = super::GROUP_ROWS * row_bytes;
    let chunk_bytes = CHUNK_WEIGHTS * WEIGHT_BYTES;
    let mut out = super::Interleaved::zeroed(bytes.len())?;
    super::fill_groups(&mut out, group_bytes, threads, |group, group_out| {
        let stored = &bytes[group * group_bytes..(group + 1) * group_bytes];
        for (chunk, out) in group_out.chunks_exact_mut(INTERLEAVED_STRIDE).enumerate() {
            for (m, out) in out.chunks_exact_mut(chunk_bytes).enumerate() {
                let start = m * row_bytes + chunk * chunk_bytes;
                out.copy_from_slice(&stored[start..start + chunk_bytes]);
            }
        }
    });
    Some(out)
}

impl<const KIND: u8> Half<KIND> {
    /// [`Half::matmul`] from the matrix's interleaved copy ([`interleave`]), with the same
    /// results bit for bit: tiles of eight rows by up to two activations for a decode step,
    /// four rows (half a group) by up to six for a batch, as the stored rows' tiles are.
    ///
    /// # Panics
    /// When `interleaves` does not hold for the shape on this CPU, or the lengths do not match.
    pub fn matmul_interleaved(copy: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
        assert!(
            interleaves(super::isa(), rows, cols),
            "an interleaved {rows} x {cols} half-precision matrix on {:?}",
            super::isa()
        );
        // Row r's first chunk: in its group's first chunk, after the rows before it.
        let group_bytes = super::GROUP_ROWS * cols * WEIGHT_BYTES;
        let chunk_bytes = CHUNK_WEIGHTS * WEIGHT_BYTES;
        #[cfg(target_arch = "x86_64")]
        matmul_avx512::<KIND, INTERLEAVED_STRIDE>(copy, rows, cols, xs, out, |r| {
            (r / super::GROUP_ROWS) * group_bytes + (r % super::GROUP_ROWS) * chunk_bytes
        });
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (copy, xs, out, group_bytes, chunk_bytes);
    }
}

/// `out[j · rows + r]` for every row `r` (`row(r)` its first chunk of sixteen weights, the
/// next `STRIDE` bytes on: see `avx512::tile`) and activation `j` (`x(j)`
/// its values), by tiles of `RM` rows and up to `RN` activations; groups of `RM` rows split over
/// the kernel pool, and the rows past the last whole group one at a time.
#[cfg(target_arch = "x86_64")]
fn tiled<const KIND: u8, const RM: usize, const RN: usize, const STRIDE: usize>(
    rows: usize,
    n: usize,
    cols: usize,
    row: &(impl Fn(usize) -> *const u8 + Sync),
    x: &(impl Fn(usize) -> *const f32 + Sync),
    out: &mut [f32],
) {
    let shared = super::SharedRows(out.as_mut_ptr());
    let groups = rows.div_ceil(RM);
    candle_core::utils::barrier_pool().execute_chunked(groups, |range| {
        let write = |r: usize, first: usize, results: &[f32]| {
            for (t, value) in results.iter().enumerate() {
                // SAFETY: `execute_chunked` hands every group of rows to exactly one call, so
                // each element `j · rows + r` is written by one thread only; it is in bounds
                // (the caller checked `out`'s length), and `out` outlives the call.
                #[allow(unsafe_code)]
                unsafe {
                    shared.write((first + t) * rows + r, *value);
                }
            }
        };
        for start in range.clone().step_by(GROUPS_PER_BLOCK) {
            let block = start..(start + GROUPS_PER_BLOCK).min(range.end);
            for first in (0..n).step_by(RN) {
                let tile = first..(first + RN).min(n);
                for group in block.clone() {
                    let group_rows = group * RM..((group + 1) * RM).min(rows);
                    if group_rows.len() == RM {
                        let ptrs = std::array::from_fn(|m| row(group_rows.start + m));
                        let results =
                            tile_rows::<KIND, RM, RN, STRIDE>(ptrs, tile.clone(), x, cols);
                        for (m, values) in results.iter().enumerate() {
                            write(group_rows.start + m, first, &values[..tile.len()]);
                        }
                    } else {
                        for r in group_rows {
                            let results =
                                tile_rows::<KIND, 1, RN, STRIDE>([row(r)], tile.clone(), x, cols);
                            write(r, first, &results[0][..tile.len()]);
                        }
                    }
                }
            }
        }
    });
}

/// `RM` rows against the activations `tile` (one to `RN` of them, at most six, `x(j)` the
/// start of activation `j`), by the AVX-512 kernel: `[row][activation]`, the unused columns 0.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn tile_rows<const KIND: u8, const RM: usize, const RN: usize, const STRIDE: usize>(
    rows: [*const u8; RM],
    tile: std::ops::Range<usize>,
    x: &impl Fn(usize) -> *const f32,
    cols: usize,
) -> [[f32; RN]; RM] {
    let mut out = [[0f32; RN]; RM];
    macro_rules! run {
        ($n:literal) => {{
            let xs: [*const f32; $n] = std::array::from_fn(|j| x(tile.start + j));
            // SAFETY: `matmul` chose this kernel only where `isa()` is `Avx512` (AVX-512 F,
            // BW and VL, AVX2, FMA and F16C) and `cols` is a multiple of 8; every row pointer
            // starts a row whose chunks of sixteen weights lie `STRIDE` bytes apart (a stored
            // row, or one in an interleaved group; see `tile`), and every activation pointer
            // `cols` values.
            let results = unsafe { avx512::tile::<KIND, RM, $n, STRIDE>(rows, xs, cols) };
            for (m, values) in results.iter().enumerate() {
                out[m][..$n].copy_from_slice(values);
            }
        }};
    }
    match tile.len().min(RN) {
        1 => run!(1),
        2 => run!(2),
        3 => run!(3),
        4 => run!(4),
        5 => run!(5),
        _ => run!(6),
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! AVX-512: sixteen weights a register, converted to f32 once; one accumulator per row and
    //! activation whose low eight lanes are the reference's even accumulator and whose high
    //! eight its odd one, so that the sums are the reference's, operation for operation.
    use std::arch::x86_64::*;

    /// Sixteen weights from 32 bytes at `at`, as f32.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn load16<const KIND: u8>(at: *const u8) -> __m512 {
        // SAFETY: the caller guarantees 32 readable bytes at `at`, and the features.
        unsafe {
            let raw = _mm256_loadu_si256(at as *const __m256i);
            if KIND == 0 {
                _mm512_cvtph_ps(raw)
            } else {
                // A bf16 is the top half of an f32.
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16))
            }
        }
    }

    /// Eight weights from 16 bytes at `at`, as the low half of a register (the high half 0).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn load8<const KIND: u8>(at: *const u8) -> __m512 {
        // SAFETY: the caller guarantees 16 readable bytes at `at`, and the features.
        unsafe {
            let raw = _mm_loadu_si128(at as *const __m128i);
            let low = if KIND == 0 {
                _mm256_cvtph_ps(raw)
            } else {
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16))
            };
            _mm512_zextps256_ps512(low)
        }
    }

    /// The reference's sum of an accumulator: even plus odd lane by lane, then the eight lanes
    /// added pairwise.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn sum(acc: __m512) -> f32 {
        let even = _mm512_castps512_ps256(acc);
        let odd = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is 32 bytes; the caller guarantees the features.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(even, odd)) };
        super::add_lanes(lanes)
    }

    /// How far ahead in each row a batch's tile (more than two activations) asks for the
    /// weights, into L2 (`prefetcht1`; see `q4k_x8`'s `PREFETCH_BLOCKS` for why not L1). A
    /// batch's first pass over a block of rows reads them from memory while it multiplies, and
    /// left to the hardware the two did not overlap. Measured on the 2-core development
    /// machine (`cargo bench -p versus-engine --bench kernels -- f16`, interleaved runs), a
    /// decode step's five projections: eight rows 82-92 ms against 103-104 without, four rows
    /// 60-68 against 76-81; 1,024 and 4,096 bytes ahead measured about the same, 512 and 8,192
    /// worse. Prefetching the next block of rows whole instead measured slower (its 160 KB and
    /// more pushed the current block out of L2). One or two activations are bound by memory,
    /// and their tile asks for nothing.
    const PREFETCH_BYTES: usize = 2048;

    /// Asks for the lines the tile's rows will read `PREFETCH_BYTES` of a row ahead of `step`:
    /// as stored (`STRIDE` 32) each row's line once per two steps; interleaved (`STRIDE` 256,
    /// [`super::INTERLEAVED_STRIDE`]) the lines of the tile's rows in that step's chunk, two
    /// rows a line. Past a matrix's end it asks for nothing that matters.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn prefetch<const RM: usize, const STRIDE: usize>(rows: [*const u8; RM], step: usize) {
        let ahead = STRIDE * (step + PREFETCH_BYTES / 32);
        if STRIDE == 32 {
            if step.is_multiple_of(2) {
                for row in rows {
                    super::super::x86::prefetch_l2(row.wrapping_add(ahead), 1);
                }
            }
        } else {
            for row in rows.iter().step_by(2) {
                super::super::x86::prefetch_l2(row.wrapping_add(ahead), 1);
            }
        }
    }

    /// `RM` rows dotted with `RN` activation rows, `[row][activation]`.
    ///
    /// # Safety
    /// AVX-512 F, BW and VL, AVX2, FMA and F16C; `cols` a multiple of 8; row `m`'s weights
    /// readable in chunks of sixteen (32 bytes) at `rows[m] + STRIDE · k` for every
    /// `k < cols / 16`, and its last eight at `rows[m] + STRIDE · (cols / 16)` when `cols % 16`
    /// is 8 (`STRIDE` 32: the row as stored; 256: a row of an interleaved group, whose columns
    /// are whole chunks); `cols` values at every `xs[j]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    pub(super) unsafe fn tile<
        const KIND: u8,
        const RM: usize,
        const RN: usize,
        const STRIDE: usize,
    >(
        rows: [*const u8; RM],
        xs: [*const f32; RN],
        cols: usize,
    ) -> [[f32; RN]; RM] {
        // SAFETY: as the caller promises; every load reads inside the first `cols` weights
        // and values.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); RN]; RM];
            let steps = cols / 16;
            for step in 0..steps {
                let i = 16 * step;
                if RN > 2 {
                    prefetch::<RM, STRIDE>(rows, step);
                }
                let w: [__m512; RM] =
                    std::array::from_fn(|m| load16::<KIND>(rows[m].add(STRIDE * step)));
                for j in 0..RN {
                    let x = _mm512_loadu_ps(xs[j].add(i));
                    for m in 0..RM {
                        acc[m][j] = _mm512_fmadd_ps(w[m], x, acc[m][j]);
                    }
                }
            }
            if cols % 16 == 8 {
                // The last eight weights belong to the even accumulator: the low lanes.
                let i = 16 * steps;
                let w: [__m512; RM] =
                    std::array::from_fn(|m| load8::<KIND>(rows[m].add(STRIDE * steps)));
                for j in 0..RN {
                    let x = _mm512_zextps256_ps512(_mm256_loadu_ps(xs[j].add(i)));
                    for m in 0..RM {
                        acc[m][j] = _mm512_mask3_fmadd_ps(w[m], x, acc[m][j], 0x00ff);
                    }
                }
            }
            let mut out = [[0f32; RN]; RM];
            for m in 0..RM {
                for j in 0..RN {
                    out[m][j] = sum(acc[m][j]);
                }
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! AVX2 with F16C: eight weights a load, converted to f32 once and multiplied into each
    //! activation's accumulator.
    use std::arch::x86_64::*;

    use super::HalfKind;

    /// Eight weights from 16 bytes at `at`, as f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(kind: HalfKind, at: *const u8) -> __m256 {
        // SAFETY: the caller guarantees 16 readable bytes at `at`, and AVX2 and F16C.
        unsafe {
            let raw = _mm_loadu_si128(at as *const __m128i);
            match kind {
                HalfKind::F16 => _mm256_cvtph_ps(raw),
                // A bf16 is the top half of an f32.
                HalfKind::Bf16 => {
                    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16))
                }
            }
        }
    }

    /// The eight lanes of `v`, added as the reference adds them.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum_lanes(v: __m256) -> f32 {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is 32 bytes; the caller guarantees AVX2.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        super::add_lanes(lanes)
    }

    /// One row dotted with `N` activation rows: the same operations for each whatever `N` is.
    /// Two accumulators per activation (even and odd groups of eight weights), so that a
    /// single row is not held up by one chain of fused multiply-adds, each waiting for the last.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(
        kind: HalfKind,
        row: &[u8],
        xs: [&[f32]; N],
    ) -> [f32; N] {
        let cols = row.len() / 2;
        // SAFETY: the caller guarantees AVX2, FMA and F16C, `cols` a multiple of 8 and `cols`
        // values in every `xs[j]`; each load reads 16 bytes of the row or 8 values of an
        // activation inside those bounds.
        unsafe {
            let mut even = [_mm256_setzero_ps(); N];
            let mut odd = [_mm256_setzero_ps(); N];
            let w = row.as_ptr();
            let pairs = cols / 16;
            for pair in 0..pairs {
                let i = 16 * pair;
                let first = load8(kind, w.add(2 * i));
                let second = load8(kind, w.add(2 * i + 16));
                for j in 0..N {
                    let x = xs[j].as_ptr().add(i);
                    even[j] = _mm256_fmadd_ps(first, _mm256_loadu_ps(x), even[j]);
                    odd[j] = _mm256_fmadd_ps(second, _mm256_loadu_ps(x.add(8)), odd[j]);
                }
            }
            if cols % 16 == 8 {
                let i = 16 * pairs;
                let last = load8(kind, w.add(2 * i));
                for j in 0..N {
                    let x = _mm256_loadu_ps(xs[j].as_ptr().add(i));
                    even[j] = _mm256_fmadd_ps(last, x, even[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = sum_lanes(_mm256_add_ps(even[j], odd[j]));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u64, len: usize) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    fn encode(kind: HalfKind, values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| match kind {
                HalfKind::F16 => f16::from_f32(v).to_le_bytes(),
                HalfKind::Bf16 => bf16::from_f32(v).to_le_bytes(),
            })
            .collect()
    }

    /// The kernels equal the reference bit for bit: the same products, fused the same way,
    /// summed in the same lanes and order.
    #[test]
    fn every_kernel_equals_the_reference_bit_for_bit() {
        let isa = crate::kernels::isa();
        for kind in [HalfKind::F16, HalfKind::Bf16] {
            for seed in 1..20u64 {
                let cols = 8 * (1 + seed as usize % 37);
                let row = encode(kind, &random(seed, cols));
                let xs: Vec<Vec<f32>> = (0..7).map(|j| random(seed * 100 + j, cols)).collect();
                let views: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
                let mut out = vec![0f32; xs.len()];
                match kind {
                    HalfKind::F16 => crate::kernels::dot_many::<F16>(isa, &row, &views, &mut out),
                    HalfKind::Bf16 => crate::kernels::dot_many::<Bf16>(isa, &row, &views, &mut out),
                }
                for (j, x) in xs.iter().enumerate() {
                    assert_eq!(
                        out[j].to_bits(),
                        dot_reference(kind, &row, x).to_bits(),
                        "{kind:?} seed {seed} activation {j}"
                    );
                }
            }
        }
    }

    /// The reference is the f32 dot product of the widened weights, within float rounding.
    #[test]
    fn the_reference_is_the_dot_product_of_the_widened_weights() {
        for kind in [HalfKind::F16, HalfKind::Bf16] {
            let cols = 512;
            let row = encode(kind, &random(3, cols));
            let x = random(4, cols);
            let exact: f64 = row
                .chunks_exact(2)
                .zip(&x)
                .map(|(b, &x)| f64::from(kind.to_f32([b[0], b[1]])) * f64::from(x))
                .sum();
            let got = dot_reference(kind, &row, &x);
            assert!(
                (f64::from(got) - exact).abs() < 1e-4,
                "{kind:?}: {got} vs {exact}"
            );
        }
    }

    /// The tiled matmul equals the reference bit for bit at every shape a tile can take: rows
    /// that do not fill a tile, one to more than six activations, rows ending on half a
    /// register.
    #[test]
    fn the_tiled_matmul_equals_the_reference_bit_for_bit() {
        for kind in [HalfKind::F16, HalfKind::Bf16] {
            for (rows, cols, n) in [
                (1, 8, 1),
                (4, 16, 1),
                (7, 24, 3),
                (13, 40, 7),
                (18, 64, 13),
                (33, 136, 6),
            ] {
                let weights = encode(kind, &random(rows as u64 * 7 + cols as u64, rows * cols));
                let xs = random(n as u64 + 99, n * cols);
                let mut out = vec![f32::NAN; n * rows];
                match kind {
                    HalfKind::F16 => F16::matmul(&weights, rows, cols, &xs, &mut out),
                    HalfKind::Bf16 => Bf16::matmul(&weights, rows, cols, &xs, &mut out),
                }
                for j in 0..n {
                    for r in 0..rows {
                        let expected = dot_reference(
                            kind,
                            &weights[r * cols * 2..(r + 1) * cols * 2],
                            &xs[j * cols..(j + 1) * cols],
                        );
                        assert_eq!(
                            out[j * rows + r].to_bits(),
                            expected.to_bits(),
                            "{kind:?} {rows}x{cols}, {n} activations: activation {j}, row {r}"
                        );
                    }
                }
            }
        }
    }

    /// The interleaved copy holds each row's chunks where `interleave` says, and refuses the
    /// shapes it does not take.
    #[test]
    fn interleaving_puts_every_chunk_of_every_row_in_its_place() {
        let (rows, cols) = (16, 48);
        let weights = encode(HalfKind::F16, &random(5, rows * cols));
        let copy = interleave(&weights, rows, cols, 2).expect("interleaved");
        assert_eq!(copy.len(), weights.len());
        for r in 0..rows {
            for chunk in 0..cols / 16 {
                let at = (r / 8) * 8 * cols * 2 + chunk * 256 + (r % 8) * 32;
                let from = r * cols * 2 + chunk * 32;
                assert_eq!(
                    &copy[at..at + 32],
                    &weights[from..from + 32],
                    "row {r} chunk {chunk}"
                );
            }
        }
        assert!(
            interleave(&weights, 12, 64, 1).is_none(),
            "rows not in groups of eight"
        );
        assert!(
            interleave(&weights[..16 * 40 * 2], 16, 40, 1).is_none(),
            "half a chunk"
        );
        assert!(
            interleave(&weights[2..], rows, cols, 1).is_none(),
            "bytes not the matrix's"
        );
    }

    /// From the interleaved copy, every product is the stored rows' bit for bit, for a decode
    /// step's tiles and a batch's, in both kinds.
    #[test]
    fn the_interleaved_matmul_gives_the_stored_rows_bits() {
        if !interleaves(crate::kernels::isa(), 8, 16) {
            return;
        }
        for kind in [HalfKind::F16, HalfKind::Bf16] {
            for (rows, cols) in [(8, 16), (24, 80), (40, 512)] {
                let weights = encode(kind, &random(rows as u64 + cols as u64, rows * cols));
                let copy = interleave(&weights, rows, cols, 1).expect("interleaved");
                for n in [1, 2, 3, 7, 13] {
                    let xs = random(n as u64 * 31, n * cols);
                    let (mut stored, mut interleaved) =
                        (vec![0f32; n * rows], vec![1f32; n * rows]);
                    match kind {
                        HalfKind::F16 => {
                            F16::matmul(&weights, rows, cols, &xs, &mut stored);
                            F16::matmul_interleaved(&copy, rows, cols, &xs, &mut interleaved);
                        }
                        HalfKind::Bf16 => {
                            Bf16::matmul(&weights, rows, cols, &xs, &mut stored);
                            Bf16::matmul_interleaved(&copy, rows, cols, &xs, &mut interleaved);
                        }
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&interleaved),
                        bits(&stored),
                        "{kind:?} {rows}x{cols}, {n} rows"
                    );
                }
            }
        }
    }

    #[test]
    fn the_matmul_dots_every_row_with_every_activation() {
        let (rows, cols, n) = (13, 64, 6);
        let values = random(9, rows * cols);
        let weights = encode(HalfKind::F16, &values);
        let xs = random(10, n * cols);
        let mut out = vec![0f32; n * rows];
        crate::kernels::matmul::<F16>(&weights, rows, cols, &xs, &mut out);
        for j in 0..n {
            for r in 0..rows {
                let expected = dot_reference(
                    HalfKind::F16,
                    &weights[r * cols * 2..(r + 1) * cols * 2],
                    &xs[j * cols..(j + 1) * cols],
                );
                assert_eq!(out[j * rows + r], expected, "activation {j}, row {r}");
            }
        }
    }
}
