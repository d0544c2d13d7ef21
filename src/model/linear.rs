//! The linear layer: one type, three kinds.
//!
//! * [`Linear::Dense`]: an f32 candle tensor `[out, in]` (HF checkpoints,
//!   full fine-tuning: gradients flow to it when it is a `Var`).
//! * [`Linear::Quantized`]: GGUF blocks kept as they are ([`QWeight`]); the
//!   candle path runs them through [`QMatMul`], a `CustomOp1` whose forward is
//!   our exact kernel and whose backward gives the input gradient (the weight
//!   is frozen), so QLoRA trains through it.
//! * [`Linear::Lora`]: a base `Linear` plus a PEFT LoRA (`A [r, in]`,
//!   `B [out, r]`, `scale`, dropout); adapters nest for several at once.
//!
//! Two ways to run it: [`Linear::forward`] on candle tensors (differentiable,
//! for training) and [`Linear::forward_f32`] on plain slices (the fast
//! inference path the decoder uses).

use super::quant::{self, QWeight};
use anyhow::{bail, Result};
use candle_core::{CpuStorage, DType, Layout, Shape, Storage, Tensor};
use std::sync::Arc;

/// A PEFT LoRA attached to a linear layer.
#[derive(Clone, Debug)]
pub struct Lora {
    /// `lora_A.weight`, `[r, in]`, f32.
    pub a: Tensor,
    /// `lora_B.weight`, `[out, r]`, f32.
    pub b: Tensor,
    /// `lora_alpha / r` (or `lora_alpha / sqrt(r)` with rsLoRA).
    pub scale: f64,
    /// Dropout probability on the LoRA input (training only).
    pub dropout: f32,
    /// Adapter name (its folder name), for messages.
    pub name: String,
}

/// A linear projection `y = x W^T (+ b)`.
#[derive(Clone, Debug)]
pub enum Linear {
    Dense {
        weight: Tensor,
        bias: Option<Tensor>,
    },
    Quantized {
        weight: Arc<QWeight>,
        bias: Option<Tensor>,
    },
    Lora {
        base: Box<Linear>,
        lora: Lora,
    },
}

/// Run `f` on the contiguous f32 data of a CPU tensor.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (st, layout) = t.storage_and_layout();
    let Some((a, b)) = layout.contiguous_offsets() else {
        bail!("expected a contiguous tensor, got shape {:?}", t.dims());
    };
    match &*st {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[a..b])),
        Storage::Cpu(_) => bail!("expected an f32 tensor, got {:?}", t.dtype()),
        _ => bail!("the fast path runs on CPU tensors only"),
    }
}

impl Linear {
    /// Output features.
    pub fn out_features(&self) -> usize {
        match self {
            Linear::Dense { weight, .. } => weight.dims()[0],
            Linear::Quantized { weight, .. } => weight.rows,
            Linear::Lora { base, .. } => base.out_features(),
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match self {
            Linear::Dense { weight, .. } => weight.dims()[1],
            Linear::Quantized { weight, .. } => weight.cols,
            Linear::Lora { base, .. } => base.in_features(),
        }
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        match self {
            Linear::Dense { bias, .. } | Linear::Quantized { bias, .. } => bias.as_ref(),
            Linear::Lora { base, .. } => base.bias(),
        }
    }

    /// The innermost (non-LoRA) layer.
    pub fn base(&self) -> &Linear {
        match self {
            Linear::Lora { base, .. } => base.base(),
            other => other,
        }
    }

    /// The LoRAs wrapped around the base, innermost first.
    pub fn loras(&self) -> Vec<&Lora> {
        match self {
            Linear::Lora { base, lora } => {
                let mut v = base.loras();
                v.push(lora);
                v
            }
            _ => Vec::new(),
        }
    }

    /// The LoRAs wrapped around the base, mutable (e.g. to make A/B trainable `Var`s).
    pub fn loras_mut(&mut self) -> Vec<&mut Lora> {
        match self {
            Linear::Lora { base, lora } => {
                let mut v = base.loras_mut();
                v.push(lora);
                v
            }
            _ => Vec::new(),
        }
    }

    /// Wrap this layer in a LoRA.
    pub fn with_lora(self, lora: Lora) -> Result<Linear> {
        let (r, inp) = lora.a.dims2()?;
        let (out, r2) = lora.b.dims2()?;
        if r != r2 || inp != self.in_features() || out != self.out_features() {
            bail!(
                "LoRA {}: A {:?} / B {:?} do not fit a {}x{} layer",
                lora.name,
                lora.a.dims(),
                lora.b.dims(),
                self.out_features(),
                self.in_features()
            );
        }
        Ok(Linear::Lora {
            base: Box::new(self),
            lora,
        })
    }

    /// The base weight as a dense f32 tensor `[out, in]` (dequantizing if needed).
    pub fn dense_weight(&self) -> Result<Tensor> {
        match self.base() {
            Linear::Dense { weight, .. } => Ok(weight.clone()),
            Linear::Quantized { weight, .. } => Ok(Tensor::from_vec(
                weight.dequantize(),
                (weight.rows, weight.cols),
                &candle_core::Device::Cpu,
            )?),
            Linear::Lora { .. } => unreachable!(),
        }
    }

    /// Differentiable forward on candle tensors: `x [..., in] -> [..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }

    /// [`Linear::forward`] with LoRA dropout when `train` is set.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match self {
            Linear::Dense { weight, bias } => {
                let y = if weight.is_variable() || x.dtype() != DType::F32 {
                    x.broadcast_matmul(&weight.t()?)?
                } else {
                    // Frozen (LoRA on f32 weights): candle's matmul backward
                    // would also compute, and keep, a gradient for the weight.
                    x.contiguous()?.apply_op1(FrozenMatMul(weight.clone()))?
                };
                match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                }
            }
            Linear::Quantized { weight, bias } => {
                let y = x.contiguous()?.apply_op1(QMatMul(weight.clone()))?;
                match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                }
            }
            Linear::Lora { base, lora } => {
                let y = base.forward_t(x, train)?;
                let xi = if train && lora.dropout > 0.0 {
                    match seeded_dropout_mask(x, lora.dropout)? {
                        Some(mask) => x.broadcast_mul(&mask)?,
                        None => candle_nn::ops::dropout(x, lora.dropout)?,
                    }
                } else {
                    x.clone()
                };
                let d = xi
                    .broadcast_matmul(&lora.a.t()?)?
                    .broadcast_matmul(&lora.b.t()?)?;
                (y + (d * lora.scale)?)?
            }
        })
    }

    /// Fast inference forward on plain f32 rows: `x [t, in] -> y [t, out]`.
    pub fn forward_f32(&self, x: &[f32], t: usize, y: &mut [f32]) -> Result<()> {
        self.forward_f32_with(x, t, y, RowKernel::Fastest)
    }

    /// [`Linear::forward_f32`] with a choice of kernel for a lone row.
    pub fn forward_f32_with(
        &self,
        x: &[f32],
        t: usize,
        y: &mut [f32],
        kernel: RowKernel,
    ) -> Result<()> {
        match self {
            Linear::Dense { weight, bias } => {
                let (o, i) = weight.dims2()?;
                with_f32(weight, |w| quant::matmul_f32(w, o, i, x, t, y))?;
                add_bias(bias, y)?;
            }
            Linear::Quantized { weight, bias } => {
                match kernel {
                    RowKernel::Fastest => quant::matmul(weight, x, t, y),
                    RowKernel::BatchInvariant => super::batched::qmatmul(weight, x, t, y),
                }
                add_bias(bias, y)?;
            }
            Linear::Lora { base, lora } => {
                base.forward_f32_with(x, t, y, kernel)?;
                lora_add(lora, x, t, y)?;
            }
        }
        Ok(())
    }

    /// Several layers sharing one input (q/k/v, gate/up): on quantized
    /// weights the products run in one parallel region (for one row on the
    /// [`RowKernel::Fastest`] kernel, for any number on the other).
    pub fn forward_f32_many(
        ls: &[&Linear],
        x: &[f32],
        t: usize,
        ys: &mut [&mut [f32]],
        kernel: RowKernel,
    ) -> Result<()> {
        let all_q = ls
            .iter()
            .all(|l| matches!(l.base(), Linear::Quantized { .. }));
        if all_q && (t == 1 || kernel == RowKernel::BatchInvariant) {
            let ws: Vec<&QWeight> = ls
                .iter()
                .map(|l| match l.base() {
                    Linear::Quantized { weight, .. } => &**weight,
                    _ => unreachable!(),
                })
                .collect();
            match kernel {
                RowKernel::Fastest => quant::matvec_many(&ws, x, ys),
                RowKernel::BatchInvariant => super::batched::qmatmul_many(&ws, x, t, ys),
            }
            for (l, y) in ls.iter().zip(ys.iter_mut()) {
                add_bias(&l.bias().cloned(), y)?;
                for lora in l.loras() {
                    lora_add(lora, x, t, y)?;
                }
            }
            return Ok(());
        }
        for (l, y) in ls.iter().zip(ys.iter_mut()) {
            l.forward_f32_with(x, t, y, kernel)?;
        }
        Ok(())
    }
}

/// The kernel that one row of quantized weights runs on (several rows run
/// the multi-row kernels either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKernel {
    /// The matrix-vector kernel, the fastest for a lone row, whose rounding
    /// differs from the multi-row kernels' (the CLI's decode).
    Fastest,
    /// The multi-row kernels for every row count: a row's result does not
    /// depend on how many rows run beside it (the server's step, whose
    /// answers must not change with the load).
    BatchInvariant,
}

thread_local! {
    static DROPOUT_RNG: std::cell::RefCell<Option<rand::rngs::StdRng>> =
        const { std::cell::RefCell::new(None) };
}

/// Seed the LoRA dropout masks drawn on this thread (`None`: candle's own
/// unseeded dropout). The trainer seeds it from (seed, step, micro-batch) so
/// a resumed run draws the same masks as an uninterrupted one.
pub fn seed_dropout(seed: Option<u64>) {
    use rand::SeedableRng;
    DROPOUT_RNG.with(|r| *r.borrow_mut() = seed.map(rand::rngs::StdRng::seed_from_u64));
}

/// A dropout mask shaped like `x` (0 or `1 / (1 - p)`) from the seeded
/// generator, if one is set.
fn seeded_dropout_mask(x: &Tensor, p: f32) -> Result<Option<Tensor>> {
    use rand::Rng;
    DROPOUT_RNG.with(|r| {
        let mut r = r.borrow_mut();
        let Some(rng) = r.as_mut() else {
            return Ok(None);
        };
        let keep = 1.0 / (1.0 - p);
        let v: Vec<f32> = (0..x.elem_count())
            .map(|_| if rng.gen::<f32>() < p { 0.0 } else { keep })
            .collect();
        Ok(Some(Tensor::from_vec(v, x.shape(), x.device())?))
    })
}

fn add_bias(bias: &Option<Tensor>, y: &mut [f32]) -> Result<()> {
    if let Some(b) = bias {
        with_f32(b, |b| {
            for row in y.chunks_exact_mut(b.len()) {
                for (v, bb) in row.iter_mut().zip(b) {
                    *v += bb;
                }
            }
        })?;
    }
    Ok(())
}

fn lora_add(lora: &Lora, x: &[f32], t: usize, y: &mut [f32]) -> Result<()> {
    let (r, inp) = lora.a.dims2()?;
    let (out, _) = lora.b.dims2()?;
    let mut ax = vec![0f32; t * r];
    with_f32(&lora.a, |a| quant::matmul_f32(a, r, inp, x, t, &mut ax))?;
    let mut d = vec![0f32; t * out];
    with_f32(&lora.b, |b| quant::matmul_f32(b, out, r, &ax, t, &mut d))?;
    let s = lora.scale as f32;
    for (v, dd) in y.iter_mut().zip(&d) {
        *v += s * dd;
    }
    Ok(())
}

/// `x [..., in] -> x W^T [..., out]` with a frozen dense f32 `W [out, in]`:
/// backward gives the input gradient only (`grad W`).
#[derive(Clone)]
pub struct FrozenMatMul(pub Tensor);

impl candle_core::CustomOp1 for FrozenMatMul {
    fn name(&self) -> &'static str {
        "swift-frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        let k = *dims.last().unwrap_or(&0);
        let (a, b) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("frozen matmul: non-contiguous input".into()))?;
        let x = match s {
            CpuStorage::F32(v) => &v[a..b],
            _ => candle_core::bail!("frozen matmul: f32 input expected"),
        };
        let t = x.len() / k.max(1);
        let xt = Tensor::from_slice(x, (t, k), &candle_core::Device::Cpu)?;
        let w = self.0.to_dtype(DType::F32)?;
        let y: Vec<f32> = xt.matmul(&w.t()?)?.flatten_all()?.to_vec1()?;
        let mut od = dims.to_vec();
        *od.last_mut().unwrap() = w.dims()[0];
        Ok((CpuStorage::F32(y), Shape::from(od)))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let w = self.0.to_dtype(DType::F32)?;
        Ok(Some(
            grad.to_dtype(DType::F32)?
                .contiguous()?
                .broadcast_matmul(&w)?,
        ))
    }
}

/// `x [..., in] -> x W^T [..., out]` with W in GGUF blocks; backward gives the
/// input gradient (`grad W`), the weight itself is frozen.
#[derive(Clone)]
pub struct QMatMul(pub Arc<QWeight>);

impl candle_core::CustomOp1 for QMatMul {
    fn name(&self) -> &'static str {
        "swift-qmatmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let w = &self.0;
        let dims = l.shape().dims();
        let k = *dims.last().unwrap_or(&0);
        if k != w.cols {
            candle_core::bail!("qmatmul: input width {k}, weight {}x{}", w.rows, w.cols);
        }
        let (a, b) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("qmatmul: non-contiguous input".into()))?;
        let x = match s {
            CpuStorage::F32(v) => &v[a..b],
            _ => candle_core::bail!("qmatmul: f32 input expected"),
        };
        let t = x.len() / k;
        let mut y = vec![0f32; t * w.rows];
        quant::matmul(w, x, t, &mut y);
        let mut od = dims.to_vec();
        *od.last_mut().unwrap() = w.rows;
        Ok((CpuStorage::F32(y), Shape::from(od)))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let w = &self.0;
        // grad_x = grad_y W, with W dequantized a band of rows at a time
        // (about 4 MiB of f32), so memory never holds a whole dense weight.
        let band = ((1usize << 20) / w.cols.max(1)).clamp(32, w.rows.max(32));
        let g = grad.to_dtype(DType::F32)?.contiguous()?;
        let last = g.rank() - 1;
        let mut gx: Option<Tensor> = None;
        let mut buf = vec![0f32; band.min(w.rows) * w.cols];
        let mut r0 = 0;
        while r0 < w.rows {
            let n = band.min(w.rows - r0);
            let tile = &mut buf[..n * w.cols];
            for r in 0..n {
                w.dequantize_row(r0 + r, &mut tile[r * w.cols..(r + 1) * w.cols]);
            }
            let wt = Tensor::from_slice(tile, (n, w.cols), grad.device())?;
            let part = g.narrow(last, r0, n)?.contiguous()?.broadcast_matmul(&wt)?;
            gx = Some(match gx {
                None => part,
                Some(acc) => (acc + part)?,
            });
            r0 += n;
        }
        Ok(gx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf::GgmlType;
    use candle_core::{Device, Var};

    #[test]
    fn quantized_dense_and_lora_agree() {
        let dev = Device::Cpu;
        let (out, inp) = (6, 64);
        let wq = Tensor::randn(0f32, 1.0, (out, inp), &dev).unwrap();
        // Build Q8_0 blocks from the tensor, then use the dequantized copy as dense.
        let wv: Vec<f32> = wq.flatten_all().unwrap().to_vec1().unwrap();
        let mut bytes = Vec::new();
        for blk in wv.chunks(32) {
            let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            bytes.extend_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
            let dd = half::f16::from_f32(d).to_f32();
            for v in blk {
                bytes.push((v / dd).round().clamp(-127.0, 127.0) as i8 as u8);
            }
        }
        let q = Arc::new(QWeight::owned(bytes, GgmlType::Q8_0, out, inp).unwrap());
        let ql = Linear::Quantized {
            weight: q.clone(),
            bias: None,
        };
        let dl = Linear::Dense {
            weight: ql.dense_weight().unwrap(),
            bias: None,
        };
        let x = Tensor::randn(0f32, 1.0, (2, 3, inp), &dev).unwrap();
        let yq = ql.forward(&x).unwrap();
        let yd = dl.forward(&x).unwrap();
        let diff: f32 = (yq - &yd)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-4, "{diff}");
        // Fast path equals the candle path.
        let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let mut yf = vec![0f32; 6 * out];
        ql.forward_f32(&xv, 6, &mut yf).unwrap();
        let ydv: Vec<f32> = yd.flatten_all().unwrap().to_vec1().unwrap();
        for (a, b) in yf.iter().zip(&ydv) {
            assert!((a - b).abs() < 1e-4);
        }
        // LoRA with B = 0 changes nothing; gradients reach A, B and the input.
        let a = Var::from_tensor(&Tensor::randn(0f32, 0.1, (4, inp), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros((out, 4), DType::F32, &dev).unwrap()).unwrap();
        let ll = ql
            .clone()
            .with_lora(Lora {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale: 2.0,
                dropout: 0.0,
                name: "t".into(),
            })
            .unwrap();
        let xv2 = Var::from_tensor(&x).unwrap();
        let yl = ll.forward(xv2.as_tensor()).unwrap();
        let diff: f32 = (&yl - ql.forward(&x).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(diff, 0.0);
        let grads = yl.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(b.as_tensor()).is_some());
        let gx = grads.get(xv2.as_tensor()).unwrap();
        // d/dx sum(y^2) = 2 y W.
        let want = (yd.clone() * 2.0)
            .unwrap()
            .broadcast_matmul(&dl.dense_weight().unwrap())
            .unwrap();
        let diff: f32 = (gx - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-2, "{diff}");
    }

    /// The quantized layer's input gradient equals the dense layer's on the
    /// dequantized weight, for every writable block type, with more rows
    /// than one dequantized band (so the band loop is exercised).
    #[test]
    fn quantized_input_gradient_matches_dense() {
        let dev = Device::Cpu;
        let (out, inp) = (2100, 512);
        let wv: Vec<f32> = Tensor::randn(0f32, 0.05, (out, inp), &dev)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for t in [GgmlType::NF4, GgmlType::Q4_1, GgmlType::Q8_0] {
            let q =
                Arc::new(QWeight::owned(quant::quantize(t, &wv).unwrap(), t, out, inp).unwrap());
            let ql = Linear::Quantized {
                weight: q.clone(),
                bias: None,
            };
            let dense = Linear::Dense {
                weight: ql.dense_weight().unwrap(),
                bias: None,
            };
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, inp), &dev).unwrap()).unwrap();
            let gy = Tensor::randn(0f32, 1.0, (2, 3, out), &dev).unwrap();
            let grad = |l: &Linear| {
                let y = l.forward(x.as_tensor()).unwrap();
                let g = (y * &gy).unwrap().sum_all().unwrap().backward().unwrap();
                g.get(x.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            };
            let (gq, gd) = (grad(&ql), grad(&dense));
            let scale = gd.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = gq
                .iter()
                .zip(&gd)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err <= 1e-5 * scale.max(1.0), "{t}: {err} (scale {scale})");
        }
    }
}
