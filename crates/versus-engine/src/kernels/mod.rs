//! Hand-written CPU kernels for the matrices as files store them (Q4_K, Q5_K, Q6_K, Q8_0, F16,
//! BF16), where candle's generic quantized matmul leaves memory bandwidth unused: a matrix times
//! one activation row (decode) or a few (batched decode, prefill), with the activations quantized
//! (to Q8_K, to Q8_0) exactly as llama.cpp quantizes them, split over candle's persistent thread
//! pool. Q4_K, Q5_K, Q6_K and Q8_0 matrices whose rows fill groups of eight go through eight-row
//! kernels over interleaved copies (`q4k_x8` on AVX2 and AVX-512 VNNI machines, `q5k_x8`,
//! `q6k_x8` and `q8_0_x8` on AVX-512 VNNI ones; on those, long batches of the K-quants and
//! Q4_K's batches from five rows go through `panel`'s bands of sixteen rows instead, with the
//! same results), and on AVX-512 a mapped file's F16 and BF16
//! matrices through `half`'s tiles over copies with each group's rows side by side; on AVX-512
//! the copies are made in the background, and until then each matrix is read as stored with the
//! copy's results bit for bit (`matrix::Kernel`).
//!
//! Why not candle's: on two cores its one-row quantized matmul read weights at about 11.6 GB/s
//! (Q4_K) and 11.8 GB/s (Q8_0) against 25 GB/s of bandwidth, where these read 19.9 and 14.1
//! (`cargo bench -p versus-engine --bench kernels`), and the tiled kernels unpack a block once
//! for several activation rows where candle unpacks it for each.
//!
//! Exactness: each kernel's integer dot products equal the scalar reference's bit for bit, and
//! the result equals it within float rounding (the order of the float sums differs); the tests
//! below check both on random blocks.

pub mod half;
pub mod panel;
pub mod q4k;
pub mod q4k_x8;
pub mod q5k;
pub mod q5k_x8;
pub mod q6k;
pub mod q6k_x8;
pub mod q8_0;
pub mod q8_0_x8;
pub mod q8k;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// Whether the decoder uses these kernels where they apply: 0 not decided yet, then a
/// [`Setting`] as `u8`.
static SETTING: AtomicU8 = AtomicU8::new(0);

/// Whether the decoder uses these kernels (`VERSUS_KERNELS`, or [`set_enabled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    /// Where this CPU has their SIMD kernels (AVX2, AVX-512), and for F16 and BF16 anywhere;
    /// elsewhere candle's matmul (see [`used_for`]). The default.
    Auto = 1,
    /// Everywhere they apply, the scalar reference included (`VERSUS_KERNELS=on`).
    On = 2,
    /// Nowhere: candle's matmul for everything (`VERSUS_KERNELS=off`, for comparing against it
    /// or ruling the kernels out when chasing a bug).
    Off = 3,
}

fn setting() -> Setting {
    match SETTING.load(Ordering::Relaxed) {
        1 => Setting::Auto,
        2 => Setting::On,
        3 => Setting::Off,
        _ => {
            let setting = match std::env::var("VERSUS_KERNELS").as_deref() {
                Ok("off") => Setting::Off,
                Ok("on") => Setting::On,
                _ => Setting::Auto,
            };
            SETTING.store(setting as u8, Ordering::Relaxed);
            setting
        }
    }
}

/// Whether the decoder multiplies a matrix with these kernels: a quantized one (`quantized`:
/// Q4_K, Q5_K, Q6_K, Q8_0) or a half-precision one (F16, BF16).
///
/// By default, a quantized matrix on a CPU with neither AVX2 nor AVX-512 (aarch64 among them)
/// goes to candle's matmul: there these kernels are the scalar reference, and candle's are
/// faster (it has NEON ones for these formats). Measured on the 2-core development machine
/// with the scalar reference forced (`VERSUS_ISA=portable`) against candle's own x86 kernels
/// (`VERSUS_KERNELS=off`), Phi-4-shaped 2-layer GGUF files, tokens/s: Q4_K decode 10.2 against
/// 17.4 and prefill 29.6 against 226.6, Q8_0 decode 10.4 against 13.1. Half-precision
/// matrices stay with these kernels everywhere: candle widens them to f32 on load, which
/// doubles their memory (on x86 without F16C the scalar reference decoded an F16 file at under
/// 0.7 tokens/s against candle's 2.3 in f32; aarch64 converts halves in hardware, and no
/// aarch64 machine was at hand to measure).
pub fn used_for(quantized: bool) -> bool {
    decide(setting(), isa(), quantized)
}

fn decide(setting: Setting, isa: Isa, quantized: bool) -> bool {
    match setting {
        Setting::Off => false,
        Setting::On => true,
        Setting::Auto => !quantized || isa != Isa::Portable,
    }
}

/// Turns the kernels on (everywhere they apply) or off for the whole process (the benchmarks
/// compare both in one run; the tests turn them on).
pub fn set_enabled(on: bool) {
    let setting = if on { Setting::On } else { Setting::Off };
    SETTING.store(setting as u8, Ordering::Relaxed);
}

/// `out[i] = f(i)` for every row `i` of `out`, rows split over candle's CPU pool: the one its
/// own quantized matmuls and other CPU ops run on, sized to the physical cores, whose workers
/// spin briefly between calls. Sharing it matters: a second pool's threads compete with candle's
/// spinning ones on the same cores between every op of a decode step (on two cores the Q4_K
/// kernel read 12.8 GB/s on a rayon pool of its own and 19.9 on this one, in separate runs).
pub fn for_each_row(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync) {
    let rows = out.len();
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        for i in range {
            // SAFETY: `execute_chunked` hands every index of 0..rows to exactly one call, so
            // each element is written by one thread only, and `out` outlives the call.
            #[allow(unsafe_code)]
            unsafe {
                shared.write(i, f(i));
            }
        }
    });
}

/// Values in a batch of activation rows from which [`activation_rows`] splits the rows over
/// candle's CPU pool: below, the hand-off costs more than the second core gives.
const ACTIVATION_ROWS_PARALLEL_FROM: usize = 1 << 16;

/// `convert` (an activation row's quantization for a format's dot products) applied to each
/// row of `xs` (rows of `cols` values), a prefill's rows split over candle's CPU pool.
/// Converted on the calling thread, a 128-row prefill's activations kept the other core
/// waiting about 2% of the time, more before wide matrices such as `down_proj`.
pub(crate) fn activation_rows<T: Send>(
    xs: &[f32],
    cols: usize,
    convert: impl Fn(&[f32]) -> Vec<T> + Sync,
) -> Vec<Vec<T>> {
    let rows: Vec<&[f32]> = xs.chunks_exact(cols).collect();
    if rows.len() < 2 || xs.len() < ACTIVATION_ROWS_PARALLEL_FROM || threads() == 1 {
        return rows.into_iter().map(convert).collect();
    }
    map_on_pool(rows.len(), |row| convert(rows[row]))
}

/// `f(i)` for every `i` in `0..n`, in order, the calls split over candle's CPU pool: each
/// result goes into a slot of its own behind a lock that only its one thread takes, so the
/// locks are never contended (they let the pool's `Fn` closure store results without
/// `unsafe`). The pool takes one call at a time, and its caller's share of a call must not
/// make another (candle marks only its workers as inside the pool), so `f` must not use the
/// pool itself.
pub(crate) fn map_on_pool<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<std::sync::Mutex<Option<T>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    candle_core::utils::barrier_pool().execute_chunked(n, |range| {
        for i in range {
            *slots[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(f(i));
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                // The pool propagates a worker's panic before returning, so every index ran.
                .expect("execute_chunked hands every index to one call")
        })
        .collect()
}

/// Activations per call of a tile kernel, at most: each weight block is unpacked once for this
/// many activation rows. Four keeps a tile's accumulators in AVX2's sixteen registers; the
/// AVX-512 kernels, with thirty-two, take eight (see [`Format::tile`]).
pub const TILE: usize = 8;

/// A weight format the kernels multiply: its blocks, what an activation row is turned into for
/// its dot products, the scalar reference every kernel is tested against, and the kernels.
pub trait Format {
    /// One block of an activation row as this format's dot products take it (a Q8_K or Q8_0
    /// block quantized as llama.cpp quantizes it, or an f32).
    type Activation: Send + Sync;
    /// Weights per block.
    const BLOCK: usize;
    /// Bytes per block.
    const BLOCK_BYTES: usize;

    /// An activation row (a multiple of `BLOCK` long) as this format's dot products take it.
    fn activations(xs: &[f32]) -> Vec<Self::Activation>;

    /// One row (its bytes) dotted with one activation row, by the scalar reference.
    fn dot_reference(row: &[u8], ys: &[Self::Activation]) -> f32;

    /// One row dotted with one to [`Format::tile`] activation rows by the fastest kernel
    /// `isa` has, each computed exactly as it would be alone. An activation row shorter than
    /// the weight row panics (its blocks are read by bounds-checked index).
    fn dot_tile(isa: Isa, row: &[u8], ys: &[&[Self::Activation]], out: &mut [f32]);

    /// The most activation rows `dot_tile` takes at once with `isa` (at most [`TILE`]).
    fn tile(isa: Isa) -> usize {
        let _ = isa;
        4
    }
}

/// Calls a tile kernel `$kernel` (a function of an array of one to [`TILE`] activation rows)
/// on `$tile`, writing its results to `$out`. Only the x86 kernels have tiles.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch_tile {
    ($tile:expr, $out:expr, |$ys:ident| $kernel:expr) => {
        match $tile {
            [a] => {
                let $ys = [*a];
                $out.copy_from_slice(&$kernel)
            }
            [a, b] => {
                let $ys = [*a, *b];
                $out.copy_from_slice(&$kernel)
            }
            [a, b, c] => {
                let $ys = [*a, *b, *c];
                $out.copy_from_slice(&$kernel)
            }
            [a, b, c, d] => {
                let $ys = [*a, *b, *c, *d];
                $out.copy_from_slice(&$kernel)
            }
            [a, b, c, d, e] => {
                let $ys = [*a, *b, *c, *d, *e];
                $out.copy_from_slice(&$kernel)
            }
            [a, b, c, d, e, f] => {
                let $ys = [*a, *b, *c, *d, *e, *f];
                $out.copy_from_slice(&$kernel)
            }
            [a, b, c, d, e, f, g] => {
                let $ys = [*a, *b, *c, *d, *e, *f, *g];
                $out.copy_from_slice(&$kernel)
            }
            [a, b, c, d, e, f, g, h] => {
                let $ys = [*a, *b, *c, *d, *e, *f, *g, *h];
                $out.copy_from_slice(&$kernel)
            }
            _ => $crate::kernels::unreachable_tile(),
        }
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use dispatch_tile;

#[cfg(target_arch = "x86_64")]
#[cold]
fn unreachable_tile() {
    debug_assert!(false, "tiles are one to TILE activations long");
}

/// One row dotted with one activation row, by the fastest kernel this CPU has.
pub fn dot<F: Format>(row: &[u8], ys: &[F::Activation]) -> f32 {
    let mut out = [0f32];
    dot_many::<F>(isa(), row, &[ys], &mut out);
    out[0]
}

/// One row dotted with several activation rows: `out[j] = row · ys[j]`, the row's blocks
/// unpacked once for every [`TILE`] activations, each result what [`dot`] gives alone.
pub fn dot_many<F: Format>(isa: Isa, row: &[u8], ys: &[&[F::Activation]], out: &mut [f32]) {
    assert_eq!(ys.len(), out.len(), "one output per activation row");
    let size = F::tile(isa);
    for (tile, out) in ys.chunks(size).zip(out.chunks_mut(size)) {
        F::dot_tile(isa, row, tile, out);
    }
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for the (rows x cols) matrix `weights` in format `F`:
/// each activation row turned into `F`'s activation blocks once, weight rows split over the
/// kernel pool.
pub fn matmul<F: Format>(weights: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    assert!(
        cols.is_multiple_of(F::BLOCK),
        "rows of {cols} fill whole blocks of {}",
        F::BLOCK
    );
    let activations = activation_rows(xs, cols, F::activations);
    let views: Vec<&[F::Activation]> = activations.iter().map(Vec::as_slice).collect();
    let isa = isa();
    split_rows(
        weights,
        rows,
        cols / F::BLOCK * F::BLOCK_BYTES,
        &views,
        F::tile(isa),
        out,
        |row, tile, out| F::dot_tile(isa, row, tile, out),
    );
}

/// Weight rows a thread takes together: each tile of activations is multiplied with all of
/// them before the next tile, so the tile stays in L1 and the rows in L2 (for a batch, the
/// other order streamed every activation row from L2 once per weight row).
const ROW_BLOCK: usize = 16;

/// `out[j · rows + r] = dot(row r of weights, activation j)` for a matrix of `rows` rows of
/// `row_bytes` bytes and `ys.len()` activation rows: weight rows split over the kernel pool,
/// each read from memory once for every activation. `dot_tile` takes one row and one to
/// [`TILE`] activations.
fn split_rows<A: Sync>(
    weights: &[u8],
    rows: usize,
    row_bytes: usize,
    ys: &[A],
    tile_size: usize,
    out: &mut [f32],
    dot_tile: impl Fn(&[u8], &[A], &mut [f32]) + Sync,
) {
    assert_eq!(
        weights.len(),
        rows * row_bytes,
        "weight bytes for {rows} rows"
    );
    assert_eq!(out.len(), rows * ys.len(), "outputs for {rows} rows");
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        let mut tile_out = [0f32; TILE];
        for start in range.clone().step_by(ROW_BLOCK) {
            let block = start..(start + ROW_BLOCK).min(range.end);
            let next_block = (start + ROW_BLOCK)..(start + 2 * ROW_BLOCK).min(range.end);
            for (tile_index, tile) in ys.chunks(tile_size).enumerate() {
                for r in block.clone() {
                    // A batch's first pass over this block asks for the next block's rows (into
                    // L2), so that reading them overlaps the multiplies of the passes left; see
                    // `prefetch_l2`. One activation row is bound by memory and the hardware's
                    // own prefetcher keeps up with it.
                    if tile_index == 0 && ys.len() > 1 {
                        let ahead = r + ROW_BLOCK;
                        if next_block.contains(&ahead) {
                            prefetch_l2(&weights[ahead * row_bytes..(ahead + 1) * row_bytes]);
                        }
                    }
                    let tile_out = &mut tile_out[..tile.len()];
                    dot_tile(&weights[r * row_bytes..(r + 1) * row_bytes], tile, tile_out);
                    for (t, value) in tile_out.iter().enumerate() {
                        let j = tile_index * tile_size + t;
                        // SAFETY: `execute_chunked` hands every row to exactly one call, so
                        // each element `j · rows + r` is written by one thread only; it is in
                        // bounds (asserted above), and `out` outlives the call.
                        #[allow(unsafe_code)]
                        unsafe {
                            shared.write(j * rows + r, *value);
                        }
                    }
                }
            }
        }
    });
}

/// Asks for `bytes` to be brought into L2 (`prefetcht1`), one prefetch per cache line. Why:
/// with two or more activation rows the row kernels compute long enough per byte that, left to
/// the hardware, a pass waited on memory and memory waited on the pass (a batch of eight took
/// the time to read the weights plus the time to multiply them). Into L2, not L1: see
/// `q4k_x8`'s `PREFETCH_BLOCKS`. Measured on the 2-core development machine (`cargo bench -p
/// versus-engine --bench kernels -- q6k q5k`, interleaved runs), a decode step's five
/// projections for eight activation rows: Q6_K 75-84 ms against 122-138, Q5_K 90-95 against
/// 99-117; four rows: Q6_K 48-57 against 75-87.
fn prefetch_l2(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch_l2(bytes.as_ptr(), bytes.len());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// An interleaved matrix (`q4k_x8`, `q5k_x8`, `q6k_x8`, `q8_0_x8`): anonymous memory of its own, which starts on a
/// page (so its group blocks, whole cache lines, start on cache lines) and asks the kernel for
/// huge pages: filling a 1 GB matrix on load then takes 500 page faults instead of 250,000,
/// and a decode step's reads miss the TLB less.
pub struct Interleaved {
    map: memmap2::MmapMut,
    len: usize,
}

impl std::ops::Deref for Interleaved {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl std::ops::DerefMut for Interleaved {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

impl Interleaved {
    /// `len` zero bytes, or `None` when the system will not map them.
    fn zeroed(len: usize) -> Option<Interleaved> {
        // An empty map is refused by mmap; one byte stands in for it.
        let map = memmap2::MmapMut::map_anon(len.max(1)).ok()?;
        #[cfg(target_os = "linux")]
        {
            // Huge pages are an optimisation: a kernel without them leaves this a no-op or an
            // error, and the map works the same either way.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Some(Interleaved { map, len })
    }
}

/// Fills `out`, groups of `group_bytes` bytes, with `fill(group index, its bytes)` on
/// `threads` threads: interleaving a matrix on load reads and writes every byte once, which on
/// one thread took longer than the file takes to map (the background thread, which runs while
/// the model answers, takes one).
fn fill_groups(
    out: &mut [u8],
    group_bytes: usize,
    threads: usize,
    fill: impl Fn(usize, &mut [u8]) + Sync,
) {
    if group_bytes == 0 || out.is_empty() {
        return;
    }
    let groups = out.len() / group_bytes;
    if threads <= 1 {
        for (group, group_out) in out.chunks_exact_mut(group_bytes).enumerate() {
            fill(group, group_out);
        }
        return;
    }
    let per_thread = groups.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (part, bytes) in out.chunks_mut(per_thread * group_bytes).enumerate() {
            let fill = &fill;
            scope.spawn(move || {
                for (offset, group_out) in bytes.chunks_exact_mut(group_bytes).enumerate() {
                    fill(part * per_thread + offset, group_out);
                }
            });
        }
    });
}

/// Whether a `rows x cols` matrix takes an eight-row kernel on `isa`: interleaving is on
/// (`VERSUS_INTERLEAVE`), the kernel has `isa` (`has_kernel`), and the rows fill whole groups
/// and the columns whole blocks of `block` weights, neither empty. Every `applies` in the
/// `*_x8` modules is this with its own instruction sets and block.
fn eight_rows_apply(has_kernel: bool, rows: usize, cols: usize, block: usize) -> bool {
    interleaving_enabled()
        && has_kernel
        && rows > 0
        && cols > 0
        && rows.is_multiple_of(GROUP_ROWS)
        && cols.is_multiple_of(block)
}

/// A K-quant matrix (`rows x cols`, rows one after another, blocks of `QK_K` weights in
/// `block_bytes` bytes) interleaved into group blocks of `group_block_bytes`, on `threads`
/// threads: `put_row(group block, r, block)` places row `r`'s block of each group. `None` when
/// the rows do not fill whole groups, the bytes are not the matrix's or the system will not
/// map memory for the copy. The driver `q4k_x8`, `q5k_x8` and `q6k_x8` share.
fn interleave_k_quant(
    bytes: &[u8],
    (rows, cols): (usize, usize),
    (block_bytes, group_block_bytes): (usize, usize),
    threads: usize,
    put_row: impl Fn(&mut [u8], usize, &[u8]) + Sync,
) -> Option<Interleaved> {
    if !rows.is_multiple_of(GROUP_ROWS) || !cols.is_multiple_of(q8k::QK_K) {
        return None;
    }
    let blocks = cols / q8k::QK_K;
    let row_bytes = blocks * block_bytes;
    if bytes.len() != rows.checked_mul(row_bytes)? {
        return None;
    }
    let mut out = Interleaved::zeroed(rows / GROUP_ROWS * blocks * group_block_bytes)?;
    fill_groups(
        &mut out,
        blocks * group_block_bytes,
        threads,
        |group, group_out| {
            for (block, dst) in group_out.chunks_exact_mut(group_block_bytes).enumerate() {
                for r in 0..GROUP_ROWS {
                    let start = (group * GROUP_ROWS + r) * row_bytes + block * block_bytes;
                    put_row(dst, r, &bytes[start..start + block_bytes]);
                }
            }
        },
    );
    Some(out)
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved K-quant matrix of panel kind `KIND`
/// (`q4k_x8`'s, `q5k_x8`'s or `q6k_x8`'s group blocks of `group_block_bytes`): a long batch
/// through panels where they apply, any other through the eight-row kernel
/// ([`k_quant_group_products`]); the results are the same bits either way (see `panel`). The
/// `matmul` of `q4k_x8`, `q5k_x8` and `q6k_x8`.
fn k_quant_matmul<const KIND: u8>(
    interleaved: &[u8],
    (rows, cols): (usize, usize),
    group_block_bytes: usize,
    tile: impl Fn(Isa) -> usize,
    (xs, out): (&[f32], &mut [f32]),
    dot_group: impl Fn(Isa, &[u8], &[&[q8k::BlockQ8K]], &mut [[f32; GROUP_ROWS]]) + Sync,
) {
    let n = xs.len() / cols.max(1);
    if panel::applies(isa(), n) {
        return panel::matmul::<KIND>(interleaved, (rows, cols), xs, out);
    }
    if KIND == panel::Q4K && panel::in_registers_applies(isa(), n) {
        return panel::matmul_in_registers(interleaved, (rows, cols), xs, out);
    }
    k_quant_group_products(
        interleaved,
        (rows, cols),
        group_block_bytes,
        tile,
        (xs, out),
        dot_group,
    );
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved K-quant matrix (group blocks of
/// `group_block_bytes`): the activations quantized to Q8_K once, groups split over the kernel
/// pool, each group read once for every tile of `tile` activation rows, which
/// `dot_group(isa, group, tile, out)` multiplies.
fn k_quant_group_products(
    interleaved: &[u8],
    (rows, cols): (usize, usize),
    group_block_bytes: usize,
    tile: impl Fn(Isa) -> usize,
    (xs, out): (&[f32], &mut [f32]),
    dot_group: impl Fn(Isa, &[u8], &[&[q8k::BlockQ8K]], &mut [[f32; GROUP_ROWS]]) + Sync,
) {
    assert!(cols.is_multiple_of(q8k::QK_K) && rows.is_multiple_of(GROUP_ROWS));
    let activations = q8k::quantized_rows(xs, cols);
    let views: Vec<&[q8k::BlockQ8K]> = activations.iter().map(Vec::as_slice).collect();
    let isa = isa();
    split_groups(
        Layout::Interleaved(interleaved),
        rows,
        cols / q8k::QK_K * group_block_bytes,
        &views,
        tile(isa),
        out,
        |group, _, tile_ys, tile_out| match group {
            Group::Interleaved(group) => dot_group(isa, group, tile_ys, tile_out),
            Group::Stored { .. } => unreachable!("a stored K-quant matrix is read a row at a time"),
        },
    );
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for a K-quant matrix as the file stores it (blocks of
/// `block_bytes`), a row at a time by `dot_tile(isa, row, tile, out)`, which for the `*_x8`
/// modules' `matmul_stored` takes the eight-row kernel's float order.
fn k_quant_rows_in_x8_order(
    stored: &[u8],
    (rows, cols): (usize, usize),
    block_bytes: usize,
    (xs, out): (&[f32], &mut [f32]),
    dot_tile: impl Fn(Isa, &[u8], &[&[q8k::BlockQ8K]], &mut [f32]) + Sync,
) {
    assert!(cols.is_multiple_of(q8k::QK_K));
    let activations = q8k::quantized_rows(xs, cols);
    let views: Vec<&[q8k::BlockQ8K]> = activations.iter().map(Vec::as_slice).collect();
    let isa = isa();
    split_rows(
        stored,
        rows,
        cols / q8k::QK_K * block_bytes,
        &views,
        TILE,
        out,
        |row, tile, out| dot_tile(isa, row, tile, out),
    );
}

/// Whether matrices are interleaved where a kernel for that exists: yes, unless
/// `VERSUS_INTERLEAVE=off` (for comparing with the row-at-a-time kernels).
pub fn interleaving_enabled() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    !*OFF.get_or_init(|| std::env::var("VERSUS_INTERLEAVE").is_ok_and(|value| value == "off"))
}

/// Rows in a group of an interleaved matrix (`q4k_x8`, `q5k_x8`, `q6k_x8`, `q8_0_x8`, `half`).
pub const GROUP_ROWS: usize = 8;

/// A matrix handed to [`split_groups`], by how its bytes hold its groups of eight rows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Layout<'a> {
    /// Interleaved: group `g` is bytes `g · group_bytes..`, ready for the kernel.
    Interleaved(&'a [u8]),
    /// As the file stores them, eight rows after eight (Q8_0 until its interleaved copy is
    /// made, see `matrix::Kernel`): the first pass over a group interleaves it in registers as
    /// it multiplies (and into a buffer of the thread's own when more passes follow, which
    /// read that).
    Stored(&'a [u8]),
}

/// A group of eight rows as [`split_groups`] hands it to a kernel.
pub(crate) enum Group<'a> {
    /// Interleaved: multiply it.
    Interleaved(&'a [u8]),
    /// As stored: interleave it while multiplying it, and into `into` (as many bytes) for
    /// the passes after, if there are any.
    Stored {
        stored: &'a [u8],
        into: Option<&'a mut [u8]>,
    },
}

thread_local! {
    /// Each kernel thread's buffer for [`Layout::Stored`]'s interleaved groups: grown once to
    /// the widest matrix's pair of groups, then reused by every call.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `out[j · rows + r] = dot(row r, activation j)` for a matrix of `rows / 8` groups of
/// `group_bytes` bytes (`layout`): groups split over the kernel pool, each group's bytes read
/// from memory once for every tile of activations. `dot_group(group, ahead, tile, out)` takes
/// a group and one to [`TILE`] activation rows, and asks for `ahead` (empty, or the bytes of a
/// group to come) to be brought into L2 as it goes.
fn split_groups<A: Sync>(
    layout: Layout<'_>,
    rows: usize,
    group_bytes: usize,
    ys: &[A],
    tile_size: usize,
    out: &mut [f32],
    dot_group: impl Fn(Group<'_>, &[u8], &[A], &mut [[f32; GROUP_ROWS]]) + Sync,
) {
    assert!(rows.is_multiple_of(GROUP_ROWS) && (1..=TILE).contains(&tile_size));
    let count = rows / GROUP_ROWS;
    let (Layout::Interleaved(bytes) | Layout::Stored(bytes)) = layout;
    assert_eq!(bytes.len(), count * group_bytes, "bytes of {count} groups");
    assert_eq!(out.len(), rows * ys.len(), "outputs for {rows} rows");
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(count, |range| {
        SCRATCH.with_borrow_mut(|scratch| {
            if let Layout::Stored(_) = layout {
                // Over-allocated by a line so that the groups can start on one.
                let wanted = 2 * group_bytes + 64;
                if scratch.len() < wanted {
                    scratch.resize(wanted, 0);
                }
            }
            let aligned = scratch.as_ptr().align_offset(64).min(64);
            let mut tile_out = [[0f32; GROUP_ROWS]; TILE];
            // Two groups at a time: each tile of activations meets both while they are in L1.
            for start in range.clone().step_by(2) {
                let pair = start..(start + 2).min(range.end);
                let next_pair = pair.end..(pair.end + 2).min(range.end);
                for (tile_index, tile) in ys.chunks(tile_size).enumerate() {
                    for (slot, group) in pair.clone().enumerate() {
                        let own = &bytes[group * group_bytes..][..group_bytes];
                        let group_view = match layout {
                            Layout::Interleaved(_) => Group::Interleaved(own),
                            Layout::Stored(_) => {
                                let into =
                                    &mut scratch[aligned + slot * group_bytes..][..group_bytes];
                                if tile_index == 0 {
                                    let later_passes = ys.len() > tile_size;
                                    Group::Stored {
                                        stored: own,
                                        into: later_passes.then_some(into),
                                    }
                                } else {
                                    Group::Interleaved(into)
                                }
                            }
                        };
                        // A batch's first pass over a pair asks for the pair after it, so that
                        // reading it overlaps the multiplies (see `prefetch_l2`). One activation
                        // row is bound by memory and the hardware's own prefetcher keeps up.
                        let later = next_pair.start + slot;
                        let ahead = if tile_index == 0 && ys.len() > 1 && later < next_pair.end {
                            &bytes[later * group_bytes..][..group_bytes]
                        } else {
                            &[]
                        };
                        let tile_out = &mut tile_out[..tile.len()];
                        dot_group(group_view, ahead, tile, tile_out);
                        for (t, values) in tile_out.iter().enumerate() {
                            let j = tile_index * tile_size + t;
                            for (r, value) in values.iter().enumerate() {
                                // SAFETY: `execute_chunked` hands every group to exactly one
                                // call, so each element `j · rows + row` is written by one
                                // thread only; it is in bounds (asserted above), and `out`
                                // outlives the call.
                                #[allow(unsafe_code)]
                                unsafe {
                                    shared.write(j * rows + group * GROUP_ROWS + r, *value);
                                }
                            }
                        }
                    }
                }
            }
        })
    });
}

/// `out`'s elements, written by several threads at once, each its own.
struct SharedRows(*mut f32);

impl SharedRows {
    /// # Safety
    /// `i` is in bounds and no other thread writes or reads it meanwhile.
    #[allow(unsafe_code)]
    unsafe fn write(&self, i: usize, value: f32) {
        // SAFETY: as the caller promises.
        unsafe { *self.0.add(i) = value }
    }
}

// SAFETY: the pointer is only written at indices that `for_each_row`, `split_rows` and
// `split_groups` hand to one thread each.
#[allow(unsafe_code)]
unsafe impl Sync for SharedRows {}

/// The threads the kernels run on (candle's pool, with the calling thread).
pub fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Which instruction set the kernels use on this machine, chosen at run time.
///
/// The SIMD variants are `#[non_exhaustive]`: outside this crate they cannot be written, only
/// received from [`available`] or [`isa`], which check the CPU. That is what lets the kernel
/// functions that take an `Isa` be safe to call: none can be handed an instruction set the CPU
/// lacks (match them as `Isa::Avx512 { .. }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, BW, VL) and VNNI, besides AVX2, FMA and F16C: Ice Lake and
    /// later Intel server cores, AMD Zen 4 and later. Formats without an AVX-512 kernel use
    /// their AVX2 one.
    #[non_exhaustive]
    Avx512,
    /// x86-64 with AVX2, FMA and F16C (every AVX2 CPU has them).
    #[non_exhaustive]
    Avx2,
    /// Anything else: the scalar reference.
    Portable,
}

impl Isa {
    fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// Every instruction set this CPU can run, best first (the tests check each kernel).
// Without x86 there is nothing to push before the portable kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(clippy::vec_init_then_push))]
pub fn available() -> Vec<Isa> {
    let mut isas = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma") && has!("f16c");
        if avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni") {
            isas.push(Isa::Avx512);
        }
        if avx2 {
            isas.push(Isa::Avx2);
        }
    }
    isas.push(Isa::Portable);
    isas
}

/// The instruction set the kernels use: the best this CPU has, or a lesser one named by
/// `VERSUS_ISA` (`avx2`, `portable`; for comparing kernels on one machine).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let available = available();
        let wanted = std::env::var("VERSUS_ISA").ok();
        wanted
            .and_then(|name| available.iter().copied().find(|isa| isa.name() == name))
            .unwrap_or(available[0])
    })
}

#[cfg(test)]
pub(crate) mod tests {
    //! What every format's kernels are held to, one helper so that a new format is one call.
    use super::*;

    /// By default a CPU without SIMD kernels leaves quantized matrices to candle and keeps
    /// half-precision ones; `on` and `off` decide for every matrix.
    #[test]
    fn the_setting_and_the_cpu_decide_who_multiplies() {
        let cases = [
            (Setting::Auto, Isa::Avx512, true, true),
            (Setting::Auto, Isa::Avx2, true, true),
            (Setting::Auto, Isa::Portable, true, false),
            (Setting::Auto, Isa::Portable, false, true),
            (Setting::On, Isa::Portable, true, true),
            (Setting::Off, Isa::Avx512, true, false),
            (Setting::Off, Isa::Avx512, false, false),
        ];
        for (setting, isa, quantized, expected) in cases {
            assert_eq!(
                decide(setting, isa, quantized),
                expected,
                "{setting:?} on {isa:?}, quantized: {quantized}"
            );
        }
    }

    /// An eight-row kernel's matmul over stored bytes (`matmul_stored`) against its matmul over
    /// the interleaved copy, for 1, 3, 8, 9 and 17 activation rows: the same bits where
    /// `bit_exact`, within float rounding elsewhere.
    pub fn check_stored_matches_copy(
        (stored, copy): (&[u8], &[u8]),
        (rows, cols): (usize, usize),
        bit_exact: bool,
        matmul: fn(&[u8], usize, usize, &[f32], &mut [f32]),
        matmul_stored: fn(&[u8], usize, usize, &[f32], &mut [f32]),
    ) {
        for n in [1, 3, 8, 9, 17] {
            let xs = random_activations(n as u64, n * cols);
            let (mut from_copy, mut as_stored) = (vec![0f32; rows * n], vec![0f32; rows * n]);
            matmul(copy, rows, cols, &xs, &mut from_copy);
            matmul_stored(stored, rows, cols, &xs, &mut as_stored);
            for (i, (a, b)) in from_copy.iter().zip(&as_stored).enumerate() {
                if bit_exact {
                    assert_eq!(a.to_bits(), b.to_bits(), "{n} rows, output {i}: {a} vs {b}");
                } else {
                    assert!(
                        (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                        "{n} rows, output {i}"
                    );
                }
            }
        }
    }

    /// An eight-row kernel on one group (`dot_group` on `isa`): each row within float rounding
    /// of `reference` (relative to `magnitude`, the sum of its blocks' absolute dot products)
    /// for the first activation row, and every activation row's result in a tile of each size
    /// up to `tile` exactly its result alone.
    pub fn check_group_tiles(
        isa: Isa,
        group: &[u8],
        xs: &[Vec<q8k::BlockQ8K>],
        tile: usize,
        (reference, magnitude): ([f32; GROUP_ROWS], [f32; GROUP_ROWS]),
        dot_group: impl Fn(Isa, &[u8], &[&[q8k::BlockQ8K]], &mut [[f32; GROUP_ROWS]]),
    ) {
        let mut alone = [[0f32; GROUP_ROWS]];
        dot_group(isa, group, &[&xs[0]], &mut alone);
        for r in 0..GROUP_ROWS {
            assert!(
                (alone[0][r] - reference[r]).abs() <= 1e-5 * magnitude[r].max(1e-3),
                "{isa:?}, row {r}: {} vs {}",
                alone[0][r],
                reference[r]
            );
        }
        let views: Vec<&[q8k::BlockQ8K]> = xs.iter().map(Vec::as_slice).collect();
        for size in 1..=tile {
            let tile_views = &views[..size];
            let mut together = vec![[0f32; GROUP_ROWS]; size];
            dot_group(isa, group, tile_views, &mut together);
            for (j, view) in tile_views.iter().enumerate() {
                let mut alone = [[0f32; GROUP_ROWS]];
                dot_group(isa, group, std::slice::from_ref(view), &mut alone);
                assert_eq!(
                    together[j], alone[0],
                    "{isa:?}, tile {size}, activation {j}"
                );
            }
        }
    }

    /// Bytes from a seeded xorshift (every byte value appears).
    pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    /// Activations in (-4, 4), seeded.
    pub fn random_activations(seed: u64, len: usize) -> Vec<f32> {
        random_bytes(seed, 3 * len)
            .chunks_exact(3)
            .map(|b| {
                let bits = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
                (bits as f32 / (1u32 << 24) as f32 - 0.5) * 8.0
            })
            .collect()
    }

    /// For format `F`, on random blocks (`blocks(seed, count)` makes `count` of them), with
    /// every instruction set this CPU has:
    /// - the SIMD kernel's integer sums of each block (`simd(isa, ..)`, `None` where that
    ///   instruction set has none of its own) equal the reference's (`reference`) bit for bit;
    /// - a row's dot product equals the scalar reference within float rounding (the order of
    ///   the float sums differs);
    /// - a row dotted with seven activation rows at once gives each exactly what it gets alone.
    pub fn check_format<F: Format, S: PartialEq + std::fmt::Debug>(
        blocks: impl Fn(u64, usize) -> Vec<u8>,
        simd: impl Fn(Isa, &[u8], &F::Activation) -> Option<S>,
        reference: impl Fn(&[u8], &F::Activation) -> S,
    ) {
        for isa in available() {
            for seed in 1..40u64 {
                let count = 1 + (seed as usize % 20);
                let row = blocks(seed, count);
                assert_eq!(row.len(), count * F::BLOCK_BYTES);
                let xs: Vec<Vec<F::Activation>> = (0..7)
                    .map(|j| F::activations(&random_activations(seed * 31 + j, count * F::BLOCK)))
                    .collect();
                let per_block = xs[0].len() / count;
                for (index, bytes) in row.chunks_exact(F::BLOCK_BYTES).enumerate() {
                    let y = &xs[0][index * per_block];
                    if let Some(sums) = simd(isa, bytes, y) {
                        assert_eq!(
                            sums,
                            reference(bytes, y),
                            "{isa:?}, seed {seed}, block {index}"
                        );
                    }
                }
                let magnitude: f32 = row
                    .chunks_exact(F::BLOCK_BYTES)
                    .zip(xs[0].chunks_exact(per_block))
                    .map(|(bytes, y)| F::dot_reference(bytes, y).abs())
                    .sum();
                let views: Vec<&[F::Activation]> = xs.iter().map(Vec::as_slice).collect();
                let mut alone = [0f32];
                dot_many::<F>(isa, &row, &views[..1], &mut alone);
                let slow = F::dot_reference(&row, &xs[0]);
                assert!(
                    (alone[0] - slow).abs() <= 1e-5 * magnitude.max(1e-3),
                    "{isa:?}, seed {seed}: {} vs the reference's {slow}",
                    alone[0]
                );
                let mut together = vec![0f32; views.len()];
                dot_many::<F>(isa, &row, &views, &mut together);
                for (j, view) in views.iter().enumerate() {
                    let mut alone = [0f32];
                    dot_many::<F>(isa, &row, std::slice::from_ref(view), &mut alone);
                    assert_eq!(
                        together[j].to_bits(),
                        alone[0].to_bits(),
                        "{isa:?}, seed {seed}: activation {j} in a batch of seven"
                    );
                }
            }
        }
    }

    /// The matmul writes `out[j · rows + r]` for every weight row r and activation row j.
    #[test]
    fn the_matmul_dots_every_row_with_every_activation() {
        let (rows, cols, n) = (37, 2 * q8k::QK_K, 6);
        let mut weights = random_bytes(11, rows * cols / q8k::QK_K * q6k::BLOCK_BYTES);
        for block in weights.chunks_exact_mut(q6k::BLOCK_BYTES) {
            // A finite scale `d` (random bytes could make it NaN).
            block[208..].copy_from_slice(&::half::f16::from_f32(1e-4).to_le_bytes());
        }
        let xs = random_activations(5, n * cols);
        let mut out = vec![0f32; rows * n];
        matmul::<q6k::Q6K>(&weights, rows, cols, &xs, &mut out);
        let row_bytes = cols / q8k::QK_K * q6k::BLOCK_BYTES;
        for j in 0..n {
            let x = q8k::quantized(&xs[j * cols..(j + 1) * cols]);
            for r in 0..rows {
                let expected = dot::<q6k::Q6K>(&weights[r * row_bytes..(r + 1) * row_bytes], &x);
                assert_eq!(out[j * rows + r], expected, "activation {j}, row {r}");
            }
        }
    }
}
