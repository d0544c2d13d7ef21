//! One decoder step over many independent sequences: the forward that a
//! continuous-batching scheduler runs.
//!
//! Every sequence has its own [`SeqCache`] (keys and values of its past
//! positions) and brings any number of new tokens: a whole prompt when it
//! joins, one token per decode step afterwards. [`forward_batch`] stacks all
//! the new rows of all sequences and runs each linear layer once over the
//! stack, so the weights are read from memory once per step however many
//! sequences run; attention is computed per sequence over its own cache.
//! The layers are those of the CLI's decoder ([`super::forward`]); only the
//! kernel of a lone row differs (below).
//!
//! The numbers do not depend on the batch: a row gets bit-for-bit the same
//! logits whether it runs alone or beside fifteen others (each output is one
//! dot product of a weight row, dequantized the same way, with that input
//! row). So a greedy answer is the same under load as alone, and the prompt
//! log-probabilities equal those of [`Model::token_logprobs`] (which runs the
//! same multi-row kernels for prompts of two tokens or more). The CLI's
//! decode of one row runs the matrix-vector kernel instead, which rounds
//! differently; here a lone row runs the multi-row kernel too
//! ([`RowKernel::BatchInvariant`]).
//!
//! ```no_run
//! use swift::model::batched::{forward_batch, BatchItem, SeqCache};
//! # fn f(model: &swift::model::Model) -> anyhow::Result<()> {
//! let (mut a, mut b) = (SeqCache::new(model), SeqCache::new(model));
//! let mut items = vec![
//!     BatchItem { ids: &[1, 2, 3], cache: &mut a, all_logits: false },
//!     BatchItem { ids: &[4, 5], cache: &mut b, all_logits: true },
//! ];
//! let logits = forward_batch(model, &mut items)?; // [1 x vocab], [2 x vocab]
//! # Ok(()) }
//! ```

use anyhow::{bail, Result};
use rayon::prelude::*;

use super::decoder::Model;
use super::forward::{forward, KvStore, Scratch, Seq};
use super::linear::RowKernel;
use super::quant::{self, QWeight};

/// Keys and values of one sequence's past positions, per layer.
#[derive(Clone, Debug, Default)]
pub struct SeqCache {
    /// `[layer]` -> `[pos, kv_dim]` rows.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
    /// The forward's working buffers, kept between steps (a step uses its
    /// first item's).
    scratch: Scratch,
}

impl SeqCache {
    /// An empty cache for `model`.
    pub fn new(model: &Model) -> SeqCache {
        let l = model.config().num_hidden_layers;
        SeqCache {
            k: vec![Vec::new(); l],
            v: vec![Vec::new(); l],
            len: 0,
            scratch: Scratch::default(),
        }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held.
    pub fn n_bytes(&self) -> usize {
        self.k
            .iter()
            .chain(self.v.iter())
            .map(|r| r.len() * 4)
            .sum()
    }
}

/// One sequence's part of a step.
pub struct BatchItem<'a> {
    /// The new tokens (at least one).
    pub ids: &'a [u32],
    /// Its cache; the new positions are appended.
    pub cache: &'a mut SeqCache,
    /// Logits of every new position (`[t, vocab]`) instead of the last only.
    pub all_logits: bool,
}

/// `Y = X W^T` for `n` rows with W in GGUF blocks. Every output is the dot
/// product of the dequantized weight row with the input row, computed as
/// [`quant::dot_f32`] computes it, so the bits do not depend on `n`. With
/// AVX2 (Q4_0 / Q4_1 / Q8_0) a fused kernel reads the blocks directly and
/// decodes each once for up to four input rows; otherwise tiles of weight
/// rows are expanded to f32 once and reused for every input row (the same
/// arithmetic as [`quant::matmul`]).
pub(crate) fn qmatmul(w: &QWeight, x: &[f32], n: usize, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if fused::supported(w.dtype) {
        return fused::matmul(w, x, n, y);
    }
    qmatmul_tiles(w, x, n, y)
}

/// [`qmatmul`] for several weights sharing one input, in one parallel
/// region where the fused kernels run (the same results as one call each).
pub(crate) fn qmatmul_many(ws: &[&QWeight], x: &[f32], n: usize, ys: &mut [&mut [f32]]) {
    #[cfg(target_arch = "x86_64")]
    if ws.iter().all(|w| fused::supported(w.dtype)) {
        return fused::matmul_many(ws, x, n, ys);
    }
    for (w, y) in ws.iter().zip(ys.iter_mut()) {
        qmatmul(w, x, n, y);
    }
}

/// [`qmatmul`] through f32 tiles of the weights.
fn qmatmul_tiles(w: &QWeight, x: &[f32], n: usize, y: &mut [f32]) {
    const TILE: usize = 8;
    let (rows, cols) = (w.rows, w.cols);
    debug_assert_eq!(x.len(), n * cols);
    debug_assert_eq!(y.len(), n * rows);
    let n_tiles = rows.div_ceil(TILE);
    let tiles: Vec<Vec<f32>> = (0..n_tiles)
        .into_par_iter()
        .map(|ti| {
            let r0 = ti * TILE;
            let nr = TILE.min(rows - r0);
            let mut wbuf = vec![0f32; nr * cols];
            for r in 0..nr {
                w.dequantize_row(r0 + r, &mut wbuf[r * cols..(r + 1) * cols]);
            }
            let mut out = vec![0f32; n * nr];
            for t in 0..n {
                let xr = &x[t * cols..(t + 1) * cols];
                for r in 0..nr {
                    out[t * nr + r] = quant::dot_f32(&wbuf[r * cols..(r + 1) * cols], xr);
                }
            }
            out
        })
        .collect();
    for (ti, out) in tiles.iter().enumerate() {
        let r0 = ti * TILE;
        let nr = out.len() / n;
        for t in 0..n {
            y[t * rows + r0..t * rows + r0 + nr].copy_from_slice(&out[t * nr..(t + 1) * nr]);
        }
    }
}

/// Fused dot products on GGUF blocks with exactly the arithmetic of
/// `dequantize_block` followed by the AVX2 `dot_f32` (same rounding of each
/// weight, same four 8-lane accumulators over each 32-value block, same
/// final sum), so their results equal the tiled path bit for bit. Each
/// block is decoded once and used for up to four input rows.
#[cfg(target_arch = "x86_64")]
mod fused {
    use super::super::gguf::GgmlType;
    use super::super::pool::{self, SyncPtr};
    use super::super::quant::avx2::{self, hsum};
    use super::super::quant::QWeight;
    use std::arch::x86_64::*;

    /// Whether the fused kernels run here for this type: the CPU must have
    /// what `quant::dot_f32` uses for its AVX2 path, or the two paths would
    /// not agree.
    pub fn supported(t: GgmlType) -> bool {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let has = *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        });
        has && matches!(t, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
    }

    /// The f16 at `p` broadcast to eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn h2f(p: *const u8) -> __m256 {
        _mm256_set1_ps(avx2::h2f(p))
    }

    /// Bytes per block.
    fn block_bytes(t: GgmlType) -> usize {
        match t {
            GgmlType::Q4_1 => 20,
            GgmlType::Q4_0 => 18,
            _ => 34,
        }
    }

    /// The 32 weights of the block at `p` as four vectors (values 0..8,
    /// 8..16, 16..24, 24..32), rounded as `dequantize_block` rounds them.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn decode(t: GgmlType, p: *const u8) -> [__m256; 4] {
        let mask = _mm256_set1_epi32(0xF);
        match t {
            GgmlType::Q4_1 => {
                let (d, m) = (h2f(p), h2f(p.add(2)));
                let q = p.add(4);
                let b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q as *const __m128i));
                let b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q.add(8) as *const __m128i));
                macro_rules! f {
                    ($v:expr) => {
                        _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps($v), d), m)
                    };
                }
                [
                    f!(_mm256_and_si256(b0, mask)),
                    f!(_mm256_and_si256(b1, mask)),
                    f!(_mm256_srli_epi32(b0, 4)),
                    f!(_mm256_srli_epi32(b1, 4)),
                ]
            }
            GgmlType::Q4_0 => {
                let d = h2f(p);
                let eight = _mm256_set1_epi32(8);
                let q = p.add(2);
                let b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q as *const __m128i));
                let b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q.add(8) as *const __m128i));
                macro_rules! f {
                    ($v:expr) => {
                        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32($v, eight)), d)
                    };
                }
                [
                    f!(_mm256_and_si256(b0, mask)),
                    f!(_mm256_and_si256(b1, mask)),
                    f!(_mm256_srli_epi32(b0, 4)),
                    f!(_mm256_srli_epi32(b1, 4)),
                ]
            }
            _ => {
                let d = h2f(p);
                let q = p.add(2);
                macro_rules! f {
                    ($k:expr) => {
                        _mm256_mul_ps(
                            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                                q.add(8 * $k) as *const __m128i,
                            ))),
                            d,
                        )
                    };
                }
                [f!(0), f!(1), f!(2), f!(3)]
            }
        }
    }

    /// One weight row (`row` bytes of blocks) dotted with `G` input rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows_dot<const G: usize>(
        t: GgmlType,
        row: &[u8],
        xs: [*const f32; G],
        out: &mut [f32; G],
    ) {
        let mut acc = [[_mm256_setzero_ps(); 4]; G];
        let bs = block_bytes(t);
        for b in 0..row.len() / bs {
            let w = decode(t, row.as_ptr().add(b * bs));
            for g in 0..G {
                let xb = xs[g].add(b * 32);
                for k in 0..4 {
                    acc[g][k] = _mm256_fmadd_ps(w[k], _mm256_loadu_ps(xb.add(8 * k)), acc[g][k]);
                }
            }
        }
        for g in 0..G {
            out[g] = hsum(_mm256_add_ps(
                _mm256_add_ps(acc[g][0], acc[g][1]),
                _mm256_add_ps(acc[g][2], acc[g][3]),
            ));
        }
    }

    /// Rows `r0..r0 + nr` of `Y = X W^T` for inputs `t0..t0 + G`, into
    /// `out[(ti - t0) * nr + r]`.
    fn group<const G: usize>(
        w: &QWeight,
        x: &[f32],
        t0: usize,
        r0: usize,
        nr: usize,
        out: &mut [f32],
    ) {
        let cols = w.cols;
        let xs: [*const f32; G] = std::array::from_fn(|g| x[(t0 + g) * cols..].as_ptr());
        let mut o = [0f32; G];
        for r in 0..nr {
            // SAFETY: `supported` checked the CPU features; the row holds
            // cols / 32 whole blocks and each input row has cols values.
            unsafe { rows_dot::<G>(w.dtype, w.row(r0 + r), xs, &mut o) };
            for g in 0..G {
                out[g * nr + r] = o[g];
            }
        }
    }

    /// `Y = X W^T` for `n` rows (`supported(w.dtype)` must hold).
    pub fn matmul(w: &QWeight, x: &[f32], n: usize, y: &mut [f32]) {
        matmul_many(&[w], x, n, &mut [y]);
    }

    /// [`matmul`] for several weights sharing one input (q/k/v, gate/up),
    /// in one parallel region (`supported` must hold for each).
    pub fn matmul_many(ws: &[&QWeight], x: &[f32], n: usize, ys: &mut [&mut [f32]]) {
        let threads = rayon::current_num_threads().max(1);
        // Per weight: rows per chunk, and where its chunks' outputs go:
        // with one input row straight into y (its layout is the chunks'),
        // otherwise chunk ci's outputs, [input][row], at [r0 * n, (r0 + nr)
        // * n) of a buffer scattered into y afterwards.
        let mut outs: Vec<Vec<f32>> = Vec::new();
        let mut jobs: Vec<(usize, usize, usize, SyncPtr<f32>)> = Vec::new();
        for (wi, (w, y)) in ws.iter().zip(ys.iter_mut()).enumerate() {
            let rows = w.rows;
            debug_assert_eq!(x.len(), n * w.cols);
            debug_assert_eq!(y.len(), n * rows);
            let ch = rows
                .div_ceil(threads * 4)
                .max((16384 / w.row_bytes().max(1)).max(4))
                .min(rows.max(1));
            let p = if n == 1 {
                SyncPtr(y.as_mut_ptr())
            } else {
                outs.push(vec![0f32; n * rows]);
                SyncPtr(outs.last_mut().unwrap().as_mut_ptr())
            };
            for r0 in (0..rows).step_by(ch.max(1)) {
                jobs.push((wi, r0, ch.min(rows - r0), p));
            }
        }
        // On the decode pool: a serving step is about 150 of these a token,
        // too short each for rayon's wake-ups (one stream decoded through
        // here ran at half the speed of `swift infer`). The chunks do not
        // depend on which thread runs them, so neither do the results.
        pool::run(jobs.len(), |j| {
            let (wi, r0, nr, p) = jobs[j];
            let w = ws[wi];
            // SAFETY: chunk j writes its own [r0 * n, (r0 + nr) * n) of its
            // weight's output.
            let out = unsafe { p.slice(r0 * n, nr * n) };
            let mut t0 = 0;
            while t0 < n {
                let o = &mut out[t0 * nr..];
                match n - t0 {
                    1 => group::<1>(w, x, t0, r0, nr, o),
                    2 => group::<2>(w, x, t0, r0, nr, o),
                    3 => group::<3>(w, x, t0, r0, nr, o),
                    _ => group::<4>(w, x, t0, r0, nr, o),
                }
                t0 += 4;
            }
        });
        if n == 1 {
            return;
        }
        for (wi, ((w, y), out)) in ws.iter().zip(ys.iter_mut()).zip(&outs).enumerate() {
            let rows = w.rows;
            for &(_, r0, nr, _) in jobs.iter().filter(|j| j.0 == wi) {
                let out = &out[r0 * n..(r0 + nr) * n];
                for ti in 0..n {
                    y[ti * rows + r0..ti * rows + r0 + nr]
                        .copy_from_slice(&out[ti * nr..(ti + 1) * nr]);
                }
            }
        }
    }
}

/// The caches of a step's items, as the forward sees them.
struct Items<'s, 'a>(&'s mut [BatchItem<'a>]);

impl KvStore for Items<'_, '_> {
    fn append(&mut self, layer: usize, seq: usize, k: &[f32], v: &[f32]) {
        let c = &mut self.0[seq].cache;
        c.k[layer].extend_from_slice(k);
        c.v[layer].extend_from_slice(v);
    }

    fn get(&self, layer: usize, seq: usize) -> (&[f32], &[f32]) {
        let c = &self.0[seq].cache;
        (&c.k[layer], &c.v[layer])
    }
}

/// Run one step: every item's new tokens continue its own cache. Returns,
/// per item, the logits of its last new position (`vocab` values) or of
/// every new position (`t * vocab`) when `all_logits` is set.
pub fn forward_batch(model: &Model, items: &mut [BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
    let c = model.config();
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let vocab = model.vocab_size();
    let nl = c.num_hidden_layers;
    let mut ids = Vec::new();
    let mut seqs = Vec::with_capacity(items.len());
    for it in items.iter() {
        if it.ids.is_empty() {
            bail!("a batch item has no new tokens");
        }
        if it.cache.k.len() != nl {
            bail!("a sequence cache was made for another model");
        }
        if it.cache.len + it.ids.len() > c.max_position_embeddings {
            bail!(
                "sequence of {} tokens exceeds the model's context length {}",
                it.cache.len + it.ids.len(),
                c.max_position_embeddings
            );
        }
        if let Some(bad) = it.ids.iter().find(|&&i| i as usize >= vocab) {
            bail!("token id {bad} is out of range (vocabulary of {vocab})");
        }
        ids.extend_from_slice(it.ids);
        seqs.push(Seq {
            rows: it.ids.len(),
            start: it.cache.len,
            pad: 0,
            all_logits: it.all_logits,
        });
    }
    // The step's working buffers are the first item's.
    let mut scratch = std::mem::take(&mut items[0].cache.scratch);
    let out = forward(
        model,
        &ids,
        &seqs,
        &mut Items(items),
        &mut scratch,
        RowKernel::BatchInvariant,
    );
    items[0].cache.scratch = scratch;
    let logits = out?;
    for it in items.iter_mut() {
        it.cache.len += it.ids.len();
    }
    let mut out = Vec::with_capacity(items.len());
    let mut at = 0;
    for sq in &seqs {
        let cnt = if sq.all_logits { sq.rows } else { 1 };
        out.push(logits[at * vocab..(at + cnt) * vocab].to_vec());
        at += cnt;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decoder::Embedding;
    use crate::model::linear::Linear;
    use crate::model::testing::write_tiny_model;
    use crate::model::{KvCache, LoadOptions};

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// A decode step over a long, left-padded batch, and the serving step
    /// decoding the same sequences (both through the grouped,
    /// split-position attention: its parts merged), give every row the
    /// logits its sequence gets alone from one whole prefill (one softmax
    /// per head over all positions).
    #[test]
    fn long_padded_batch_decode_matches_whole_prefills() {
        for arch in ["llama", "qwen3", "mistral"] {
            let d = tempfile::tempdir().unwrap();
            write_tiny_model(d.path(), arch, 5).unwrap();
            let m = Model::load(d.path(), &LoadOptions::default()).unwrap();
            let v = m.vocab_size();
            // Four rows, long enough for the parallel decode path
            // (rows x heads x positions x head size > 2^15).
            let lens = [300usize, 297, 260, 299];
            let seqs: Vec<Vec<u32>> = lens
                .iter()
                .enumerate()
                .map(|(r, &n)| {
                    (0..n)
                        .map(|i| ((i * 31 + r * 7) % 300) as u32 + 1)
                        .collect()
                })
                .collect();
            let width = lens.iter().max().unwrap() - 1;
            let pads: Vec<usize> = lens.iter().map(|n| width + 1 - n).collect();
            let mut ids = Vec::new();
            for (s, &p) in seqs.iter().zip(&pads) {
                ids.extend(std::iter::repeat_n(0u32, p));
                ids.extend_from_slice(&s[..s.len() - 1]);
            }
            let mut kc = KvCache::with_left_padding(&m, pads.clone());
            m.forward_ids(&ids, 4, &mut kc, true).unwrap();
            let last: Vec<u32> = seqs.iter().map(|s| *s.last().unwrap()).collect();
            let got = m.forward_ids(&last, 4, &mut kc, true).unwrap();
            // The serving step: each sequence prefilled into its own cache,
            // then one decode step for all four.
            let mut caches: Vec<SeqCache> = (0..4).map(|_| SeqCache::new(&m)).collect();
            for (s, c) in seqs.iter().zip(caches.iter_mut()) {
                let mut item = [BatchItem {
                    ids: &s[..s.len() - 1],
                    cache: c,
                    all_logits: false,
                }];
                forward_batch(&m, &mut item).unwrap();
            }
            let mut items: Vec<BatchItem<'_>> = caches
                .iter_mut()
                .zip(&seqs)
                .map(|(c, s)| BatchItem {
                    ids: &s[s.len() - 1..],
                    cache: c,
                    all_logits: false,
                })
                .collect();
            let served = forward_batch(&m, &mut items).unwrap();
            for (r, s) in seqs.iter().enumerate() {
                let mut alone = KvCache::new(&m, 1);
                let all = m.forward_ids(s, 1, &mut alone, false).unwrap();
                let want = &all[all.len() - v..];
                let diff = max_diff(&got[r * v..(r + 1) * v], want);
                assert!(diff < 1e-4, "{arch} row {r}: {diff}");
                let diff = max_diff(&served[r], want);
                assert!(diff < 1e-4, "{arch} served row {r}: {diff}");
            }
        }
    }

    /// Mixed prefills and decodes in one step give each sequence the logits
    /// it gets alone through `Model::forward_ids`.
    #[test]
    fn batched_step_matches_single_sequences() {
        for arch in ["llama", "qwen3", "mistral"] {
            let d = tempfile::tempdir().unwrap();
            write_tiny_model(d.path(), arch, 5).unwrap();
            let m = Model::load(d.path(), &LoadOptions::default()).unwrap();
            let prompts: Vec<Vec<u32>> = vec![
                vec![5, 9, 200, 31, 7, 8, 9, 10, 11],
                vec![17],
                vec![40, 41, 42, 43],
            ];
            // Reference: each alone, full logits of the prompt then 3 decodes.
            let nexts = [[3u32, 4, 5], [6, 7, 8], [9, 10, 11]];
            let mut want = Vec::new();
            for (p, nx) in prompts.iter().zip(&nexts) {
                let mut kc = KvCache::new(&m, 1);
                let mut rows = vec![m.forward_ids(p, 1, &mut kc, false).unwrap()];
                for &t in nx {
                    rows.push(m.forward_ids(&[t], 1, &mut kc, true).unwrap());
                }
                want.push(rows);
            }
            // Batched: the first two prefill together, the third joins a step
            // later while the others decode.
            let mut caches: Vec<SeqCache> = (0..3).map(|_| SeqCache::new(&m)).collect();
            let (c01, c2) = caches.split_at_mut(2);
            let (c0, c1) = c01.split_at_mut(1);
            let got = forward_batch(
                &m,
                &mut [
                    BatchItem {
                        ids: &prompts[0],
                        cache: &mut c0[0],
                        all_logits: true,
                    },
                    BatchItem {
                        ids: &prompts[1],
                        cache: &mut c1[0],
                        all_logits: false,
                    },
                ],
            )
            .unwrap();
            assert!(max_diff(&got[0], &want[0][0]) < 1e-4, "{arch}");
            let v = m.vocab_size();
            assert!(max_diff(&got[1], &want[1][0][..v]) < 1e-4, "{arch}");
            let got = forward_batch(
                &m,
                &mut [
                    BatchItem {
                        ids: &nexts[0][..1],
                        cache: &mut c0[0],
                        all_logits: false,
                    },
                    BatchItem {
                        ids: &prompts[2],
                        cache: &mut c2[0],
                        all_logits: false,
                    },
                    BatchItem {
                        ids: &nexts[1][..1],
                        cache: &mut c1[0],
                        all_logits: false,
                    },
                ],
            )
            .unwrap();
            assert!(max_diff(&got[0], &want[0][1]) < 1e-4, "{arch}");
            let w2 = &want[2][0];
            assert!(max_diff(&got[1], &w2[w2.len() - v..]) < 1e-4, "{arch}");
            assert!(max_diff(&got[2], &want[1][1]) < 1e-4, "{arch}");
            assert_eq!(c0[0].len(), prompts[0].len() + 1);
            assert_eq!(c2[0].len(), prompts[2].len());
        }
    }

    /// On the quantized test model a row's logits are the same bits alone or
    /// in a batch, and prompt log-probs equal `Model::token_logprobs`.
    #[test]
    fn quantized_rows_do_not_depend_on_the_batch() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            p.exists(),
            "{} is missing: run fixtures/fetch-smollm2.sh",
            p.display()
        );
        let m = Model::load(&p, &LoadOptions::default()).unwrap();
        let ids: Vec<u32> = vec![504, 3575, 282, 4649, 314, 7042, 30];
        let mut alone = SeqCache::new(&m);
        let a = forward_batch(
            &m,
            &mut [BatchItem {
                ids: &ids,
                cache: &mut alone,
                all_logits: true,
            }],
        )
        .unwrap();
        let mut c1 = SeqCache::new(&m);
        let mut c2 = SeqCache::new(&m);
        let b = forward_batch(
            &m,
            &mut [
                BatchItem {
                    ids: &[1, 2, 3],
                    cache: &mut c1,
                    all_logits: false,
                },
                BatchItem {
                    ids: &ids,
                    cache: &mut c2,
                    all_logits: true,
                },
            ],
        )
        .unwrap();
        assert_eq!(a[0], b[1]);
        let v = m.vocab_size();
        let want = m.token_logprobs(&ids).unwrap();
        for (i, w) in want.iter().enumerate() {
            let row = &a[0][i * v..(i + 1) * v];
            let got = crate::model::decoder::log_softmax_at(row, ids[i + 1] as usize);
            assert!((got - w).abs() < 1e-4, "{i}: {got} vs {w}");
        }
        // One decode row alone and beside another: the same bits.
        let mut d1 = alone.clone();
        let mut d2 = alone.clone();
        let mut d3 = SeqCache::new(&m);
        let x = forward_batch(
            &m,
            &mut [BatchItem {
                ids: &[11],
                cache: &mut d1,
                all_logits: false,
            }],
        )
        .unwrap();
        let y = forward_batch(
            &m,
            &mut [
                BatchItem {
                    ids: &[11],
                    cache: &mut d2,
                    all_logits: false,
                },
                BatchItem {
                    ids: &[7],
                    cache: &mut d3,
                    all_logits: false,
                },
            ],
        )
        .unwrap();
        assert_eq!(x[0], y[0]);
        // The fused kernel (one or two rows) and the f32 tiles (more) agree
        // bit for bit on the model's Q4_1 and Q8_0 weights.
        let mut ws: Vec<&QWeight> = Vec::new();
        if let Linear::Quantized { weight, .. } = &m.layers[0].q_proj {
            ws.push(weight);
        }
        if let Embedding::Quantized(q) = &m.embed {
            ws.push(q);
        }
        assert_eq!(ws.len(), 2);
        for w in ws {
            let xs: Vec<f32> = (0..5 * w.cols)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 30.0)
                .collect();
            for n in [1, 2, 5] {
                let mut a = vec![0f32; n * w.rows];
                let mut b = vec![0f32; n * w.rows];
                qmatmul(w, &xs[..n * w.cols], n, &mut a);
                qmatmul_tiles(w, &xs[..n * w.cols], n, &mut b);
                assert!(a == b, "{:?} n={n}", w.dtype);
            }
        }
    }
}
