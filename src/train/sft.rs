//! The supervised fine-tuning objective: token-level cross-entropy on the
//! labelled positions (assistant turns), summed and divided by the number of
//! labelled tokens in the whole optimizer step, as transformers does under
//! gradient accumulation.

use super::{LossOut, Objective};
use crate::data::{Sample, IGNORE};
use crate::model::Model;
use anyhow::Result;
use candle_core::{Device, Tensor};

/// Cross-entropy of next-token prediction. Batches are right-padded with
/// `pad_id` (padding after the last real token never changes a real
/// position under a causal mask, and carries no label).
pub struct CrossEntropy {
    pub pad_id: u32,
}

/// A right-padded batch: ids `[B, T]`, the flat positions `b * T + i` whose
/// next token has a label, those labels, and the count of real tokens.
pub struct Collated {
    pub ids: Tensor,
    pub b: usize,
    pub t: usize,
    pub rows: Vec<u32>,
    pub targets: Vec<u32>,
    pub tokens: usize,
}

/// Labelled next-token positions of one sample.
fn targets_of(s: &Sample) -> impl Iterator<Item = (usize, u32)> + '_ {
    (0..s.input_ids.len().saturating_sub(1)).filter_map(move |i| {
        let l = *s.labels.get(i + 1)?;
        (l != IGNORE && l >= 0).then_some((i, l as u32))
    })
}

pub fn collate(items: &[&Sample], pad_id: u32) -> Result<Collated> {
    let b = items.len();
    let t = items
        .iter()
        .map(|s| s.input_ids.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut ids = vec![pad_id; b * t];
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    let mut tokens = 0;
    for (bi, s) in items.iter().enumerate() {
        ids[bi * t..bi * t + s.input_ids.len()].copy_from_slice(&s.input_ids);
        tokens += s.input_ids.len();
        for (i, l) in targets_of(s) {
            rows.push((bi * t + i) as u32);
            targets.push(l);
        }
    }
    Ok(Collated {
        ids: Tensor::from_vec(ids, (b, t), &Device::Cpu)?,
        b,
        t,
        rows,
        targets,
        tokens,
    })
}

/// Sum of `-log p(target)` over the collated rows from the final hidden
/// states `[B, T, hidden]`, and the count of argmax hits: the shared core of
/// SFT (and of ORPO's SFT term). The head runs fused with the log-softmax
/// ([`super::head::label_logprobs`]): the logits exist a chunk of rows at a
/// time, never for the whole batch.
pub fn cross_entropy_sum(
    model: &Model,
    c: &Collated,
    hidden: &Tensor,
    train: bool,
) -> Result<(Tensor, usize)> {
    let dev = Device::Cpu;
    let h = hidden.dim(2)?;
    let n = c.rows.len();
    let flat = hidden.reshape((c.b * c.t, h))?;
    let idx = Tensor::from_slice(&c.rows, n, &dev)?;
    let hs = flat.index_select(&idx, 0)?;
    let lp = super::head::label_logprobs(&model.lm_head, &hs, &c.targets, train)?;
    let loss = lp.logps.sum_all()?.neg()?;
    let correct = lp
        .argmax
        .iter()
        .zip(&c.targets)
        .filter(|(a, b)| a == b)
        .count();
    Ok((loss, correct))
}

impl Objective<Sample> for CrossEntropy {
    fn weight(&self, items: &[&Sample]) -> f64 {
        items.iter().map(|s| targets_of(s).count()).sum::<usize>() as f64
    }

    fn inputs(&self, items: &[&Sample]) -> Result<Tensor> {
        Ok(collate(items, self.pad_id)?.ids)
    }

    fn lengths(&self, items: &[&Sample]) -> Option<Vec<usize>> {
        Some(items.iter().map(|s| s.input_ids.len()).collect())
    }

    fn loss_from_hidden(
        &self,
        model: &Model,
        items: &[&Sample],
        hidden: &Tensor,
        denom: f64,
        train: bool,
    ) -> Result<LossOut> {
        let c = collate(items, self.pad_id)?;
        let n = c.rows.len();
        if n == 0 {
            return Ok(LossOut {
                loss: Tensor::new(0f32, &Device::Cpu)?,
                metrics: vec![("token_acc".into(), 0.0, 0.0)],
                tokens: c.tokens,
            });
        }
        let (sum, correct) = cross_entropy_sum(model, &c, hidden, train)?;
        Ok(LossOut {
            loss: (sum / denom.max(1e-12))?,
            metrics: vec![("token_acc".into(), correct as f64, n as f64)],
            tokens: c.tokens,
        })
    }
}
