//! Decisions: given a model, a device and a budget, choose the method (full /
//! LoRA / QLoRA), the dtype, and batch size / gradient accumulation /
//! checkpointing so that the run fits; and when a job does not fit, find the
//! cheapest change that makes it fit.

use serde::Serialize;

use super::device::{Device, DeviceKind};
use super::memory::{estimate, Backend, Dtype, Estimate, Job, Method, Optimizer, Quant, GIB};
use crate::model::config::ModelConfig;

/// The rule users know: 24 GiB or more trains LoRA, less trains QLoRA.
pub const LORA_THRESHOLD_BYTES: u64 = 24 * 1024 * 1024 * 1024;

/// What the user left for the planner to decide.
#[derive(Debug, Clone)]
pub struct Request {
    /// `None` = `--method auto`.
    pub method: Option<Method>,
    /// `None` = decide from the device.
    pub dtype: Option<Dtype>,
    /// `None` = largest that fits, up to `effective_batch`.
    pub batch_size: Option<usize>,
    /// `None` = on only when needed.
    pub gradient_checkpointing: Option<bool>,
    /// Sequences per optimizer step the run aims for.
    pub effective_batch: usize,
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

/// The trainer that runs on `device`: this crate's own (candle) on the CPU,
/// PyTorch's memory model on GPUs.
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
            Quant::None => Quant::Nf4 { double_quant: true },
            q => q,
        },
        _ => match job.quant {
            Quant::Gguf { .. } => job.quant,
            _ => Quant::None,
        },
    };
    job
}

fn fits(cfg: &ModelConfig, job: &Job, budget: u64) -> (bool, Estimate) {
    let e = estimate(cfg, job);
    (e.total_bytes <= budget, e)
}

/// Decide everything `req` leaves open for `device` under `budget` bytes.
pub fn plan(cfg: &ModelConfig, device: &Device, budget: u64, req: &Request) -> Plan {
    let mut reasons: Vec<String> = Vec::new();
    let mut job = req.base.clone();
    job.cuda_context = device.kind == DeviceKind::Cuda;
    job.backend = backend_for(device);
    job.dtype = match req.dtype {
        Some(d) => d,
        None => {
            let d = default_dtype(device);
            reasons.push(format!("{} on {}", d.name(), device.id));
            d
        }
    };

    // Method.
    let method = match req.method {
        Some(m) => m,
        None if matches!(job.quant, Quant::Gguf { .. }) => {
            reasons.push("QLoRA on the GGUF's own quantized weights".into());
            Method::Qlora
        }
        None if budget >= LORA_THRESHOLD_BYTES => {
            let mut probe = with_method(job.clone(), Method::Lora);
            probe.batch_size = 1;
            probe.gradient_checkpointing = true;
            if fits(cfg, &probe, budget).0 {
                reasons.push(format!("LoRA: {:.0} GiB >= 24 GiB", budget as f64 / GIB));
                Method::Lora
            } else {
                reasons.push("QLoRA 4-bit: LoRA does not fit even at batch 1".into());
                Method::Qlora
            }
        }
        None => {
            reasons.push(format!(
                "QLoRA 4-bit: {:.1} GiB < 24 GiB",
                budget as f64 / GIB
            ));
            Method::Qlora
        }
    };
    job = with_method(job, method);
    // Our own trainer's NF4 keeps an f32 scale per block (no double
    // quantization).
    if job.backend == Backend::Candle {
        if let Quant::Nf4 { .. } = job.quant {
            job.quant = Quant::Nf4 {
                double_quant: false,
            };
        }
    }

    // Batch and checkpointing: the largest batch (up to the effective batch)
    // that fits, trying without checkpointing first when it is left open.
    let cap = match device.kind {
        // Unified memory is shared with the system: keep batches modest.
        DeviceKind::Metal => 4,
        _ => usize::MAX,
    };
    let max_batch = req
        .batch_size
        .unwrap_or(req.effective_batch.max(1).min(cap));
    let ckpt_options: Vec<bool> = match req.gradient_checkpointing {
        Some(c) => vec![c],
        None if method.is_training() => vec![false, true],
        None => vec![false],
    };
    let batches: Vec<usize> = if req.batch_size.is_some() {
        vec![max_batch]
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
    let mut chosen: Option<(Job, Estimate)> = None;
    'outer: for &b in &batches {
        for &ckpt in &ckpt_options {
            let mut j = job.clone();
            j.batch_size = b;
            j.gradient_checkpointing = ckpt;
            let (ok, e) = fits(cfg, &j, budget);
            if ok {
                chosen = Some((j, e));
                break 'outer;
            }
        }
    }
    let (job, est, ok) = match chosen {
        Some((j, e)) => (j, e, true),
        None => {
            let mut j = job.clone();
            j.batch_size = *batches.last().unwrap_or(&1);
            j.gradient_checkpointing = *ckpt_options.last().unwrap_or(&true);
            let e = estimate(cfg, &j);
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
    reasons.push(format!(
        "{:.1} GiB of {:.1} GiB{}",
        est.total_gib(),
        budget as f64 / GIB,
        if ok { "" } else { ": does not fit" }
    ));
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
    use serde_json::json;

    fn llama2_7b() -> ModelConfig {
        ModelConfig::from_json(&json!({
            "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
            "vocab_size": 32000, "max_position_embeddings": 4096
        }))
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

    fn request() -> Request {
        Request {
            method: None,
            dtype: None,
            batch_size: None,
            gradient_checkpointing: None,
            effective_batch: 16,
            base: Job::new(Method::Lora),
        }
    }

    #[test]
    fn twenty_four_gib_trains_lora_sixteen_trains_qlora() {
        let cfg = llama2_7b();
        let p = plan(&cfg, &gpu(24), 24 << 30, &request());
        assert_eq!(p.job.method, Method::Lora);
        assert!(p.fits, "{}", p.reason);
        assert_eq!(p.job.dtype, Dtype::Bf16);
        let q = plan(&cfg, &gpu(16), 16 << 30, &request());
        assert_eq!(q.job.method, Method::Qlora);
        assert!(q.fits, "{}", q.reason);
        assert!(q.reason.contains("QLoRA"), "{}", q.reason);
    }

    #[test]
    fn accumulation_keeps_the_effective_batch() {
        let cfg = llama2_7b();
        let p = plan(&cfg, &gpu(24), 24 << 30, &request());
        assert_eq!(p.job.batch_size * p.gradient_accumulation_steps, 16);
        assert!(p.job.batch_size < 16);
    }

    #[test]
    fn full_7b_does_not_fit_24gib_and_a_change_is_found() {
        let cfg = llama2_7b();
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
