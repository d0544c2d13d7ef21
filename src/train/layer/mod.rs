//! The fused training layer: an explicit forward and backward of one decoder
//! layer (norm, attention, MLP, LoRA), written out by hand as llm.c does,
//! over preallocated buffers.
//!
//! Why not candle's autograd: profiled on SmolLM2-135M (LoRA r8, batch 4),
//! a step through the op-by-op graph spent about half its time outside the
//! matrix products: a tensor allocated and zeroed per op, generic
//! element-wise kernels (`binary_map`), contiguous copies, the dropout
//! generator, thread hand-offs between small ops. Here every element-wise
//! step is one fused pass, the buffers live across steps, padding tokens are
//! never computed (sequences are packed end to end: a causal layer never lets
//! a real token see the padding after it), and the backward knows that the
//! base weights are frozen, so it forms input gradients only.
//!
//! What trains here is LoRA (and QLoRA: the frozen weight may be GGUF blocks
//! or NF4). Full fine-tuning, or a model this path does not cover, takes the
//! candle graph in [`super::forward_backward`]; tests hold the two to the
//! same gradients.
//!
//! The arithmetic lives behind [`Kernels`]: the layer code below never
//! touches a CPU slice itself, so a device supplies its own kernels for the
//! same layer (the CPU's are in [`cpu`]).

pub mod cpu;
#[cfg(test)]
mod tests;

use crate::model::config::LINEAR_MODULES;
use crate::model::decoder::Layer;
use crate::model::linear::{Linear, Lora};
use crate::model::Model;
use crate::train::optim::Param;
use anyhow::Result;
use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// Sequences packed end to end: sequence `s` occupies rows
/// `seqs[s].0 .. seqs[s].0 + seqs[s].1` of every `[rows, width]` buffer.
#[derive(Clone, Debug, Default)]
pub struct Packing {
    pub seqs: Vec<(usize, usize)>,
    pub rows: usize,
    /// Position (within its sequence) of every row.
    pub pos: Vec<u32>,
}

impl Packing {
    /// Sequences of the given lengths.
    pub fn new(lengths: &[usize]) -> Packing {
        let mut seqs = Vec::with_capacity(lengths.len());
        let mut pos = Vec::new();
        let mut r = 0;
        for &l in lengths {
            seqs.push((r, l));
            pos.extend(0..l as u32);
            r += l;
        }
        Packing { seqs, rows: r, pos }
    }

    /// The longest sequence.
    pub fn max_len(&self) -> usize {
        self.seqs.iter().map(|s| s.1).max().unwrap_or(0)
    }
}

/// The shapes of a layer.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub hidden: usize,
    pub inter: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f32,
    pub sliding_window: Option<usize>,
}

impl Dims {
    pub fn of(model: &Model) -> Dims {
        let c = model.config();
        Dims {
            hidden: c.hidden_size,
            inter: c.intermediate_size,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
            eps: c.rms_norm_eps as f32,
            sliding_window: c.sliding_window,
        }
    }
    fn q_dim(&self) -> usize {
        self.heads * self.head_dim
    }
    fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// One LoRA of a projection, and where its gradients go when it trains.
pub struct LoraRef<'a> {
    pub lora: &'a Lora,
    /// Indices of A's and B's gradient buffers, when trainable.
    pub grads: Option<(usize, usize)>,
}

/// A decoder layer as the fused path sees it.
pub struct LayerRef<'a> {
    pub index: usize,
    pub layer: &'a Layer,
    /// The LoRAs of each projection (indexed in
    /// [`LINEAR_MODULES`] order), innermost first.
    pub loras: [Vec<LoraRef<'a>>; 7],
}

impl<'a> LayerRef<'a> {
    fn linear(&self, m: usize) -> &'a Linear {
        self.layer
            .linear(LINEAR_MODULES[m])
            .expect("LINEAR_MODULES names the decoder's projections")
    }
}

/// The layers of a model and the trainable LoRAs in them, when the fused
/// path covers the model and the parameters.
pub struct Plan<'a> {
    pub dims: Dims,
    pub layers: Vec<LayerRef<'a>>,
}

impl<'a> Plan<'a> {
    /// `None` when the fused path does not cover this training: a trainable
    /// parameter that is not a LoRA of a decoder projection (full
    /// fine-tuning, a LoRA on the head), or weights that are not f32 / GGUF
    /// blocks on the CPU.
    pub fn new(model: &'a Model, params: &[Param]) -> Option<Plan<'a>> {
        if !model.device().is_cpu() {
            return None;
        }
        let mut by_id: HashMap<candle_core::TensorId, usize> = HashMap::new();
        for (k, p) in params.iter().enumerate() {
            by_id.insert(p.var.as_tensor().id(), k);
        }
        let f32_ok = |t: &Tensor| t.dtype() == DType::F32 && !t.is_variable();
        let mut used = 0;
        let mut layers = Vec::with_capacity(model.layers.len());
        for (i, layer) in model.layers.iter().enumerate() {
            if !f32_ok(&layer.input_layernorm) || !f32_ok(&layer.post_attention_layernorm) {
                return None;
            }
            for t in [&layer.q_norm, &layer.k_norm].into_iter().flatten() {
                if !f32_ok(t) {
                    return None;
                }
            }
            let mut r = LayerRef {
                index: i,
                layer,
                loras: Default::default(),
            };
            for m in 0..7 {
                let lin = r.linear(m);
                match lin.base() {
                    Linear::Dense { weight, .. } if f32_ok(weight) => {}
                    Linear::Quantized { .. } => {}
                    _ => return None,
                }
                if let Some(b) = lin.bias() {
                    if !f32_ok(b) {
                        return None;
                    }
                }
                for lora in lin.loras() {
                    let (a, b) = (by_id.get(&lora.a.id()), by_id.get(&lora.b.id()));
                    let grads = match (a, b) {
                        (Some(&a), Some(&b)) => Some((a, b)),
                        (None, None) => None,
                        _ => return None,
                    };
                    if lora.a.dtype() != DType::F32 || lora.b.dtype() != DType::F32 {
                        return None;
                    }
                    used += usize::from(grads.is_some()) * 2;
                    r.loras[m].push(LoraRef { lora, grads });
                }
            }
            layers.push(r);
        }
        // Every parameter must be one of those LoRAs.
        if used != params.len() {
            return None;
        }
        Some(Plan {
            dims: Dims::of(model),
            layers,
        })
    }
}

/// What the backward pass of a layer needs from its forward. Normed inputs
/// and the MLP activation are recomputed (one cheap pass each) rather than
/// kept.
#[derive(Default)]
pub struct Saved<B> {
    /// The layer input `[rows, hidden]`.
    pub x: B,
    /// `1 / rms` of each row of `x`, then of `h`.
    pub rstd1: B,
    pub rstd2: B,
    /// q and k after their norms (Qwen3) and the rotary embedding, v.
    pub q: B,
    pub k: B,
    pub v: B,
    /// q and k as projected, before the per-head norms (Qwen3 only).
    pub q_raw: B,
    pub k_raw: B,
    /// Attention output (the input of `o_proj`).
    pub att: B,
    /// The residual stream after attention.
    pub h: B,
    pub gate: B,
    pub up: B,
    /// `A · dropout(input)` of every LoRA, per projection, innermost first.
    pub ax: [Vec<B>; 7],
}

/// Scratch for one layer's pass, reused across layers and steps.
#[derive(Default)]
pub struct Scratch<B> {
    pub n: B,
    pub tmp: B,
    pub act: B,
    pub dq: B,
    pub dk: B,
    pub dv: B,
    pub datt: B,
    pub dh: B,
    pub dn: B,
    pub dgate: B,
    pub dup: B,
    pub small: B,
    pub small2: B,
}

/// The kernels of the fused layer. Buffers are the device's; weights are the
/// model's tensors and blocks, which a device keeps where it computes.
/// Every `rows` is the packed row count; widths come from the weights and
/// [`Dims`].
pub trait Kernels: Sync {
    type Buf: Default + Send;

    /// Make `b` hold `n` values (contents unspecified).
    fn resize(&self, b: &mut Self::Buf, n: usize);
    fn upload(&self, host: &[f32], b: &mut Self::Buf);
    fn download(&self, b: &Self::Buf, host: &mut [f32]);
    fn copy(&self, src: &Self::Buf, dst: &mut Self::Buf);
    /// `y += x`.
    fn add(&self, y: &mut Self::Buf, x: &Self::Buf);

    /// `y = rmsnorm(x) * w` over rows of `w.len()` values; `rstd` gets
    /// `1 / rms` of each row.
    fn rms_norm(
        &self,
        x: &Self::Buf,
        w: &Tensor,
        eps: f32,
        y: &mut Self::Buf,
        rstd: &mut Self::Buf,
    ) -> Result<()>;
    /// `y = x * rstd * w` (the normed rows again, from a saved `rstd`).
    fn rms_norm_again(
        &self,
        x: &Self::Buf,
        w: &Tensor,
        rstd: &Self::Buf,
        y: &mut Self::Buf,
    ) -> Result<()>;
    /// `dx (+)= d rmsnorm(x) w / dx · dy`.
    fn rms_norm_backward(
        &self,
        x: &Self::Buf,
        w: &Tensor,
        rstd: &Self::Buf,
        dy: &Self::Buf,
        dx: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<()>;

    /// `y = x Wᵀ + b` with the base weight of `lin` (no LoRA).
    fn linear(&self, lin: &Linear, x: &Self::Buf, rows: usize, y: &mut Self::Buf) -> Result<()>;
    /// `dx (+)= dy W` with the base weight of `lin`.
    fn linear_backward(
        &self,
        lin: &Linear,
        dy: &Self::Buf,
        rows: usize,
        dx: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<()>;
    /// `ax = dropout(x) Aᵀ; y += s · ax Bᵀ`, dropout with probability `p`
    /// (the LoRA's own while training, 0 otherwise). The dropout mask of row
    /// `r` is a function of `(seed, r)` alone.
    #[allow(clippy::too_many_arguments)]
    fn lora(
        &self,
        lora: &Lora,
        p: f32,
        x: &Self::Buf,
        rows: usize,
        seed: u64,
        ax: &mut Self::Buf,
        y: &mut Self::Buf,
        scratch: &mut Self::Buf,
    ) -> Result<()>;
    /// The LoRA's share of the backward: `dx += (s · dy B) A ⊙ mask` and,
    /// when `grads` is given, `dA += (s · dy B)ᵀ dropout(x)`, `dB += s · dyᵀ ax`
    /// (host gradient buffers, summed over micro-batches).
    #[allow(clippy::too_many_arguments)]
    fn lora_backward(
        &self,
        lora: &Lora,
        x: &Self::Buf,
        ax: &Self::Buf,
        dy: &Self::Buf,
        rows: usize,
        seed: u64,
        dx: &mut Self::Buf,
        grads: Option<(&mut [f32], &mut [f32])>,
        scratch: (&mut Self::Buf, &mut Self::Buf),
    ) -> Result<()>;

    /// Rotary embedding (half rotation, HF layout) of `x [rows, heads * head_dim]`
    /// at the rows' positions; `inverse` applies its transpose (backward).
    fn rope(&self, x: &mut Self::Buf, pack: &Packing, head_dim: usize, inverse: bool);

    /// Causal attention of packed sequences: `out [rows, heads * hd]` from q, k, v.
    fn attention(
        &self,
        dims: &Dims,
        pack: &Packing,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<()>;
    /// Its backward: dq, dk, dv (overwritten) from `dout` and the forward's `out`.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        dims: &Dims,
        pack: &Packing,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        out: &Self::Buf,
        dout: &Self::Buf,
        dq: &mut Self::Buf,
        dk: &mut Self::Buf,
        dv: &mut Self::Buf,
    ) -> Result<()>;

    /// `act = silu(gate) * up`.
    fn swiglu(&self, gate: &Self::Buf, up: &Self::Buf, act: &mut Self::Buf);
    /// `dgate`, `dup` from `dact`.
    fn swiglu_backward(
        &self,
        gate: &Self::Buf,
        up: &Self::Buf,
        dact: &Self::Buf,
        dgate: &mut Self::Buf,
        dup: &mut Self::Buf,
    );
}

/// The seed of the dropout masks of LoRA `j` on projection `m` of layer `l`.
pub fn dropout_seed(seed: u64, l: usize, m: usize, j: usize) -> u64 {
    super::mix(&[seed, l as u64, m as u64, j as u64, 0x10A])
}

/// Projection `m` (base, bias, every LoRA) of `x` into `y`, keeping the
/// LoRAs' `A x` in `ax`.
#[allow(clippy::too_many_arguments)]
fn project<K: Kernels>(
    k: &K,
    l: &LayerRef,
    m: usize,
    x: &K::Buf,
    rows: usize,
    seed: Option<u64>,
    y: &mut K::Buf,
    ax: &mut Vec<K::Buf>,
    scratch: &mut K::Buf,
) -> Result<()> {
    k.linear(l.linear(m), x, rows, y)?;
    ax.resize_with(l.loras[m].len(), Default::default);
    for (j, lr) in l.loras[m].iter().enumerate() {
        let (p, s) = match seed {
            Some(seed) => (lr.lora.dropout, dropout_seed(seed, l.index, m, j)),
            None => (0.0, 0),
        };
        k.lora(lr.lora, p, x, rows, s, &mut ax[j], y, scratch)?;
    }
    Ok(())
}

/// What the backward of every projection of one layer shares: the kernels,
/// the layer, the batch, the gradient buffers and two small scratch buffers.
struct Back<'a, K: Kernels> {
    k: &'a K,
    l: &'a LayerRef<'a>,
    rows: usize,
    seed: u64,
    grads: &'a mut [Vec<f32>],
    s1: K::Buf,
    s2: K::Buf,
}

impl<K: Kernels> Back<'_, K> {
    /// The backward of projection `m` (input `x`, its LoRAs' `ax`):
    /// `dx (+)= dy ∂y/∂x`, LoRA gradients into `grads`.
    fn project(
        &mut self,
        m: usize,
        x: &K::Buf,
        ax: &[K::Buf],
        dy: &K::Buf,
        dx: &mut K::Buf,
        accumulate: bool,
    ) -> Result<()> {
        let (k, l, rows) = (self.k, self.l, self.rows);
        k.linear_backward(l.linear(m), dy, rows, dx, accumulate)?;
        for (j, lr) in l.loras[m].iter().enumerate() {
            let s = dropout_seed(self.seed, l.index, m, j);
            let g = match lr.grads {
                Some((a, b)) => {
                    let (lo, hi) = self.grads.split_at_mut(a.max(b));
                    Some(if a < b {
                        (&mut lo[a][..], &mut hi[0][..])
                    } else {
                        let (bb, aa) = (&mut lo[b][..], &mut hi[0][..]);
                        (aa, bb)
                    })
                }
                None => None,
            };
            k.lora_backward(
                lr.lora,
                x,
                &ax[j],
                dy,
                rows,
                s,
                dx,
                g,
                (&mut self.s1, &mut self.s2),
            )?;
        }
        Ok(())
    }
}

/// Forward of layer `l`: `out = layer(x)`, everything the backward needs in
/// `saved` (whose `x` must already hold the input). `seed`: the dropout seed
/// of a training pass; `None` runs without dropout (evaluation).
#[allow(clippy::too_many_arguments)]
pub fn forward<K: Kernels>(
    k: &K,
    dims: &Dims,
    l: &LayerRef,
    pack: &Packing,
    seed: Option<u64>,
    saved: &mut Saved<K::Buf>,
    sc: &mut Scratch<K::Buf>,
    out: &mut K::Buf,
) -> Result<()> {
    let rows = pack.rows;
    let layer = l.layer;
    let (h, qd, kvd, inter) = (dims.hidden, dims.q_dim(), dims.kv_dim(), dims.inter);
    let s = saved;
    k.resize(&mut sc.n, rows * h);
    k.resize(&mut s.rstd1, rows);
    k.rms_norm(
        &s.x,
        &layer.input_layernorm,
        dims.eps,
        &mut sc.n,
        &mut s.rstd1,
    )?;
    // q, k, v (+ Qwen3's per-head norms), then the rotary embedding.
    let qk_norm = layer.q_norm.is_some() || layer.k_norm.is_some();
    {
        let (qb, kb) = if qk_norm {
            (&mut s.q_raw, &mut s.k_raw)
        } else {
            (&mut s.q, &mut s.k)
        };
        k.resize(qb, rows * qd);
        k.resize(kb, rows * kvd);
        project(k, l, 0, &sc.n, rows, seed, qb, &mut s.ax[0], &mut sc.tmp)?;
        project(k, l, 1, &sc.n, rows, seed, kb, &mut s.ax[1], &mut sc.tmp)?;
    }
    k.resize(&mut s.v, rows * kvd);
    project(
        k,
        l,
        2,
        &sc.n,
        rows,
        seed,
        &mut s.v,
        &mut s.ax[2],
        &mut sc.tmp,
    )?;
    if qk_norm {
        for (w, raw, dst) in [
            (&layer.q_norm, &s.q_raw, &mut s.q),
            (&layer.k_norm, &s.k_raw, &mut s.k),
        ] {
            match w {
                Some(w) => k.rms_norm(raw, w, dims.eps, dst, &mut sc.small)?,
                None => k.copy(raw, dst),
            }
        }
    }
    k.rope(&mut s.q, pack, dims.head_dim, false);
    k.rope(&mut s.k, pack, dims.head_dim, false);
    k.resize(&mut s.att, rows * qd);
    k.attention(dims, pack, &s.q, &s.k, &s.v, &mut s.att)?;
    // h = x + o_proj(att)
    k.resize(&mut s.h, rows * h);
    project(
        k,
        l,
        3,
        &s.att,
        rows,
        seed,
        &mut s.h,
        &mut s.ax[3],
        &mut sc.tmp,
    )?;
    k.add(&mut s.h, &s.x);
    // MLP.
    k.resize(&mut s.rstd2, rows);
    k.rms_norm(
        &s.h,
        &layer.post_attention_layernorm,
        dims.eps,
        &mut sc.n,
        &mut s.rstd2,
    )?;
    k.resize(&mut s.gate, rows * inter);
    k.resize(&mut s.up, rows * inter);
    project(
        k,
        l,
        4,
        &sc.n,
        rows,
        seed,
        &mut s.gate,
        &mut s.ax[4],
        &mut sc.tmp,
    )?;
    project(
        k,
        l,
        5,
        &sc.n,
        rows,
        seed,
        &mut s.up,
        &mut s.ax[5],
        &mut sc.tmp,
    )?;
    k.resize(&mut sc.act, rows * inter);
    k.swiglu(&s.gate, &s.up, &mut sc.act);
    k.resize(out, rows * h);
    project(k, l, 6, &sc.act, rows, seed, out, &mut s.ax[6], &mut sc.tmp)?;
    k.add(out, &s.h);
    Ok(())
}

/// Backward of layer `l` from its saved forward: `dx = dy ∂layer/∂x`, LoRA
/// gradients added into `grads`. `dy` is consumed as scratch.
#[allow(clippy::too_many_arguments)]
pub fn backward<K: Kernels>(
    k: &K,
    dims: &Dims,
    l: &LayerRef,
    pack: &Packing,
    seed: u64,
    s: &Saved<K::Buf>,
    sc: &mut Scratch<K::Buf>,
    dy: &K::Buf,
    dx: &mut K::Buf,
    grads: &mut [Vec<f32>],
) -> Result<()> {
    let rows = pack.rows;
    let layer = l.layer;
    let (h, qd, kvd, inter) = (dims.hidden, dims.q_dim(), dims.kv_dim(), dims.inter);
    let mut bk = Back {
        k,
        l,
        rows,
        seed,
        grads,
        s1: std::mem::take(&mut sc.small),
        s2: std::mem::take(&mut sc.small2),
    };
    // out = h + down(act): dh = dy; dact = dy ∂down.
    k.resize(&mut sc.act, rows * inter);
    k.swiglu(&s.gate, &s.up, &mut sc.act);
    k.resize(&mut sc.tmp, rows * inter);
    let mut dact = std::mem::take(&mut sc.tmp);
    bk.project(6, &sc.act, &s.ax[6], dy, &mut dact, false)?;
    k.resize(&mut sc.dgate, rows * inter);
    k.resize(&mut sc.dup, rows * inter);
    k.swiglu_backward(&s.gate, &s.up, &dact, &mut sc.dgate, &mut sc.dup);
    sc.tmp = dact;
    // n2 = rmsnorm(h): dn2 from gate and up.
    k.resize(&mut sc.n, rows * h);
    k.rms_norm_again(&s.h, &layer.post_attention_layernorm, &s.rstd2, &mut sc.n)?;
    k.resize(&mut sc.dn, rows * h);
    bk.project(4, &sc.n, &s.ax[4], &sc.dgate, &mut sc.dn, false)?;
    bk.project(5, &sc.n, &s.ax[5], &sc.dup, &mut sc.dn, true)?;
    // dh = dy + rmsnorm'(dn2)
    k.resize(&mut sc.dh, rows * h);
    k.copy(dy, &mut sc.dh);
    k.rms_norm_backward(
        &s.h,
        &layer.post_attention_layernorm,
        &s.rstd2,
        &sc.dn,
        &mut sc.dh,
        true,
    )?;
    // h = x + o(att): datt.
    k.resize(&mut sc.datt, rows * qd);
    bk.project(3, &s.att, &s.ax[3], &sc.dh, &mut sc.datt, false)?;
    k.resize(&mut sc.dq, rows * qd);
    k.resize(&mut sc.dk, rows * kvd);
    k.resize(&mut sc.dv, rows * kvd);
    k.attention_backward(
        dims, pack, &s.q, &s.k, &s.v, &s.att, &sc.datt, &mut sc.dq, &mut sc.dk, &mut sc.dv,
    )?;
    k.rope(&mut sc.dq, pack, dims.head_dim, true);
    k.rope(&mut sc.dk, pack, dims.head_dim, true);
    // Through Qwen3's per-head norms to the raw projections.
    for (w, raw, d) in [
        (&layer.q_norm, &s.q_raw, &mut sc.dq),
        (&layer.k_norm, &s.k_raw, &mut sc.dk),
    ] {
        if let Some(w) = w {
            // Each head row's rstd again (the normed rows are not needed).
            k.rms_norm(raw, w, dims.eps, &mut sc.tmp, &mut sc.small)?;
            k.copy(d, &mut sc.small2);
            k.rms_norm_backward(raw, w, &sc.small, &sc.small2, d, false)?;
        }
    }
    // n1 = rmsnorm(x): dn1 from q, k, v.
    k.rms_norm_again(&s.x, &layer.input_layernorm, &s.rstd1, &mut sc.n)?;
    bk.project(0, &sc.n, &s.ax[0], &sc.dq, &mut sc.dn, false)?;
    bk.project(1, &sc.n, &s.ax[1], &sc.dk, &mut sc.dn, true)?;
    bk.project(2, &sc.n, &s.ax[2], &sc.dv, &mut sc.dn, true)?;
    // dx = dh + rmsnorm'(dn1)
    k.resize(dx, rows * h);
    k.copy(&sc.dh, dx);
    k.rms_norm_backward(&s.x, &layer.input_layernorm, &s.rstd1, &sc.dn, dx, true)?;
    (sc.small, sc.small2) = (bk.s1, bk.s2);
    Ok(())
}

/// f32 values [`Saved`] holds per token of a layer (the planner counts the
/// same number, see [`crate::planner::chunks::saved_values_per_token`]).
pub fn saved_floats_per_row(model: &Model) -> usize {
    crate::planner::chunks::saved_values_per_token(model.config())
}
