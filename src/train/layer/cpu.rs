//! The CPU's kernels for the fused training layer.
//!
//! Matrix products go to the `gemm` crate (the one candle itself calls; it
//! picks AVX-512, AVX2+FMA or scalar kernels at run time), called directly on
//! our buffers with strides, so no operand is ever transposed or copied, and
//! products accumulate in place. Frozen GGUF / NF4 weights are expanded to
//! f32 once per product into a buffer that lives across calls. Element-wise
//! work is one fused pass per kernel, split over rows on rayon's threads.

use super::{Dims, Kernels, Packing};
use crate::model::linear::{with_f32, Linear, Lora};
use crate::model::quant::QWeight;
use anyhow::{bail, Result};
use candle_core::Tensor;
use rayon::prelude::*;
use std::cell::RefCell;

/// Element-wise passes split into tasks of at least this many values.
const PAR_MIN: usize = 1 << 14;

/// The CPU kernels, with the rotary table for the positions of one batch.
pub struct Cpu {
    half: usize,
    /// `cos(pos * inv_freq[i])`, `[positions, half]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Cpu {
    /// Kernels for sequences of up to `max_len` positions.
    pub fn new(inv_freq: &[f32], max_len: usize) -> Cpu {
        let half = inv_freq.len();
        let mut cos = vec![0f32; max_len * half];
        let mut sin = vec![0f32; max_len * half];
        for p in 0..max_len {
            for (i, &f) in inv_freq.iter().enumerate() {
                // As the candle path computes it: position (f32) times frequency.
                let a = p as f32 * f;
                cos[p * half + i] = a.cos();
                sin[p * half + i] = a.sin();
            }
        }
        Cpu { half, cos, sin }
    }
}

/// A read-only matrix view: element `(i, j)` at `i * rs + j * cs`.
#[derive(Clone, Copy)]
struct M<'a> {
    d: &'a [f32],
    rs: usize,
    cs: usize,
}

fn m(d: &[f32], rs: usize, cs: usize) -> M<'_> {
    M { d, rs, cs }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst [m, n]` (row stride `ldd`) `= (accumulate ? dst : 0) + beta · a b`
/// for `a [m, k]`, `b [k, n]`.
#[allow(clippy::too_many_arguments)]
fn matmul(
    mm: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    ldd: usize,
    accumulate: bool,
    a: M,
    b: M,
    beta: f32,
) {
    assert!(
        fits(dst.len(), mm, n, ldd, 1),
        "gemm: destination too small"
    );
    assert!(
        fits(a.d.len(), mm, k, a.rs, a.cs),
        "gemm: left operand too small"
    );
    assert!(
        fits(b.d.len(), k, n, b.rs, b.cs),
        "gemm: right operand too small"
    );
    let work = mm * n * k;
    let threads = rayon::current_num_threads();
    // Inside a parallel task (attention) the product runs on its own thread.
    let nested = rayon::current_thread_index().is_some();
    let par = if work >= 1 << 18 && threads > 1 && !nested {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the product touches is inside the slices (checked
    // above), and `dst` does not alias `a` or `b` (it is borrowed mutably).
    unsafe { gemm_raw(mm, n, k, dst.as_mut_ptr(), ldd, accumulate, a, b, beta, par) }
}

/// [`matmul`] into a raw destination (disjoint blocks written by parallel tasks).
///
/// # Safety
/// `dst` must be valid for the `[m, n]` block at row stride `ldd`, written by
/// nobody else meanwhile, and `a`, `b` must cover their `[m, k]`, `[k, n]`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    mm: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    ldd: usize,
    accumulate: bool,
    a: M,
    b: M,
    beta: f32,
    par: gemm::Parallelism,
) {
    if mm == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..mm {
                std::ptr::write_bytes(dst.add(i * ldd), 0, n);
            }
        }
        return;
    }
    gemm::gemm(
        mm,
        n,
        k,
        dst,
        1,
        ldd as isize,
        accumulate,
        a.d.as_ptr(),
        a.cs as isize,
        a.rs as isize,
        b.d.as_ptr(),
        b.cs as isize,
        b.rs as isize,
        1.0,
        beta,
        false,
        false,
        false,
        par,
    )
}

/// A pointer that parallel tasks share to write disjoint parts of a buffer.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: only used for disjoint writes, joined before the buffer is read.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn at(self, i: usize) -> *mut f32 {
        // SAFETY: callers stay inside the buffer the pointer came from.
        unsafe { self.0.add(i) }
    }
}

thread_local! {
    /// Frozen quantized weights expanded to f32, one at a time.
    static DEQUANT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on the base weight of `lin` as f32 `[out, in]`.
fn with_weight<R>(lin: &Linear, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    match lin.base() {
        Linear::Dense { weight, .. } => with_f32(weight, f),
        Linear::Quantized { weight, .. } => DEQUANT.with(|buf| {
            let mut buf = buf.borrow_mut();
            dequantize(weight, &mut buf);
            Ok(f(&buf))
        }),
        Linear::Lora { .. } => bail!("nested LoRA base"),
    }
}

/// Expand a block-quantized weight to f32, a band of rows per task.
fn dequantize(w: &QWeight, out: &mut Vec<f32>) {
    out.resize(w.rows * w.cols, 0.0);
    let band = (PAR_MIN / w.cols.max(1)).max(1);
    out.par_chunks_mut(band * w.cols)
        .enumerate()
        .for_each(|(t, chunk)| {
            for (i, row) in chunk.chunks_exact_mut(w.cols).enumerate() {
                w.dequantize_row(t * band + i, row);
            }
        });
}

/// splitmix64: the dropout masks' generator (a pure function of its seed).
#[inline]
fn splitmix(z: &mut u64) -> u64 {
    *z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut x = *z;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `out = x ⊙ mask` (accumulate: `out += x ⊙ mask`) for the dropout mask of
/// each row: 0 with probability `p`, else `1 / (1 - p)`, drawn from
/// `(seed, row)` alone.
fn apply_dropout(x: &[f32], width: usize, p: f32, seed: u64, out: &mut [f32], accumulate: bool) {
    let keep = 1.0 / (1.0 - p);
    // u < p  <=>  (bits >> 40) < p * 2^24
    let cut = (p as f64 * (1u64 << 24) as f64) as u64;
    let rows_per = (PAR_MIN / width.max(1)).max(1);
    out.par_chunks_mut(rows_per * width)
        .zip(x.par_chunks(rows_per * width))
        .enumerate()
        .for_each(|(t, (o, xs))| {
            for (i, (orow, xrow)) in o
                .chunks_exact_mut(width)
                .zip(xs.chunks_exact(width))
                .enumerate()
            {
                let mut z = crate::train::mix(&[seed, (t * rows_per + i) as u64]);
                for (ov, &xv) in orow.iter_mut().zip(xrow) {
                    let on = (splitmix(&mut z) >> 40) >= cut;
                    let v = if on { xv * keep } else { 0.0 };
                    if accumulate {
                        *ov += v;
                    } else {
                        *ov = v;
                    }
                }
            }
        });
}

/// Row-parallel map over `[rows, width]` buffers.
fn rows_mut<F>(y: &mut [f32], width: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let rows_per = (PAR_MIN / width.max(1)).max(1);
    y.par_chunks_mut(rows_per * width)
        .enumerate()
        .for_each(|(t, c)| {
            for (i, row) in c.chunks_exact_mut(width).enumerate() {
                f(t * rows_per + i, row);
            }
        });
}

fn add_bias(lin: &Linear, y: &mut [f32]) -> Result<()> {
    if let Some(b) = lin.bias() {
        with_f32(b, |b| {
            rows_mut(y, b.len(), |_, row| {
                for (v, bb) in row.iter_mut().zip(b) {
                    *v += bb;
                }
            })
        })?;
    }
    Ok(())
}

impl Kernels for Cpu {
    type Buf = Vec<f32>;

    fn resize(&self, b: &mut Vec<f32>, n: usize) {
        b.resize(n, 0.0);
    }

    fn upload(&self, host: &[f32], b: &mut Vec<f32>) {
        b.clear();
        b.extend_from_slice(host);
    }

    fn download(&self, b: &Vec<f32>, host: &mut [f32]) {
        host.copy_from_slice(&b[..host.len()]);
    }

    fn copy(&self, src: &Vec<f32>, dst: &mut Vec<f32>) {
        dst.clear();
        dst.extend_from_slice(src);
    }

    fn add(&self, y: &mut Vec<f32>, x: &Vec<f32>) {
        assert_eq!(y.len(), x.len());
        y.par_chunks_mut(PAR_MIN)
            .zip(x.par_chunks(PAR_MIN))
            .for_each(|(a, b)| {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
            });
    }

    fn rms_norm(
        &self,
        x: &Vec<f32>,
        w: &Tensor,
        eps: f32,
        y: &mut Vec<f32>,
        rstd: &mut Vec<f32>,
    ) -> Result<()> {
        with_f32(w, |w| {
            let n = w.len();
            let rows = x.len() / n;
            y.resize(x.len(), 0.0);
            rstd.resize(rows, 0.0);
            let rs = Shared(rstd.as_mut_ptr());
            rows_mut(y, n, |r, yr| {
                let xr = &x[r * n..(r + 1) * n];
                let ss: f32 = xr.iter().map(|v| v * v).sum();
                // As the candle path: x / sqrt(mean(x²) + eps) * w.
                let d = (ss / n as f32 + eps).sqrt();
                for ((yv, &xv), &wv) in yr.iter_mut().zip(xr).zip(w) {
                    *yv = xv / d * wv;
                }
                // SAFETY: row r is this task's alone.
                unsafe { *rs.at(r) = 1.0 / d };
            });
        })
    }

    fn rms_norm_again(
        &self,
        x: &Vec<f32>,
        w: &Tensor,
        rstd: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        with_f32(w, |w| {
            let n = w.len();
            y.resize(x.len(), 0.0);
            rows_mut(y, n, |r, yr| {
                let xr = &x[r * n..(r + 1) * n];
                let d = 1.0 / rstd[r];
                for ((yv, &xv), &wv) in yr.iter_mut().zip(xr).zip(w) {
                    *yv = xv / d * wv;
                }
            });
        })
    }

    fn rms_norm_backward(
        &self,
        x: &Vec<f32>,
        w: &Tensor,
        rstd: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<()> {
        with_f32(w, |w| {
            let n = w.len();
            if !accumulate {
                dx.resize(x.len(), 0.0);
            }
            assert_eq!(dx.len(), x.len());
            rows_mut(dx, n, |r, dxr| {
                let xr = &x[r * n..(r + 1) * n];
                let dyr = &dy[r * n..(r + 1) * n];
                let s = rstd[r];
                // g = dy ⊙ w; dx = s (g - x̂ mean(g ⊙ x̂)), x̂ = x s.
                let mut dot = 0f32;
                for ((&g, &wv), &xv) in dyr.iter().zip(w).zip(xr) {
                    dot += g * wv * xv;
                }
                let c = dot * s * s / n as f32;
                for (((o, &g), &wv), &xv) in dxr.iter_mut().zip(dyr).zip(w).zip(xr) {
                    let v = s * (g * wv - xv * c);
                    if accumulate {
                        *o += v;
                    } else {
                        *o = v;
                    }
                }
            });
        })
    }

    fn linear(&self, lin: &Linear, x: &Vec<f32>, rows: usize, y: &mut Vec<f32>) -> Result<()> {
        let (out, inp) = (lin.out_features(), lin.in_features());
        y.resize(rows * out, 0.0);
        with_weight(lin, |w| {
            matmul(
                rows,
                out,
                inp,
                y,
                out,
                false,
                m(x, inp, 1),
                m(w, 1, inp),
                1.0,
            )
        })?;
        add_bias(lin, y)
    }

    fn linear_backward(
        &self,
        lin: &Linear,
        dy: &Vec<f32>,
        rows: usize,
        dx: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<()> {
        let (out, inp) = (lin.out_features(), lin.in_features());
        if !accumulate {
            dx.resize(rows * inp, 0.0);
        }
        with_weight(lin, |w| {
            matmul(
                rows,
                inp,
                out,
                dx,
                inp,
                accumulate,
                m(dy, out, 1),
                m(w, inp, 1),
                1.0,
            )
        })
    }

    fn lora(
        &self,
        lora: &Lora,
        p: f32,
        x: &Vec<f32>,
        rows: usize,
        seed: u64,
        ax: &mut Vec<f32>,
        y: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) -> Result<()> {
        let (r, inp) = lora.a.dims2()?;
        let out = lora.b.dims2()?.0;
        let xd: &[f32] = if p > 0.0 {
            scratch.resize(rows * inp, 0.0);
            apply_dropout(&x[..rows * inp], inp, p, seed, scratch, false);
            scratch
        } else {
            x
        };
        ax.resize(rows * r, 0.0);
        with_f32(&lora.a, |a| {
            matmul(rows, r, inp, ax, r, false, m(xd, inp, 1), m(a, 1, inp), 1.0)
        })?;
        with_f32(&lora.b, |b| {
            matmul(
                rows,
                out,
                r,
                y,
                out,
                true,
                m(ax, r, 1),
                m(b, 1, r),
                lora.scale as f32,
            )
        })
    }

    fn lora_backward(
        &self,
        lora: &Lora,
        x: &Vec<f32>,
        ax: &Vec<f32>,
        dy: &Vec<f32>,
        rows: usize,
        seed: u64,
        dx: &mut Vec<f32>,
        grads: Option<(&mut [f32], &mut [f32])>,
        (t, tmp): (&mut Vec<f32>, &mut Vec<f32>),
    ) -> Result<()> {
        let (r, inp) = lora.a.dims2()?;
        let out = lora.b.dims2()?.0;
        let s = lora.scale as f32;
        // t = s · dy B  [rows, r]
        t.resize(rows * r, 0.0);
        with_f32(&lora.b, |b| {
            matmul(rows, r, out, t, r, false, m(dy, out, 1), m(b, r, 1), s)
        })?;
        let drop = lora.dropout > 0.0;
        if let Some((da, db)) = grads {
            // dB += s · dyᵀ ax
            matmul(out, r, rows, db, r, true, m(dy, 1, out), m(ax, r, 1), s);
            // dA += tᵀ dropout(x)
            let xd: &[f32] = if drop {
                tmp.resize(rows * inp, 0.0);
                apply_dropout(&x[..rows * inp], inp, lora.dropout, seed, tmp, false);
                tmp
            } else {
                x
            };
            matmul(r, inp, rows, da, inp, true, m(t, 1, r), m(xd, inp, 1), 1.0);
        }
        // dx += (t A) ⊙ mask
        with_f32(&lora.a, |a| {
            if drop {
                tmp.resize(rows * inp, 0.0);
                matmul(rows, inp, r, tmp, inp, false, m(t, r, 1), m(a, inp, 1), 1.0);
                apply_dropout(tmp, inp, lora.dropout, seed, &mut dx[..rows * inp], true);
            } else {
                matmul(rows, inp, r, dx, inp, true, m(t, r, 1), m(a, inp, 1), 1.0);
            }
        })
    }

    fn rope(&self, x: &mut Vec<f32>, pack: &Packing, head_dim: usize, inverse: bool) {
        let half = self.half;
        debug_assert_eq!(head_dim, 2 * half);
        let width = x.len() / pack.rows.max(1);
        rows_mut(x, width, |r, row| {
            let p = pack.pos[r] as usize;
            let (c, s) = (
                &self.cos[p * half..(p + 1) * half],
                &self.sin[p * half..(p + 1) * half],
            );
            for head in row.chunks_exact_mut(head_dim) {
                let (x1, x2) = head.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = (x1[i], x2[i]);
                    if inverse {
                        x1[i] = a * c[i] + b * s[i];
                        x2[i] = b * c[i] - a * s[i];
                    } else {
                        x1[i] = a * c[i] - b * s[i];
                        x2[i] = b * c[i] + a * s[i];
                    }
                }
            }
        });
    }

    fn attention(
        &self,
        dims: &Dims,
        pack: &Packing,
        q: &Vec<f32>,
        k: &Vec<f32>,
        v: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (nh, hd) = (dims.heads, dims.head_dim);
        let (qd, kvd) = (dims.q_dim(), dims.kv_dim());
        let rep = nh / dims.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        out.resize(pack.rows * qd, 0.0);
        let dst = Shared(out.as_mut_ptr());
        let tasks: Vec<(usize, usize)> = (0..pack.seqs.len())
            .flat_map(|s| (0..nh).map(move |h| (s, h)))
            .collect();
        tasks.par_iter().for_each(|&(si, h)| {
            let (r0, len) = pack.seqs[si];
            let g = h / rep;
            let mut p = vec![0f32; len * len];
            scores(dims, r0, len, h, g, q, k, scale, &mut p);
            // out rows = P V
            let vv = m(&v[r0 * kvd + g * hd..], kvd, 1);
            // SAFETY: head h of sequence si is this task's block of `out`.
            unsafe {
                let d = dst;
                gemm_raw(
                    len,
                    hd,
                    len,
                    d.at(r0 * qd + h * hd),
                    qd,
                    false,
                    m(&p, len, 1),
                    vv,
                    1.0,
                    gemm::Parallelism::None,
                )
            };
        });
        Ok(())
    }

    fn attention_backward(
        &self,
        dims: &Dims,
        pack: &Packing,
        q: &Vec<f32>,
        k: &Vec<f32>,
        v: &Vec<f32>,
        out: &Vec<f32>,
        dout: &Vec<f32>,
        dq: &mut Vec<f32>,
        dk: &mut Vec<f32>,
        dv: &mut Vec<f32>,
    ) -> Result<()> {
        let (nh, hd) = (dims.heads, dims.head_dim);
        let (qd, kvd) = (dims.q_dim(), dims.kv_dim());
        let rep = nh / dims.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        dq.resize(pack.rows * qd, 0.0);
        dk.resize(pack.rows * kvd, 0.0);
        dv.resize(pack.rows * kvd, 0.0);
        let (pq, pk, pv) = (
            Shared(dq.as_mut_ptr()),
            Shared(dk.as_mut_ptr()),
            Shared(dv.as_mut_ptr()),
        );
        let tasks: Vec<(usize, usize)> = (0..pack.seqs.len())
            .flat_map(|s| (0..dims.kv_heads).map(move |g| (s, g)))
            .collect();
        tasks.par_iter().for_each(|&(si, g)| {
            let (r0, len) = pack.seqs[si];
            let mut p = vec![0f32; len * len];
            let mut dp = vec![0f32; len * len];
            let kk = m(&k[r0 * kvd + g * hd..], kvd, 1);
            let par = gemm::Parallelism::None;
            for (j, h) in (g * rep..(g + 1) * rep).enumerate() {
                scores(dims, r0, len, h, g, q, k, scale, &mut p);
                let dout_h = &dout[r0 * qd + h * hd..];
                let out_h = &out[r0 * qd + h * hd..];
                // dP = dO Vᵀ
                matmul(
                    len,
                    len,
                    hd,
                    &mut dp,
                    len,
                    false,
                    m(dout_h, qd, 1),
                    m(&v[r0 * kvd + g * hd..], 1, kvd),
                    1.0,
                );
                // dS = P ⊙ (dP - rowsum(dO ⊙ O)) · scale
                for i in 0..len {
                    let di: f32 = dout_h[i * qd..i * qd + hd]
                        .iter()
                        .zip(&out_h[i * qd..i * qd + hd])
                        .map(|(a, b)| a * b)
                        .sum();
                    for jj in 0..len {
                        let e = i * len + jj;
                        dp[e] = p[e] * (dp[e] - di) * scale;
                    }
                }
                let acc = j > 0;
                // SAFETY: rows of sequence si, head h (dq) / group g (dk, dv)
                // are this task's alone.
                unsafe {
                    // dQ = dS K
                    gemm_raw(
                        len,
                        hd,
                        len,
                        pq.at(r0 * qd + h * hd),
                        qd,
                        false,
                        m(&dp, len, 1),
                        kk,
                        1.0,
                        par,
                    );
                    // dK += dSᵀ Q
                    gemm_raw(
                        len,
                        hd,
                        len,
                        pk.at(r0 * kvd + g * hd),
                        kvd,
                        acc,
                        m(&dp, 1, len),
                        m(&q[r0 * qd + h * hd..], qd, 1),
                        1.0,
                        par,
                    );
                    // dV += Pᵀ dO
                    gemm_raw(
                        len,
                        hd,
                        len,
                        pv.at(r0 * kvd + g * hd),
                        kvd,
                        acc,
                        m(&p, 1, len),
                        m(dout_h, qd, 1),
                        1.0,
                        par,
                    );
                }
            }
        });
        Ok(())
    }

    fn swiglu(&self, gate: &Vec<f32>, up: &Vec<f32>, act: &mut Vec<f32>) {
        act.resize(gate.len(), 0.0);
        act.par_chunks_mut(PAR_MIN)
            .zip(gate.par_chunks(PAR_MIN).zip(up.par_chunks(PAR_MIN)))
            .for_each(|(a, (g, u))| {
                for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                    // silu as candle: g / (1 + exp(-g))
                    *a = g / (1.0 + (-g).exp()) * u;
                }
            });
    }

    fn swiglu_backward(
        &self,
        gate: &Vec<f32>,
        up: &Vec<f32>,
        dact: &Vec<f32>,
        dgate: &mut Vec<f32>,
        dup: &mut Vec<f32>,
    ) {
        dgate.resize(gate.len(), 0.0);
        dup.resize(gate.len(), 0.0);
        dgate
            .par_chunks_mut(PAR_MIN)
            .zip(dup.par_chunks_mut(PAR_MIN))
            .zip(gate.par_chunks(PAR_MIN).zip(up.par_chunks(PAR_MIN)))
            .zip(dact.par_chunks(PAR_MIN))
            .for_each(|(((dg, du), (g, u)), da)| {
                for i in 0..dg.len() {
                    let (gv, uv, d) = (g[i], u[i], da[i]);
                    let sg = 1.0 / (1.0 + (-gv).exp());
                    let silu = gv * sg;
                    dg[i] = d * uv * sg * (1.0 + gv * (1.0 - sg));
                    du[i] = d * silu;
                }
            });
    }
}

/// The attention probabilities `p [len, len]` of head `h` (kv group `g`) of
/// the sequence at rows `r0..r0 + len`: causal (and windowed), softmax of
/// `q kᵀ · scale` as the candle path computes it.
#[allow(clippy::too_many_arguments)]
fn scores(
    dims: &Dims,
    r0: usize,
    len: usize,
    h: usize,
    g: usize,
    q: &[f32],
    k: &[f32],
    scale: f32,
    p: &mut [f32],
) {
    let hd = dims.head_dim;
    let (qd, kvd) = (dims.q_dim(), dims.kv_dim());
    matmul(
        len,
        len,
        hd,
        p,
        len,
        false,
        m(&q[r0 * qd + h * hd..], qd, 1),
        m(&k[r0 * kvd + g * hd..], 1, kvd),
        1.0,
    );
    for i in 0..len {
        let lo = match dims.sliding_window {
            Some(w) if i + 1 > w => i + 1 - w,
            _ => 0,
        };
        let row = &mut p[i * len..(i + 1) * len];
        let mut mx = f32::NEG_INFINITY;
        for v in &mut row[lo..=i] {
            *v *= scale;
            mx = mx.max(*v);
        }
        let mut sum = 0f32;
        for v in &mut row[lo..=i] {
            *v = (*v - mx).exp();
            sum += *v;
        }
        for v in &mut row[lo..=i] {
            *v /= sum;
        }
        row[..lo].fill(0.0);
        row[i + 1..].fill(0.0);
    }
}
