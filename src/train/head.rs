//! The output head fused with log-softmax and the label gather.
//!
//! The plain path (`lm_head(h)`, `log_softmax`, `gather`) materialises the
//! logits of every labelled token, `[n, vocab]` in f32, and candle's backward
//! graph keeps several copies of that size (the matmul output, the softmax,
//! its gradient, the gather's scatter): at 4 x 256 tokens and a 49k
//! vocabulary that is ~200 MB per copy and the peak of the whole step.
//!
//! [`label_logprobs`] gives the same values and gradients without ever
//! holding more than one chunk of rows of logits: [`FusedHead`] runs the head
//! over `head_chunk_rows` tokens at a time, reduces each row to `log p(label)`
//! (and the row's argmax), and, when a gradient will be asked for, forms the
//! row's input gradient right there: `d log p(y) / d h = (onehot(y) -
//! softmax(z)) W`, an `[n, hidden]` tensor. The backward pass only scales
//! those rows by the incoming per-row gradient (each output depends on its
//! own row alone), so the logits are computed once, as in the plain path.
//!
//! The fused path covers a frozen output head (dense f32 or GGUF blocks,
//! dequantized a band of vocabulary rows at a time). A trainable head (full
//! fine-tuning, or a LoRA on `lm_head`) takes the plain path.

use crate::model::linear::Linear;
use crate::model::quant::QWeight;
use anyhow::{bail, Result};
use candle_core::{CpuStorage, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Token rows per chunk of logits: the planner's number (about 8 MiB of
/// f32, see [`crate::planner::chunks`]), which its memory model counts on.
use crate::planner::chunks::head_chunk_rows as chunk_rows;

/// Vocabulary rows of a quantized head dequantized at a time (~4 MiB).
fn band_rows(cols: usize) -> usize {
    ((1usize << 20) / cols.max(1)).max(64)
}

/// Per-token log-probabilities of the labels and the argmax of each row.
pub struct LabelLogprobs {
    /// `[n]` f32, differentiable with respect to the hidden rows.
    pub logps: Tensor,
    /// The most likely token of each row (for token accuracy).
    pub argmax: Vec<u32>,
}

/// Whether [`label_logprobs`] takes the fused path for this head.
pub fn fusable(lm_head: &Linear) -> bool {
    match lm_head {
        Linear::Dense { weight, .. } => !weight.is_variable() && weight.dtype() == DType::F32,
        Linear::Quantized { .. } => true,
        Linear::Lora { .. } => false,
    }
}

/// `log softmax(lm_head(hs))[i, targets[i]]` for hidden rows `hs [n, hidden]`,
/// and each row's argmax. Equal (to float rounding) to the plain path in
/// value and gradient; only chunks of logits are ever alive.
pub fn label_logprobs(
    lm_head: &Linear,
    hs: &Tensor,
    targets: &[u32],
    train: bool,
) -> Result<LabelLogprobs> {
    let chunk = chunk_rows(lm_head.out_features());
    // A dense head multiplies in one piece; a quantized one is dequantized
    // a band of rows at a time.
    let band = match lm_head {
        Linear::Quantized { .. } => band_rows(lm_head.in_features()),
        _ => lm_head.out_features(),
    };
    label_logprobs_with(lm_head, hs, targets, train, chunk, band)
}

/// [`label_logprobs`] with explicit token rows per chunk and vocabulary rows
/// per band of the weight (dequantized a band at a time when quantized).
pub fn label_logprobs_with(
    lm_head: &Linear,
    hs: &Tensor,
    targets: &[u32],
    train: bool,
    chunk: usize,
    band: usize,
) -> Result<LabelLogprobs> {
    let (n, _) = hs.dims2()?;
    if targets.len() != n {
        bail!("{} targets for {n} rows", targets.len());
    }
    if !fusable(lm_head) {
        return label_logprobs_unfused(lm_head, hs, targets, train);
    }
    let vocab = lm_head.out_features();
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= vocab) {
        bail!("label {t} is outside the vocabulary of {vocab}");
    }
    let weight = match lm_head {
        Linear::Dense { weight, .. } => HeadWeight::Dense(weight.contiguous()?),
        Linear::Quantized { weight, .. } => HeadWeight::Quant(weight.clone()),
        Linear::Lora { .. } => unreachable!(),
    };
    let op = FusedHead {
        weight,
        bias: lm_head.bias().cloned(),
        targets: Arc::new(targets.to_vec()),
        chunk: chunk.max(1),
        band: band.max(1),
        want_grad: hs.track_op(),
        saved: Arc::new(Mutex::new(Saved::default())),
    };
    let saved = op.saved.clone();
    let logps = hs.contiguous()?.apply_op1(op)?;
    let argmax = std::mem::take(&mut saved.lock().expect("head stash").argmax);
    Ok(LabelLogprobs { logps, argmax })
}

/// The plain path: whole logits, log-softmax, gather (a trainable head).
pub fn label_logprobs_unfused(
    lm_head: &Linear,
    hs: &Tensor,
    targets: &[u32],
    train: bool,
) -> Result<LabelLogprobs> {
    let n = targets.len();
    let logits = lm_head.forward_t(hs, train)?;
    let ls = candle_nn::ops::log_softmax(&logits, 1)?;
    let tgt = Tensor::from_slice(targets, (n, 1), &Device::Cpu)?;
    let logps = ls.gather(&tgt, 1)?.squeeze(1)?;
    let argmax = logits.argmax(1)?.to_vec1()?;
    Ok(LabelLogprobs { logps, argmax })
}

#[derive(Clone)]
enum HeadWeight {
    /// `[vocab, hidden]`, contiguous f32.
    Dense(Tensor),
    Quant(Arc<QWeight>),
}

#[derive(Default)]
struct Saved {
    /// `d log p(label) / d h` per row, `[n, hidden]`.
    grad_unit: Option<Tensor>,
    argmax: Vec<u32>,
}

/// `h [n, hidden] -> log p(label) [n]` through a frozen head; see the module doc.
struct FusedHead {
    weight: HeadWeight,
    bias: Option<Tensor>,
    targets: Arc<Vec<u32>>,
    chunk: usize,
    band: usize,
    want_grad: bool,
    saved: Arc<Mutex<Saved>>,
}

impl FusedHead {
    fn vocab(&self) -> usize {
        match &self.weight {
            HeadWeight::Dense(w) => w.dims()[0],
            HeadWeight::Quant(q) => q.rows,
        }
    }

    /// The head's weight rows `r0..r0 + n` as a dense `[n, hidden]` tensor.
    fn band(&self, r0: usize, n: usize) -> candle_core::Result<Tensor> {
        match &self.weight {
            HeadWeight::Dense(w) => w.narrow(0, r0, n),
            HeadWeight::Quant(q) => {
                let mut buf = vec![0f32; n * q.cols];
                for r in 0..n {
                    q.dequantize_row(r0 + r, &mut buf[r * q.cols..(r + 1) * q.cols]);
                }
                Tensor::from_vec(buf, (n, q.cols), &Device::Cpu)
            }
        }
    }

    fn bands(&self) -> Vec<(usize, usize)> {
        let v = self.vocab();
        let step = self.band.min(v).max(1);
        (0..v)
            .step_by(step)
            .map(|r0| (r0, step.min(v - r0)))
            .collect()
    }

    /// Logits `[c, vocab]` (row-major) of the hidden rows `x [c, hidden]`.
    fn logits(&self, x: &Tensor, bands: &[(usize, usize)]) -> candle_core::Result<Vec<f32>> {
        let (c, _) = x.dims2()?;
        let v = self.vocab();
        let mut z = if bands.len() == 1 {
            let w = self.band(0, v)?;
            x.matmul(&w.t()?)?.flatten_all()?.to_vec1::<f32>()?
        } else {
            let mut z = vec![0f32; c * v];
            for &(r0, nb) in bands {
                let w = self.band(r0, nb)?;
                let part: Vec<f32> = x.matmul(&w.t()?)?.flatten_all()?.to_vec1()?;
                for (row, p) in z.chunks_exact_mut(v).zip(part.chunks_exact(nb)) {
                    row[r0..r0 + nb].copy_from_slice(p);
                }
            }
            z
        };
        if let Some(b) = &self.bias {
            let b: Vec<f32> = b.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            z.par_chunks_mut(v).for_each(|row| {
                for (a, bb) in row.iter_mut().zip(&b) {
                    *a += bb;
                }
            });
        }
        Ok(z)
    }

    /// `q [c, vocab] @ W -> [c, hidden]`.
    fn times_weight(
        &self,
        q: Vec<f32>,
        c: usize,
        bands: &[(usize, usize)],
    ) -> candle_core::Result<Tensor> {
        let v = self.vocab();
        if bands.len() == 1 {
            let w = self.band(0, v)?;
            return Tensor::from_vec(q, (c, v), &Device::Cpu)?.matmul(&w);
        }
        let mut acc: Option<Tensor> = None;
        for &(r0, nb) in bands {
            let mut part = vec![0f32; c * nb];
            for (p, row) in part.chunks_exact_mut(nb).zip(q.chunks_exact(v)) {
                p.copy_from_slice(&row[r0..r0 + nb]);
            }
            let w = self.band(r0, nb)?;
            let g = Tensor::from_vec(part, (c, nb), &Device::Cpu)?.matmul(&w)?;
            acc = Some(match acc {
                None => g,
                Some(a) => (a + g)?,
            });
        }
        acc.ok_or_else(|| candle_core::Error::Msg("fused head: empty vocabulary".into()))
    }
}

/// One row: its log-probability of `t`, its argmax, and (when `grad`) the
/// row rewritten in place as `onehot(t) - softmax(row)`.
fn reduce_row(row: &mut [f32], t: usize, grad: bool) -> (f32, u32) {
    let (mut mx, mut am) = (f32::NEG_INFINITY, 0usize);
    for (j, &v) in row.iter().enumerate() {
        if v > mx {
            mx = v;
            am = j;
        }
    }
    let sum: f64 = row.iter().map(|&v| (v - mx).exp() as f64).sum();
    let lse = mx + (sum as f32).ln();
    let logp = row[t] - lse;
    if grad {
        for v in row.iter_mut() {
            *v = -(*v - lse).exp();
        }
        row[t] += 1.0;
    }
    (logp, am as u32)
}

impl candle_core::CustomOp1 for FusedHead {
    fn name(&self) -> &'static str {
        "swift-fused-head-logprobs"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        let (n, h) = match dims {
            [n, h] => (*n, *h),
            _ => candle_core::bail!("fused head: expected [n, hidden], got {dims:?}"),
        };
        let (a, b) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("fused head: non-contiguous input".into()))?;
        let x = match s {
            CpuStorage::F32(v) => &v[a..b],
            _ => candle_core::bail!("fused head: f32 input expected"),
        };
        let v = self.vocab();
        let bands = self.bands();
        let mut logps = vec![0f32; n];
        let mut argmax = vec![0u32; n];
        let mut grads: Vec<Tensor> = Vec::new();
        let mut r0 = 0;
        while r0 < n {
            let c = self.chunk.min(n - r0);
            let xc = Tensor::from_slice(&x[r0 * h..(r0 + c) * h], (c, h), &Device::Cpu)?;
            let mut z = self.logits(&xc, &bands)?;
            let tg = &self.targets[r0..r0 + c];
            let want = self.want_grad;
            let out: Vec<(f32, u32)> = z
                .par_chunks_mut(v)
                .zip(tg.par_iter())
                .map(|(row, &t)| reduce_row(row, t as usize, want))
                .collect();
            for (i, (lp, am)) in out.into_iter().enumerate() {
                logps[r0 + i] = lp;
                argmax[r0 + i] = am;
            }
            if want {
                grads.push(self.times_weight(z, c, &bands)?);
            }
            r0 += c;
        }
        let mut saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused head: poisoned stash".into()))?;
        saved.argmax = argmax;
        if self.want_grad {
            saved.grad_unit = Some(if grads.is_empty() {
                Tensor::zeros((0, h), DType::F32, &Device::Cpu)?
            } else {
                Tensor::cat(&grads, 0)?
            });
        }
        Ok((CpuStorage::F32(logps), Shape::from(n)))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused head: poisoned stash".into()))?;
        let gu = saved.grad_unit.as_ref().ok_or_else(|| {
            candle_core::Error::Msg("fused head: no saved gradient (input was not tracked)".into())
        })?;
        Ok(Some(gu.broadcast_mul(
            &grad.to_dtype(DType::F32)?.unsqueeze(1)?,
        )?))
    }
}
