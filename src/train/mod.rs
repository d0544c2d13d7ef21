//! The trainer loop shared by finetune and dpo (issue 04).
//!
//! [`run`] does not know which loss it runs: it takes an [`Objective`] (the
//! "loss of a micro-batch"), the trainable [`optim::Param`]s, the samples and
//! a [`TrainConfig`], and does the rest: data order, gradient accumulation,
//! clipping, AdamW, the schedule, evaluation, checkpoints and resume,
//! logging.jsonl, TensorBoard events, loss plots, progress.
//!
//! Exact resume: the data order of epoch `e` is a permutation drawn from
//! `mix(seed, e)`, and the dropout masks of micro-batch `j` of step `s` from
//! `mix(seed, s, j)`; nothing else is random. A run resumed from
//! `checkpoint-N` therefore computes the same steps N+1.. as the run that
//! wrote it.
//!
//! * [`lora`]: LoRA attach (peft's init), full-tuning params, peft adapter files.
//! * [`optim`]: AdamW with its state saved in checkpoints.
//! * [`schedule`]: warm-up then cosine / linear / constant.
//! * [`checkpoint`]: `checkpoint-N/`, atomic writes, `latest`, rotation.
//! * [`events`]: TensorBoard event files (writer and reader).
//! * [`plot`]: PNG training curves.
//! * [`sft`]: the cross-entropy objective.
//! * [`head`]: the output head fused with log-softmax and the label gather
//!   (logits a chunk of rows at a time).

pub mod checkpoint;
pub mod dpo;
pub mod events;
pub mod head;
pub mod job;
pub mod layer;
pub mod lora;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod sft;

use crate::model::Model;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use checkpoint::{DataPosition, TrainerState};
use optim::{AdamW, AdamWConfig, Param};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use schedule::Schedule;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What a micro-batch's loss returns.
pub struct LossOut {
    /// Differentiable scalar, already divided by the step's denominator.
    pub loss: Tensor,
    /// Extra metrics as (name, sum, count): the logged value is
    /// sum / count over the step (or the logging window).
    pub metrics: Vec<(String, f64, f64)>,
    /// Input tokens processed (for tokens/s).
    pub tokens: usize,
}

/// The loss of a micro-batch of `T`s. `weight` says how much a micro-batch
/// counts (labelled tokens for SFT, pairs for DPO); the trainer sums it over
/// the micro-batches of an optimizer step and passes the sum as `denom`, so
/// accumulation gives the loss of the whole batch.
///
/// The trainer runs the decoder itself, layer by layer, keeping only each
/// layer's input and recomputing one layer at a time in the backward pass
/// (activation checkpointing: memory of one layer instead of all). So an
/// objective says which token rows to run ([`Objective::inputs`]) and how to
/// turn the final hidden states into a loss ([`Objective::loss_from_hidden`]).
pub trait Objective<T>: Sync {
    fn weight(&self, items: &[&T]) -> f64;
    /// The token ids `[B, T]` (u32, right-padded) of a micro-batch.
    fn inputs(&self, items: &[&T]) -> Result<Tensor>;
    /// The real length of each row of [`Objective::inputs`] (the rest is
    /// padding, whose hidden states the loss never reads); `None`: all `T`.
    fn lengths(&self, _items: &[&T]) -> Option<Vec<usize>> {
        None
    }
    /// The loss from the final (normed) hidden states `[B, T, hidden]` of
    /// [`Objective::inputs`], divided by `denom`.
    fn loss_from_hidden(
        &self,
        model: &Model,
        items: &[&T],
        hidden: &Tensor,
        denom: f64,
        train: bool,
    ) -> Result<LossOut>;
    /// The whole forward in one graph (tests, simple callers).
    fn loss(&self, model: &Model, items: &[&T], denom: f64, train: bool) -> Result<LossOut> {
        let ids = self.inputs(items)?;
        let h = model.forward_train_hidden(&ids, None, train)?;
        self.loss_from_hidden(model, items, &h, denom, train)
    }
}

/// How many sequences go through a layer at once: the planner's number (see
/// [`crate::planner::chunks`]), which its memory model counts on.
pub use crate::planner::chunks::layer_group;

/// The rows `r0..r0 + n` of a batch's layer context.
fn ctx_rows(
    ctx: &crate::model::decoder::TrainContext,
    r0: usize,
    n: usize,
) -> Result<crate::model::decoder::TrainContext> {
    Ok(crate::model::decoder::TrainContext {
        cos: ctx.cos.narrow(0, r0, n)?,
        sin: ctx.sin.narrow(0, r0, n)?,
        mask: ctx.mask.narrow(0, r0, n)?,
    })
}

/// Forward and backward of one micro-batch: gradients of `params` are
/// added into `grads`. LoRA training runs the fused layers of [`layer`];
/// anything else (full fine-tuning) the candle graph of
/// [`forward_backward_graph`]. Both give the same loss and gradients.
pub fn forward_backward<T>(
    model: &Model,
    objective: &dyn Objective<T>,
    items: &[&T],
    denom: f64,
    params: &[Param],
    grads: &mut [Vec<f32>],
    dropout_seed: u64,
) -> Result<LossOut> {
    match layer::Plan::new(model, params) {
        Some(plan) => fused_forward_backward(
            model,
            &plan,
            objective,
            items,
            denom,
            grads,
            dropout_seed,
            None,
        ),
        None => forward_backward_graph(model, objective, items, denom, params, grads, dropout_seed),
    }
}

/// Buffers of the fused path (a device's), kept across layers and steps.
struct Workspace<B> {
    saved: Vec<layer::Saved<B>>,
    /// Inputs of the layers that are recomputed in the backward.
    inputs: Vec<B>,
    sc: layer::Scratch<B>,
    x: B,
    y: B,
    dy: B,
    dx: B,
}

impl<B: Default> Default for Workspace<B> {
    fn default() -> Self {
        Workspace {
            saved: Vec::new(),
            inputs: Vec::new(),
            sc: Default::default(),
            x: B::default(),
            y: B::default(),
            dy: B::default(),
            dx: B::default(),
        }
    }
}

thread_local! {
    static CPU_WORKSPACE: std::cell::RefCell<Workspace<Vec<f32>>> =
        std::cell::RefCell::new(Workspace::default());
}

/// The packed rows of a micro-batch and their embeddings.
fn packed_inputs<T>(
    model: &Model,
    objective: &dyn Objective<T>,
    items: &[&T],
) -> Result<(Tensor, layer::Packing, Vec<f32>)> {
    let ids = objective.inputs(items)?;
    let (pack, x) = pack_ids(model, &ids, objective.lengths(items).as_deref())?;
    Ok((ids, pack, x))
}

/// The real tokens of right-padded `ids [B, T]` (`lengths` of each row, all
/// `T` when `None`) packed end to end, and their embeddings.
fn pack_ids(
    model: &Model,
    ids: &Tensor,
    lengths: Option<&[usize]>,
) -> Result<(layer::Packing, Vec<f32>)> {
    let (b, t) = ids.dims2()?;
    let lengths = lengths.map(<[usize]>::to_vec).unwrap_or_else(|| vec![t; b]);
    if lengths.len() != b || lengths.iter().any(|&l| l > t) {
        bail!("row lengths {lengths:?} do not fit a [{b}, {t}] batch");
    }
    let flat: Vec<u32> = ids
        .to_dtype(candle_core::DType::U32)?
        .flatten_all()?
        .to_vec1()?;
    let pack = layer::Packing::new(&lengths);
    let mut rows = Vec::with_capacity(pack.rows);
    for (bi, &l) in lengths.iter().enumerate() {
        rows.extend_from_slice(&flat[bi * t..bi * t + l]);
    }
    let mut x = vec![0f32; pack.rows * model.config().hidden_size];
    model.embed_rows(&rows, &mut x)?;
    Ok((pack, x))
}

/// `[rows, h]` packed rows to a right-padded `[B, T, h]` tensor (zeros at
/// padding).
fn unpack(pack: &layer::Packing, x: &[f32], b: usize, t: usize, h: usize) -> Result<Tensor> {
    let mut out = vec![0f32; b * t * h];
    for (bi, &(r0, l)) in pack.seqs.iter().enumerate() {
        out[bi * t * h..(bi * t + l) * h].copy_from_slice(&x[r0 * h..(r0 + l) * h]);
    }
    Ok(Tensor::from_vec(out, (b, t, h), &candle_core::Device::Cpu)?)
}

/// The fused path: layers forward (keeping what their backward needs, or
/// only their inputs past the planner's budget; `keep`, the number of layers
/// that keep theirs, overrides it), the head and loss on candle's graph, then
/// the layers backward. The device's kernels are chosen here (the CPU's
/// today); [`fused_pass`] runs on any [`layer::Kernels`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn fused_forward_backward<T>(
    model: &Model,
    plan: &layer::Plan,
    objective: &dyn Objective<T>,
    items: &[&T],
    denom: f64,
    grads: &mut [Vec<f32>],
    seed: u64,
    keep: Option<usize>,
) -> Result<LossOut> {
    let (ids, pack, x0) = packed_inputs(model, objective, items)?;
    let k = layer::cpu::Cpu::new(model.inv_freq(), pack.max_len());
    let step = FusedStep {
        model,
        plan,
        ids: &ids,
        pack: &pack,
        seed,
        keep,
    };
    CPU_WORKSPACE.with(|ws| {
        step.run(&k, &mut ws.borrow_mut(), &x0, grads, |hn: &Tensor| {
            objective.loss_from_hidden(model, items, hn, denom, true)
        })
    })
}

/// One micro-batch through the fused layers.
struct FusedStep<'a> {
    model: &'a Model,
    plan: &'a layer::Plan<'a>,
    ids: &'a Tensor,
    pack: &'a layer::Packing,
    seed: u64,
    keep: Option<usize>,
}

impl FusedStep<'_> {
    /// Forward through the layers, `loss` on the final normed hidden states,
    /// backward through the layers; `x0` holds the packed embeddings.
    fn run<K: layer::Kernels>(
        &self,
        k: &K,
        ws: &mut Workspace<K::Buf>,
        x0: &[f32],
        grads: &mut [Vec<f32>],
        loss: impl FnOnce(&Tensor) -> Result<LossOut>,
    ) -> Result<LossOut> {
        let (model, plan, pack) = (self.model, self.plan, self.pack);
        let (b, t) = self.ids.dims2()?;
        let dims = plan.dims;
        let h = dims.hidden;
        let n = plan.layers.len();
        // The first `keep` layers keep their activations; the others keep
        // their input and are recomputed in the backward, in one shared slot.
        let keep = match self.keep {
            Some(k) => k.min(n),
            None => crate::planner::chunks::kept_layers(
                pack.rows,
                layer::saved_floats_per_row(model),
                n,
            ),
        };
        let slots = if keep < n { keep + 1 } else { n.max(1) };
        ws.saved.resize_with(slots, Default::default);
        ws.saved.truncate(slots);
        ws.inputs.resize_with(n - keep, Default::default);
        let slot = |l: usize| l.min(keep);
        let seed = Some(self.seed);
        let forward = |l: usize, s: &mut layer::Saved<K::Buf>, sc: &mut _, y: &mut _| {
            layer::forward(k, &dims, &plan.layers[l], pack, seed, s, sc, y)
        };
        // Forward: each output becomes the next layer's input.
        k.upload(x0, &mut ws.x);
        for l in 0..n {
            let s = &mut ws.saved[slot(l)];
            if l >= keep {
                k.copy(&ws.x, &mut ws.inputs[l - keep]);
            }
            std::mem::swap(&mut s.x, &mut ws.x);
            forward(l, s, &mut ws.sc, &mut ws.y)?;
            std::mem::swap(&mut ws.x, &mut ws.y);
        }
        // Head and loss on candle's graph.
        let mut hidden = vec![0f32; pack.rows * h];
        k.download(&ws.x, &mut hidden);
        let hv = candle_core::Var::from_tensor(&unpack(pack, &hidden, b, t, h)?)?;
        let hn = model.train_final_norm(hv.as_tensor())?;
        let out = loss(&hn)?;
        let gs = out.loss.backward()?;
        let Some(g) = gs.get(hv.as_tensor()) else {
            return Ok(out);
        };
        let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
        drop(gs);
        for (bi, &(r0, l)) in pack.seqs.iter().enumerate() {
            hidden[r0 * h..(r0 + l) * h].copy_from_slice(&g[bi * t * h..(bi * t + l) * h]);
        }
        k.upload(&hidden, &mut ws.dy);
        // Layers, last first.
        for l in (0..n).rev() {
            if l >= keep {
                let s = &mut ws.saved[slot(l)];
                k.copy(&ws.inputs[l - keep], &mut s.x);
                forward(l, s, &mut ws.sc, &mut ws.y)?;
            }
            let s = &ws.saved[slot(l)];
            let (dy, dx) = (&ws.dy, &mut ws.dx);
            layer::backward(
                k,
                &dims,
                &plan.layers[l],
                pack,
                self.seed,
                s,
                &mut ws.sc,
                dy,
                dx,
                grads,
            )?;
            std::mem::swap(&mut ws.dy, &mut ws.dx);
        }
        Ok(out)
    }
}

/// Forward and backward of one micro-batch on candle's graph, with per-layer
/// recomputation.
/// Gradients of `params` are added into `grads`; dropout masks of layer `l`,
/// sequence group `k` come from `mix(dropout_seed, l, k)` in both passes, so
/// the recomputed layer is the one the loss saw. Each layer runs a group of
/// sequences at a time ([`layer_group`]); the head runs fused with the loss
/// (see [`head`]) when the objective uses it.
pub fn forward_backward_graph<T>(
    model: &Model,
    objective: &dyn Objective<T>,
    items: &[&T],
    denom: f64,
    params: &[Param],
    grads: &mut [Vec<f32>],
    dropout_seed: u64,
) -> Result<LossOut> {
    use crate::model::linear::seed_dropout;
    let ids = objective.inputs(items)?;
    let (x0, ctx) = model.train_embed(&ids, None)?;
    let (b, t) = ids.dims2()?;
    let grp = layer_group(b, t);
    let groups: Vec<(usize, usize)> = (0..b)
        .step_by(grp)
        .map(|r0| (r0, grp.min(b - r0)))
        .collect();
    let ctxs: Vec<_> = groups
        .iter()
        .map(|&(r0, n)| ctx_rows(&ctx, r0, n))
        .collect::<Result<_>>()?;
    let n = model.layers.len();
    let mut xs: Vec<Tensor> = Vec::with_capacity(n + 1);
    xs.push(x0.detach());
    let add = |gs: &candle_core::backprop::GradStore, grads: &mut [Vec<f32>]| -> Result<()> {
        for (k, p) in params.iter().enumerate() {
            if let Some(g) = gs.get(p.var.as_tensor()) {
                let g = g.flatten_all()?;
                linear_with_f32(&g, |g| {
                    for (a, b) in grads[k].iter_mut().zip(g) {
                        *a += b;
                    }
                })?;
            }
        }
        Ok(())
    };
    let mut result = || -> Result<LossOut> {
        for i in 0..n {
            let mut ys = Vec::with_capacity(groups.len());
            for (k, &(r0, m)) in groups.iter().enumerate() {
                seed_dropout(Some(mix(&[dropout_seed, i as u64, k as u64])));
                let x = xs[i].narrow(0, r0, m)?;
                ys.push(model.train_layer(i, &x, &ctxs[k], true)?.detach());
            }
            xs.push(if ys.len() == 1 {
                ys.pop().expect("one group")
            } else {
                Tensor::cat(&ys, 0)?
            });
        }
        // Head: final norm, output head, loss.
        seed_dropout(Some(mix(&[dropout_seed, n as u64])));
        let hv = candle_core::Var::from_tensor(&xs[n])?;
        let hn = model.train_final_norm(hv.as_tensor())?;
        let out = objective.loss_from_hidden(model, items, &hn, denom, true)?;
        let gs = out.loss.backward()?;
        add(&gs, grads)?;
        let mut g = match gs.get(hv.as_tensor()) {
            Some(g) => g.clone(),
            None => return Ok(out),
        };
        drop(gs);
        drop(hn);
        // Layers, last first: recompute, then backward <layer(x), g>, a
        // group of sequences at a time.
        for i in (0..n).rev() {
            let mut parts = Vec::with_capacity(groups.len());
            for (k, &(r0, m)) in groups.iter().enumerate() {
                seed_dropout(Some(mix(&[dropout_seed, i as u64, k as u64])));
                let xv = candle_core::Var::from_tensor(&xs[i].narrow(0, r0, m)?)?;
                let y = model.train_layer(i, xv.as_tensor(), &ctxs[k], true)?;
                let gs = (y * g.narrow(0, r0, m)?)?.sum_all()?.backward()?;
                add(&gs, grads)?;
                match gs.get(xv.as_tensor()) {
                    Some(gx) => parts.push(gx.clone()),
                    None => return Ok(out),
                }
            }
            // Layer i's input (and all above it) is not needed again.
            xs.truncate(i);
            g = if parts.len() == 1 {
                parts.pop().expect("one group")
            } else {
                Tensor::cat(&parts, 0)?
            };
        }
        // A trainable embedding (full tuning).
        if let crate::model::decoder::Embedding::Dense(w) = &model.embed {
            if w.is_variable() {
                let (x0, _) = model.train_embed(&ids, None)?;
                let gs = (x0 * &g)?.sum_all()?.backward()?;
                add(&gs, grads)?;
            }
        }
        Ok(out)
    };
    let r = result();
    seed_dropout(None);
    r
}

/// Run `f` on the f32 values of a (contiguous) tensor, converting only when
/// it is not f32 already.
fn linear_with_f32(t: &Tensor, f: impl FnOnce(&[f32])) -> Result<()> {
    if t.dtype() == candle_core::DType::F32 && t.is_contiguous() {
        crate::model::linear::with_f32(t, f)
    } else {
        let v: Vec<f32> = t.to_dtype(candle_core::DType::F32)?.to_vec1()?;
        f(&v);
        Ok(())
    }
}

/// The final hidden states without keeping any graph (evaluation, DPO's
/// reference model): the fused layers' forward when they cover the model.
pub fn hidden_no_grad(model: &Model, ids: &Tensor, lengths: Option<&[usize]>) -> Result<Tensor> {
    if let Some(plan) = layer::Plan::new(model, &[]) {
        // Only the real tokens of each row run (padding stays zero).
        let (b, t) = ids.dims2()?;
        let (pack, mut x) = pack_ids(model, ids, lengths)?;
        let h = plan.dims.hidden;
        let k = layer::cpu::Cpu::new(model.inv_freq(), pack.max_len());
        let (mut s, mut sc, mut y) = (
            layer::Saved::default(),
            layer::Scratch::default(),
            Vec::new(),
        );
        for l in &plan.layers {
            s.x = x;
            layer::forward(&k, &plan.dims, l, &pack, None, &mut s, &mut sc, &mut y)?;
            x = std::mem::take(&mut y);
        }
        let x = unpack(&pack, &x, b, t, h)?;
        return Ok(model.train_final_norm(&x)?.detach());
    }
    let (mut x, ctx) = model.train_embed(ids, None)?;
    x = x.detach();
    for i in 0..model.layers.len() {
        x = model.train_layer(i, &x, &ctx, false)?.detach();
    }
    Ok(model.train_final_norm(&x)?.detach())
}

/// Everything the loop needs besides the model, the data and the loss.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    pub output_dir: PathBuf,
    pub batch_size: usize,
    pub gradient_accumulation_steps: usize,
    pub learning_rate: f64,
    pub adamw: AdamWConfig,
    pub schedule: Schedule,
    pub warmup_steps: Option<usize>,
    pub warmup_ratio: f64,
    /// 0 = no clipping.
    pub max_grad_norm: f64,
    pub num_train_epochs: f64,
    /// Overrides the epochs when set.
    pub max_steps: Option<usize>,
    pub seed: u64,
    pub logging_steps: usize,
    pub eval_steps: Option<usize>,
    pub save_steps: Option<usize>,
    pub save_total_limit: Option<usize>,
    pub resume_from: Option<PathBuf>,
    /// Shuffle the training data each epoch.
    pub shuffle: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            output_dir: PathBuf::from("output"),
            batch_size: 1,
            gradient_accumulation_steps: 1,
            learning_rate: 1e-4,
            adamw: AdamWConfig::default(),
            schedule: Schedule::Cosine,
            warmup_steps: None,
            warmup_ratio: 0.0,
            max_grad_norm: 1.0,
            num_train_epochs: 1.0,
            max_steps: None,
            seed: 42,
            logging_steps: 5,
            eval_steps: None,
            save_steps: None,
            save_total_limit: None,
            resume_from: None,
            shuffle: true,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub global_step: usize,
    pub max_steps: usize,
    pub interrupted: bool,
    pub last_checkpoint: Option<PathBuf>,
    pub resumed_from: Option<(PathBuf, usize)>,
    pub log_history: Vec<Value>,
    pub train_seconds: f64,
    pub tokens: u64,
    pub event_file: PathBuf,
}

/// The inputs of [`run`].
pub struct Trainer<'a, T> {
    pub model: &'a Model,
    pub params: Vec<Param>,
    pub objective: &'a dyn Objective<T>,
    pub train: &'a [T],
    pub val: &'a [T],
    pub cfg: TrainConfig,
    /// Writes the trainable weights (adapter or full model, and the
    /// tokenizer) into a folder: used for checkpoints and the final output.
    pub save_model: &'a dyn Fn(&Path) -> Result<()>,
    pub progress: &'a dyn Progress,
    /// Set by Ctrl-C: the loop writes a checkpoint after the current step
    /// and returns with `interrupted`.
    pub stop: &'a AtomicBool,
}

/// splitmix64 finaliser over a few words: the seeds of everything random.
pub fn mix(words: &[u64]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &w in words {
        let mut z = h ^ w.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// Which samples each micro-batch of each step takes: a pure function of
/// (seed, step).
pub struct DataOrder {
    n: usize,
    batch: usize,
    accum: usize,
    seed: u64,
    shuffle: bool,
    pub micro_per_epoch: usize,
    pub steps_per_epoch: usize,
    cache: HashMap<usize, Vec<usize>>,
}

impl DataOrder {
    pub fn new(n: usize, batch: usize, accum: usize, seed: u64, shuffle: bool) -> DataOrder {
        let micro_per_epoch = n.div_ceil(batch.max(1));
        DataOrder {
            n,
            batch: batch.max(1),
            accum: accum.max(1),
            seed,
            shuffle,
            micro_per_epoch,
            steps_per_epoch: micro_per_epoch.div_ceil(accum.max(1)).max(1),
            cache: HashMap::new(),
        }
    }

    fn perm(&mut self, epoch: usize) -> &[usize] {
        let (n, seed, shuffle) = (self.n, self.seed, self.shuffle);
        self.cache.entry(epoch).or_insert_with(|| {
            let mut v: Vec<usize> = (0..n).collect();
            if shuffle {
                let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[seed, epoch as u64, 1]));
                v.shuffle(&mut rng);
            }
            v
        })
    }

    /// The sample indices of each micro-batch of optimizer step `step`.
    pub fn step(&mut self, step: usize) -> Vec<Vec<usize>> {
        let epoch = step / self.steps_per_epoch;
        let ws = step % self.steps_per_epoch;
        let lo = ws * self.accum;
        let hi = ((ws + 1) * self.accum).min(self.micro_per_epoch);
        let (batch, n) = (self.batch, self.n);
        self.cache.retain(|&e, _| e + 1 >= epoch);
        let perm = self.perm(epoch).to_vec();
        (lo..hi)
            .map(|m| perm[m * batch..((m + 1) * batch).min(n)].to_vec())
            .collect()
    }

    /// Where the stream stands after `steps` optimizer steps.
    pub fn position(&self, steps: usize) -> DataPosition {
        let epoch = steps / self.steps_per_epoch;
        let ws = steps % self.steps_per_epoch;
        DataPosition {
            epoch,
            micro_batch: (ws * self.accum).min(self.micro_per_epoch),
            micro_batches_per_epoch: self.micro_per_epoch,
        }
    }
}

/// Sums over a logging window.
#[derive(Default)]
struct Window {
    steps: usize,
    loss: f64,
    grad_norm: f64,
    tokens: u64,
    metrics: BTreeMap<String, (f64, f64)>,
    start: Option<Instant>,
}

fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        x
    }
}

/// The line printed for step 1: every logged figure but the throughput
/// (which the first step, with its warm-up, understates).
fn first_step_line(rec: &Map<String, Value>) -> String {
    let figures: Vec<String> = rec
        .iter()
        .filter(|(k, _)| k.as_str() != "tokens_per_second")
        .map(|(k, v)| match v.as_f64() {
            Some(x) if k == "learning_rate" => format!("{k} {x:.3e}"),
            Some(x) => format!("{k} {x:.4}"),
            None => format!("{k} {v}"),
        })
        .collect();
    format!("step 1: {}", figures.join(" · "))
}

/// The total number of optimizer steps for `cfg` over `n` samples.
pub fn total_steps(cfg: &TrainConfig, n: usize) -> usize {
    let order = DataOrder::new(n, cfg.batch_size, cfg.gradient_accumulation_steps, 0, false);
    match cfg.max_steps {
        Some(s) if s > 0 => s,
        _ => ((cfg.num_train_epochs * order.steps_per_epoch as f64).ceil() as usize).max(1),
    }
}

/// Mean loss and metrics of `objective` over `data` (no gradients used).
pub fn evaluate<T>(
    model: &Model,
    objective: &dyn Objective<T>,
    data: &[T],
    batch: usize,
) -> Result<(f64, BTreeMap<String, f64>)> {
    let (mut loss, mut weight) = (0f64, 0f64);
    let mut metrics: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for chunk in data.chunks(batch.max(1)) {
        let items: Vec<&T> = chunk.iter().collect();
        let w = objective.weight(&items);
        if w == 0.0 {
            continue;
        }
        let lengths = objective.lengths(&items);
        let h = hidden_no_grad(model, &objective.inputs(&items)?, lengths.as_deref())?;
        let out = objective.loss_from_hidden(model, &items, &h, 1.0, false)?;
        loss += out
            .loss
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
        weight += w;
        for (k, s, c) in out.metrics {
            let e = metrics.entry(k).or_default();
            e.0 += s;
            e.1 += c;
        }
    }
    let m = metrics
        .into_iter()
        .filter(|(_, (_, c))| *c > 0.0)
        .map(|(k, (s, c))| (k, s / c))
        .collect();
    Ok((
        if weight > 0.0 {
            loss / weight
        } else {
            f64::NAN
        },
        m,
    ))
}

struct Sinks {
    jsonl: std::fs::File,
    jsonl_path: PathBuf,
    events: events::EventWriter,
}

impl Sinks {
    fn write(&mut self, rec: &Map<String, Value>) -> Result<()> {
        let line = serde_json::to_string(rec)?;
        writeln!(self.jsonl, "{line}")
            .and_then(|_| self.jsonl.flush())
            .with_context(|| format!("writing {}", self.jsonl_path.display()))?;
        let step = rec.get("step").and_then(Value::as_u64).unwrap_or(0);
        let mut scalars: Vec<(String, f32)> = Vec::new();
        for (k, v) in rec {
            let Some(x) = v.as_f64() else { continue };
            let tag = match k.as_str() {
                "step" | "epoch" | "elapsed_s" => continue,
                k if k.starts_with("eval_") => format!("eval/{}", &k[5..]),
                k => format!("train/{k}"),
            };
            scalars.push((tag, x as f32));
        }
        let refs: Vec<(&str, f32)> = scalars.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.events.scalars(step, &refs)?;
        self.events.flush()
    }
}

/// Draw the training curves into `images/` from the log history (see
/// [`plot`]).
pub fn write_plots(output_dir: &Path, history: &[Value]) -> Result<()> {
    plot::write_plots(output_dir, history).map(|_| ())
}

/// Run the loop. Returns when `max_steps` are done or `stop` was set (then a
/// checkpoint of the last finished step has been written).
pub fn run<T>(t: Trainer<'_, T>) -> Result<Outcome> {
    let cfg = &t.cfg;
    if t.train.is_empty() {
        bail!("no training samples");
    }
    if t.params.is_empty() {
        bail!("nothing to train: no trainable parameters");
    }
    let out = &cfg.output_dir;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut order = DataOrder::new(
        t.train.len(),
        cfg.batch_size,
        cfg.gradient_accumulation_steps,
        cfg.seed,
        cfg.shuffle,
    );
    let max_steps = total_steps(cfg, t.train.len());
    let warmup = schedule::warmup_steps(cfg.warmup_steps, cfg.warmup_ratio, max_steps);
    let mut opt = AdamW::new(cfg.adamw, &t.params);
    let mut history: Vec<Value> = Vec::new();
    let mut start = 0usize;
    let mut best_eval: Option<f64> = None;
    let mut tokens_seen = 0u64;
    let mut resumed_from = None;
    if let Some(dir) = &cfg.resume_from {
        let st = TrainerState::read(dir)?;
        lora::load_params(dir, &t.params)
            .with_context(|| format!("resuming from {}", dir.display()))?;
        opt.load(
            &t.params,
            &dir.join("optimizer.safetensors"),
            st.global_step as u64,
        )?;
        start = st.global_step;
        history = st
            .log_history
            .into_iter()
            .filter(|r| r.get("step").and_then(Value::as_u64).unwrap_or(0) as usize <= start)
            .collect();
        best_eval = st.best_eval_loss;
        tokens_seen = st.tokens_seen;
        resumed_from = Some((dir.clone(), start));
    }
    // logging.jsonl holds the history up to the start, then appends.
    let jsonl_path = out.join("logging.jsonl");
    let mut text = String::new();
    for r in &history {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    checkpoint::write_atomic(&jsonl_path, text.as_bytes())?;
    let jsonl = std::fs::OpenOptions::new()
        .append(true)
        .open(&jsonl_path)
        .with_context(|| format!("opening {}", jsonl_path.display()))?;
    let events = events::EventWriter::create(&out.join("runs"))?;
    let event_file = events.path().to_path_buf();
    let mut sinks = Sinks {
        jsonl,
        jsonl_path,
        events,
    };

    let save_checkpoint = |step: usize,
                           opt: &AdamW,
                           history: &[Value],
                           best_eval: Option<f64>,
                           tokens_seen: u64,
                           order: &DataOrder|
     -> Result<PathBuf> {
        let dest = out.join(format!("checkpoint-{step}"));
        let tmp = out.join(format!(".checkpoint-{step}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        (t.save_model)(&tmp)?;
        opt.save(&t.params, &tmp.join("optimizer.safetensors"))?;
        let st = TrainerState {
            global_step: step,
            max_steps,
            epoch: step as f64 / order.steps_per_epoch as f64,
            seed: cfg.seed,
            data_position: order.position(step),
            rng: "data order of epoch e: StdRng(mix(seed, e, 1)); dropout of micro-batch j of \
                  step s, layer l, sequence group k: StdRng(mix(mix(seed, s, j, 2), l, k))"
                .into(),
            log_history: history.to_vec(),
            best_eval_loss: best_eval,
            tokens_seen,
        };
        std::fs::write(
            tmp.join("trainer_state.json"),
            serde_json::to_string_pretty(&st)?,
        )
        .with_context(|| format!("writing {}", tmp.join("trainer_state.json").display()))?;
        checkpoint::commit_dir(&tmp, &dest)?;
        if let Some(limit) = cfg.save_total_limit {
            checkpoint::rotate(out, limit.max(1), Some(&dest))?;
        }
        Ok(dest)
    };

    let p = t.progress;
    p.start("train", Some(max_steps as u64));
    p.set_position(start as u64);
    let t_run = Instant::now();
    let mut win = Window::default();
    let mut last_checkpoint = None;
    let mut interrupted = false;
    let mut step = start;
    while step < max_steps {
        let lr = schedule::lr_at(cfg.learning_rate, cfg.schedule, step, warmup, max_steps);
        let micro = order.step(step);
        let batches: Vec<Vec<&T>> = micro
            .iter()
            .map(|idx| idx.iter().map(|&i| &t.train[i]).collect())
            .collect();
        let denom: f64 = batches.iter().map(|b| t.objective.weight(b)).sum();
        let mut grads: Vec<Vec<f32>> = t.params.iter().map(|p| vec![0f32; p.numel()]).collect();
        let mut step_loss = 0f64;
        if win.start.is_none() {
            win.start = Some(Instant::now());
        }
        for (j, items) in batches.iter().enumerate() {
            let o = forward_backward(
                t.model,
                t.objective,
                items,
                denom.max(1e-12),
                &t.params,
                &mut grads,
                mix(&[cfg.seed, step as u64, j as u64, 2]),
            )?;
            step_loss += o
                .loss
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
            win.tokens += o.tokens as u64;
            tokens_seen += o.tokens as u64;
            for (k, s, c) in o.metrics {
                let e = win.metrics.entry(k).or_default();
                e.0 += s;
                e.1 += c;
            }
        }
        let norm = grads
            .iter()
            .flat_map(|g| g.iter())
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        if cfg.max_grad_norm > 0.0 && norm > cfg.max_grad_norm {
            let s = (cfg.max_grad_norm / (norm + 1e-6)) as f32;
            for g in grads.iter_mut() {
                for x in g.iter_mut() {
                    *x *= s;
                }
            }
        }
        opt.step(&t.params, &grads, lr)?;
        step += 1;
        win.steps += 1;
        win.loss += step_loss;
        win.grad_norm += norm;

        let mut rec = Map::new();
        // Step 1 is always logged (as ms-swift and `logging_first_step` do):
        // the starting loss, and DPO's ln 2, are what a user checks first.
        let log_now = step == 1 || step % cfg.logging_steps.max(1) == 0 || step == max_steps;
        if log_now {
            let secs = win.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
            let n = win.steps.max(1) as f64;
            rec.insert("loss".into(), json!(round6(win.loss / n)));
            rec.insert("grad_norm".into(), json!(round6(win.grad_norm / n)));
            rec.insert("learning_rate".into(), json!(lr));
            for (k, (s, c)) in &win.metrics {
                if *c > 0.0 {
                    rec.insert(k.clone(), json!(round6(s / c)));
                }
            }
            rec.insert(
                "tokens_per_second".into(),
                json!(round6(win.tokens as f64 / secs.max(1e-9))),
            );
            p.message(&format!(
                "loss {:.4} · {:.0} tok/s",
                win.loss / n,
                win.tokens as f64 / secs.max(1e-9)
            ));
            if step == 1 {
                // The bar's message is overwritten at the next log; the
                // first step's figures stay on screen as a line.
                p.println(&first_step_line(&rec));
            }
            win = Window::default();
        }
        let eval_now = !t.val.is_empty()
            && (cfg.eval_steps.is_some_and(|e| e > 0 && step % e == 0) || step == max_steps);
        if eval_now {
            let (l, m) = evaluate(t.model, t.objective, t.val, cfg.batch_size)?;
            rec.insert("eval_loss".into(), json!(round6(l)));
            for (k, v) in m {
                rec.insert(format!("eval_{k}"), json!(round6(v)));
            }
            if l.is_finite() && best_eval.is_none_or(|b| l < b) {
                best_eval = Some(l);
            }
            p.println(&format!("step {step}: eval loss {l:.4}"));
        }
        if !rec.is_empty() {
            let mut full = Map::new();
            full.insert("step".into(), json!(step));
            full.insert(
                "epoch".into(),
                json!(round6(step as f64 / order.steps_per_epoch as f64)),
            );
            full.extend(rec);
            full.insert(
                "elapsed_s".into(),
                json!(round6(t_run.elapsed().as_secs_f64())),
            );
            sinks.write(&full)?;
            history.push(Value::Object(full));
        }
        p.set_position(step as u64);
        let stop = t.stop.load(Ordering::SeqCst);
        let save_now =
            cfg.save_steps.is_some_and(|s| s > 0 && step % s == 0) || step == max_steps || stop;
        if save_now {
            let dir = save_checkpoint(step, &opt, &history, best_eval, tokens_seen, &order)?;
            p.println(&format!("step {step}: saved {}", dir.display()));
            last_checkpoint = Some(dir);
        }
        if stop && step < max_steps {
            interrupted = true;
            break;
        }
    }
    p.finish();
    if !interrupted {
        (t.save_model)(out)?;
    }
    write_plots(out, &history)?;
    Ok(Outcome {
        global_step: step,
        max_steps,
        interrupted,
        last_checkpoint,
        resumed_from,
        log_history: history,
        train_seconds: t_run.elapsed().as_secs_f64(),
        tokens: tokens_seen,
        event_file,
    })
}

#[cfg(test)]
mod tests;
