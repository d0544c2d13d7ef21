//! Causal attention of one query row of one head over a KV cache, shared by
//! the single-sequence decoder and the batched serving step.
//!
//! Decode attention is small matrix work (a few hundred positions of 64
//! values per head) done ~270 times per token on SmolLM2, so it is written
//! for the core: on AVX2 the query-key products of eight positions are
//! summed together and reduced in one horizontal tree, the softmax weights
//! are computed eight lanes at a time, and the weighted sum of value rows
//! keeps its 64 output lanes in registers across positions. A portable path
//! computes the same quantities in the same order of positions.

/// `out = sum_j softmax_j(scale * q . k_j) v_j` over cached positions
/// `lo..=hi`. `k` and `v` hold one cache row per position, `stride` values
/// apart; the head's `q.len()` values start `off` into each row. `scores` is
/// scratch space (grown as needed).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    stride: usize,
    off: usize,
    span: (usize, usize),
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    attend_part(q, k, v, stride, off, span, scale, scores, out);
}

/// [`attend`] over one part of the positions: `out` is that part's
/// softmax-weighted sum; returns the part's largest score and the sum of
/// `exp(score - largest)`, which [`merge_parts`] needs to combine parts.
#[allow(clippy::too_many_arguments)]
pub fn attend_part(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    stride: usize,
    off: usize,
    (lo, hi): (usize, usize),
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) -> (f32, f32) {
    let hd = q.len();
    assert_eq!(out.len(), hd);
    assert!(lo <= hi && off + hd <= stride);
    assert!(k.len() >= (hi + 1) * stride && v.len() >= (hi + 1) * stride);
    if scores.len() < hi + 1 {
        scores.resize(hi + 1, 0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if hd % 8 == 0 && super::quant::has_avx2() {
        // SAFETY: AVX2/FMA present; every row read is inside `k`/`v`
        // (checked above) and `scores` holds `hi + 1` values.
        unsafe {
            avx2::scores(q, k, stride, off, lo, hi, scale, scores);
            let ms = softmax(&mut scores[lo..=hi]);
            avx2::weighted_sum(&scores[lo..=hi], v, stride, off + lo * stride, out);
            return ms;
        }
    }
    for (j, sj) in scores.iter_mut().enumerate().take(hi + 1).skip(lo) {
        let at = j * stride + off;
        *sj = dot_lanes(q, &k[at..at + hd]) * scale;
    }
    let ms = softmax(&mut scores[lo..=hi]);
    // Up to 64 output lanes at a time held across the positions, each value
    // row read once per chunk.
    let mut c = 0;
    while c < hd {
        let w = 64.min(hd - c);
        let mut acc = [0f32; 64];
        for (j, &p) in (lo..=hi).zip(&scores[lo..=hi]) {
            let at = j * stride + off + c;
            for (a, x) in acc[..w].iter_mut().zip(&v[at..at + w]) {
                *a += p * x;
            }
        }
        out[c..c + w].copy_from_slice(&acc[..w]);
        c += w;
    }
    ms
}

/// The head layout of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    /// Query heads.
    pub n: usize,
    /// Key/value heads (each shared by `n / kv` query heads).
    pub kv: usize,
    /// Values per head.
    pub dim: usize,
    /// The score scale, usually `1 / sqrt(dim)`.
    pub scale: f32,
}

impl Heads {
    /// The layout of `cfg`'s attention layers.
    pub fn of(cfg: &super::config::ModelConfig) -> Heads {
        Heads {
            n: cfg.num_attention_heads,
            kv: cfg.num_key_value_heads,
            dim: cfg.head_dim,
            scale: 1.0 / (cfg.head_dim as f32).sqrt(),
        }
    }
}

/// The first position that position `qi` attends to under a sliding
/// `window` (0 without one).
pub fn window_start(qi: usize, window: Option<usize>) -> usize {
    match window {
        Some(w) if qi + 1 > w => qi + 1 - w,
        _ => 0,
    }
}

/// One sequence in a decode step: its cached keys and values (rows of
/// `kv * dim`, the new position included) and the positions its new token
/// attends to (`None`: none, the output row stays zero).
pub struct DecodeSeq<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub span: Option<(usize, usize)>,
}

/// Attention for one new position per sequence: `q` and `out` hold one row
/// of `n * dim` values per sequence.
///
/// Tasks on the decode pool are (sequence, KV group, half of the
/// positions): the query heads of a group share one read of their keys and
/// values, and two halves per group spread evenly over two threads where
/// SmolLM2's nine heads did not. The halves are combined by
/// [`merge_parts`]; the cut does not depend on the thread count, so
/// neither do the results.
pub fn decode(h: Heads, q: &[f32], seqs: &[DecodeSeq<'_>], out: &mut [f32]) {
    const SPLIT: usize = 2;
    let (nh, nkv, hd) = (h.n, h.kv, h.dim);
    let (qd, kvd, gh) = (nh * hd, nkv * hd, nh / nkv);
    assert!(nkv > 0 && nh % nkv == 0);
    assert_eq!(q.len(), seqs.len() * qd);
    assert_eq!(out.len(), seqs.len() * qd);
    // Per task: the group's head outputs, then (max, sum) per head.
    let per = gh * (hd + 2);
    let mut parts = vec![0f32; seqs.len() * nkv * SPLIT * per];
    let p = super::pool::SyncPtr(parts.as_mut_ptr());
    super::pool::run(seqs.len() * nkv * SPLIT, |i| {
        let (si, g, part) = (i / (nkv * SPLIT), i / SPLIT % nkv, i % SPLIT);
        let seq = &seqs[si];
        let Some((lo, hi)) = seq.span else {
            return;
        };
        let n_pos = hi + 1 - lo;
        let (plo, phi) = (lo + n_pos * part / SPLIT, lo + n_pos * (part + 1) / SPLIT);
        if plo == phi {
            return;
        }
        // SAFETY: task i writes its own [i * per, (i + 1) * per).
        let buf = unsafe { p.slice(i * per, per) };
        let (outs, ms) = buf.split_at_mut(gh * hd);
        let mut scores = Vec::with_capacity(hi + 1);
        for j in 0..gh {
            let hh = g * gh + j;
            let (m, s) = attend_part(
                &q[si * qd + hh * hd..si * qd + (hh + 1) * hd],
                seq.k,
                seq.v,
                kvd,
                g * hd,
                (plo, phi - 1),
                h.scale,
                &mut scores,
                &mut outs[j * hd..(j + 1) * hd],
            );
            ms[2 * j] = m;
            ms[2 * j + 1] = s;
        }
    });
    for si in 0..seqs.len() {
        for hh in 0..nh {
            let (g, j) = (hh / gh, hh % gh);
            let mut ps: Vec<((f32, f32), &[f32])> = Vec::with_capacity(SPLIT);
            for part in 0..SPLIT {
                let buf = &parts[((si * nkv + g) * SPLIT + part) * per..][..per];
                let ms = &buf[gh * hd..];
                // An empty part has sum 0 (its buffer was never written).
                if ms[2 * j + 1] > 0.0 {
                    ps.push(((ms[2 * j], ms[2 * j + 1]), &buf[j * hd..(j + 1) * hd]));
                }
            }
            let o = &mut out[si * qd + hh * hd..si * qd + (hh + 1) * hd];
            if ps.is_empty() {
                o.fill(0.0);
            } else {
                merge_parts(&ps, o);
            }
        }
    }
}

/// The attention output over the union of disjoint parts of the positions,
/// from each part's output and `(largest score, sum of exponentials)` as
/// [`attend_part`] returns them.
pub fn merge_parts(parts: &[((f32, f32), &[f32])], out: &mut [f32]) {
    let top = parts
        .iter()
        .map(|((m, _), _)| *m)
        .fold(f32::NEG_INFINITY, f32::max);
    // Each part's weight, recomputed below rather than kept in a Vec: this
    // runs per head and layer on every decoded token.
    let weight = |(m, s): (f32, f32)| s * (m - top).exp();
    let inv = 1.0 / parts.iter().map(|(ms, _)| weight(*ms)).sum::<f32>();
    out.fill(0.0);
    for (ms, o) in parts {
        let f = weight(*ms) * inv;
        for (a, x) in out.iter_mut().zip(o.iter()) {
            *a += f * x;
        }
    }
}

/// In place: `s_j <- exp(s_j - max) / sum`; returns `(max, sum)`.
fn softmax(s: &mut [f32]) -> (f32, f32) {
    let mx = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum = super::vmath::exp_sub_sum(s, mx);
    let inv = 1.0 / sum;
    for x in s.iter_mut() {
        *x *= inv;
    }
    (mx, sum)
}

/// Dot product in eight lanes (vectorized by the compiler).
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n8 = a.len().min(b.len()) / 8 * 8;
    let mut acc = [0f32; 8];
    for (ca, cb) in a[..n8].chunks_exact(8).zip(b[..n8].chunks_exact(8)) {
        for ((s, x), y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += x * y;
        }
    }
    let h = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    let mut t = (h[0] + h[2]) + (h[1] + h[3]);
    for (x, y) in a[n8..].iter().zip(&b[n8..]) {
        t += x * y;
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `s[j] = scale * q . k_j` for `j` in `lo..=hi` (`q.len()` a multiple of 8).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scores(
        q: &[f32],
        k: &[f32],
        stride: usize,
        off: usize,
        lo: usize,
        hi: usize,
        scale: f32,
        s: &mut [f32],
    ) {
        let nc = q.len() / 8;
        let (qp, kp) = (q.as_ptr(), k.as_ptr().add(off));
        let sc = _mm256_set1_ps(scale);
        let mut j = lo;
        // Eight positions at a time: eight independent accumulators, then
        // one reduction tree gives the eight sums in one register.
        while j + 8 <= hi + 1 {
            let mut a = [_mm256_setzero_ps(); 8];
            for c in 0..nc {
                let qc = _mm256_loadu_ps(qp.add(c * 8));
                for (p, acc) in a.iter_mut().enumerate() {
                    let kr = kp.add((j + p) * stride + c * 8);
                    *acc = _mm256_fmadd_ps(qc, _mm256_loadu_ps(kr), *acc);
                }
            }
            let h01 = _mm256_hadd_ps(a[0], a[1]);
            let h23 = _mm256_hadd_ps(a[2], a[3]);
            let h45 = _mm256_hadd_ps(a[4], a[5]);
            let h67 = _mm256_hadd_ps(a[6], a[7]);
            // Lanes 0-3: positions 0-3's sums of their low four lanes; 4-7: of the high four.
            let h0 = _mm256_hadd_ps(h01, h23);
            let h1 = _mm256_hadd_ps(h45, h67);
            let sum = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(h0, h1),
                _mm256_permute2f128_ps::<0x31>(h0, h1),
            );
            _mm256_storeu_ps(s.as_mut_ptr().add(j), _mm256_mul_ps(sum, sc));
            j += 8;
        }
        while j <= hi {
            let mut acc = _mm256_setzero_ps();
            for c in 0..nc {
                let kr = kp.add(j * stride + c * 8);
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(c * 8)), _mm256_loadu_ps(kr), acc);
            }
            s[j] = super::super::quant::avx2::hsum(acc) * scale;
            j += 1;
        }
    }

    /// `out = sum_j p[j] * v_j`, value row `j` at `v[at + j * stride..]`
    /// (`out.len()` a multiple of 8).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weighted_sum(p: &[f32], v: &[f32], stride: usize, at: usize, out: &mut [f32]) {
        let hd = out.len();
        let vp = v.as_ptr().add(at);
        let mut c = 0;
        // 64 output lanes (eight registers) per pass over the positions.
        while c + 64 <= hd {
            let mut a = [_mm256_setzero_ps(); 8];
            for (j, &pj) in p.iter().enumerate() {
                let w = _mm256_set1_ps(pj);
                let r = vp.add(j * stride + c);
                for (i, acc) in a.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(r.add(8 * i)), *acc);
                }
            }
            for (i, acc) in a.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(c + 8 * i), *acc);
            }
            c += 64;
        }
        while c < hd {
            let mut acc = _mm256_setzero_ps();
            for (j, &pj) in p.iter().enumerate() {
                let r = vp.add(j * stride + c);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(pj), _mm256_loadu_ps(r), acc);
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(c), acc);
            c += 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Softmax-weighted values in f64, the textbook way.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        stride: usize,
        off: usize,
        lo: usize,
        hi: usize,
    ) -> Vec<f64> {
        let hd = q.len();
        let scale = 1.0 / (hd as f64).sqrt();
        let s: Vec<f64> = (lo..=hi)
            .map(|j| {
                (0..hd)
                    .map(|i| q[i] as f64 * k[j * stride + off + i] as f64)
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
        let z: f64 = e.iter().sum();
        (0..hd)
            .map(|i| {
                (lo..=hi)
                    .zip(&e)
                    .map(|(j, w)| w / z * v[j * stride + off + i] as f64)
                    .sum()
            })
            .collect()
    }

    #[test]
    fn parts_merge_to_the_whole() {
        let (hd, stride, len) = (64usize, 192usize, 50usize);
        let k: Vec<f32> = (0..len * stride)
            .map(|i| ((i * 7) as f32 * 0.013).sin())
            .collect();
        let v: Vec<f32> = (0..len * stride)
            .map(|i| ((i * 3) as f32 * 0.029).cos())
            .collect();
        let q: Vec<f32> = (0..hd).map(|i| (i as f32 * 0.3).sin() * 3.0).collect();
        let mut sc = Vec::new();
        let mut whole = vec![0f32; hd];
        attend(&q, &k, &v, stride, 64, (3, 49), 0.125, &mut sc, &mut whole);
        for cut in [4usize, 20, 49] {
            let mut a = vec![0f32; hd];
            let mut b = vec![0f32; hd];
            let ma = attend_part(&q, &k, &v, stride, 64, (3, cut - 1), 0.125, &mut sc, &mut a);
            let mb = attend_part(&q, &k, &v, stride, 64, (cut, 49), 0.125, &mut sc, &mut b);
            let mut got = vec![0f32; hd];
            merge_parts(&[(ma, &a), (mb, &b)], &mut got);
            for (g, w) in got.iter().zip(&whole) {
                assert!((g - w).abs() < 1e-6, "cut {cut}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn attend_matches_the_textbook_softmax_for_every_span() {
        let mut state = 0x2545_f491u32;
        let mut rnd = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 4.0 - 2.0
        };
        // Head sizes: AVX2 path with one and two 64-lane chunks and a
        // remainder chunk; 12 takes the portable path.
        for hd in [64usize, 128, 40, 12] {
            let (heads, len) = (3usize, 37usize);
            let stride = heads * hd;
            let k: Vec<f32> = (0..len * stride).map(|_| rnd()).collect();
            let v: Vec<f32> = (0..len * stride).map(|_| rnd()).collect();
            let q: Vec<f32> = (0..hd).map(|_| rnd()).collect();
            let mut scores = Vec::new();
            for (lo, hi) in [(0, 0), (0, 7), (0, 36), (5, 20), (29, 36)] {
                for h in 0..heads {
                    let off = h * hd;
                    let mut out = vec![f32::NAN; hd];
                    let scale = 1.0 / (hd as f32).sqrt();
                    attend(
                        &q,
                        &k,
                        &v,
                        stride,
                        off,
                        (lo, hi),
                        scale,
                        &mut scores,
                        &mut out,
                    );
                    let want = reference(&q, &k, &v, stride, off, lo, hi);
                    for (g, w) in out.iter().zip(&want) {
                        assert!(
                            (*g as f64 - w).abs() < 1e-5,
                            "hd {hd} span {lo}..={hi} head {h}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
