//! The one f32 inference forward: embeddings, every decoder layer, the final
//! norm and the head, over the new rows of any number of sequences.
//!
//! [`Model::forward_ids`](super::Model::forward_ids) (the CLI: one batch of
//! equal-length, left-padded rows in a [`KvCache`](super::KvCache)) and
//! [`forward_batch`](super::batched::forward_batch) (the server: sequences
//! of their own lengths, each in its own
//! [`SeqCache`](super::batched::SeqCache)) both run [`forward`]; they differ
//! only in where keys and values are kept ([`KvStore`]) and in the kernel a
//! lone row of quantized weights runs on ([`RowKernel`]).
//!
//! The rotary tables are built here and nowhere else in the inference path
//! ([`rope_table`]); the working buffers live in a [`Scratch`] that the
//! caches own, so a decode step allocates none of them.

use anyhow::Result;

use super::attention;
use super::decoder::Model;
use super::linear::{with_f32, Linear, RowKernel};
use super::pool;
use super::vmath;

/// One sequence's part of a forward: `rows` new tokens that continue the
/// `start` positions already cached, the first `pad` of which are left
/// padding (never attended to; the first real token has position 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seq {
    pub rows: usize,
    pub start: usize,
    pub pad: usize,
    /// Logits of every new row instead of the last only.
    pub all_logits: bool,
}

/// Where the keys and values of each sequence's positions live, per layer
/// (rows of `kv_dim` values, padding positions included).
pub(crate) trait KvStore {
    /// Append the new positions' keys and values of sequence `seq`.
    fn append(&mut self, layer: usize, seq: usize, k: &[f32], v: &[f32]);
    /// Keys and values of every cached position of sequence `seq`.
    fn get(&self, layer: usize, seq: usize) -> (&[f32], &[f32]);
}

/// The working buffers of a forward, reused from step to step.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    x: Vec<f32>,
    hbuf: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    heads: Vec<f32>,
    o: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Steps of more rows than this (prefills) give their buffers back when
/// they end: a cache should not hold a long prompt's working memory while
/// it decodes one row at a time.
const KEEP_ROWS: usize = 64;

impl Scratch {
    /// Size every buffer for `n` rows of `model` (contents unspecified).
    fn fit(&mut self, model: &Model, n: usize) {
        let c = model.config();
        let (h, qd, kvd) = (c.hidden_size, c.q_dim(), c.kv_dim());
        let half = c.head_dim / 2;
        for (b, w) in [
            (&mut self.x, h),
            (&mut self.hbuf, h),
            (&mut self.o, h),
            (&mut self.q, qd),
            (&mut self.att, qd),
            (&mut self.heads, qd),
            (&mut self.k, kvd),
            (&mut self.v, kvd),
            (&mut self.g, c.intermediate_size),
            (&mut self.u, c.intermediate_size),
            (&mut self.cos, half),
            (&mut self.sin, half),
        ] {
            b.resize(n * w, 0.0);
        }
    }

    /// Bytes held.
    pub fn n_bytes(&self) -> usize {
        [
            &self.x,
            &self.hbuf,
            &self.o,
            &self.q,
            &self.att,
            &self.heads,
            &self.k,
            &self.v,
            &self.g,
            &self.u,
            &self.cos,
            &self.sin,
        ]
        .iter()
        .map(|b| b.capacity() * 4)
        .sum()
    }
}

/// RMSNorm of each `w.len()`-wide row of `x` into `out`.
pub(crate) fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let h = w.len();
    for (xr, or) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        let ss: f32 = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
        let r = 1.0 / (ss + eps).sqrt();
        for ((o, xv), wv) in or.iter_mut().zip(xr).zip(w) {
            *o = wv * (xv * r);
        }
    }
}

/// RMSNorm of each `w.len()`-wide row of `x`, in place (Qwen3's q/k norms).
fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let h = w.len();
    for xr in x.chunks_exact_mut(h) {
        let ss: f32 = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
        let r = 1.0 / (ss + eps).sqrt();
        for (xv, wv) in xr.iter_mut().zip(w) {
            *xv = wv * (*xv * r);
        }
    }
}

/// The rotary table of the inference path: for each position, `cos` and
/// `sin` of `pos * inv_freq[i]` (`inv_freq.len()` values a row).
pub(crate) fn rope_table(
    inv_freq: &[f32],
    positions: impl Iterator<Item = usize>,
    cos: &mut [f32],
    sin: &mut [f32],
) {
    let half = inv_freq.len();
    for ((pos, c), s) in positions
        .zip(cos.chunks_exact_mut(half))
        .zip(sin.chunks_exact_mut(half))
    {
        let pos = pos as f32;
        for ((f, c), s) in inv_freq.iter().zip(c).zip(s) {
            let a = pos * f;
            *c = a.cos();
            *s = a.sin();
        }
    }
}

/// HF half-rotation rope on rows of `n_heads * hd` values.
fn rope_rows(x: &mut [f32], n_heads: usize, hd: usize, cos: &[f32], sin: &[f32]) {
    let half = hd / 2;
    let width = n_heads * hd;
    for (r, xr) in x.chunks_exact_mut(width).enumerate() {
        let c = &cos[r * half..(r + 1) * half];
        let s = &sin[r * half..(r + 1) * half];
        for h in xr.chunks_exact_mut(hd) {
            let (a, b) = h.split_at_mut(half);
            for i in 0..half {
                let (x1, x2) = (a[i], b[i]);
                a[i] = x1 * c[i] - x2 * s[i];
                b[i] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

/// Run the new rows of `seqs` (their ids stacked in `ids`, sequence after
/// sequence) through the model; their keys and values are appended to
/// `kv`. Returns the logits of the rows each sequence asks for (its last,
/// or all), stacked in the same order. The caller checks the ids and the
/// context length, and advances its caches' lengths afterwards.
pub(crate) fn forward<K: KvStore + Sync>(
    model: &Model,
    ids: &[u32],
    seqs: &[Seq],
    kv: &mut K,
    s: &mut Scratch,
    kernel: RowKernel,
) -> Result<Vec<f32>> {
    let c = model.config();
    let n: usize = seqs.iter().map(|q| q.rows).sum();
    debug_assert_eq!(ids.len(), n);
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (nh, nkv) = (c.num_attention_heads, c.num_key_value_heads);
    let (qd, kvd) = (c.q_dim(), c.kv_dim());
    let eps = c.rms_norm_eps as f32;
    let window = c.sliding_window;
    let scale = 1.0 / (hd as f32).sqrt();
    // First stacked row of each sequence (and n at the end).
    let offs: Vec<usize> = std::iter::once(0)
        .chain(seqs.iter().scan(0, |a, q| {
            *a += q.rows;
            Some(*a)
        }))
        .collect();

    s.fit(model, n);
    let Scratch {
        x,
        hbuf,
        q,
        k,
        v,
        att,
        heads,
        o,
        g,
        u,
        cos,
        sin,
    } = s;
    model.embed_rows(ids, x)?;
    rope_table(
        model.inv_freq(),
        seqs.iter()
            .flat_map(|q| (q.start..q.start + q.rows).map(|p| p.saturating_sub(q.pad))),
        cos,
        sin,
    );
    // Attention work of a layer (decides whether to spread it over threads).
    let work = seqs
        .iter()
        .map(|q| q.rows * (q.start + q.rows))
        .sum::<usize>()
        * nh
        * hd;
    let decode = seqs.iter().all(|q| q.rows == 1) && work > 1 << 15;

    for (li, layer) in model.layers.iter().enumerate() {
        with_f32(&layer.input_layernorm, |w| rms_norm_rows(x, w, eps, hbuf))?;
        Linear::forward_f32_many(
            &[&layer.q_proj, &layer.k_proj, &layer.v_proj],
            hbuf,
            n,
            &mut [&mut q[..], &mut k[..], &mut v[..]],
            kernel,
        )?;
        if let Some(w) = &layer.q_norm {
            with_f32(w, |w| rms_norm_inplace(q, w, eps))?;
        }
        if let Some(w) = &layer.k_norm {
            with_f32(w, |w| rms_norm_inplace(k, w, eps))?;
        }
        rope_rows(q, nh, hd, cos, sin);
        rope_rows(k, nkv, hd, cos, sin);
        for (i, _) in seqs.iter().enumerate() {
            let (a, b) = (offs[i] * kvd, offs[i + 1] * kvd);
            kv.append(li, i, &k[a..b], &v[a..b]);
        }
        let kv_ref: &K = kv;
        if decode {
            // One new position per sequence, written straight into the
            // attention rows (`decode` sets every one of them).
            let dseqs: Vec<attention::DecodeSeq<'_>> = seqs
                .iter()
                .enumerate()
                .map(|(i, sq)| {
                    let (kb, vb) = kv_ref.get(li, i);
                    let qi = sq.start;
                    attention::DecodeSeq {
                        k: kb,
                        v: vb,
                        span: (qi >= sq.pad)
                            .then(|| (sq.pad.max(attention::window_start(qi, window)), qi)),
                    }
                })
                .collect();
            attention::decode(attention::Heads::of(c), q, &dseqs, att);
        } else {
            // One task per (sequence, head) over its own cache; a head's
            // rows at `heads[(offs[i] * nh + hh * rows) * hd..]`.
            let qref = &q[..];
            let offs_ref = &offs;
            let head_out = |j: usize, out: &mut [f32]| {
                let (i, hh) = (j / nh, j % nh);
                let sq = &seqs[i];
                let (kb, vb) = kv_ref.get(li, i);
                let grp = hh / (nh / nkv);
                let mut scores = Vec::with_capacity(sq.start + sq.rows);
                for ti in 0..sq.rows {
                    let o = &mut out[ti * hd..(ti + 1) * hd];
                    let qi = sq.start + ti;
                    if qi < sq.pad {
                        o.fill(0.0);
                        continue;
                    }
                    let lo = sq.pad.max(attention::window_start(qi, window));
                    let r = offs_ref[i] + ti;
                    attention::attend(
                        &qref[r * qd + hh * hd..r * qd + (hh + 1) * hd],
                        kb,
                        vb,
                        kvd,
                        grp * hd,
                        (lo, qi),
                        scale,
                        &mut scores,
                        o,
                    );
                }
            };
            let at = |j: usize| (offs[j / nh] * nh + j % nh * seqs[j / nh].rows) * hd;
            let len = |j: usize| seqs[j / nh].rows * hd;
            if work > 1 << 15 {
                let p = pool::SyncPtr(heads.as_mut_ptr());
                pool::run(seqs.len() * nh, |j| {
                    // SAFETY: task j writes its own head's rows, disjoint
                    // from every other task's.
                    head_out(j, unsafe { p.slice(at(j), len(j)) })
                });
            } else {
                for j in 0..seqs.len() * nh {
                    head_out(j, &mut heads[at(j)..at(j) + len(j)]);
                }
            }
            for j in 0..seqs.len() * nh {
                let (i, hh) = (j / nh, j % nh);
                let ho = &heads[at(j)..at(j) + len(j)];
                for ti in 0..seqs[i].rows {
                    let r = offs[i] + ti;
                    att[r * qd + hh * hd..r * qd + (hh + 1) * hd]
                        .copy_from_slice(&ho[ti * hd..(ti + 1) * hd]);
                }
            }
        }
        layer.o_proj.forward_f32_with(att, n, o, kernel)?;
        for (xv, ov) in x.iter_mut().zip(o.iter()) {
            *xv += ov;
        }
        with_f32(&layer.post_attention_layernorm, |w| {
            rms_norm_rows(x, w, eps, hbuf)
        })?;
        Linear::forward_f32_many(
            &[&layer.gate_proj, &layer.up_proj],
            hbuf,
            n,
            &mut [&mut g[..], &mut u[..]],
            kernel,
        )?;
        vmath::silu_mul(g, u);
        layer.down_proj.forward_f32_with(g, n, o, kernel)?;
        for (xv, ov) in x.iter_mut().zip(o.iter()) {
            *xv += ov;
        }
    }
    // The rows whose logits are wanted (into `o`), the final norm (into
    // `hbuf`) and the head once over all of them.
    let mut nr = 0;
    for (i, sq) in seqs.iter().enumerate() {
        let a = if sq.all_logits {
            offs[i]
        } else {
            offs[i + 1] - 1
        };
        let m = offs[i + 1] - a;
        o[nr * h..(nr + m) * h].copy_from_slice(&x[a * h..offs[i + 1] * h]);
        nr += m;
    }
    with_f32(&model.norm, |w| {
        rms_norm_rows(&o[..nr * h], w, eps, &mut hbuf[..nr * h])
    })?;
    let mut logits = vec![0f32; nr * model.vocab_size()];
    model
        .lm_head
        .forward_f32_with(&hbuf[..nr * h], nr, &mut logits, kernel)?;
    if n > KEEP_ROWS {
        *s = Scratch::default();
    }
    Ok(logits)
}
