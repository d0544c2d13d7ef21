//! AdamW with its state in the open (candle-nn's keeps its moments private,
//! so a checkpoint could not hold them). The update is torch's `AdamW`
//! (decoupled weight decay, bias-corrected moments, `eps` outside the square
//! root), applied parameter by parameter on plain f32 slices.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// A trainable tensor: its name in the saved file, the variable, and whether
/// weight decay applies (not to biases and norms, as transformers' Trainer).
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub var: Var,
    pub decay: bool,
}

impl Param {
    pub fn numel(&self) -> usize {
        self.var.as_tensor().elem_count()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// AdamW state: first and second moments per parameter, and the step count.
pub struct AdamW {
    pub cfg: AdamWConfig,
    pub step: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamW {
    pub fn new(cfg: AdamWConfig, params: &[Param]) -> AdamW {
        AdamW {
            cfg,
            step: 0,
            m: params.iter().map(|p| vec![0f32; p.numel()]).collect(),
            v: params.iter().map(|p| vec![0f32; p.numel()]).collect(),
        }
    }

    /// One update with learning rate `lr` and the gradients `grads` (one flat
    /// vector per parameter, in the order of `params`).
    pub fn step(&mut self, params: &[Param], grads: &[Vec<f32>], lr: f64) -> Result<()> {
        self.step += 1;
        let c = self.cfg;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
        for (i, p) in params.iter().enumerate() {
            let g = &grads[i];
            let t = p.var.as_tensor();
            let mut w: Vec<f32> = t.flatten_all()?.to_vec1()?;
            if w.len() != g.len() {
                bail!("{}: {} gradients for {} weights", p.name, g.len(), w.len());
            }
            let decay = if p.decay {
                (1.0 - lr * c.weight_decay) as f32
            } else {
                1.0
            };
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            w.par_chunks_mut(4096)
                .zip(m.par_chunks_mut(4096))
                .zip(v.par_chunks_mut(4096))
                .zip(g.par_chunks(4096))
                .for_each(|(((w, m), v), g)| {
                    for j in 0..w.len() {
                        let gj = g[j];
                        w[j] *= decay;
                        m[j] = b1 * m[j] + (1.0 - b1) * gj;
                        v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                        let denom = v[j].sqrt() / bc2_sqrt + eps;
                        w[j] -= step_size * m[j] / denom;
                    }
                });
            let nt = Tensor::from_vec(w, t.shape(), &Device::Cpu)?;
            p.var.set(&nt)?;
        }
        Ok(())
    }

    /// Save the moments as `<name>.exp_avg` / `<name>.exp_avg_sq` tensors.
    pub fn save(&self, params: &[Param], path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (i, p) in params.iter().enumerate() {
            let shape = p.var.as_tensor().shape().clone();
            map.insert(
                format!("{}.exp_avg", p.name),
                Tensor::from_slice(&self.m[i], shape.clone(), &Device::Cpu)?,
            );
            map.insert(
                format!("{}.exp_avg_sq", p.name),
                Tensor::from_slice(&self.v[i], shape, &Device::Cpu)?,
            );
        }
        candle_core::safetensors::save(&map, path)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Restore the moments written by [`AdamW::save`] (the step count lives
    /// in the trainer state).
    pub fn load(&mut self, params: &[Param], path: &Path, step: u64) -> Result<()> {
        let map = candle_core::safetensors::load(path, &Device::Cpu)
            .with_context(|| format!("reading {}", path.display()))?;
        for (i, p) in params.iter().enumerate() {
            for (suffix, dst) in [("exp_avg", &mut self.m[i]), ("exp_avg_sq", &mut self.v[i])] {
                let key = format!("{}.{suffix}", p.name);
                let t = map
                    .get(&key)
                    .with_context(|| format!("{}: no {key}", path.display()))?;
                let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
                if v.len() != dst.len() {
                    bail!(
                        "{}: {key} has {} values, expected {}",
                        path.display(),
                        v.len(),
                        dst.len()
                    );
                }
                *dst = v;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_torch_adamw_by_hand() {
        // One parameter, two steps, computed with torch.optim.AdamW's formulas.
        let var = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let params = vec![Param {
            name: "w".into(),
            var: var.clone(),
            decay: true,
        }];
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(cfg, &params);
        let lr = 0.01;
        let mut want = [1.0f64, -2.0];
        let (mut m, mut v) = ([0f64; 2], [0f64; 2]);
        for (t, g) in [[0.5f64, -1.0], [0.25, 2.0]].iter().enumerate() {
            opt.step(&params, &[g.iter().map(|&x| x as f32).collect()], lr)
                .unwrap();
            let t = (t + 1) as i32;
            for j in 0..2 {
                want[j] *= 1.0 - lr * 0.1;
                m[j] = 0.9 * m[j] + 0.1 * g[j];
                v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
                let denom = v[j].sqrt() / (1.0 - 0.999f64.powi(t)).sqrt() + 1e-8;
                want[j] -= lr / (1.0 - 0.9f64.powi(t)) * m[j] / denom;
            }
        }
        let got: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        for j in 0..2 {
            assert!((got[j] as f64 - want[j]).abs() < 1e-6, "{got:?} {want:?}");
        }
        // Save / load round trip.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("opt.safetensors");
        opt.save(&params, &p).unwrap();
        let mut o2 = AdamW::new(cfg, &params);
        o2.load(&params, &p, 2).unwrap();
        assert_eq!(o2.m, opt.m);
        assert_eq!(o2.v, opt.v);
        assert_eq!(o2.step, 2);
    }
}
