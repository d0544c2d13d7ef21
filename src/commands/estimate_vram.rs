//! `swift estimate-vram`: predict the peak memory of a job from the model's
//! config alone, say whether it fits, and what to change when it does not.
//! Exit code 3 when it does not fit.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::builder::TypedValueParser;
use clap::{Args, ValueEnum};
use serde::Serialize;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Modify, Style};
use tabled::{Table, Tabled};

use crate::error::Exit;
use crate::model::config::ModelConfig;
use crate::planner::device::{self, Device, DeviceKind, Inventory};
use crate::planner::memory::{
    estimate, Attention, Backend, Dtype, Job, Kind, LossImpl, Method, Optimizer, Quant, GIB,
};
use crate::planner::plan::{self, Plan, Request, Suggestion};
use crate::printer::Printer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Auto,
    Infer,
    Lora,
    Qlora,
    Full,
    DpoLora,
    DpoFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    Auto,
    Bf16,
    F16,
    F32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    #[value(alias = "adamw_torch")]
    Adamw,
    #[value(name = "adamw-8bit", alias = "adamw_8bit", alias = "adamw_bnb_8bit")]
    Adamw8bit,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttentionArg {
    Fused,
    #[value(alias = "sdpa", alias = "flash_attn")]
    Flash,
    Eager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    Chunked,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    // This machine's best: a CUDA GPU if one is found, Apple Metal, else the
    // CPU.
    Auto,
    Cpu,
    Cuda,
    Metal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    // swift's own trainer (CPU only today).
    Swift,
    // A PyTorch run: transformers + peft (as ms-swift, TRL, LLaMA-Factory
    // run it).
    Torch,
}

#[derive(Debug, Args)]
pub struct EstimateVramArgs {
    /// A model folder, a config.json, a .gguf file (only its header is read),
    /// or a hub id (`org/name`: only config.json is fetched). Without it,
    /// print the devices found.
    #[arg(
        long,
        alias = "model_id",
        alias = "model_name_or_path",
        value_name = "PATH"
    )]
    pub model: Option<PathBuf>,

    /// What the job is; `auto` lets the planner choose LoRA or QLoRA
    #[arg(long, value_enum, default_value_t = MethodArg::Auto, alias = "train_type", alias = "tuner_type", alias = "peft_type")]
    pub method: MethodArg,

    /// Weight and activation dtype; `auto` picks bf16 where the device has it
    #[arg(long, value_enum, default_value_t = DtypeArg::Auto, alias = "torch_dtype")]
    pub dtype: DtypeArg,

    /// Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8
    #[arg(long, alias = "quant_bits", value_parser = clap::builder::PossibleValuesParser::new(["4", "8"]).map(|s| s.parse::<u8>().unwrap()))]
    pub quant_bits: Option<u8>,

    /// Sequences per device per step (default: the planner's choice under
    /// `--method auto`, else 1)
    #[arg(long, alias = "batch_size", alias = "per_device_train_batch_size")]
    pub batch_size: Option<usize>,

    /// Tokens per sequence (training) or prompt tokens (inference)
    #[arg(
        long,
        default_value_t = 2048,
        visible_alias = "max-length",
        alias = "max_length",
        alias = "seq_len"
    )]
    pub seq_len: usize,

    /// Inference: tokens generated after the prompt
    #[arg(long, default_value_t = 512, alias = "max_new_tokens")]
    pub max_new_tokens: usize,

    /// LoRA rank
    #[arg(long, default_value_t = 8, alias = "lora_rank")]
    pub lora_rank: usize,

    /// LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear
    #[arg(
        long,
        default_value = "all-linear",
        alias = "target_modules",
        value_delimiter = ','
    )]
    pub target_modules: Vec<String>,

    /// Recompute activations in backward (default: on; under `--method auto`
    /// only when needed)
    #[arg(long, alias = "gradient_checkpointing", action = clap::ArgAction::Set)]
    pub gradient_checkpointing: Option<bool>,

    /// Optimizer
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adamw, alias = "optim")]
    pub optimizer: OptimizerArg,

    /// Attention implementation (eager materialises the score matrix)
    #[arg(long, value_enum, default_value_t = AttentionArg::Fused, alias = "attn_impl")]
    pub attention: AttentionArg,

    /// LoRA dropout probability (above 0, peft keeps a dropped copy of each
    /// wrapped layer's input)
    #[arg(long, default_value_t = 0.0, alias = "lora_dropout")]
    pub lora_dropout: f64,

    /// Cross-entropy over the vocabulary in a PyTorch run: full
    /// (transformers' default: the whole fp32 upcast, log-softmax and
    /// gradient; the default) or chunked (logits kept 16-bit, fp32 a chunk at
    /// a time, as torchtune / Liger / Unsloth do). swift's trainer fuses the
    /// head with the loss either way.
    #[arg(long, value_enum)]
    pub loss_impl: Option<LossArg>,

    /// The device to plan for: auto (this machine's best: a CUDA GPU if one
    /// is found, Apple Metal, else the CPU), cpu, cuda or metal. A GPU that
    /// is not in this machine needs --budget
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,

    /// Whose memory to model: swift (its own trainer, the default on the CPU)
    /// or torch (a PyTorch run: transformers + peft, as ms-swift or TRL run
    /// it; the default on a GPU, since swift trains on the CPU only today)
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,

    /// Number of GPUs the job is spread over
    #[arg(long, default_value_t = 1)]
    pub gpus: usize,

    /// DeepSpeed ZeRO stage for multi-GPU runs
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub zero: u8,

    /// Sequences per optimizer step the planner aims for under `--method auto`
    #[arg(long, default_value_t = 16)]
    pub effective_batch: usize,

    /// Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the
    /// free memory of the --device: a GPU's free memory, the CPU's available
    /// RAM). A size never changes the device
    #[arg(long, default_value = "auto")]
    pub budget: String,

    /// Print a JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// The `--json` object. Stable: fields are only ever added.
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub model: ModelInfo,
    /// The device planned for: `cpu`, `cuda` or `metal`.
    pub device: DeviceKind,
    /// Which one: `cpu`, `cuda:0`, or `cuda` for a GPU that is not in this
    /// machine (sized by --budget).
    pub device_id: String,
    pub device_name: String,
    /// Whose memory is modelled: `swift` (this crate's trainer) or `torch`.
    pub engine: &'static str,
    pub method: &'static str,
    pub dtype: &'static str,
    pub quantization: Quant,
    pub batch_size: usize,
    pub gradient_accumulation_steps: usize,
    pub seq_len: usize,
    pub max_new_tokens: Option<usize>,
    pub gradient_checkpointing: bool,
    pub optimizer: &'static str,
    pub lora_rank: Option<usize>,
    pub gpus: usize,
    pub zero: u8,
    pub components: Vec<ComponentOut>,
    pub trainable_params: u64,
    pub total_bytes: u64,
    pub total_gib: f64,
    pub budget_bytes: u64,
    pub budget_source: String,
    pub fits: bool,
    pub reason: Option<String>,
    pub suggestion: Option<Suggestion>,
}

#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub family: &'static str,
    pub params: u64,
    pub layers: usize,
    pub hidden_size: usize,
    pub vocab_size: usize,
}

#[derive(Debug, Serialize)]
pub struct ComponentOut {
    pub name: &'static str,
    pub bytes: u64,
    pub gib: f64,
    pub kind: Kind,
    pub detail: String,
}

/// The device to plan for and the budget, as `--device` and `--budget` say:
/// an explicit budget sizes the chosen device and never changes it; a GPU
/// this machine does not have can only be planned for with an explicit
/// budget.
fn resolve_device(which: DeviceArg, spec: &str, inv: &Inventory) -> Result<(Device, u64, String)> {
    let explicit = if spec.eq_ignore_ascii_case("auto") {
        None
    } else {
        Some(device::parse_size(spec).ok_or_else(|| {
            Exit::Usage(format!(
                "invalid value '{spec}' for '--budget <BUDGET>': expected a size such as 24GiB, 16GB, 80G, or `auto`"
            ))
        })?)
    };
    let kind = match which {
        DeviceArg::Auto => inv.primary().kind,
        DeviceArg::Cpu => DeviceKind::Cpu,
        DeviceArg::Cuda => DeviceKind::Cuda,
        DeviceArg::Metal => DeviceKind::Metal,
    };
    let found = inv.best_of(kind).cloned();
    let dev = match (found, explicit) {
        (Some(d), _) => d,
        (None, Some(bytes)) => {
            let (name, id) = match kind {
                DeviceKind::Cuda => (
                    "a CUDA GPU sized by --budget, none in this machine; bf16 assumed",
                    "cuda",
                ),
                _ => (
                    "Apple Metal sized by --budget, none in this machine",
                    "metal",
                ),
            };
            Device {
                kind,
                id: id.into(),
                name: name.into(),
                total_bytes: bytes,
                free_bytes: bytes,
                compute_capability: (kind == DeviceKind::Cuda).then_some((8, 0)),
            }
        }
        (None, None) => {
            let what = if kind == DeviceKind::Cuda {
                "CUDA GPU (through nvidia-smi)"
            } else {
                "Apple Metal device"
            };
            return Err(Exit::Usage(format!(
                "--device {}: this machine has no {what}, so its free memory is unknown: give the GPU's memory with --budget (e.g. --budget 24GiB)",
                id_of(kind)
            ))
            .into());
        }
    };
    let (bytes, src) = match explicit {
        Some(b) => (b, "--budget".to_string()),
        None => (
            dev.free_bytes,
            match dev.kind {
                DeviceKind::Cpu => "available RAM".to_string(),
                DeviceKind::Cuda => format!("free memory of {} ({})", dev.id, dev.name),
                DeviceKind::Metal => "Metal recommended working set".to_string(),
            },
        ),
    };
    Ok((dev, bytes, src))
}

fn id_of(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Cpu => "cpu",
        DeviceKind::Cuda => "cuda",
        DeviceKind::Metal => "metal",
    }
}

/// The engine whose memory is modelled: `--engine`, else swift's trainer on
/// the CPU and a PyTorch run on a GPU. swift does not train on GPUs yet, so
/// `--engine swift` on a GPU is refused rather than guessed.
fn resolve_engine(arg: Option<EngineArg>, dev: &Device) -> Result<Backend> {
    match (arg, dev.kind) {
        (None, _) => Ok(plan::backend_for(dev)),
        (Some(EngineArg::Torch), _) => Ok(Backend::Torch),
        (Some(EngineArg::Swift), DeviceKind::Cpu) => Ok(Backend::Candle),
        (Some(EngineArg::Swift), k) => Err(Exit::Usage(format!(
            "--engine swift --device {}: swift trains on the CPU only today, so there is no swift {} run to model; use --engine torch for a PyTorch run (transformers + peft) on that GPU, or --device cpu",
            id_of(k),
            id_of(k)
        ))
        .into()),
    }
}

fn method_of(m: MethodArg) -> Option<Method> {
    Some(match m {
        MethodArg::Auto => return None,
        MethodArg::Infer => Method::Infer,
        MethodArg::Lora => Method::Lora,
        MethodArg::Qlora => Method::Qlora,
        MethodArg::Full => Method::Full,
        MethodArg::DpoLora => Method::DpoLora,
        MethodArg::DpoFull => Method::DpoFull,
    })
}

/// Compute the report for `args` (no printing): the library entry point the
/// tests and the other commands call.
pub fn compute(args: &EstimateVramArgs, model: &Path, inv: &Inventory) -> Result<Report> {
    let src = crate::planner::source::read_model(model)?;
    let cfg = &src.config;
    let (device, budget, budget_source) = resolve_device(args.device, &args.budget, inv)?;
    let engine = resolve_engine(args.engine, &device)?;
    let method = method_of(args.method);
    if args.gpus == 0 {
        return Err(Exit::Usage("--gpus must be at least 1".into()).into());
    }

    let mut base = Job::new(method.unwrap_or(Method::Lora));
    base.seq_len = args.seq_len.max(1);
    base.new_tokens = args.max_new_tokens;
    base.lora_rank = args.lora_rank.max(1);
    base.target_modules = args.target_modules.clone();
    base.optimizer = match args.optimizer {
        OptimizerArg::Adamw => Optimizer::Adamw,
        OptimizerArg::Adamw8bit => Optimizer::Adamw8bit,
        OptimizerArg::Sgd => Optimizer::Sgd,
    };
    base.attention = match args.attention {
        AttentionArg::Eager => Attention::Eager,
        _ => Attention::Fused,
    };
    base.lora_dropout = args.lora_dropout > 0.0;
    base.loss = match args.loss_impl {
        Some(LossArg::Chunked) => LossImpl::Chunked,
        Some(LossArg::Full) | None => LossImpl::Full,
    };
    base.gpus = args.gpus;
    base.zero = args.zero;
    base.quant = match (args.quant_bits, src.gguf_bytes) {
        (Some(4), _) => Quant::Nf4 { double_quant: true },
        (Some(8), _) => Quant::Int8,
        (_, Some((linear_bytes, other_bytes)))
            if matches!(method, None | Some(Method::Infer) | Some(Method::Qlora)) =>
        {
            Quant::Gguf {
                linear_bytes,
                other_bytes,
            }
        }
        _ => Quant::None,
    };
    let dtype = match args.dtype {
        DtypeArg::Auto => None,
        DtypeArg::Bf16 => Some(Dtype::Bf16),
        DtypeArg::F16 => Some(Dtype::F16),
        DtypeArg::F32 => Some(Dtype::F32),
    };

    let (plan, reason) = if let Some(method) = method {
        let mut job = base;
        job.method = method;
        if job.method == Method::Qlora && job.quant == Quant::None {
            job.quant = Quant::Nf4 { double_quant: true };
        }
        job.dtype = dtype.unwrap_or_else(|| plan::default_dtype(&device));
        job.batch_size = args.batch_size.unwrap_or(1).max(1);
        job.gradient_checkpointing = args.gradient_checkpointing.unwrap_or(true);
        job.cuda_context = device.kind == DeviceKind::Cuda && engine == Backend::Torch;
        job.backend = engine;
        if job.backend == Backend::Candle {
            if let Quant::Nf4 { .. } = job.quant {
                // Our own trainer's NF4: an f32 scale per block.
                job.quant = Quant::Nf4 {
                    double_quant: false,
                };
            }
        }
        let est = estimate(cfg, &job);
        let fits = est.total_bytes <= budget;
        (
            Plan {
                job,
                gradient_accumulation_steps: 1,
                estimate: est,
                budget_bytes: budget,
                fits,
                reason: String::new(),
            },
            None,
        )
    } else {
        let req = Request {
            method: None,
            dtype,
            batch_size: args.batch_size,
            gradient_checkpointing: args.gradient_checkpointing,
            effective_batch: args.effective_batch,
            engine: Some(engine),
            base,
        };
        let p = plan::plan(cfg, &device, budget, &req);
        let reason = p.reason.clone();
        (p, Some(reason))
    };
    let suggestion = if plan.fits {
        None
    } else {
        plan::suggest(cfg, &plan.job, budget)
    };
    Ok(make_report(
        model,
        cfg,
        &device,
        &plan,
        budget_source,
        reason,
        suggestion,
    ))
}

fn make_report(
    model: &Path,
    cfg: &ModelConfig,
    device: &Device,
    plan: &Plan,
    budget_source: String,
    reason: Option<String>,
    suggestion: Option<Suggestion>,
) -> Report {
    let job = &plan.job;
    let est = &plan.estimate;
    let is_lora = matches!(job.method, Method::Lora | Method::Qlora | Method::DpoLora);
    Report {
        schema_version: 1,
        model: ModelInfo {
            path: model.display().to_string(),
            family: cfg.family.name(),
            params: cfg.total_params(),
            layers: cfg.num_hidden_layers,
            hidden_size: cfg.hidden_size,
            vocab_size: cfg.vocab_size,
        },
        device: device.kind,
        device_id: device.id.clone(),
        device_name: device.name.clone(),
        engine: job.backend.name(),
        method: job.method.name(),
        dtype: job.dtype.name(),
        quantization: job.quant,
        batch_size: job.batch_size,
        gradient_accumulation_steps: plan.gradient_accumulation_steps,
        seq_len: job.seq_len,
        max_new_tokens: (job.method == Method::Infer).then_some(job.new_tokens),
        gradient_checkpointing: job.method.is_training() && job.gradient_checkpointing,
        optimizer: job.optimizer.name(),
        lora_rank: is_lora.then_some(job.lora_rank),
        gpus: job.gpus,
        zero: job.zero,
        components: est
            .components
            .iter()
            .map(|c| ComponentOut {
                name: c.name,
                bytes: c.bytes,
                gib: round3(c.bytes as f64 / GIB),
                kind: c.kind,
                detail: c.detail.clone(),
            })
            .collect(),
        trainable_params: est.trainable_params,
        total_bytes: est.total_bytes,
        total_gib: round3(est.total_gib()),
        budget_bytes: plan.budget_bytes,
        budget_source,
        fits: plan.fits,
        reason,
        suggestion,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn gib(bytes: u64) -> String {
    let g = bytes as f64 / GIB;
    if g >= 0.1 {
        format!("{g:.2} GiB")
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[derive(Tabled)]
struct Row {
    component: String,
    memory: String,
    detail: String,
}

/// The human-readable form of a report.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let quant = match r.quantization {
        Quant::None => String::new(),
        Quant::Nf4 { double_quant } => {
            format!(", NF4{}", if double_quant { " (double quant)" } else { "" })
        }
        Quant::Int8 => ", int8".into(),
        Quant::Gguf { .. } => ", GGUF weights as stored".into(),
    };
    out.push_str(&format!(
        "model   {} ({}, {:.2}B params, {} layers)\n",
        r.model.path,
        r.model.family,
        r.model.params as f64 / 1e9,
        r.model.layers
    ));
    let shape = if r.method == "infer" {
        format!(
            "batch {} x ({} prompt + {} new tokens)",
            r.batch_size,
            r.seq_len,
            r.max_new_tokens.unwrap_or(0)
        )
    } else {
        format!(
            "batch {} x {} tokens{}{}",
            r.batch_size,
            r.seq_len,
            if r.gradient_accumulation_steps > 1 {
                format!(" x {} accumulation", r.gradient_accumulation_steps)
            } else {
                String::new()
            },
            if r.gradient_checkpointing {
                ", gradient checkpointing"
            } else {
                ""
            }
        )
    };
    out.push_str(&format!(
        "device  {} ({}): {}\n",
        r.device_id,
        r.device_name,
        match r.engine {
            "swift" => "swift's own trainer",
            _ => "a PyTorch run (transformers + peft)",
        }
    ));
    out.push_str(&format!(
        "job     {} {}{}, {}\n",
        r.method, r.dtype, quant, shape
    ));
    if let Some(reason) = &r.reason {
        out.push_str(&format!("plan    {reason}\n"));
    }
    out.push('\n');
    let mut rows: Vec<Row> = r
        .components
        .iter()
        .map(|c| Row {
            component: match c.kind {
                Kind::Step => format!("{} *", c.name),
                _ => c.name.to_string(),
            },
            memory: gib(c.bytes),
            detail: c.detail.clone(),
        })
        .collect();
    rows.push(Row {
        component: "total (peak)".into(),
        memory: gib(r.total_bytes),
        detail: String::new(),
    });
    let mut table = Table::new(rows);
    table
        .with(Style::sharp())
        .with(Modify::new(Columns::single(1)).with(Alignment::right()));
    out.push_str(&table.to_string());
    out.push('\n');
    if r.components.iter().any(|c| c.kind == Kind::Step) {
        out.push_str("* alive only during the optimizer step; the peak counts it or the activations, whichever is larger\n");
    }
    out.push('\n');
    if r.fits {
        out.push_str(&format!(
            "fits: yes, {} of {} ({})\n",
            gib(r.total_bytes),
            gib(r.budget_bytes),
            r.budget_source
        ));
    } else {
        out.push_str(&format!(
            "fits: NO, {} needed, {} available ({}), short by {}\n",
            gib(r.total_bytes),
            gib(r.budget_bytes),
            r.budget_source,
            gib(r.total_bytes.saturating_sub(r.budget_bytes))
        ));
        match &r.suggestion {
            Some(s) => out.push_str(&format!(
                "hint: {} would need {}\n",
                s.change,
                gib(s.total_bytes)
            )),
            None => out.push_str("hint: no single change makes it fit; try a smaller model\n"),
        }
    }
    out
}

fn render_devices(inv: &Inventory) -> String {
    #[derive(Tabled)]
    struct DevRow {
        device: String,
        name: String,
        total: String,
        free: String,
        bf16: String,
    }
    let rows: Vec<DevRow> = std::iter::once(&inv.cpu)
        .chain(inv.gpus.iter())
        .map(|d| DevRow {
            device: d.id.clone(),
            name: d.name.clone(),
            total: gib(d.total_bytes),
            free: gib(d.free_bytes),
            bf16: if d.supports_bf16() {
                "yes".into()
            } else {
                "no".into()
            },
        })
        .collect();
    let mut t = Table::new(rows);
    t.with(Style::sharp());
    let mut out = t.to_string();
    out.push('\n');
    if inv.gpus.is_empty() {
        out.push_str("no GPU found (CUDA through nvidia-smi, Apple Metal); jobs run on the CPU\n");
    }
    out
}

pub fn run(args: EstimateVramArgs, printer: &Printer) -> Result<()> {
    let inv = super::inventory()?;
    let Some(model) = args.model.clone() else {
        if args.json {
            printer.data(&serde_json::to_string_pretty(&inv)?);
        } else {
            printer.data(&render_devices(&inv));
        }
        return Ok(());
    };
    let model = super::resolve_model_arg(&model, &["config.json"])?;
    let report = compute(&args, &model, &inv)?;
    if args.json {
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        printer.data(&render_table(&report));
    }
    if report.fits {
        Ok(())
    } else {
        Err(Exit::DoesNotFit.into())
    }
}
