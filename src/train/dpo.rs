//! Preference objectives for `swift dpo` (issue 07): DPO (sigmoid, with
//! label smoothing), IPO, ORPO, SimPO and KTO, each as TRL defines it, as an
//! [`Objective`] the shared trainer runs unchanged.
//!
//! A micro-batch of `B` pairs runs as ONE batch of `2B` sequences: rows
//! `0..B` are prompt + chosen, rows `B..2B` prompt + rejected. For KTO
//! (unpaired) rows `0..B` are each item's completion and rows `B..2B` the
//! mismatched pairs `prompt_i + completion_{i+1}` used for the KL estimate.
//!
//! The reference model: with LoRA it is the same base weights without the
//! adapter (a [`Model`] clone taken before `attach_lora`: the tensors are
//! shared, not copied); or reference log-probs computed once before training
//! ([`precompute_reference`], `--precompute-ref-logps`).
//!
//! Log-probs per sequence are sums over the answer tokens (DPO, KTO) or
//! averages (IPO, SimPO, ORPO: TRL's `average_log_prob` for those).

use super::{hidden_no_grad, LossOut, Objective};
use crate::data::PreferenceSample;
use crate::model::Model;
use crate::progress::Progress;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;

/// Which preference loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// DPO, sigmoid loss (with --label-smoothing: conservative DPO)
    Dpo,
    /// IPO: squared distance of the log-ratio margin to 1/(2 beta)
    Ipo,
    /// ORPO: SFT on chosen plus beta times the odds-ratio term (no reference)
    Orpo,
    /// SimPO: length-normalised, margin --simpo-gamma (no reference)
    Simpo,
    /// KTO: unpaired desirable / undesirable completions
    Kto,
}

impl LossKind {
    /// Whether the loss compares against a reference model.
    pub fn needs_reference(self) -> bool {
        matches!(self, LossKind::Dpo | LossKind::Ipo | LossKind::Kto)
    }

    /// Whether sequence log-probs are averaged over the answer's tokens.
    pub fn averaged(self) -> bool {
        matches!(self, LossKind::Ipo | LossKind::Orpo | LossKind::Simpo)
    }
}

/// Loss hyper-parameters.
#[derive(Debug, Clone, Serialize)]
pub struct PrefConfig {
    pub loss: LossKind,
    pub beta: f64,
    pub label_smoothing: f64,
    pub simpo_gamma: f64,
    pub desirable_weight: f64,
    pub undesirable_weight: f64,
}

impl Default for PrefConfig {
    fn default() -> Self {
        PrefConfig {
            loss: LossKind::Dpo,
            beta: 0.1,
            label_smoothing: 0.0,
            simpo_gamma: 0.5,
            desirable_weight: 1.0,
            undesirable_weight: 1.0,
        }
    }
}

/// One training item: a preference sample and, with precomputed reference
/// log-probs, the reference's summed log-probs of (chosen, rejected).
#[derive(Debug, Clone)]
pub struct PrefItem {
    pub sample: PreferenceSample,
    pub reference: Option<[f64; 2]>,
}

impl PrefItem {
    pub fn new(sample: PreferenceSample) -> PrefItem {
        PrefItem {
            sample,
            reference: None,
        }
    }

    /// The KTO completion (chosen if desirable, else rejected) and its label.
    fn completion(&self) -> (&[u32], bool) {
        match self.sample.label {
            Some(false) => (&self.sample.rejected, false),
            _ => (&self.sample.chosen, true),
        }
    }
}

/// KTO needs unpaired items: a paired sample becomes a desirable (chosen)
/// and an undesirable (rejected) item; labelled ones stay as they are.
pub fn unpair(samples: Vec<PreferenceSample>) -> Vec<PreferenceSample> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        if s.label.is_some() {
            out.push(s);
            continue;
        }
        out.push(PreferenceSample {
            prompt: s.prompt.clone(),
            chosen: s.chosen.clone(),
            rejected: Vec::new(),
            label: Some(true),
        });
        out.push(PreferenceSample {
            prompt: s.prompt,
            chosen: Vec::new(),
            rejected: s.rejected,
            label: Some(false),
        });
    }
    out
}

/// `log(sigmoid(x))`, stable: `min(x, 0) - log(1 + exp(-|x|))`.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let soft = ((x.abs()?.neg()?.exp()? + 1.0)?).log()?;
    Ok((x.minimum(0f64)? - soft)?)
}

/// Per-pair losses and rewards of the paired losses from per-sequence
/// log-probs `[B]` (sums for DPO, averages for IPO / SimPO / ORPO) of the
/// policy (`pc`, `pr`) and the reference (`rc`, `rr`; zeros when the loss
/// has none). Returns (losses, chosen rewards, rejected rewards).
pub fn paired_losses(
    cfg: &PrefConfig,
    pc: &Tensor,
    pr: &Tensor,
    rc: &Tensor,
    rr: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let beta = cfg.beta;
    let ls = cfg.label_smoothing;
    match cfg.loss {
        LossKind::Dpo | LossKind::Ipo => {
            let cr = (pc - rc)?;
            let rj = (pr - rr)?;
            let logits = (&cr - &rj)?;
            let losses = if cfg.loss == LossKind::Dpo {
                let a = (log_sigmoid(&(&logits * beta)?)? * (-(1.0 - ls)))?;
                let b = (log_sigmoid(&(&logits * -beta)?)? * (-ls))?;
                (a + b)?
            } else {
                (logits - 1.0 / (2.0 * beta))?.sqr()?
            };
            Ok((losses, (cr.detach() * beta)?, (rj.detach() * beta)?))
        }
        LossKind::Simpo => {
            let logits = ((pc - pr)? - cfg.simpo_gamma / beta)?;
            let a = (log_sigmoid(&(&logits * beta)?)? * (-(1.0 - ls)))?;
            let b = (log_sigmoid(&(&logits * -beta)?)? * (-ls))?;
            Ok(((a + b)?, (pc.detach() * beta)?, (pr.detach() * beta)?))
        }
        LossKind::Orpo => {
            // log_odds = (lc - lr) - (log1p(-exp(lc)) - log1p(-exp(lr)))
            let log1m = |x: &Tensor| -> Result<Tensor> {
                Ok((x.exp()?.minimum(1.0 - 1e-7)?.neg()? + 1.0)?.log()?)
            };
            let log_odds = ((pc - pr)? - (log1m(pc)? - log1m(pr)?)?)?;
            let nll = pc.neg()?;
            let losses = (nll - (log_sigmoid(&log_odds)? * beta)?)?;
            Ok((losses, (pc.detach() * beta)?, (pr.detach() * beta)?))
        }
        LossKind::Kto => bail!("KTO is unpaired: use kto_losses"),
    }
}

/// KTO losses (TRL's `kto`): desirable items `w_d (1 - sigmoid(beta (r - kl)))`,
/// undesirable `w_u (1 - sigmoid(beta (kl - r)))` with `r` the policy /
/// reference log-ratio and `kl` the (detached) KL estimate clamped at 0.
/// Returns (losses, rewards `beta r`).
pub fn kto_losses(
    cfg: &PrefConfig,
    policy: &Tensor,
    reference: &Tensor,
    labels: &[bool],
    kl: f64,
) -> Result<(Tensor, Tensor)> {
    let kl = kl.max(0.0);
    let r = (policy - reference)?;
    let dev = policy.device();
    let sign: Vec<f32> = labels.iter().map(|&d| if d { 1.0 } else { -1.0 }).collect();
    let w: Vec<f32> = labels
        .iter()
        .map(|&d| {
            if d {
                cfg.desirable_weight
            } else {
                cfg.undesirable_weight
            }
        })
        .map(|x| x as f32)
        .collect();
    let sign = Tensor::from_vec(sign, labels.len(), dev)?.to_dtype(policy.dtype())?;
    let w = Tensor::from_vec(w, labels.len(), dev)?.to_dtype(policy.dtype())?;
    // desirable: beta (r - kl); undesirable: beta (kl - r) = -beta (r - kl)
    let z = (((&r - kl)? * sign)? * cfg.beta)?;
    let sig = candle_nn::ops::sigmoid(&z)?;
    let losses = ((sig.neg()? + 1.0)? * w)?;
    Ok((losses, (r.detach() * cfg.beta)?))
}

/// A right-padded batch of (prompt, answer) sequences and the positions
/// whose next token is an answer token.
struct Rows {
    ids: Tensor,
    b: usize,
    t: usize,
    pos: Vec<u32>,
    targets: Vec<u32>,
    seg: Vec<usize>,
    lens: Vec<usize>,
    /// Real tokens of each row (prompt + answer; the rest is padding).
    full: Vec<usize>,
    tokens: usize,
}

fn build_rows(seqs: &[(&[u32], &[u32])], pad: u32) -> Result<Rows> {
    let b = seqs.len();
    let t = seqs
        .iter()
        .map(|(p, a)| p.len() + a.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut ids = vec![pad; b * t];
    let (mut pos, mut targets, mut seg, mut lens) = (vec![], vec![], vec![], vec![0; b]);
    let mut tokens = 0;
    for (r, (p, a)) in seqs.iter().enumerate() {
        let row = &mut ids[r * t..];
        row[..p.len()].copy_from_slice(p);
        row[p.len()..p.len() + a.len()].copy_from_slice(a);
        tokens += p.len() + a.len();
        for (j, &tok) in a.iter().enumerate() {
            let at = p.len() + j;
            if at == 0 {
                continue;
            }
            pos.push((r * t + at - 1) as u32);
            targets.push(tok);
            seg.push(r);
            lens[r] += 1;
        }
    }
    Ok(Rows {
        ids: Tensor::from_vec(ids, (b, t), &Device::Cpu)?,
        b,
        t,
        pos,
        targets,
        seg,
        lens,
        full: seqs.iter().map(|(p, a)| p.len() + a.len()).collect(),
        tokens,
    })
}

/// Summed log-probs `[rows]` of each row's answer tokens from the final
/// hidden states `[rows, T, hidden]`.
fn seq_logps(model: &Model, r: &Rows, hidden: &Tensor, train: bool) -> Result<Tensor> {
    let dev = Device::Cpu;
    let n = r.pos.len();
    if n == 0 {
        return Ok(Tensor::zeros(r.b, DType::F32, &dev)?);
    }
    let h = hidden.dim(2)?;
    let flat = hidden.reshape((r.b * r.t, h))?;
    let idx = Tensor::from_slice(&r.pos, n, &dev)?;
    let hs = flat.index_select(&idx, 0)?;
    // The head fused with the log-softmax and the label pick: a chunk of
    // rows of logits at a time instead of all of them in the graph.
    let picked = crate::train::head::label_logprobs(&model.lm_head, &hs, &r.targets, train)?
        .logps
        .to_dtype(DType::F32)?
        .reshape((n, 1))?;
    let mut onehot = vec![0f32; r.b * n];
    for (k, &row) in r.seg.iter().enumerate() {
        onehot[row * n + k] = 1.0;
    }
    let seg = Tensor::from_vec(onehot, (r.b, n), &dev)?;
    Ok(seg.matmul(&picked)?.squeeze(1)?)
}

/// The preference objective. `reference`: the reference model (the base
/// without the trained adapter), unless every item carries precomputed
/// reference log-probs or the loss needs none.
pub struct Preference<'a> {
    pub cfg: PrefConfig,
    pub pad_id: u32,
    pub reference: Option<&'a Model>,
}

impl Preference<'_> {
    fn sequences<'s>(&self, items: &[&'s PrefItem]) -> Vec<(&'s [u32], &'s [u32])> {
        let mut seqs: Vec<(&[u32], &[u32])> = Vec::with_capacity(items.len() * 2);
        if self.cfg.loss == LossKind::Kto {
            for it in items {
                seqs.push((&it.sample.prompt, it.completion().0));
            }
            let b = items.len();
            if b > 1 {
                for i in 0..b {
                    seqs.push((&items[i].sample.prompt, items[(i + 1) % b].completion().0));
                }
            }
        } else {
            for it in items {
                seqs.push((&it.sample.prompt, &it.sample.chosen));
            }
            for it in items {
                seqs.push((&it.sample.prompt, &it.sample.rejected));
            }
        }
        seqs
    }

    /// Reference log-probs (summed) of every row, detached.
    fn reference_logps(&self, items: &[&PrefItem], rows: &Rows) -> Result<Tensor> {
        let b = items.len();
        let have_pre = items.iter().all(|i| i.reference.is_some());
        if have_pre && self.cfg.loss != LossKind::Kto {
            let mut v = vec![0f32; 2 * b];
            for (i, it) in items.iter().enumerate() {
                let [c, r] = it.reference.unwrap_or_default();
                v[i] = c as f32;
                v[b + i] = r as f32;
            }
            return Ok(Tensor::from_vec(v, 2 * b, &Device::Cpu)?);
        }
        let Some(reference) = self.reference else {
            bail!(
                "the {:?} loss needs a reference model or precomputed reference log-probs",
                self.cfg.loss
            );
        };
        let h = hidden_no_grad(reference, &rows.ids, Some(&rows.full))?;
        Ok(seq_logps(reference, rows, &h, false)?.detach())
    }
}

/// Reference log-probs of every item, computed once (`--precompute-ref-logps`).
pub fn precompute_reference(
    reference: &Model,
    items: &mut [PrefItem],
    pad_id: u32,
    batch: usize,
    progress: &dyn Progress,
) -> Result<()> {
    let total = items.len();
    let mut done = 0;
    for chunk in items.chunks_mut(batch.max(1)) {
        let mut seqs: Vec<(&[u32], &[u32])> = Vec::new();
        for it in chunk.iter() {
            seqs.push((&it.sample.prompt, &it.sample.chosen));
        }
        for it in chunk.iter() {
            seqs.push((&it.sample.prompt, &it.sample.rejected));
        }
        let rows = build_rows(&seqs, pad_id)?;
        let h = hidden_no_grad(reference, &rows.ids, Some(&rows.full))?;
        let lp: Vec<f32> = seq_logps(reference, &rows, &h, false)?.to_vec1()?;
        let b = chunk.len();
        for (i, it) in chunk.iter_mut().enumerate() {
            it.reference = Some([lp[i] as f64, lp[b + i] as f64]);
        }
        done += b;
        progress.message(&format!("reference log-probs {done}/{total}"));
    }
    Ok(())
}

fn mean_of(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
}

impl Objective<PrefItem> for Preference<'_> {
    fn weight(&self, items: &[&PrefItem]) -> f64 {
        items.len() as f64
    }

    fn inputs(&self, items: &[&PrefItem]) -> Result<Tensor> {
        Ok(build_rows(&self.sequences(items), self.pad_id)?.ids)
    }

    fn lengths(&self, items: &[&PrefItem]) -> Option<Vec<usize>> {
        Some(
            self.sequences(items)
                .iter()
                .map(|(p, a)| p.len() + a.len())
                .collect(),
        )
    }

    fn loss_from_hidden(
        &self,
        model: &Model,
        items: &[&PrefItem],
        hidden: &Tensor,
        denom: f64,
        train: bool,
    ) -> Result<LossOut> {
        let b = items.len();
        let rows = build_rows(&self.sequences(items), self.pad_id)?;
        let policy = seq_logps(model, &rows, hidden, train)?;
        let cfg = &self.cfg;
        let reference = if cfg.loss.needs_reference() {
            Some(self.reference_logps(items, &rows)?)
        } else {
            None
        };
        let dev = Device::Cpu;
        let mut metrics: Vec<(String, f64, f64)> = Vec::new();
        let n = b as f64;
        let losses = if cfg.loss == LossKind::Kto {
            let labels: Vec<bool> = items.iter().map(|i| i.completion().1).collect();
            let reference = reference.unwrap_or(Tensor::zeros(rows.b, DType::F32, &dev)?);
            let kl = if b > 1 {
                let p = policy.narrow(0, b, b)?.detach();
                let r = reference.narrow(0, b, b)?;
                (mean_of(&(p - r)?)? / n).max(0.0)
            } else {
                0.0
            };
            let pol = policy.narrow(0, 0, b)?;
            let (losses, rewards) =
                kto_losses(cfg, &pol, &reference.narrow(0, 0, b)?, &labels, kl)?;
            let rw: Vec<f32> = rewards.to_vec1()?;
            let lp: Vec<f32> = pol.detach().to_vec1()?;
            let (mut sc, mut cc, mut sr, mut cr, mut lc, mut lr) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            for (i, &d) in labels.iter().enumerate() {
                if d {
                    sc += rw[i] as f64;
                    lc += lp[i] as f64;
                    cc += 1.0;
                } else {
                    sr += rw[i] as f64;
                    lr += lp[i] as f64;
                    cr += 1.0;
                }
            }
            // Accuracy (swift's; TRL's KTO logs none): the share of items
            // rewarded on their label's side (desirable > 0, undesirable < 0).
            let right = labels
                .iter()
                .zip(&rw)
                .filter(|(&d, &r)| if d { r > 0.0 } else { r < 0.0 })
                .count() as f64;
            metrics.push(("rewards/chosen".into(), sc, cc));
            metrics.push(("rewards/rejected".into(), sr, cr));
            metrics.push(("rewards/accuracies".into(), right, n));
            // TRL: mean chosen reward minus mean rejected reward, when the
            // micro-batch has both.
            if cc > 0.0 && cr > 0.0 {
                metrics.push(("rewards/margins".into(), sc / cc - sr / cr, 1.0));
            }
            metrics.push(("logps/chosen".into(), lc, cc));
            metrics.push(("logps/rejected".into(), lr, cr));
            metrics.push(("kl".into(), kl * n, n));
            losses
        } else {
            let zeros = Tensor::zeros(b, DType::F32, &dev)?;
            let (mut pc, mut pr) = (policy.narrow(0, 0, b)?, policy.narrow(0, b, b)?);
            let summed_c = pc.clone();
            let (mut rc, mut rr) = match &reference {
                Some(r) => (r.narrow(0, 0, b)?, r.narrow(0, b, b)?),
                None => (zeros.clone(), zeros.clone()),
            };
            if cfg.loss.averaged() {
                let lc: Vec<f32> = rows.lens[..b].iter().map(|&l| l.max(1) as f32).collect();
                let lr: Vec<f32> = rows.lens[b..].iter().map(|&l| l.max(1) as f32).collect();
                let lc = Tensor::from_vec(lc, b, &dev)?;
                let lr = Tensor::from_vec(lr, b, &dev)?;
                pc = (pc / &lc)?;
                pr = (pr / &lr)?;
                rc = (rc / &lc)?;
                rr = (rr / &lr)?;
            }
            let (mut losses, rwc, rwr) = paired_losses(cfg, &pc, &pr, &rc, &rr)?;
            if cfg.loss == LossKind::Orpo {
                // TRL's SFT term is the mean NLL over every chosen token of the
                // micro-batch, not the mean of the per-pair averages: swap the
                // per-pair `-pc` for it (equal when the lengths are).
                let toks = rows.lens[..b].iter().sum::<usize>().max(1) as f64;
                let nll = (summed_c.sum_all()? / -toks)?;
                metrics.push(("nll_loss".into(), nll.to_scalar::<f32>()? as f64 * n, n));
                let nll = nll.reshape(1)?.broadcast_as(b)?;
                losses = ((losses + &pc)? + nll)?;
            }
            let c: Vec<f32> = rwc.to_vec1()?;
            let r: Vec<f32> = rwr.to_vec1()?;
            let acc = c.iter().zip(&r).filter(|(a, b)| a > b).count() as f64;
            let margin: f64 = c.iter().zip(&r).map(|(a, b)| (a - b) as f64).sum();
            metrics.push((
                "rewards/chosen".into(),
                c.iter().map(|&x| x as f64).sum(),
                n,
            ));
            metrics.push((
                "rewards/rejected".into(),
                r.iter().map(|&x| x as f64).sum(),
                n,
            ));
            metrics.push(("rewards/accuracies".into(), acc, n));
            metrics.push(("rewards/margins".into(), margin, n));
            metrics.push(("logps/chosen".into(), mean_of(&pc.detach())?, n));
            metrics.push(("logps/rejected".into(), mean_of(&pr.detach())?, n));
            losses
        };
        let loss = (losses.sum_all()? / denom.max(1e-12))?;
        Ok(LossOut {
            loss,
            metrics,
            tokens: rows.tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::write_tiny_model;
    use crate::train::lora::{attach_lora, LoraOptions};

    fn t(v: &[f64]) -> Tensor {
        Tensor::from_vec(
            v.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            v.len(),
            &Device::Cpu,
        )
        .unwrap()
    }

    fn v(x: &Tensor) -> Vec<f64> {
        x.to_dtype(DType::F64).unwrap().to_vec1().unwrap()
    }

    fn lsig(x: f64) -> f64 {
        -(1.0 + (-x).exp()).ln()
    }

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    // Fixed log-probs: policy chosen / rejected, reference chosen / rejected.
    const PC: [f64; 3] = [-10.0, -25.5, -7.25];
    const PR: [f64; 3] = [-12.0, -24.0, -9.0];
    const RC: [f64; 3] = [-11.0, -25.0, -8.0];
    const RR: [f64; 3] = [-11.5, -24.5, -8.5];

    fn cfg(loss: LossKind, beta: f64, ls: f64) -> PrefConfig {
        PrefConfig {
            loss,
            beta,
            label_smoothing: ls,
            ..PrefConfig::default()
        }
    }

    #[test]
    fn dpo_sigmoid_with_label_smoothing_matches_trl() {
        for (beta, ls) in [(0.1, 0.0), (0.5, 0.2)] {
            let c = cfg(LossKind::Dpo, beta, ls);
            let (l, rwc, rwr) = paired_losses(&c, &t(&PC), &t(&PR), &t(&RC), &t(&RR)).unwrap();
            let want: Vec<f64> = (0..3)
                .map(|i| {
                    let z = (PC[i] - RC[i]) - (PR[i] - RR[i]);
                    -lsig(beta * z) * (1.0 - ls) - lsig(-beta * z) * ls
                })
                .collect();
            close(&v(&l), &want, 1e-5);
            let wc: Vec<f64> = (0..3).map(|i| beta * (PC[i] - RC[i])).collect();
            let wr: Vec<f64> = (0..3).map(|i| beta * (PR[i] - RR[i])).collect();
            close(&v(&rwc), &wc, 1e-5);
            close(&v(&rwr), &wr, 1e-5);
        }
        // Hand value: z = (1 - (-0.5)) = 1.5 for the first pair, beta 0.1:
        // -ln(sigmoid(0.15)) = ln(1 + e^-0.15) = 0.620957
        let (l, _, _) = paired_losses(
            &cfg(LossKind::Dpo, 0.1, 0.0),
            &t(&PC),
            &t(&PR),
            &t(&RC),
            &t(&RR),
        )
        .unwrap();
        assert!((v(&l)[0] - 0.620_957).abs() < 1e-5, "{:?}", v(&l));
    }

    #[test]
    fn ipo_matches_trl() {
        let beta = 0.1;
        let (l, _, _) = paired_losses(
            &cfg(LossKind::Ipo, beta, 0.0),
            &t(&PC),
            &t(&PR),
            &t(&RC),
            &t(&RR),
        )
        .unwrap();
        let want: Vec<f64> = (0..3)
            .map(|i| {
                let z = (PC[i] - RC[i]) - (PR[i] - RR[i]);
                (z - 1.0 / (2.0 * beta)).powi(2)
            })
            .collect();
        close(&v(&l), &want, 1e-3);
        // First pair: (1.5 - 5)^2 = 12.25.
        assert!((v(&l)[0] - 12.25).abs() < 1e-4);
    }

    #[test]
    fn simpo_matches_trl() {
        let (beta, gamma) = (2.0, 0.5);
        let c = PrefConfig {
            simpo_gamma: gamma,
            ..cfg(LossKind::Simpo, beta, 0.0)
        };
        let ac = [-1.2, -0.8, -2.0];
        let ar = [-1.5, -0.7, -2.6];
        let z = t(&[0.0; 3]);
        let (l, rwc, _) = paired_losses(&c, &t(&ac), &t(&ar), &z, &z).unwrap();
        let want: Vec<f64> = (0..3)
            .map(|i| -lsig(beta * (ac[i] - ar[i]) - gamma))
            .collect();
        close(&v(&l), &want, 1e-5);
        close(&v(&rwc), &[-2.4, -1.6, -4.0], 1e-5);
    }

    #[test]
    fn orpo_matches_trl() {
        let beta = 0.1;
        let lc = [-0.4, -1.1, -0.05];
        let lr = [-0.9, -0.6, -2.0];
        let z = t(&[0.0; 3]);
        let (l, _, _) =
            paired_losses(&cfg(LossKind::Orpo, beta, 0.0), &t(&lc), &t(&lr), &z, &z).unwrap();
        let want: Vec<f64> = (0..3)
            .map(|i| {
                let odds = (lc[i] - lr[i]) - ((-lc[i].exp()).ln_1p() - (-lr[i].exp()).ln_1p());
                -lc[i] - beta * lsig(odds)
            })
            .collect();
        close(&v(&l), &want, 1e-4);
    }

    #[test]
    fn kto_matches_trl_and_clamps_kl() {
        let c = PrefConfig {
            desirable_weight: 1.0,
            undesirable_weight: 1.5,
            ..cfg(LossKind::Kto, 0.1, 0.0)
        };
        let pol = [-10.0, -20.0, -5.0];
        let refr = [-12.0, -19.0, -5.5];
        let labels = [true, false, true];
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        for kl_in in [0.7, -3.0] {
            let kl: f64 = f64::max(kl_in, 0.0);
            let (l, rw) = kto_losses(&c, &t(&pol), &t(&refr), &labels, kl_in).unwrap();
            let want: Vec<f64> = (0..3)
                .map(|i| {
                    let r = pol[i] - refr[i];
                    if labels[i] {
                        1.0 * (1.0 - sig(0.1 * (r - kl)))
                    } else {
                        1.5 * (1.0 - sig(0.1 * (kl - r)))
                    }
                })
                .collect();
            close(&v(&l), &want, 1e-5);
            close(&v(&rw), &[0.2, -0.1, 0.05], 1e-5);
        }
    }

    fn items(n: usize) -> Vec<PrefItem> {
        (0..n)
            .map(|i| {
                let prompt: Vec<u32> = (0..4 + i % 3).map(|k| (10 + 7 * k + i) as u32).collect();
                PrefItem::new(PreferenceSample {
                    prompt,
                    chosen: vec![250, 251, 252],
                    rejected: vec![100 + i as u32, 101, 102, 103],
                    label: None,
                })
            })
            .collect()
    }

    #[test]
    fn step_zero_lora_dpo_loss_is_ln2_and_rewards_zero() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), "llama", 5).unwrap();
        let base = Model::load_hf(dir.path()).unwrap();
        let mut m = base.clone();
        attach_lora(&mut m, &LoraOptions::default(), 3).unwrap();
        let data = items(4);
        let refs: Vec<&PrefItem> = data.iter().collect();
        let obj = Preference {
            cfg: PrefConfig::default(),
            pad_id: 0,
            reference: Some(&base),
        };
        let out = obj.loss(&m, &refs, 4.0, true).unwrap();
        let loss = out
            .loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((loss - std::f64::consts::LN_2).abs() < 1e-4, "{loss}");
        for (k, s, _) in &out.metrics {
            if k.starts_with("rewards/") && k != "rewards/accuracies" {
                assert!(s.abs() < 1e-5, "{k} = {s}");
            }
        }
        // Precomputed reference log-probs give the same loss.
        let mut pre = data.clone();
        precompute_reference(&base, &mut pre, 0, 3, &crate::progress::NoProgress).unwrap();
        let refs: Vec<&PrefItem> = pre.iter().collect();
        let obj = Preference {
            reference: None,
            ..obj
        };
        let out2 = obj.loss(&m, &refs, 4.0, true).unwrap();
        let l2 = out2
            .loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((l2 - std::f64::consts::LN_2).abs() < 1e-4, "{l2}");
        // KTO at step 0: policy = reference, kl = 0, each loss 1 - sigmoid(0) = 0.5.
        let kto = Preference {
            cfg: cfg(LossKind::Kto, 0.1, 0.0),
            pad_id: 0,
            reference: Some(&base),
        };
        let un: Vec<PrefItem> = unpair(data.iter().map(|i| i.sample.clone()).collect())
            .into_iter()
            .map(PrefItem::new)
            .collect();
        let refs: Vec<&PrefItem> = un.iter().collect();
        let out3 = kto.loss(&m, &refs, refs.len() as f64, true).unwrap();
        let l3 = out3
            .loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((l3 - 0.5).abs() < 1e-4, "{l3}");
    }

    #[test]
    fn orpo_sft_term_is_the_token_mean_over_the_batch_as_trl() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), "llama", 5).unwrap();
        let m = Model::load_hf(dir.path()).unwrap();
        let mut data = items(2);
        data[1].sample.chosen = vec![250, 251, 252, 253, 254, 255, 256];
        let refs: Vec<&PrefItem> = data.iter().collect();
        let beta = 0.1;
        let obj = Preference {
            cfg: cfg(LossKind::Orpo, beta, 0.0),
            pad_id: 0,
            reference: None,
        };
        let got = obj
            .loss(&m, &refs, 2.0, false)
            .unwrap()
            .loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        // Summed log-probs of each row, then TRL's ORPO by hand.
        let rows = build_rows(&obj.sequences(&refs), 0).unwrap();
        let h = hidden_no_grad(&m, &rows.ids, Some(&rows.full)).unwrap();
        let lp = v(&seq_logps(&m, &rows, &h, false).unwrap());
        let (lc, lr) = (&rows.lens[..2], &rows.lens[2..]);
        assert_eq!(lc, [3, 7]);
        let nll = -(lp[0] + lp[1]) / 10.0;
        let odds: f64 = (0..2)
            .map(|i| {
                let (c, r) = (lp[i] / lc[i] as f64, lp[2 + i] / lr[i] as f64);
                let lo = (c - r) - ((-c.exp()).ln_1p() - (-r.exp()).ln_1p());
                lsig(lo)
            })
            .sum::<f64>()
            / 2.0;
        let want = nll - beta * odds;
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn training_dpo_on_a_tiny_model_separates_chosen_from_rejected() {
        use crate::train::{run, TrainConfig, Trainer};
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), "llama", 5).unwrap();
        let base = Model::load_hf(dir.path()).unwrap();
        let mut m = base.clone();
        let opts = LoraOptions {
            dropout: 0.0,
            ..LoraOptions::default()
        };
        let params = attach_lora(&mut m, &opts, 3).unwrap();
        let data = items(8);
        let obj = Preference {
            cfg: PrefConfig::default(),
            pad_id: 0,
            reference: Some(&base),
        };
        let out = tempfile::tempdir().unwrap();
        let save = |_: &std::path::Path| -> Result<()> { Ok(()) };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let o = run(Trainer {
            model: &m,
            params,
            objective: &obj,
            train: &data,
            val: &[],
            cfg: TrainConfig {
                output_dir: out.path().to_path_buf(),
                batch_size: 4,
                gradient_accumulation_steps: 1,
                learning_rate: 5e-3,
                max_steps: Some(12),
                logging_steps: 1,
                warmup_steps: Some(1),
                seed: 1,
                ..TrainConfig::default()
            },
            save_model: &save,
            progress: &crate::progress::NoProgress,
            stop: &stop,
        })
        .unwrap();
        let get = |k: &str| -> Vec<f64> {
            o.log_history
                .iter()
                .filter_map(|r| r.get(k).and_then(|v| v.as_f64()))
                .collect()
        };
        let loss = get("loss");
        assert!((loss[0] - std::f64::consts::LN_2).abs() < 1e-4, "{loss:?}");
        let acc = get("rewards/accuracies");
        let margins = get("rewards/margins");
        assert!(*acc.last().unwrap() > 0.9, "{acc:?}");
        assert!(*margins.last().unwrap() > 0.0, "{margins:?}");
        assert!(loss.last().unwrap() < &loss[0], "{loss:?}");
    }
}
