//! Interleaved Q4_K, Q5_K and Q6_K matrices times long batches of activation rows (a prefill): each
//! band of sixteen rows (two groups) unpacked block by block into weights as bytes (a panel of
//! 5.5 KB, which stays in L1), then met by every activation row, four at a time, with one
//! `dpbusd` per sixteen rows and four weights whose activation bytes come broadcast from memory
//! inside the instruction; each row's three float sums wait in memory between blocks.
//! Q4_K's shorter batches (5 to 31 rows: eight sequences decoded together) take the same bands
//! without a panel ([`matmul_in_registers`]): each load of the two groups merged into one lane a
//! row in a register and met there by up to eight activation rows.
//!
//! Why: the eight-row kernels (`q4k_x8`) unpack a group block for every tile of four or eight
//! activation rows and need a separate broadcast load for each `dpbusd` (their registers hold
//! two lanes of a row, so the activation pattern is eight bytes, which `dpbusd` cannot
//! broadcast itself). A prefill's 128 rows paid the unpacking 16 to 32 times over; here once.
//! On the 2-core development machine a Q5_K_M prefill spent 69% of its time in the eight-row
//! kernel at about 90 G multiply-adds a second a core, where this loop alone measured 190 (a
//! standalone test on cache-resident panels). The file's prefill then measured 446-477
//! tokens/s against 333-367 (`--bench engine -- --gguf FILE --profile prefill`, interleaved
//! runs); two chains of `dpbusd` a row instead of one gave a few percent more.
//!
//! Exactness: the same integers as the eight-row AVX-512 kernels (for Q4_K and Q5_K each row's
//! sums of its even sub-blocks, of its odd ones, and of its minimums, per block; for Q6_K its
//! block's `sumi - 32 · summs`, each sub-block's chain starting from its `-32 · bsum`) and the
//! same float steps on them (Q4_K and Q5_K: one FMA chain for each of the three, by `d · y.d`
//! and `dmin · y.d`, then `(even + odd) - minimums`; Q6_K: one chain by `d · y.d`), so every
//! result is those kernels' bit for bit, whatever the batch (tested). Q6_K's panel lifted a
//! Q5_K_M prefill (one Q6_K projection in it) from 439-445 to 472-476 tokens/s.

// Panels are AVX-512 only: elsewhere `applies` and `in_registers_applies` are false and the
// drivers' kernel calls compile away, leaving their preparation unused.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unused_variables, unused_mut)
)]

use std::cell::RefCell;

use super::q8k::{self, BlockQ8K, QK_K};
use super::{Isa, SharedRows, GROUP_ROWS};

/// Rows in a panel: two interleaved groups, one lane each of a 512-bit register.
const BAND_ROWS: usize = 2 * GROUP_ROWS;
/// Activation rows one pass over a panel takes (three float and two integer accumulators
/// each, besides the sub-block's).
const TILE: usize = 4;
/// The fewest activation rows that go through panels: below, the eight-row kernels, whose
/// results are the same. Sixteen sequences decoded together measured 149-152 tokens/s
/// through panels against 160-164 through the eight-row kernel (a Q4_K_M file), eight
/// sequences 143-147 against 174-206 (Q4_K, `--profile batch8`, with the prefetch below;
/// interleaved runs): with few rows the unpacking and each row's per-block steps are not paid
/// back.
pub const MIN_ROWS: usize = 32;

/// How many blocks ahead a band's groups are asked into L2 (`q4k_x8::PREFETCH_BLOCKS`'s
/// distance).
#[cfg(target_arch = "x86_64")]
const PREFETCH_BLOCKS: usize = 16;

/// Whether a batch of `n` activation rows goes through panels on `isa`.
pub fn applies(isa: Isa, n: usize) -> bool {
    isa == Isa::Avx512 && n >= MIN_ROWS
}

/// A 64-byte line: the panels' unit, so that every register load is aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// One thread's panel: one block of a band unpacked, and the band's float sums so far for
/// every activation row.
struct Panel {
    /// `[kg][row][4]`: the block's weights as bytes, four of a row a lane.
    weights: [Line; 64],
    /// `[sub-block]`: each row's scale as i32 (Q4_K and Q5_K: eight sub-blocks of 32 weights;
    /// Q6_K: sixteen of 16).
    scales: [Line; 16],
    /// `[pair]`: each row's minimums of the pair's two sub-blocks as two i16.
    mins: [Line; 4],
    /// Each row's `d`, then each row's `dmin`, as f32.
    d: [Line; 2],
    /// `[activation row][3]`: each row's FMA chains so far, of the even sub-blocks' sums, of
    /// the odd ones' and of the minimums' (Q6_K: one chain, of its blocks' integers).
    sums: Vec<[Line; 3]>,
}

impl Default for Panel {
    fn default() -> Panel {
        let zero = Line([0; 64]);
        Panel {
            weights: [zero; 64],
            scales: [zero; 16],
            mins: [zero; 4],
            d: [zero; 2],
            sums: Vec::new(),
        }
    }
}

thread_local! {
    /// Each kernel thread's panel, its sums grown to the longest batch, reused by every call.
    static PANEL: RefCell<Panel> = RefCell::new(Panel::default());
}

/// The K-quants panels take, by their interleaved copies.
pub const Q4K: u8 = 0;
/// Q5_K (`q5k_x8`'s copies).
pub const Q5K: u8 = 1;
/// Q6_K (`q6k_x8`'s copies).
pub const Q6K: u8 = 2;

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved matrix of `KIND` ([`Q4K`]:
/// `q4k_x8`'s group blocks, [`Q5K`]: `q5k_x8`'s, [`Q6K`]: `q6k_x8`'s), by panels.
///
/// # Panics
/// Unless [`applies`] for `isa()` and the batch, or when the shape and lengths do not match.
pub fn matmul<const KIND: u8>(
    interleaved: &[u8],
    (rows, cols): (usize, usize),
    xs: &[f32],
    out: &mut [f32],
) {
    let group_block_bytes = match KIND {
        Q4K => super::q4k_x8::GROUP_BLOCK_BYTES,
        Q5K => super::q5k_x8::GROUP_BLOCK_BYTES,
        _ => super::q6k_x8::GROUP_BLOCK_BYTES,
    };
    assert!(cols > 0 && cols.is_multiple_of(QK_K) && rows.is_multiple_of(GROUP_ROWS));
    let n = xs.len() / cols;
    assert!(applies(super::isa(), n), "panels for {n} activation rows");
    assert_eq!(xs.len(), n * cols, "activation rows of {cols}");
    assert_eq!(out.len(), n * rows, "outputs for {rows} rows");
    let blocks = cols / QK_K;
    let group_bytes = blocks * group_block_bytes;
    assert_eq!(
        interleaved.len(),
        rows / GROUP_ROWS * group_bytes,
        "bytes of the groups"
    );
    let activations = q8k::quantized_rows(xs, cols);
    let block_terms = block_terms::<KIND>(&activations);
    let groups = rows / GROUP_ROWS;
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(groups.div_ceil(2), |bands| {
        PANEL.with_borrow_mut(|panel| {
            for band in bands {
                let first = 2 * band;
                let second = (first + 1).min(groups - 1);
                panel.sums.clear();
                panel.sums.resize(n, [Line([0; 64]); 3]);
                // Block after block: each block's panel (5.5 KB) stays in L1 while every
                // activation row meets it, where a band's whole panel (80 KB and more) had to
                // come from L2 for every tile of activations.
                for block in 0..blocks {
                    let at = |g: usize| &interleaved[g * group_bytes + block * group_block_bytes..];
                    // The groups' blocks PREFETCH_BLOCKS on, into L2, as the eight-row kernels
                    // ask for theirs: a batch's reads then overlap its multiplies. Past a
                    // group's end this asks for the next group's bytes or nothing.
                    #[cfg(target_arch = "x86_64")]
                    for group in [first, second] {
                        let ahead = at(group)
                            .as_ptr()
                            .wrapping_add(PREFETCH_BLOCKS * group_block_bytes);
                        super::x86::prefetch_l2(ahead, group_block_bytes);
                    }
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `applies` held for `isa()` (AVX-512 with VNNI, checked by
                    // `available()`); both groups have a whole group block of the kind at
                    // `block` (the lengths were checked), and every activation row has
                    // `blocks` blocks.
                    #[allow(unsafe_code)]
                    unsafe {
                        match KIND {
                            Q4K => avx512::unpack::<false>(panel, at(first), at(second)),
                            Q5K => avx512::unpack::<true>(panel, at(first), at(second)),
                            _ => avx512::unpack_q6k(panel, at(first), at(second)),
                        }
                        let mut j = 0;
                        while j < n {
                            let count = TILE.min(n - j);
                            let (ys, sums) = (&activations[j..], &block_terms[j..]);
                            match (KIND == Q6K, count) {
                                (false, 1) => avx512::tile::<1>(panel, block, j, ys, sums),
                                (false, 2) => avx512::tile::<2>(panel, block, j, ys, sums),
                                (false, 3) => avx512::tile::<3>(panel, block, j, ys, sums),
                                (false, _) => avx512::tile::<TILE>(panel, block, j, ys, sums),
                                (true, 1) => avx512::tile_q6k::<1>(panel, block, j, ys, sums),
                                (true, 2) => avx512::tile_q6k::<2>(panel, block, j, ys, sums),
                                (true, 3) => avx512::tile_q6k::<3>(panel, block, j, ys, sums),
                                (true, _) => avx512::tile_q6k::<TILE>(panel, block, j, ys, sums),
                            }
                            j += count;
                        }
                    }
                }
                for (j, chains) in panel.sums.iter().enumerate() {
                    let mut values = [0f32; BAND_ROWS];
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above; `chains` is three whole lines.
                    #[allow(unsafe_code)]
                    unsafe {
                        avx512::finish(chains, KIND == Q6K, &mut values)
                    };
                    write_band(&shared, rows, (j, first), second > first, &values);
                }
            }
        });
    });
}

/// Activation rows one pass of [`matmul_in_registers`] takes: a `dpbusd` chain, two integer
/// sums and three float chains each.
const IN_REGISTERS_TILE: usize = 8;

/// The fewest activation rows that go through [`matmul_in_registers`]: below, the eight-row
/// kernel, whose results are the same. Up to four rows a step is bound by memory, and the
/// eight-row kernel reads one stream of weights a thread where a band reads two; from five,
/// one pass here replaces two there. Measured on the 2-core development machine (a 35840 x
/// 5120 Q4_K matrix, both paths interleaved in one process, ms a product): four rows
/// 3.77-3.99 here against 3.50-4.20 there, five 4.04-4.59 against 4.65-5.01, six 4.93-5.24
/// against 4.87-6.19, eight 6.78-7.54 against 6.99-7.66, sixteen 12.39-16.05 against
/// 13.24-14.69.
pub const IN_REGISTERS_MIN_ROWS: usize = 5;

/// Whether a batch of `n` activation rows times an interleaved Q4_K matrix goes through
/// [`matmul_in_registers`] on `isa`: too short for panels, long enough to be bound by compute
/// ([`IN_REGISTERS_MIN_ROWS`]).
pub fn in_registers_applies(isa: Isa, n: usize) -> bool {
    isa == Isa::Avx512 && (IN_REGISTERS_MIN_ROWS..MIN_ROWS).contains(&n)
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved Q4_K matrix (`q4k_x8`'s group
/// blocks) and a short batch: bands of sixteen rows, as panels take them, each met by up to
/// eight activation rows at a time in registers (`q4k_x8::avx512::dot_band`). Why: eight
/// sequences decoded together are bound by compute, and the eight-row kernel, with two lanes
/// a row, needs a broadcast load for every `dpbusd` and unpacks every block once for each four
/// activation rows; merged into one lane a row, sixteen rows' nibbles meet eight activation
/// rows per unpacking, the activation bytes broadcast four at a time. The results are the
/// panels' and the eight-row kernel's bit for bit (tested).
///
/// # Panics
/// Unless [`in_registers_applies`] for `isa()` and the batch, or when the shape and lengths do
/// not match.
pub fn matmul_in_registers(
    interleaved: &[u8],
    (rows, cols): (usize, usize),
    xs: &[f32],
    out: &mut [f32],
) {
    let group_block_bytes = super::q4k_x8::GROUP_BLOCK_BYTES;
    assert!(cols > 0 && cols.is_multiple_of(QK_K) && rows.is_multiple_of(GROUP_ROWS));
    let n = xs.len() / cols;
    assert!(
        in_registers_applies(super::isa(), n),
        "{n} activation rows in registers"
    );
    assert_eq!(xs.len(), n * cols, "activation rows of {cols}");
    assert_eq!(out.len(), n * rows, "outputs for {rows} rows");
    let group_bytes = cols / QK_K * group_block_bytes;
    assert_eq!(
        interleaved.len(),
        rows / GROUP_ROWS * group_bytes,
        "bytes of the groups"
    );
    let activations = q8k::quantized_rows(xs, cols);
    let block_terms = block_terms::<Q4K>(&activations);
    let groups = rows / GROUP_ROWS;
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(groups.div_ceil(2), |bands| {
        for band in bands {
            let first = 2 * band;
            let second = (first + 1).min(groups - 1);
            let group = |g: usize| &interleaved[g * group_bytes..(g + 1) * group_bytes];
            let (a, b) = (group(first), group(second));
            let mut j = 0;
            while j < n {
                let count = IN_REGISTERS_TILE.min(n - j);
                let ys = &activations[j..j + count];
                let terms = &block_terms[j..j + count];
                let mut values = [[0f32; BAND_ROWS]; IN_REGISTERS_TILE];
                #[cfg(target_arch = "x86_64")]
                {
                    macro_rules! pass {
                        ($n:literal) => {{
                            let ys: [&[BlockQ8K]; $n] = std::array::from_fn(|t| ys[t].as_slice());
                            let terms: [&[[i32; 16]]; $n] =
                                std::array::from_fn(|t| terms[t].as_slice());
                            // SAFETY: `in_registers_applies` held for `isa()` (AVX-512 with
                            // VNNI, checked by `available()`); `a` and `b` are whole groups
                            // (the lengths were checked), and every activation row and its
                            // terms have a block for each of their group blocks.
                            #[allow(unsafe_code)]
                            let pass = unsafe {
                                super::q4k_x8::avx512::dot_band::<$n>(
                                    a,
                                    b,
                                    2 * group_bytes,
                                    ys,
                                    terms,
                                )
                            };
                            values[..$n].copy_from_slice(&pass);
                        }};
                    }
                    match count {
                        1 => pass!(1),
                        2 => pass!(2),
                        3 => pass!(3),
                        4 => pass!(4),
                        5 => pass!(5),
                        6 => pass!(6),
                        7 => pass!(7),
                        _ => pass!(8),
                    }
                }
                for (t, values) in values[..count].iter().enumerate() {
                    write_band(&shared, rows, (j + t, first), second > first, values);
                }
                j += count;
            }
        }
    });
}

/// Writes activation row `j`'s results for the band whose first group is `first` (sixteen
/// rows, or the first eight where the band has one group) into `out (n x rows)`.
fn write_band(
    shared: &SharedRows,
    rows: usize,
    (j, first): (usize, usize),
    two_groups: bool,
    values: &[f32; BAND_ROWS],
) {
    let band_rows = if two_groups { BAND_ROWS } else { GROUP_ROWS };
    for (r, &value) in values.iter().enumerate().take(band_rows) {
        // SAFETY: each band's rows are handed to one thread only, and `j · rows + first · 8 +
        // r` is inside `out` (the callers checked its length).
        #[allow(unsafe_code)]
        unsafe {
            shared.write(j * rows + first * GROUP_ROWS + r, value)
        };
    }
}

/// Each activation block's terms for the weights' offsets: for Q4_K and Q5_K its sums of each
/// sub-block, two a word pair (what the minimums multiply); for Q6_K `-32` times its sums of
/// each sixteen.
fn block_terms<const KIND: u8>(activations: &[Vec<BlockQ8K>]) -> Vec<Vec<[i32; 16]>> {
    activations
        .iter()
        .map(|row| {
            row.iter()
                .map(|y| {
                    if KIND == Q6K {
                        q6k_offsets(y)
                    } else {
                        pair_sums(y)
                    }
                })
                .collect()
        })
        .collect()
}

/// A Q8_K block's sums of each sub-block of 32 activations, two sub-blocks a 32-bit word (the
/// first in the low half), for the minimums' `dpwssd`.
/// (The last twelve words are unused.)
fn pair_sums(y: &BlockQ8K) -> [i32; 16] {
    std::array::from_fn(|p| {
        if p >= 4 {
            return 0;
        }
        let sum = |s: usize| i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1]);
        // Each sum is at most 32 · 128 in size: it fits its i16.
        (sum(2 * p) & 0xffff) | (sum(2 * p + 1) << 16)
    })
}

/// A Q8_K block's `-32` times its sums of each sixteen activations: each Q6_K sub-block's share
/// of its weights' offset, with which that sub-block's `dpbusd` chain starts.
fn q6k_offsets(y: &BlockQ8K) -> [i32; 16] {
    std::array::from_fn(|s| -32 * i32::from(y.bsums[s]))
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! The panel's unpacking (by `q4k_x8`'s own helpers) and the pass of up to four activation
    //! rows over it.
    use std::arch::x86_64::*;

    use super::{BlockQ8K, Line, Panel};
    use crate::kernels::q4k_x8;

    /// One sub-block of `4 · GROUPS` weights against `N` activation rows: the panel's registers
    /// `weights[..GROUPS]` (four weights of each of the sixteen rows each) against each row's
    /// bytes from `start` in its block, the rows' four bytes broadcast by `dpbusd` itself; two
    /// chains a row (even and odd registers), so that each waits on half as many before it, the
    /// first starting from `start_from`; their sum times the sub-block's `scale`.
    ///
    /// # Safety
    /// AVX-512 F and VNNI; `GROUPS` lines in `weights` and `start + 4 · GROUPS` bytes in each
    /// row's block.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn scaled_sub_block<const N: usize, const GROUPS: usize>(
        weights: &[Line],
        ys: [&BlockQ8K; N],
        start: usize,
        start_from: [__m512i; N],
        scale: &Line,
    ) -> [__m512i; N] {
        // SAFETY: as the caller promises; the loads are aligned lines and 4-byte reads inside
        // each activation block's 256 bytes.
        unsafe {
            let mut sub = [start_from, [_mm512_setzero_si512(); N]];
            for g in 0..GROUPS {
                let w = _mm512_load_si512(weights[g].0.as_ptr() as *const __m512i);
                for j in 0..N {
                    let four = std::ptr::read_unaligned(
                        ys[j].qs.as_ptr().add(start + 4 * g) as *const i32
                    );
                    sub[g % 2][j] = _mm512_dpbusd_epi32(sub[g % 2][j], w, _mm512_set1_epi32(four));
                }
            }
            let scale = _mm512_load_si512(scale.0.as_ptr() as *const __m512i);
            std::array::from_fn(|j| {
                _mm512_mullo_epi32(_mm512_add_epi32(sub[0][j], sub[1][j]), scale)
            })
        }
    }

    /// An activation row's results from its three FMA chains: the eight-row kernels' last
    /// step, `(even + odd) - minimums` for Q4_K and Q5_K, and for Q6_K (`q6k`) its one chain.
    ///
    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn finish(chains: &[Line; 3], q6k: bool, out: &mut [f32; 16]) {
        // SAFETY: aligned loads of whole lines and a store of 16 floats into `out`.
        unsafe {
            let [even, odd, minimums] = chains
                .each_ref()
                .map(|line| _mm512_load_ps(line.0.as_ptr() as *const f32));
            let rows = if q6k {
                even
            } else {
                _mm512_sub_ps(_mm512_add_ps(even, odd), minimums)
            };
            _mm512_storeu_ps(out.as_mut_ptr(), rows);
        }
    }

    /// One block of the band's groups, at `a` and `b` (`b` may be `a`), into `panel`.
    ///
    /// # Safety
    /// AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C; a whole group block of the kind (Q5_K's
    /// with `FIFTH_BIT`) at the start of `a` and of `b`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn unpack<const FIFTH_BIT: bool>(panel: &mut Panel, a: &[u8], b: &[u8]) {
        // SAFETY: as the caller promises; the panel's lines take what is written.
        unsafe {
            let (d, dmin) = q4k_x8::avx512::unpack_group_pair::<FIFTH_BIT>(
                a.as_ptr(),
                b.as_ptr(),
                panel.weights.as_mut_ptr() as *mut __m512i,
                panel.scales.as_mut_ptr() as *mut __m512i,
                panel.mins.as_mut_ptr() as *mut __m512i,
            );
            _mm512_store_ps(panel.d[0].0.as_mut_ptr() as *mut f32, d);
            _mm512_store_ps(panel.d[1].0.as_mut_ptr() as *mut f32, dmin);
        }
    }

    /// One block of the band's Q6_K groups, at `a` and `b` (`b` may be `a`), into `panel`:
    /// weights as bytes (0-63) as for Q4_K, sixteen scales and `d` (`dmin` unused).
    ///
    /// # Safety
    /// AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C; a whole Q6_K group block at the start
    /// of `a` and of `b`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn unpack_q6k(panel: &mut Panel, a: &[u8], b: &[u8]) {
        // SAFETY: as the caller promises; the panel's lines take what is written.
        unsafe {
            let d = crate::kernels::q6k_x8::avx512::unpack_group_pair(
                a.as_ptr(),
                b.as_ptr(),
                panel.weights.as_mut_ptr() as *mut __m512i,
                panel.scales.as_mut_ptr() as *mut __m512i,
            );
            _mm512_store_ps(panel.d[0].0.as_mut_ptr() as *mut f32, d);
        }
    }

    /// As [`tile`] for a Q6_K panel: each sub-block's `dpbusd` chains start from its
    /// activations' offset term (`pair_sums`: `-32 · bsum`), its scale multiplies their sum,
    /// and the block's integer (the eight-row kernel's `sumi - 32 · summs`) goes into one FMA
    /// chain by `d · y.d`.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn tile_q6k<const N: usize>(
        panel: &mut Panel,
        block: usize,
        first: usize,
        ys: &[Vec<BlockQ8K>],
        offsets: &[Vec<[i32; 16]>],
    ) {
        // SAFETY: as the caller promises; the loads are aligned lines of the panel and 4-byte
        // reads inside each activation block's 256 bytes.
        unsafe {
            let ys: [&BlockQ8K; N] = std::array::from_fn(|j| &ys[j][block]);
            let offsets: [[i32; 16]; N] = std::array::from_fn(|j| offsets[j][block]);
            let mut total = [_mm512_setzero_si512(); N];
            for (s, scale) in panel.scales.iter().enumerate() {
                let offset = std::array::from_fn(|j| _mm512_set1_epi32(offsets[j][s]));
                let scaled =
                    scaled_sub_block::<N, 4>(&panel.weights[4 * s..], ys, 16 * s, offset, scale);
                for j in 0..N {
                    total[j] = _mm512_add_epi32(total[j], scaled[j]);
                }
            }
            let d = _mm512_load_ps(panel.d[0].0.as_ptr() as *const f32);
            for j in 0..N {
                let chain = panel.sums[first + j].as_mut_ptr() as *mut f32;
                let scale = _mm512_mul_ps(d, _mm512_set1_ps(ys[j].d));
                _mm512_store_ps(
                    chain,
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(total[j]), scale, _mm512_load_ps(chain)),
                );
            }
        }
    }

    /// `N` activation rows (the first `N` of `ys`, with their `pair_sums`; rows `first..` of
    /// the band's) against the panel's block `block`: their three FMA chains in `panel.sums`
    /// taken one block further.
    ///
    /// # Safety
    /// AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C; the panel unpacked for block `block`,
    /// `N` activation rows with that block in `ys` and `pair_sums`, and `first + N` rows of
    /// sums in the panel.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn tile<const N: usize>(
        panel: &mut Panel,
        block: usize,
        first: usize,
        ys: &[Vec<BlockQ8K>],
        pair_sums: &[Vec<[i32; 16]>],
    ) {
        // SAFETY: as the caller promises; the loads are aligned lines of the panel and 4-byte
        // reads inside each activation block's 256 bytes.
        unsafe {
            let ys: [&BlockQ8K; N] = std::array::from_fn(|j| &ys[j][block]);
            let pairs: [[i32; 16]; N] = std::array::from_fn(|j| pair_sums[j][block]);
            let mut even_sum = [_mm512_setzero_si512(); N];
            let mut odd_sum = [_mm512_setzero_si512(); N];
            for s in 0..8 {
                let zero = [_mm512_setzero_si512(); N];
                let scaled = scaled_sub_block::<N, 8>(
                    &panel.weights[8 * s..],
                    ys,
                    32 * s,
                    zero,
                    &panel.scales[s],
                );
                for j in 0..N {
                    if s % 2 == 0 {
                        even_sum[j] = _mm512_add_epi32(even_sum[j], scaled[j]);
                    } else {
                        odd_sum[j] = _mm512_add_epi32(odd_sum[j], scaled[j]);
                    }
                }
            }
            let mut mins_sum = [_mm512_setzero_si512(); N];
            for (pair, mins) in panel.mins.iter().enumerate() {
                let mins = _mm512_load_si512(mins.0.as_ptr() as *const __m512i);
                for j in 0..N {
                    let sums = _mm512_set1_epi32(pairs[j][pair]);
                    mins_sum[j] = _mm512_dpwssd_epi32(mins_sum[j], mins, sums);
                }
            }
            let d = _mm512_load_ps(panel.d[0].0.as_ptr() as *const f32);
            let dmin = _mm512_load_ps(panel.d[1].0.as_ptr() as *const f32);
            for j in 0..N {
                let chains = panel.sums[first + j].as_mut_ptr() as *mut f32;
                let scale = _mm512_set1_ps(ys[j].d);
                let d_scale = _mm512_mul_ps(d, scale);
                let step = |at: usize, sum: __m512i, by: __m512| {
                    let chain = chains.add(16 * at);
                    _mm512_store_ps(
                        chain,
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), by, _mm512_load_ps(chain)),
                    );
                };
                step(0, even_sum[j], d_scale);
                step(1, odd_sum[j], d_scale);
                step(2, mins_sum[j], _mm512_mul_ps(dmin, scale));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::random_activations;
    use super::super::{q4k_x8, q5k_x8, q6k_x8};
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// A random `rows x cols` matrix of `dtype` as llama.cpp's quantizer writes it.
    fn quantized(dtype: GgmlDType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let values = random_activations(seed, rows * cols);
        let tensor = Tensor::from_vec(values, (rows, cols), &Device::Cpu).expect("tensor");
        let quantized = QTensor::quantize(&tensor, dtype).expect("quantize");
        quantized.data().expect("data").to_vec()
    }

    /// The eight-row AVX-512 kernel's products for `KIND`, on its interleaved copy.
    fn eight_rows<const KIND: u8>(copy: &[u8], shape: (usize, usize), xs: &[f32], out: &mut [f32]) {
        match KIND {
            Q4K => super::super::k_quant_group_products(
                copy,
                shape,
                q4k_x8::GROUP_BLOCK_BYTES,
                q4k_x8::tile,
                (xs, out),
                q4k_x8::dot_group,
            ),
            Q5K => super::super::k_quant_group_products(
                copy,
                shape,
                q5k_x8::GROUP_BLOCK_BYTES,
                q5k_x8::tile,
                (xs, out),
                q5k_x8::dot_group,
            ),
            _ => super::super::k_quant_group_products(
                copy,
                shape,
                q6k_x8::GROUP_BLOCK_BYTES,
                q6k_x8::tile,
                (xs, out),
                q6k_x8::dot_group,
            ),
        }
    }

    /// A matmul over an interleaved copy: `(copy, (rows, cols), xs, out)`.
    type Matmul = fn(&[u8], (usize, usize), &[f32], &mut [f32]);

    /// `path` (a matmul over `KIND`'s interleaved copy) against the eight-row kernel for
    /// `KIND` (`dtype`, interleaved by `interleave`), bit for bit: a band of two groups and
    /// matrices that end on one, each batch length in `batches`.
    fn check_against_eight_rows<const KIND: u8>(
        dtype: GgmlDType,
        interleave: fn(&[u8], usize, usize, usize) -> Option<super::super::Interleaved>,
        batches: &[usize],
        path: Matmul,
    ) {
        for (rows, cols) in [(16, 256), (24, 512), (40, 768)] {
            let bytes = quantized(dtype, rows, cols, rows as u64 + cols as u64);
            let copy = interleave(&bytes, rows, cols, 1).expect("interleaved");
            for &n in batches {
                let xs = random_activations(n as u64 * 7 + 1, n * cols);
                let mut ours = vec![f32::NAN; n * rows];
                let mut eight = vec![f32::NAN; n * rows];
                path(&copy, (rows, cols), &xs, &mut ours);
                eight_rows::<KIND>(&copy, (rows, cols), &xs, &mut eight);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&ours),
                    bits(&eight),
                    "{dtype:?} {rows}x{cols}, {n} activation rows"
                );
            }
        }
    }

    /// Panels for `KIND`: batches that fill whole tiles of four and batches that do not.
    fn check_kind<const KIND: u8>(
        dtype: GgmlDType,
        interleave: fn(&[u8], usize, usize, usize) -> Option<super::super::Interleaved>,
    ) {
        let batches = [MIN_ROWS, MIN_ROWS + 1, MIN_ROWS + 3, 2 * MIN_ROWS + 2];
        check_against_eight_rows::<KIND>(dtype, interleave, &batches, matmul::<KIND>);
    }

    /// A short batch in registers gives the eight-row AVX-512 kernel's results bit for bit:
    /// passes that fill all eight rows and passes that do not.
    #[test]
    fn short_batches_in_registers_give_the_eight_row_kernels_bits() {
        if !in_registers_applies(super::super::isa(), IN_REGISTERS_MIN_ROWS) {
            return;
        }
        let batches = [
            IN_REGISTERS_MIN_ROWS,
            7,
            8,
            9,
            10,
            12,
            14,
            16,
            19,
            MIN_ROWS - 1,
        ];
        check_against_eight_rows::<Q4K>(
            GgmlDType::Q4K,
            q4k_x8::interleave,
            &batches,
            matmul_in_registers,
        );
    }

    /// Panels give the eight-row AVX-512 kernels' results bit for bit, for every kind.
    #[test]
    fn panels_give_the_eight_row_kernels_bits() {
        if !applies(super::super::isa(), MIN_ROWS) {
            return;
        }
        check_kind::<Q4K>(GgmlDType::Q4K, q4k_x8::interleave);
        check_kind::<Q5K>(GgmlDType::Q5K, q5k_x8::interleave);
        check_kind::<Q6K>(GgmlDType::Q6K, q6k_x8::interleave);
    }
}
