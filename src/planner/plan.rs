//! Decisions: given a model, a device and a budget, choose the method (full /
//! LoRA / QLoRA), the dtype, and batch size / gradient accumulation /
//! checkpointing so that the run fits; and when a job does not fit, find the
//! cheapest change that makes it fit.

use serde::Serialize;

use super::device::{Device, DeviceKind, Inventory};
use super::memory::{estimate, Backend, Dtype, Estimate, Job, Method, Optimizer, Quant, GIB};
use crate::model::config::ModelConfig;

/// The share of the budget a plan leaves free when it chooses the method and
/// the batch: the estimate is a model, and other work shares the device (on
/// the CPU, available RAM moves while the job runs).
pub const HEADROOM: f64 = 0.10;

/// What the user left for the planner to decide.
#[derive(Debug, Clone)]
pub struct Request {
    /// `None` = `--method auto`: LoRA when it fits with headroom, else
    /// QLoRA.
    pub method: Option<Method>,
    /// `None` = decide from the device.
    pub dtype: Option<Dtype>,
    /// `None` = largest that fits, up to `effective_batch`.
    pub batch_size: Option<usize>,
    /// `None` = on only when needed.
    pub gradient_checkpointing: Option<bool>,
    /// Sequences per optimizer step the run aims for.
    pub effective_batch: usize,
    /// The trainer whose memory is modelled; `None` = [`backend_for`] the
    /// device.
    pub engine: Option<Backend>,
    /// Everything else (seq len, rank, targets, optimizer, gpus, zero).
    pub base: Job,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub job: Job,
    pub gradient_accumulation_steps: usize,
    pub estimate: Estimate,
    pub budget_bytes: u64,
    pub fits: bool,
    /// One line saying what was chosen and why.
    pub reason: String,
}

/// The device a training job of this crate runs on: the CPU. swift trains on
/// the CPU only today, whatever GPUs the machine has, so its plans budget
/// against available RAM and model its own trainer (`finetune`, `dpo`).
pub fn training_device(inv: &Inventory) -> &Device {
    &inv.cpu
}

/// The trainer whose memory is modelled by default on `device`: this crate's
/// own (candle) on the CPU; on a GPU, a PyTorch run (transformers + peft, as
/// ms-swift or TRL run it), until swift trains on GPUs itself.
pub fn backend_for(device: &Device) -> Backend {
    match device.kind {
        DeviceKind::Cpu => Backend::Candle,
        _ => Backend::Torch,
    }
}

/// The dtype a device trains and runs in.
pub fn default_dtype(device: &Device) -> Dtype {
    match device.kind {
        DeviceKind::Cpu => Dtype::F32,
        _ if device.supports_bf16() => Dtype::Bf16,
        _ => Dtype::F16,
    }
}

fn with_method(mut job: Job, method: Method) -> Job {
    job.method = method;
    job.quant = match method {
        Method::Qlora => match job.quant {
            Quant::None => Quant::Nf4 {
                double_quant: job.backend != Backend::Candle,
            },
            q => q,
        },
        _ => match job.quant {
            Quant::Gguf { .. } => job.quant,
            _ => Quant::None,
        },
    };
    // Our own trainer's NF4 keeps an f32 scale per block (no double
    // quantization).
    if job.backend == Backend::Candle {
        if let Quant::Nf4 { .. } = job.quant {
            job.quant = Quant::Nf4 {
                double_quant: false,
            };
        }
    }
    job
}

fn fits(cfg: &ModelConfig, job: &Job, budget: u64) -> (bool, Estimate) {
    let e = estimate(cfg, job);
    (e.total_bytes <= budget, e)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB
}

/// The batch sizes and checkpointing settings a search tries, best first.
struct Shapes {
    batches: Vec<usize>,
    ckpt: Vec<bool>,
}

impl Shapes {
    fn new(req: &Request, device: &Device, method: Method) -> Shapes {
        let cap = match device.kind {
            // Unified memory is shared with the system: keep batches modest.
            DeviceKind::Metal => 4,
            _ => usize::MAX,
        };
        let max_batch = req
            .batch_size
            .unwrap_or(req.effective_batch.max(1).min(cap));
        let ckpt = match req.gradient_checkpointing {
            Some(c) => vec![c],
            None if method.is_training() => vec![false, true],
            None => vec![false],
        };
        let batches = if req.batch_size.is_some() {
            vec![max_batch.max(1)]
        } else {
            let mut b = max_batch.max(1);
            let mut v = Vec::new();
            loop {
                v.push(b);
                if b == 1 {
                    break;
                }
                b /= 2;
            }
            v
        };
        Shapes { batches, ckpt }
    }

    /// The largest batch (trying without checkpointing first) whose estimate
    /// is at most `limit`.
    fn search(&self, cfg: &ModelConfig, job: &Job, limit: u64) -> Option<(Job, Estimate)> {
        for &b in &self.batches {
            for &ckpt in &self.ckpt {
                let mut j = job.clone();
                j.batch_size = b;
                j.gradient_checkpointing = ckpt;
                let (ok, e) = fits(cfg, &j, limit);
                if ok {
                    return Some((j, e));
                }
            }
        }
        None
    }

    /// The smallest shape: what the job needs at the least.
    fn smallest(&self, cfg: &ModelConfig, job: &Job) -> (Job, Estimate) {
        let mut j = job.clone();
        j.batch_size = *self.batches.last().unwrap_or(&1);
        j.gradient_checkpointing = *self.ckpt.last().unwrap_or(&true);
        let e = estimate(cfg, &j);
        (j, e)
    }
}

/// Decide everything `req` leaves open for `device` under `budget` bytes.
///
/// Under `--method auto` the choice is by fit: LoRA when LoRA, at the
/// largest batch that fits, stays within the budget less [`HEADROOM`];
/// QLoRA when only QLoRA does (a GGUF trains on its own quantized blocks).
/// The old rule of thumb (24 GiB or more: LoRA; less: QLoRA) is what this
/// gives for 7B models on GPUs, not a rule of its own.
pub fn plan(cfg: &ModelConfig, device: &Device, budget: u64, req: &Request) -> Plan {
    let mut reasons: Vec<String> = Vec::new();
    let mut job = req.base.clone();
    job.backend = req.engine.unwrap_or_else(|| backend_for(device));
    job.cuda_context = device.kind == DeviceKind::Cuda && job.backend == Backend::Torch;
    job.dtype = req.dtype.unwrap_or_else(|| default_dtype(device));
    reasons.push(format!(
        "{} on {}{}",
        job.dtype.name(),
        device.id,
        match job.backend {
            Backend::Candle => " (swift's trainer)",
            Backend::Torch => " (a PyTorch run)",
        }
    ));
    let usable = ((budget as f64) * (1.0 - HEADROOM)) as u64;
    let headroom_note = format!(
        "{:.1} GiB less {:.0}% headroom",
        gib(budget),
        HEADROOM * 100.0
    );

    // Method.
    let mut stated_total = false;
    let method = match req.method {
        Some(m) => m,
        None if matches!(job.quant, Quant::Gguf { .. }) => {
            reasons.insert(0, "QLoRA on the GGUF's own quantized weights".into());
            Method::Qlora
        }
        None => {
            let lora = with_method(job.clone(), Method::Lora);
            let shapes = Shapes::new(req, device, Method::Lora);
            if let Some((_, e)) = shapes.search(cfg, &lora, usable) {
                stated_total = true;
                reasons.insert(
                    0,
                    format!(
                        "LoRA {} needs {:.1} GiB of {:.1} GiB (fits with headroom)",
                        job.dtype.name(),
                        e.total_gib(),
                        gib(budget)
                    ),
                );
                Method::Lora
            } else {
                let (_, least) = shapes.smallest(cfg, &lora);
                let q = with_method(job.clone(), Method::Qlora);
                let (_, q_least) = shapes.smallest(cfg, &q);
                reasons.insert(
                    0,
                    format!(
                        "LoRA needs {:.1} GiB at least > {headroom_note}, QLoRA 4-bit {:.1} GiB{}",
                        least.total_gib(),
                        q_least.total_gib(),
                        if q_least.total_bytes <= budget {
                            " fits"
                        } else {
                            " (the smallest)"
                        }
                    ),
                );
                Method::Qlora
            }
        }
    };
    job = with_method(job, method);

    // Batch and checkpointing: the largest batch (up to the effective batch)
    // that fits with headroom (else without), trying without checkpointing
    // first when it is left open.
    let shapes = Shapes::new(req, device, method);
    let chosen = shapes
        .search(cfg, &job, usable)
        .or_else(|| shapes.search(cfg, &job, budget));
    let (job, est, ok) = match chosen {
        Some((j, e)) => (j, e, true),
        None => {
            let (j, e) = shapes.smallest(cfg, &job);
            (j, e, false)
        }
    };
    let accum = if method.is_training() {
        req.effective_batch.max(1).div_ceil(job.batch_size.max(1))
    } else {
        1
    };
    if method.is_training() {
        reasons.push(format!(
            "batch {} x {} accumulation{}",
            job.batch_size,
            accum,
            if job.gradient_checkpointing {
                ", gradient checkpointing"
            } else {
                ""
            }
        ));
    }
    if !stated_total {
        reasons.push(format!(
            "{:.1} GiB of {:.1} GiB{}",
            est.total_gib(),
            gib(budget),
            if ok { "" } else { ": does not fit" }
        ));
    }
    Plan {
        job,
        gradient_accumulation_steps: accum,
        estimate: est,
        budget_bytes: budget,
        fits: ok,
        reason: reasons.join("; "),
    }
}

/// A change to a job that makes it fit.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// What to change, as a flag the user can type.
    pub change: String,
    pub total_bytes: u64,
}

/// The cheapest single change that makes `job` fit in `budget`, tried in
/// order of what it costs the user: checkpointing (time), a smaller batch with
/// accumulation (time), LoRA instead of full (capacity), QLoRA (a little
/// quality), an 8-bit optimizer, a shorter sequence (data), more GPUs
/// (hardware).
pub fn suggest(cfg: &ModelConfig, job: &Job, budget: u64) -> Option<Suggestion> {
    let attempt = |j: Job, change: String| -> Option<Suggestion> {
        let e = estimate(cfg, &j);
        (e.total_bytes <= budget).then_some(Suggestion {
            change,
            total_bytes: e.total_bytes,
        })
    };
    if job.method.is_training() && !job.gradient_checkpointing {
        let mut j = job.clone();
        j.gradient_checkpointing = true;
        if let Some(s) = attempt(j, "--gradient-checkpointing true".into()) {
            return Some(s);
        }
    }
    if job.batch_size > 1 {
        let mut j = job.clone();
        j.batch_size = 1;
        j.gradient_checkpointing = job.method.is_training();
        if let Some(s) = attempt(
            j,
            format!(
                "--batch-size 1 --gradient-accumulation-steps {}",
                job.batch_size
            ),
        ) {
            return Some(s);
        }
    }
    let mut alternatives: Vec<Method> = Vec::new();
    match job.method {
        Method::Full => alternatives.extend([Method::Lora, Method::Qlora]),
        Method::Lora => alternatives.push(Method::Qlora),
        Method::DpoFull => alternatives.push(Method::DpoLora),
        _ => {}
    }
    for m in alternatives {
        let mut j = with_method(job.clone(), m);
        j.gradient_checkpointing = true;
        if let Some(s) = attempt(j, format!("--method {}", m.name())) {
            return Some(s);
        }
    }
    if job.method.is_full() && job.optimizer == Optimizer::Adamw {
        let mut j = job.clone();
        j.optimizer = Optimizer::Adamw8bit;
        j.gradient_checkpointing = true;
        if let Some(s) = attempt(j, "--optimizer adamw-8bit".into()) {
            return Some(s);
        }
    }
    let mut seq = job.seq_len / 2;
    while seq >= 128 {
        let mut j = job.clone();
        j.seq_len = seq;
        j.gradient_checkpointing = job.gradient_checkpointing || job.method.is_training();
        if let Some(s) = attempt(j, format!("--seq-len {seq}")) {
            return Some(s);
        }
        seq /= 2;
    }
    if job.method.is_training() {
        for gpus in [2usize, 4, 8, 16, 32, 64] {
            if gpus <= job.gpus {
                continue;
            }
            let mut j = job.clone();
            j.gpus = gpus;
            j.zero = 3;
            j.gradient_checkpointing = true;
            if let Some(s) = attempt(j, format!("--gpus {gpus} --zero 3")) {
                return Some(s);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> ModelConfig {
        ModelConfig::from_path(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/configs")
                .join(name),
        )
        .unwrap()
    }

    fn gpu(gib: u64) -> Device {
        Device {
            kind: DeviceKind::Cuda,
            id: "cuda:0".into(),
            name: "test".into(),
            total_bytes: gib << 30,
            free_bytes: gib << 30,
            compute_capability: Some((8, 9)),
        }
    }

    fn cpu(bytes: u64) -> Device {
        Device {
            kind: DeviceKind::Cpu,
            id: "cpu".into(),
            name: "test CPU".into(),
            total_bytes: bytes,
            free_bytes: bytes,
            compute_capability: None,
        }
    }

    fn request() -> Request {
        Request {
            method: None,
            dtype: None,
            batch_size: None,
            gradient_checkpointing: None,
            effective_batch: 16,
            engine: None,
            base: Job::new(Method::Lora),
        }
    }

    /// The rule of thumb's 7B rows come out of the fit: a 24 GiB GPU trains
    /// LoRA on Llama-2-7B (bf16, a PyTorch run), a 16 GiB one QLoRA.
    #[test]
    fn twenty_four_gib_trains_lora_sixteen_trains_qlora() {
        let cfg = fixture("llama-2-7b");
        let p = plan(&cfg, &gpu(24), 24 << 30, &request());
        assert_eq!(p.job.method, Method::Lora, "{}", p.reason);
        assert!(p.fits, "{}", p.reason);
        assert_eq!(p.job.dtype, Dtype::Bf16);
        assert_eq!(p.job.backend, Backend::Torch);
        assert!(p.reason.contains("fits with headroom"), "{}", p.reason);
        let q = plan(&cfg, &gpu(16), 16 << 30, &request());
        assert_eq!(q.job.method, Method::Qlora, "{}", q.reason);
        assert!(q.fits, "{}", q.reason);
        assert!(
            q.reason.contains("LoRA needs") && q.reason.contains("QLoRA 4-bit"),
            "{}",
            q.reason
        );
    }

    /// Issue 17: SmolLM2-135M on a 23 GiB CPU was quantized because 23 < 24.
    /// LoRA in f32 needs well under a GiB there: LoRA it is, and the reason
    /// says it fits.
    #[test]
    fn small_model_on_a_23_gib_cpu_trains_lora() {
        let cfg = fixture("smollm2-135m");
        let mut req = request();
        req.dtype = Some(Dtype::F32);
        req.gradient_checkpointing = Some(false);
        req.base.seq_len = 512;
        let budget = 23 << 30;
        let p = plan(&cfg, &cpu(budget), budget, &req);
        assert_eq!(p.job.method, Method::Lora, "{}", p.reason);
        assert_eq!(p.job.backend, Backend::Candle);
        assert!(p.fits);
        assert!(p.estimate.total_bytes < budget / 4, "{}", p.reason);
        assert!(
            p.reason.starts_with("LoRA f32 needs") && p.reason.contains("fits with headroom"),
            "{}",
            p.reason
        );
        // On a machine too small for LoRA at any batch size, the same
        // request is QLoRA, and the reason names both numbers.
        let lora = (1..=8)
            .map(|b| {
                plan(
                    &cfg,
                    &cpu(budget),
                    budget,
                    &Request {
                        method: Some(Method::Lora),
                        batch_size: Some(b),
                        ..req.clone()
                    },
                )
                .estimate
                .total_bytes
            })
            .min()
            .unwrap();
        let small = lora * 9 / 10;
        let q = plan(&cfg, &cpu(small), small, &req);
        assert_eq!(q.job.method, Method::Qlora, "{}", q.reason);
        assert!(q.reason.starts_with("LoRA needs"), "{}", q.reason);
    }

    /// A GPU in the inventory does not move a training plan off the CPU it
    /// runs on.
    #[test]
    fn training_plans_for_the_cpu_whatever_gpus_are_listed() {
        let inv = Inventory {
            cpu: cpu(20 << 30),
            gpus: vec![gpu(80)],
        };
        assert_eq!(inv.primary().kind, DeviceKind::Cuda);
        let dev = training_device(&inv);
        assert_eq!(dev.kind, DeviceKind::Cpu);
        let p = plan(&fixture("smollm2-135m"), dev, dev.free_bytes, &request());
        assert_eq!(p.job.backend, Backend::Candle);
        assert_eq!(p.job.dtype, Dtype::F32);
        assert!(!p.job.cuda_context);
        assert_eq!(p.budget_bytes, 20 << 30);
    }

    #[test]
    fn accumulation_keeps_the_effective_batch() {
        let cfg = fixture("llama-2-7b");
        let p = plan(&cfg, &gpu(24), 24 << 30, &request());
        assert_eq!(p.job.batch_size * p.gradient_accumulation_steps, 16);
        assert!(p.job.batch_size < 16);
    }

    #[test]
    fn full_7b_does_not_fit_24gib_and_a_change_is_found() {
        let cfg = fixture("llama-2-7b");
        let mut job = Job::new(Method::Full);
        job.batch_size = 2;
        job.seq_len = 512;
        let e = estimate(&cfg, &job);
        assert!(e.total_bytes > 24 << 30);
        let s = suggest(&cfg, &job, 24 << 30).expect("a change that fits");
        assert_eq!(s.change, "--method lora");
        assert!(s.total_bytes <= 24 << 30);
    }
}
