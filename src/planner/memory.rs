//! The memory model: peak memory of one job on one device, component by
//! component, from a model's hyper-parameters alone (no weights are read).
//!
//! Everything is counted in bytes. The model follows what PyTorch +
//! transformers + peft (and our own trainer, which keeps the same tensors)
//! hold at the peak of a training step or of generation:
//!
//! * persistent: weights, LoRA parameters, gradients, optimizer states,
//!   a frozen reference model (full DPO), the KV cache (inference);
//! * transient: either the forward/backward working set (activations saved for
//!   backward, the logits and cross-entropy buffers) or the optimizer step's
//!   temporaries, whichever is larger, since they are not alive together;
//! * overhead: CUDA context and allocator slack.
//!
//! The constants and what each term counts are written beside the code, so a
//! user can audit an estimate against `torch.cuda.max_memory_reserved()`.

use serde::Serialize;

use crate::model::config::{LinearShape, ModelConfig, LINEAR_MODULES};

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Numeric type of the weights or activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::F32 => 4.0,
            Dtype::F16 | Dtype::Bf16 => 2.0,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        }
    }
    pub fn parse(s: &str) -> Option<Dtype> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" | "float" => Some(Dtype::F32),
            "f16" | "fp16" | "float16" | "half" => Some(Dtype::F16),
            "bf16" | "bfloat16" => Some(Dtype::Bf16),
            _ => None,
        }
    }
}

/// How the frozen linear weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Quant {
    /// Not quantized: the weight dtype.
    None,
    /// bitsandbytes NF4: 4-bit codes, an absmax per 64 weights (fp32, or
    /// 8-bit with a second-level fp32 scale per 256 blocks under double
    /// quantization).
    Nf4 { double_quant: bool },
    /// bitsandbytes LLM.int8: one byte per weight plus an fp32 scale per row.
    Int8,
    /// A GGUF file's own types: the linear layers take `linear_bytes` in all,
    /// the embedding and output head `other_bytes`, as stored in the file.
    Gguf { linear_bytes: u64, other_bytes: u64 },
}

impl Quant {
    /// Bytes per weight of a quantized linear layer (excluding the per-row
    /// term of int8, added separately).
    fn bytes_per_weight(self) -> Option<f64> {
        match self {
            Quant::None | Quant::Gguf { .. } => None,
            Quant::Nf4 {
                double_quant: false,
            } => Some(0.5 + 4.0 / 64.0),
            Quant::Nf4 { double_quant: true } => Some(0.5 + 1.0 / 64.0 + 4.0 / (64.0 * 256.0)),
            Quant::Int8 => Some(1.0),
        }
    }
}

/// What the job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Infer,
    Lora,
    Qlora,
    Full,
    DpoLora,
    DpoFull,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Infer => "infer",
            Method::Lora => "lora",
            Method::Qlora => "qlora",
            Method::Full => "full",
            Method::DpoLora => "dpo-lora",
            Method::DpoFull => "dpo-full",
        }
    }
    pub fn is_training(self) -> bool {
        self != Method::Infer
    }
    pub fn is_full(self) -> bool {
        matches!(self, Method::Full | Method::DpoFull)
    }
    pub fn is_dpo(self) -> bool {
        matches!(self, Method::DpoLora | Method::DpoFull)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// torch AdamW: two states per trainable parameter, in the parameter's
    /// dtype, plus a parameter-sized temporary in the (foreach) step.
    Adamw,
    /// bitsandbytes 8-bit AdamW: two one-byte states (block-wise scales are
    /// negligible).
    Adamw8bit,
    /// SGD with momentum: one state.
    Sgd,
}

impl Optimizer {
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adamw => "adamw",
            Optimizer::Adamw8bit => "adamw-8bit",
            Optimizer::Sgd => "sgd",
        }
    }
}

/// Attention implementation: eager materialises the T x T score matrix per
/// head; fused (SDPA / flash) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    Eager,
    Fused,
}

/// How the cross-entropy over the vocabulary is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossImpl {
    /// Logits kept in the activation dtype; the fp32 upcast, log-softmax and
    /// gradient exist for one chunk of tokens at a time (torchtune's
    /// chunked cross-entropy, and our trainer).
    Chunked,
    /// transformers' default (`ForCausalLMLoss`: `logits.float()` then
    /// `cross_entropy`): the whole fp32 upcast, the saved log-softmax and
    /// its fp32 gradients at once. See [`FULL_LOSS_BYTES_PER_LOGIT`].
    Full,
}

/// Which trainer runs the job: the memory each keeps differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// PyTorch + transformers + peft on a GPU (CUDA or Metal).
    Torch,
    /// This crate's own trainer (candle, f32 on the CPU): layer-by-layer
    /// recomputation, the output head fused with the loss, a process
    /// baseline instead of a CUDA context. See [`candle_training`].
    Candle,
}

impl Backend {
    /// The engine's name in `--engine` and the `--json` report.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Torch => "torch",
            Backend::Candle => "swift",
        }
    }
}

/// Everything the estimate depends on.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub method: Method,
    /// Dtype of weights (unquantized parts) and activations.
    pub dtype: Dtype,
    pub quant: Quant,
    pub batch_size: usize,
    /// Training: tokens per sequence. Inference: prompt tokens.
    pub seq_len: usize,
    /// Inference only: tokens generated after the prompt.
    pub new_tokens: usize,
    pub lora_rank: usize,
    /// Module names LoRA wraps (`q_proj`, ...); empty means all linear layers.
    pub target_modules: Vec<String>,
    /// LoRA dropout > 0 makes peft keep a dropped copy of each wrapped input.
    pub lora_dropout: bool,
    pub gradient_checkpointing: bool,
    pub optimizer: Optimizer,
    pub attention: Attention,
    pub loss: LossImpl,
    pub gpus: usize,
    /// DeepSpeed ZeRO stage (0 = none, 1, 2, 3).
    pub zero: u8,
    /// Count the CUDA context (about 0.5 GiB, outside PyTorch's allocator).
    pub cuda_context: bool,
    /// The trainer the estimate models (the planner sets it from the device:
    /// [`Backend::Candle`] on the CPU).
    pub backend: Backend,
}

impl Job {
    /// Sensible defaults for `method` (bf16, batch 1, 2048 tokens, rank 8 on
    /// all linear layers, checkpointing on, AdamW, fused attention, 1 GPU).
    pub fn new(method: Method) -> Job {
        Job {
            method,
            dtype: Dtype::Bf16,
            quant: if method == Method::Qlora {
                Quant::Nf4 { double_quant: true }
            } else {
                Quant::None
            },
            batch_size: 1,
            seq_len: 2048,
            new_tokens: 0,
            lora_rank: 8,
            target_modules: Vec::new(),
            lora_dropout: false,
            gradient_checkpointing: true,
            optimizer: Optimizer::Adamw,
            attention: Attention::Fused,
            loss: LossImpl::Chunked,
            gpus: 1,
            zero: 0,
            cuda_context: true,
            backend: Backend::Torch,
        }
    }

    fn targets(&self) -> Vec<&str> {
        if self.target_modules.is_empty()
            || self
                .target_modules
                .iter()
                .any(|m| m == "all-linear" || m == "all")
        {
            LINEAR_MODULES.to_vec()
        } else {
            self.target_modules.iter().map(String::as_str).collect()
        }
    }

    fn lora_shapes(&self, cfg: &ModelConfig) -> Vec<LinearShape> {
        let targets = self.targets();
        cfg.layer_linears()
            .into_iter()
            .filter(|l| targets.iter().any(|t| canonical_module(t) == l.name))
            .collect()
    }
}

/// Map the names other tools use for the same projection (torchtune's
/// `output_proj`, Qwen-1's `c_attn`/`w1`/`w2`/`c_proj`, llama.cpp's) onto HF
/// names. Unknown names are returned unchanged.
pub fn canonical_module(name: &str) -> &str {
    match name {
        "wq" | "attn_q" => "q_proj",
        "wk" | "attn_k" => "k_proj",
        "wv" | "attn_v" => "v_proj",
        "wo" | "attn_output" | "output_proj" => "o_proj",
        "w1" | "ffn_gate" => "gate_proj",
        "w3" | "ffn_up" => "up_proj",
        "w2" | "ffn_down" => "down_proj",
        other => other,
    }
}

/// Whether a component is held for the whole step or only at its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Persistent,
    /// Alive during forward/backward (or prefill).
    Transient,
    /// Alive only during the optimizer step.
    Step,
    Overhead,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: &'static str,
    pub bytes: u64,
    pub kind: Kind,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub components: Vec<Component>,
    /// Peak bytes on one device.
    pub total_bytes: u64,
    pub trainable_params: u64,
    pub total_params: u64,
}

impl Estimate {
    pub fn total_gib(&self) -> f64 {
        self.total_bytes as f64 / GIB
    }
    pub fn get(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// 20.0M, 6.74B: a parameter count for people.
pub fn human_count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else {
        format!("{n:.0}")
    }
}

/// Tokens per chunk of the chunked cross-entropy.
pub const CHUNK_TOKENS: f64 = 512.0;

/// Bytes per logit (token x vocab entry) at the peak of transformers' full
/// cross-entropy, besides the 16-bit logits themselves: in backward, the
/// saved fp32 log-softmax, the fp32 gradient `nll_loss` hands it and the
/// fp32 gradient log-softmax returns are alive together (12 B); in forward
/// the fp32 upcast and the log-softmax (8 B). The 16-bit logits' block,
/// freed after forward, stays with PyTorch's caching allocator (too small to
/// hold the 4-byte tensors that follow), so the reserved peak is this plus
/// the activation dtype's 2 B: 14 B per logit for bf16. Checked against
/// Unsloth's published HF + FA2 context lengths for Llama-3.1-8B QLoRA
/// (`tests/cli_estimate_vram.rs`).
pub const FULL_LOSS_BYTES_PER_LOGIT: f64 = 12.0;

/// Bytes of the CUDA context and cuBLAS workspaces, outside the allocator.
pub const CUDA_CONTEXT_BYTES: f64 = 0.5 * GIB;
/// Caching-allocator slack (fragmentation, rounding to 2 MiB segments), as a
/// fraction of what is allocated.
pub const ALLOCATOR_SLACK: f64 = 0.03;

/// Saved-for-backward bytes of one decoder layer per token, in a training
/// step without checkpointing.
///
/// Attention block: the RMSNorm input and its fp32 upcast (transformers'
/// LlamaRMSNorm computes in fp32), the normed input shared by q/k/v, the
/// q/k/v outputs and the rotated q/k, the attention output (input of o_proj);
/// eager attention adds the softmax probabilities (T per head, activation
/// dtype) and their fp32 upcast. MLP block: RMSNorm input + fp32 upcast, normed
/// input, gate and up outputs, act(gate), and act(gate) * up (input of
/// down_proj). LoRA adds, per wrapped module with dropout, the dropped input.
fn layer_activation_bytes_per_token(cfg: &ModelConfig, job: &Job, seq_len: usize) -> f64 {
    let a = job.dtype.bytes();
    let h = cfg.hidden_size as f64;
    let i = cfg.intermediate_size as f64;
    let q = cfg.q_dim() as f64;
    let kv = cfg.kv_dim() as f64;
    let mut attn = a * h + 4.0 * h + a * h + a * (q + 2.0 * kv) + a * (q + kv) + a * q;
    if job.attention == Attention::Eager {
        let heads = cfg.num_attention_heads as f64;
        attn += (a + 4.0) * heads * seq_len as f64;
    }
    let mlp = a * h + 4.0 * h + a * h + 4.0 * a * i;
    let mut lora = 0.0;
    if matches!(job.method, Method::Lora | Method::Qlora | Method::DpoLora) && job.lora_dropout {
        lora = job
            .lora_shapes(cfg)
            .iter()
            .map(|l| a * l.in_features as f64 + a * job.lora_rank as f64)
            .sum();
    }
    attn + mlp + lora
}

/// Process memory of this crate's trainer besides its tensors: the binary,
/// the tokenizer, the tokenized data set, thread stacks, the logs (measured
/// on SmolLM2-135M runs: about 80 MiB).
pub const CANDLE_RUNTIME_BYTES: f64 = 80.0 * 1024.0 * 1024.0;
/// Freed memory glibc's heap keeps, as a fraction of what is allocated.
pub const CANDLE_SLACK: f64 = 0.05;
/// candle keeps every node of a layer's forward graph until its backward
/// ends; the pending gradients and the backward's temporaries come on top.
/// The peak of one layer's recompute-and-backward is this multiple of the
/// graph's bytes (measured on SmolLM2-135M, 240-1000-token sequences).
pub const CANDLE_BACKWARD_FACTOR: f64 = 2.3;
/// Copies of the whole `[tokens, vocab]` logits alive in the plain (unfused)
/// head's backward: the matmul output, the log-softmax, its gradient, the
/// gather's scatter and the accumulations candle makes (measured: ~9).
pub const CANDLE_UNFUSED_LOGIT_COPIES: f64 = 9.0;

/// The forward graph of one decoder layer in our trainer, in f32 values per
/// token: the RMSNorms (square, normalised, scaled), the projections and
/// the rotary embedding's pieces, the key/value heads expanded for GQA, the
/// eager attention scores (scaled, masked, shifted, exponentiated,
/// normalised: six `heads x T` tensors), the MLP (gate, up, SiLU, product),
/// the residual sums, and per LoRA-wrapped module the dropout mask and the
/// dropped input (when dropout is on) and the low-rank output, scaled and
/// added.
fn candle_layer_values_per_token(cfg: &ModelConfig, job: &Job, seq_len: usize) -> f64 {
    let h = cfg.hidden_size as f64;
    let i = cfg.intermediate_size as f64;
    let q = cfg.q_dim() as f64;
    let kv = cfg.kv_dim() as f64;
    let heads = cfg.num_attention_heads as f64;
    let norms = 2.0 * 3.0 * h;
    let proj = q + 2.0 * kv + h;
    let rope = 5.5 * (q + kv);
    let gqa = 3.0 * q;
    let scores = 6.0 * heads * seq_len as f64;
    let attn_out = 2.0 * q;
    let residual = 2.0 * h;
    let mlp = 4.0 * i + h;
    let mut lora = 0.0;
    if matches!(job.method, Method::Lora | Method::Qlora | Method::DpoLora) {
        lora = job
            .lora_shapes(cfg)
            .iter()
            .map(|l| {
                let drop = if job.lora_dropout {
                    2.0 * l.in_features as f64
                } else {
                    0.0
                };
                drop + 3.0 * l.out_features as f64
            })
            .sum();
    }
    norms + proj + rope + gqa + scores + attn_out + residual + mlp + lora
}

/// Whether the job trains an adapter, its LoRA parameters (from the real
/// module shapes, every layer) and its trainable parameters: the adapter,
/// every weight for full tuning, none for inference.
fn trainable_params(cfg: &ModelConfig, job: &Job) -> (bool, f64, f64) {
    let is_lora = matches!(job.method, Method::Lora | Method::Qlora | Method::DpoLora);
    let lora_params: f64 = if is_lora {
        cfg.num_hidden_layers as f64
            * job
                .lora_shapes(cfg)
                .iter()
                .map(|l| (job.lora_rank * (l.in_features + l.out_features)) as f64)
                .sum::<f64>()
    } else {
        0.0
    };
    let trainable = if is_lora {
        lora_params
    } else if job.method.is_full() {
        cfg.total_params() as f64
    } else {
        0.0
    };
    (is_lora, lora_params, trainable)
}

/// The adapter's own weights: peft and our trainer both keep them in f32.
fn lora_component(job: &Job, lora_params: f64) -> Component {
    Component {
        name: "lora",
        bytes: (lora_params * 4.0) as u64,
        kind: Kind::Persistent,
        detail: format!(
            "{:.1}M params (rank {} on {}) x 4 B",
            lora_params / 1e6,
            job.lora_rank,
            job.targets().join(",")
        ),
    }
}

/// The peak of a training step of this crate's trainer ([`Backend::Candle`]):
/// f32 weights (or the quantized blocks), the trainable parameters with their
/// f32 gradient and two AdamW moments, every layer's input (the trainer
/// recomputes one layer at a time), one layer's recompute-and-backward for
/// one group of sequences ([`super::chunks::layer_group`]), or the output head
/// fused with the loss, a chunk of rows of logits at a time
/// ([`super::chunks::head_chunk_rows`]), whichever is larger; and the process
/// itself.
pub fn candle_training(cfg: &ModelConfig, job: &Job) -> Estimate {
    let mut comps: Vec<Component> = Vec::new();
    let layers = cfg.num_hidden_layers as f64;
    let total_params = cfg.total_params();
    let linear_params: f64 = layers
        * cfg
            .layer_linears()
            .iter()
            .map(|l| (l.in_features * l.out_features) as f64)
            .sum::<f64>();
    let other_params = total_params as f64 - linear_params;
    let (weight_bytes, detail) = match job.quant {
        Quant::None => (
            total_params as f64 * 4.0,
            format!(
                "{:.2}B params x 4 B (f32){}",
                total_params as f64 / 1e9,
                if cfg.tie_word_embeddings {
                    ", tied embeddings counted once"
                } else {
                    ""
                }
            ),
        ),
        Quant::Gguf {
            linear_bytes,
            other_bytes,
        } => (
            (linear_bytes + other_bytes) as f64,
            format!(
                "{:.2}B params as stored in the GGUF file",
                total_params as f64 / 1e9
            ),
        ),
        Quant::Nf4 { .. } => (
            linear_params * (0.5 + 4.0 / 64.0) + other_params * 4.0,
            format!(
                "{:.2}B linear params 4-bit NF4 + f32 block scales; embeddings, lm_head, norms f32",
                linear_params / 1e9
            ),
        ),
        Quant::Int8 => (
            linear_params * 34.0 / 32.0 + other_params * 4.0,
            format!(
                "{:.2}B linear params 8-bit (Q8_0 blocks); embeddings, lm_head, norms f32",
                linear_params / 1e9
            ),
        ),
    };
    comps.push(Component {
        name: "weights",
        bytes: weight_bytes as u64,
        kind: Kind::Persistent,
        detail,
    });
    let (is_lora, lora_params, trainable) = trainable_params(cfg, job);
    if is_lora {
        comps.push(lora_component(job, lora_params));
    }
    comps.push(Component {
        name: "gradients",
        bytes: (trainable * 4.0) as u64,
        kind: Kind::Persistent,
        detail: format!(
            "{} trainable params x 4 B (summed over micro-batches)",
            human_count(trainable)
        ),
    });
    comps.push(Component {
        name: "optimizer",
        bytes: (trainable * 8.0) as u64,
        kind: Kind::Persistent,
        detail: "AdamW: 2 states x 4 B per trainable param".to_string(),
    });

    let batch = job.batch_size.max(1);
    let seqs = if job.method.is_dpo() {
        2 * batch
    } else {
        batch
    };
    let t = job.seq_len.max(1);
    let tokens = (seqs * t) as f64;
    let h = cfg.hidden_size as f64;
    let v = cfg.vocab_size as f64;
    let (acts, layer) = if is_lora {
        fused_activations(cfg, job, seqs, t)
    } else {
        // Every layer's input plus the hidden states of the head, and the
        // output of the layer being assembled from its groups.
        let inputs = (layers + 2.0) * tokens * h * 4.0;
        let group = super::chunks::layer_group(seqs, t);
        let per_token = candle_layer_values_per_token(cfg, job, t) * 4.0 * CANDLE_BACKWARD_FACTOR;
        let layer = per_token * (group * t) as f64;
        comps.push(Component {
            name: "activations",
            bytes: (inputs + layer) as u64,
            kind: Kind::Transient,
            detail: format!(
                "{} layer inputs + 2 x {tokens} tokens x 4 B, and 1 layer recomputed for {group} of {seqs} sequences at a time ({:.0} KiB/token)",
                cfg.num_hidden_layers,
                per_token / 1024.0
            ),
        });
        (inputs, layer)
    };
    if is_lora {
        comps.push(Component {
            name: "activations",
            bytes: (acts + layer) as u64,
            kind: Kind::Transient,
            detail: fused_detail(cfg, seqs, t),
        });
    }
    // The fused head holds a chunk of rows of logits, its softmax and their
    // product with the weight, and a few hidden-size tensors of the batch;
    // a trainable head (full tuning) takes the plain path.
    let fused = is_lora;
    let (head, detail) = if fused {
        let rows = super::chunks::head_chunk_rows(cfg.vocab_size) as f64;
        (
            3.0 * rows.min(tokens) * v * 4.0 + 4.0 * tokens * h * 4.0,
            format!(
                "output head fused with the loss: {} rows x {} vocab x 4 B at a time",
                rows.min(tokens),
                cfg.vocab_size
            ),
        )
    } else {
        (
            CANDLE_UNFUSED_LOGIT_COPIES * tokens * v * 4.0,
            format!(
                "{tokens} tokens x {} vocab x 4 B x {CANDLE_UNFUSED_LOGIT_COPIES} copies (plain head)",
                cfg.vocab_size
            ),
        )
    };
    comps.push(Component {
        name: "logits + loss",
        bytes: head as u64,
        kind: Kind::Transient,
        detail: format!("{detail}; not alive with the layer's backward"),
    });
    let transient = acts + layer.max(head);
    let persistent: f64 = comps
        .iter()
        .filter(|c| c.kind == Kind::Persistent)
        .map(|c| c.bytes as f64)
        .sum();
    let allocated = persistent + transient;
    let overhead = CANDLE_RUNTIME_BYTES + allocated * CANDLE_SLACK;
    comps.push(Component {
        name: "overhead",
        bytes: overhead as u64,
        kind: Kind::Overhead,
        detail: format!(
            "process (binary, tokenizer, data) {:.0} MiB + heap slack {:.0}%",
            CANDLE_RUNTIME_BYTES / 1024.0 / 1024.0,
            CANDLE_SLACK * 100.0
        ),
    });
    Estimate {
        components: comps,
        total_bytes: (allocated + overhead) as u64,
        trainable_params: trainable as u64,
        total_params,
    }
}

/// The fused LoRA layers' activations (see `train::layer`): what every
/// layer keeps for its backward when that fits the trainer's budget
/// ([`super::chunks::kept_layers`]), the other layers' inputs and one
/// layer's; and, apart, the working buffers of the layer being run (normed
/// rows, gradients of each projection, two `T x T` attention blocks per
/// thread, a frozen quantized weight expanded to f32).
fn fused_activations(cfg: &ModelConfig, job: &Job, seqs: usize, t: usize) -> (f64, f64) {
    let tokens = (seqs * t) as f64;
    let layers = cfg.num_hidden_layers;
    let (h, i) = (cfg.hidden_size as f64, cfg.intermediate_size as f64);
    let (q, kv) = (cfg.q_dim() as f64, cfg.kv_dim() as f64);
    let per = super::chunks::saved_values_per_token(cfg);
    let keep = super::chunks::kept_layers(seqs * t, per, layers);
    let recomputed = layers - keep;
    let kept = tokens * (keep * per) as f64 * 4.0
        + if recomputed > 0 {
            tokens * (recomputed as f64 * h + per as f64) * 4.0
        } else {
            0.0
        };
    let dequant = match job.quant {
        Quant::None => 0.0,
        _ => cfg
            .layer_linears()
            .iter()
            .map(|l| (l.in_features * l.out_features) as f64 * 4.0)
            .fold(0.0, f64::max),
    };
    let working = tokens * (4.0 * h + 3.0 * i + 2.0 * q + 2.0 * kv) * 4.0
        + 2.0 * 2.0 * (t * t) as f64 * 4.0
        + dequant;
    // The final hidden states and their gradient as `[B, T, hidden]` tensors.
    (kept + 2.0 * tokens * h * 4.0, working)
}

fn fused_detail(cfg: &ModelConfig, seqs: usize, t: usize) -> String {
    let per = super::chunks::saved_values_per_token(cfg);
    let layers = cfg.num_hidden_layers;
    let keep = super::chunks::kept_layers(seqs * t, per, layers);
    let mut d = format!(
        "fused layers: {per} values x {keep} layers x {} tokens x 4 B kept for the backward",
        seqs * t
    );
    if keep < layers {
        d += &format!(
            ", {} more layers' inputs (recomputed in the backward)",
            layers - keep
        );
    }
    d + ", and one layer's working buffers"
}

/// Estimate the peak memory of `job` on one device for a model with `cfg`.
pub fn estimate(cfg: &ModelConfig, job: &Job) -> Estimate {
    if job.backend == Backend::Candle && job.method.is_training() {
        return candle_training(cfg, job);
    }
    let mut comps: Vec<Component> = Vec::new();
    let w = job.dtype.bytes();
    let layers = cfg.num_hidden_layers as f64;
    let total_params = cfg.total_params();
    let linear_params: f64 = layers
        * cfg
            .layer_linears()
            .iter()
            .map(|l| (l.in_features * l.out_features) as f64)
            .sum::<f64>();
    let other_params = total_params as f64 - linear_params;
    let gpus = job.gpus.max(1) as f64;
    let shard_weights = if job.zero >= 3 { gpus } else { 1.0 };
    let shard_grads = if job.zero >= 2 { gpus } else { 1.0 };
    let shard_states = if job.zero >= 1 { gpus } else { 1.0 };

    // Weights.
    let (weight_bytes, weight_detail) = match job.quant {
        Quant::Gguf {
            linear_bytes,
            other_bytes,
        } => (
            (linear_bytes + other_bytes) as f64,
            format!(
                "{:.2}B params as stored in the GGUF file",
                total_params as f64 / 1e9
            ),
        ),
        Quant::None => (
            total_params as f64 * w,
            format!(
                "{:.2}B params x {} B ({}){}",
                total_params as f64 / 1e9,
                w,
                job.dtype.name(),
                if cfg.tie_word_embeddings {
                    ", tied embeddings counted once"
                } else {
                    ""
                }
            ),
        ),
        quant => {
            let bpw = quant.bytes_per_weight().unwrap_or(w);
            let rows: f64 = layers
                * cfg
                    .layer_linears()
                    .iter()
                    .map(|l| l.out_features as f64)
                    .sum::<f64>();
            let row_scales = if quant == Quant::Int8 {
                rows * 4.0
            } else {
                0.0
            };
            let label = match quant {
                Quant::Nf4 { double_quant: true } => "4-bit NF4 + double-quantized block scales",
                Quant::Nf4 {
                    double_quant: false,
                } => "4-bit NF4 + fp32 block scales",
                _ => "8-bit + per-row scales",
            };
            // peft's prepare_model_for_kbit_training (run by TRL, ms-swift
            // and the QLoRA scripts before training) casts every
            // parameter bitsandbytes did not quantize to fp32.
            let other = if job.method.is_training() {
                Dtype::F32
            } else {
                job.dtype
            };
            (
                linear_params * bpw + row_scales + other_params * other.bytes(),
                format!(
                    "{:.2}B linear params {label}; embeddings, lm_head, norms {}{}",
                    linear_params / 1e9,
                    other.name(),
                    if job.method.is_training() {
                        " (peft's k-bit prep)"
                    } else {
                        ""
                    }
                ),
            )
        }
    };
    comps.push(Component {
        name: "weights",
        bytes: (weight_bytes / shard_weights) as u64,
        kind: Kind::Persistent,
        detail: if shard_weights > 1.0 {
            format!("{weight_detail}, ZeRO-3 over {gpus} GPUs")
        } else {
            weight_detail
        },
    });

    // Trainable parameters.
    let (is_lora, lora_params, trainable) = trainable_params(cfg, job);
    // peft keeps adapter weights in fp32 (autocast_adapter_dtype); full
    // tuning trains the weights in their own dtype (pure bf16, as the HF
    // Trainer does on a model loaded in bf16).
    let train_bytes = if is_lora { 4.0 } else { w };
    if is_lora {
        comps.push(lora_component(job, lora_params));
    }

    let mut step_temp = 0.0;
    if job.method.is_training() {
        comps.push(Component {
            name: "gradients",
            bytes: (trainable * train_bytes / shard_grads) as u64,
            kind: Kind::Persistent,
            detail: format!(
                "{} trainable params x {} B{}",
                human_count(trainable),
                train_bytes,
                if shard_grads > 1.0 {
                    format!(", ZeRO-{} over {gpus} GPUs", job.zero)
                } else {
                    String::new()
                }
            ),
        });
        let (states, per, label) = match job.optimizer {
            Optimizer::Adamw => (2.0, train_bytes, "AdamW: 2 states"),
            Optimizer::Adamw8bit => (2.0, 1.0, "8-bit AdamW: 2 one-byte states"),
            Optimizer::Sgd => (1.0, train_bytes, "SGD momentum: 1 state"),
        };
        comps.push(Component {
            name: "optimizer",
            bytes: (trainable * states * per / shard_states) as u64,
            kind: Kind::Persistent,
            detail: format!(
                "{label} x {per} B per trainable param{}",
                if shard_states > 1.0 {
                    format!(", ZeRO-{} over {gpus} GPUs", job.zero)
                } else {
                    String::new()
                }
            ),
        });
        // torch's foreach AdamW step allocates a parameter-sized temporary
        // (the denominator sqrt(v) + eps) for every tensor at once.
        if job.optimizer == Optimizer::Adamw {
            step_temp = trainable * train_bytes / shard_states;
        }
    }

    if job.method == Method::DpoFull {
        comps.push(Component {
            name: "reference model",
            bytes: (total_params as f64 * w / shard_weights) as u64,
            kind: Kind::Persistent,
            detail: "frozen copy of the weights for reference log-probs".to_string(),
        });
    }

    let batch = job.batch_size.max(1) as f64;
    let v = cfg.vocab_size as f64;
    let a = job.dtype.bytes();
    let transient;
    if job.method.is_training() {
        // DPO runs chosen and rejected through the model in one batch.
        let seqs = if job.method.is_dpo() {
            2.0 * batch
        } else {
            batch
        };
        let tokens = seqs * job.seq_len as f64;
        let per_layer = layer_activation_bytes_per_token(cfg, job, job.seq_len) * tokens;
        let h = cfg.hidden_size as f64;
        // The residual stream is fp32 once prepare_model_for_kbit_training
        // has cast the embeddings to fp32 (QLoRA): so are the layer inputs
        // checkpointing keeps.
        let residual = if matches!(job.quant, Quant::Nf4 { .. } | Quant::Int8) {
            4.0
        } else {
            a
        };
        // Saved for the backward while the loss runs (all of it), and the
        // working set of the one layer being back-propagated (recomputed
        // first under checkpointing), alive after the loss's buffers are
        // freed.
        let (kept, working, detail) = if job.gradient_checkpointing {
            (
                layers * tokens * h * residual,
                per_layer,
                format!(
                    "checkpointing: {} layer inputs x {residual} B + 1 layer recomputed, {} tokens",
                    cfg.num_hidden_layers, tokens
                ),
            )
        } else {
            (
                layers * per_layer,
                per_layer,
                format!(
                    "{} layers x {:.0} KiB/token, {} tokens{}",
                    cfg.num_hidden_layers,
                    per_layer / tokens / 1024.0,
                    tokens,
                    if job.attention == Attention::Eager {
                        ", eager attention"
                    } else {
                        ""
                    }
                ),
            )
        };
        let (logits, detail_logits) = match job.loss {
            // Logits in the activation dtype, plus the fp32 upcast,
            // log-softmax and gradient of one chunk of CHUNK_TOKENS tokens.
            LossImpl::Chunked => {
                let chunk = tokens.min(CHUNK_TOKENS);
                (
                    tokens * v * a + chunk * v * 12.0,
                    format!(
                        "{tokens} tokens x {} vocab x {a} B, fp32 loss in chunks of {chunk}",
                        cfg.vocab_size
                    ),
                )
            }
            // transformers' default: see FULL_LOSS_BYTES_PER_LOGIT (an fp32
            // model has no separate 16-bit copy).
            LossImpl::Full => {
                let per = FULL_LOSS_BYTES_PER_LOGIT + if a < 4.0 { a } else { 0.0 };
                (
                    tokens * v * per,
                    format!(
                        "{tokens} tokens x {} vocab x {per} B, fp32 loss unchunked",
                        cfg.vocab_size
                    ),
                )
            }
        };
        comps.push(Component {
            name: "activations",
            bytes: (kept + working) as u64,
            kind: Kind::Transient,
            detail,
        });
        comps.push(Component {
            name: "logits + loss",
            bytes: logits as u64,
            kind: Kind::Transient,
            detail: format!("{detail_logits}; not alive with the layer backward"),
        });
        transient = kept + working.max(logits);
        if step_temp > 0.0 {
            comps.push(Component {
                name: "optimizer step",
                bytes: step_temp as u64,
                kind: Kind::Step,
                detail: "foreach AdamW temporary (not alive with activations)".to_string(),
            });
        }
    } else {
        let ctx = (job.seq_len + job.new_tokens) as f64;
        let kv = 2.0 * layers * cfg.kv_dim() as f64 * a * ctx * batch;
        comps.push(Component {
            name: "kv cache",
            bytes: kv as u64,
            kind: Kind::Persistent,
            detail: format!(
                "{} layers x 2 x {} x {} tokens x {} seq x {} B",
                cfg.num_hidden_layers,
                cfg.kv_dim(),
                ctx,
                batch,
                a
            ),
        });
        // Prefill: the widest moment is the MLP (gate, up, and their
        // product alive together) beside a few hidden-size tensors.
        let tokens = job.seq_len.max(1) as f64 * batch;
        let h = cfg.hidden_size as f64;
        let mut work = tokens * a * (4.0 * h + 3.0 * cfg.intermediate_size as f64);
        if job.attention == Attention::Eager {
            work = work.max(tokens * a * cfg.num_attention_heads as f64 * job.seq_len as f64 * 2.0);
        }
        comps.push(Component {
            name: "prefill",
            bytes: work as u64,
            kind: Kind::Transient,
            detail: format!("{tokens} prompt tokens through the widest layer"),
        });
        let logits = batch * v * 4.0;
        comps.push(Component {
            name: "logits",
            bytes: logits as u64,
            kind: Kind::Transient,
            detail: "last position only, fp32".to_string(),
        });
        transient = work + logits;
    }

    let persistent: f64 = comps
        .iter()
        .filter(|c| c.kind == Kind::Persistent)
        .map(|c| c.bytes as f64)
        .sum();
    let allocated = persistent + transient.max(step_temp);
    let mut overhead = allocated * ALLOCATOR_SLACK;
    let mut detail = format!("allocator slack {:.0}%", ALLOCATOR_SLACK * 100.0);
    if job.cuda_context {
        overhead += CUDA_CONTEXT_BYTES;
        detail.push_str(" + CUDA context 0.5 GiB");
    }
    comps.push(Component {
        name: "overhead",
        bytes: overhead as u64,
        kind: Kind::Overhead,
        detail,
    });

    Estimate {
        components: comps,
        total_bytes: (allocated + overhead) as u64,
        trainable_params: trainable as u64,
        total_params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tiny() -> ModelConfig {
        // h=8, i=16, 2 layers, 2 heads (head_dim 4), 1 kv head, vocab 10.
        ModelConfig::from_json(&json!({
            "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "vocab_size": 10, "tie_word_embeddings": true
        }))
        .unwrap()
    }

    fn bytes(e: &Estimate, name: &str) -> u64 {
        e.get(name)
            .unwrap_or_else(|| panic!("no component {name}"))
            .bytes
    }

    #[test]
    fn tiny_parameter_count_by_hand() {
        let c = tiny();
        // per layer: q 8x8=64, k 8x4=32, v 32, o 64, gate 128, up 128, down 128 = 576
        // + norms 16 = 592; x2 layers = 1184; embedding 80 (tied); final norm 8.
        assert_eq!(c.layer_params(), 592);
        assert_eq!(c.total_params(), 1184 + 80 + 8);
    }

    #[test]
    fn full_adamw_bf16_by_hand() {
        let c = tiny();
        let mut job = Job::new(Method::Full);
        job.cuda_context = false;
        let e = estimate(&c, &job);
        let p = 1272u64;
        assert_eq!(bytes(&e, "weights"), p * 2);
        assert_eq!(bytes(&e, "gradients"), p * 2);
        assert_eq!(bytes(&e, "optimizer"), p * 4);
        assert_eq!(bytes(&e, "optimizer step"), p * 2);
        assert_eq!(e.trainable_params, p);
    }

    #[test]
    fn lora_params_from_real_shapes() {
        let c = tiny();
        let mut job = Job::new(Method::Lora);
        job.lora_rank = 2;
        job.target_modules = vec!["q_proj".into(), "v_proj".into()];
        let e = estimate(&c, &job);
        // q: 2*(8+8)=32, v: 2*(8+4)=24 -> 56 per layer, 112 in all, fp32.
        assert_eq!(e.trainable_params, 112);
        assert_eq!(bytes(&e, "lora"), 448);
        assert_eq!(bytes(&e, "gradients"), 448);
        assert_eq!(bytes(&e, "optimizer"), 896);
    }

    #[test]
    fn nf4_weights_by_hand() {
        let c = tiny();
        let job = Job::new(Method::Qlora);
        let e = estimate(&c, &job);
        // 1152 linear params x (0.5 + 1/64 + 4/16384) + 120 others x 4 B
        // (prepare_model_for_kbit_training casts them to fp32 for training).
        let expect = 1152.0 * (0.5 + 1.0 / 64.0 + 4.0 / 16384.0) + 120.0 * 4.0;
        assert_eq!(bytes(&e, "weights"), expect as u64);
        // Inference keeps them in the model's dtype.
        let mut infer = job.clone();
        infer.method = Method::Infer;
        let expect = 1152.0 * (0.5 + 1.0 / 64.0 + 4.0 / 16384.0) + 120.0 * 2.0;
        assert_eq!(bytes(&estimate(&c, &infer), "weights"), expect as u64);
    }

    #[test]
    fn inference_kv_cache_by_hand() {
        let c = tiny();
        let mut job = Job::new(Method::Infer);
        job.seq_len = 10;
        job.new_tokens = 6;
        job.batch_size = 3;
        let e = estimate(&c, &job);
        // 2 layers x (k+v) x kv_dim 4 x 16 tokens x 3 seqs x 2 B.
        assert_eq!(bytes(&e, "kv cache"), 2 * 2 * 4 * 16 * 3 * 2);
        assert_eq!(bytes(&e, "logits"), 3 * 10 * 4);
        assert!(e.get("gradients").is_none());
    }

    #[test]
    fn logits_term_by_hand_and_dpo_doubles_tokens() {
        let c = tiny();
        let mut job = Job::new(Method::Lora);
        job.batch_size = 2;
        job.seq_len = 5;
        job.loss = LossImpl::Full;
        let e = estimate(&c, &job);
        // bf16 logits' cached block 2 B + fp32 log-softmax and two fp32
        // gradients 12 B per logit.
        assert_eq!(bytes(&e, "logits + loss"), 2 * 5 * 10 * 14);
        job.method = Method::DpoLora;
        let d = estimate(&c, &job);
        assert_eq!(bytes(&d, "logits + loss"), 2 * 2 * 5 * 10 * 14);
        // An fp32 model has no separate 16-bit copy.
        job.dtype = Dtype::F32;
        let f = estimate(&c, &job);
        assert_eq!(bytes(&f, "logits + loss"), 2 * 2 * 5 * 10 * 12);
        job.dtype = Dtype::Bf16;
        // Chunked: all logits in bf16 plus one chunk (here all 20 tokens) of
        // fp32 upcast + log-softmax + gradient.
        job.loss = LossImpl::Chunked;
        let d = estimate(&c, &job);
        assert_eq!(bytes(&d, "logits + loss"), 20 * 10 * 2 + 20 * 10 * 12);
    }

    #[test]
    fn checkpointing_and_zero_reduce_memory() {
        let c = tiny();
        let mut job = Job::new(Method::Full);
        job.seq_len = 512;
        job.gradient_checkpointing = false;
        let no_ckpt = estimate(&c, &job);
        job.gradient_checkpointing = true;
        let ckpt = estimate(&c, &job);
        assert!(bytes(&ckpt, "activations") < bytes(&no_ckpt, "activations"));
        job.gpus = 4;
        job.zero = 3;
        let z3 = estimate(&c, &job);
        assert_eq!(bytes(&z3, "weights"), 1272 * 2 / 4);
        assert_eq!(bytes(&z3, "optimizer"), 1272 * 4 / 4);
    }

    #[test]
    fn candle_backend_counts_what_our_trainer_keeps() {
        let c = tiny();
        let mut job = Job::new(Method::Lora);
        job.backend = Backend::Candle;
        job.dtype = Dtype::F32;
        job.batch_size = 2;
        job.seq_len = 5;
        job.lora_rank = 2;
        job.target_modules = vec!["q_proj".into(), "v_proj".into()];
        let e = estimate(&c, &job);
        // f32 weights, LoRA 112 params with an f32 gradient and two moments.
        assert_eq!(bytes(&e, "weights"), 1272 * 4);
        assert_eq!(bytes(&e, "gradients"), 112 * 4);
        assert_eq!(bytes(&e, "optimizer"), 112 * 8);
        // The fused LoRA layers keep, per token and layer, 2h + 2q + 2kv +
        // 2i + 2 + 64 = 138 values (both layers fit the budget), plus the
        // final hidden states and their gradient; the layer being run works
        // in 10 x (4h + 3i + 2q + 2kv) = 10 x 104 values and two 5 x 5
        // attention blocks per thread.
        let acts = 10 * 138 * 2 * 4 + 2 * 10 * 8 * 4 + 10 * 104 * 4 + 2 * 2 * 25 * 4;
        assert_eq!(bytes(&e, "activations"), acts);
        // Full tuning runs candle's graph: layer inputs (2 layers +
        // embedding + head) x 10 tokens x 8 x 4 B, then one layer's working
        // set for the 2 sequences at once.
        let mut full = job.clone();
        full.method = Method::Full;
        let per_token = candle_layer_values_per_token(&c, &full, 5) * 4.0 * CANDLE_BACKWARD_FACTOR;
        let acts = 4 * 10 * 8 * 4 + (per_token * 10.0) as u64;
        assert_eq!(bytes(&estimate(&c, &full), "activations"), acts);
        // No CUDA context; the process baseline instead.
        assert!(e.get("overhead").unwrap().bytes as f64 >= CANDLE_RUNTIME_BYTES);
        // NF4 as our loader stores it: 4-bit codes + an f32 scale per 64.
        job.method = Method::Qlora;
        job.quant = Quant::Nf4 { double_quant: true };
        let q = estimate(&c, &job);
        let expect = 1152.0 * (0.5 + 4.0 / 64.0) + 120.0 * 4.0;
        assert_eq!(bytes(&q, "weights"), expect as u64);
        // DPO with LoRA goes through the fused head too, over chosen and
        // rejected (twice the tokens).
        job.method = Method::DpoLora;
        job.quant = Quant::None;
        let d = estimate(&c, &job);
        let rows = (crate::planner::chunks::head_chunk_rows(10) as f64).min(20.0);
        assert_eq!(
            bytes(&d, "logits + loss"),
            (3.0 * rows * 10.0 * 4.0 + 4.0 * 20.0 * 8.0 * 4.0) as u64
        );
        // Full DPO trains the head: the plain path, whole logits.
        job.method = Method::DpoFull;
        assert_eq!(
            bytes(&estimate(&c, &job), "logits + loss"),
            (CANDLE_UNFUSED_LOGIT_COPIES * 20.0 * 10.0 * 4.0) as u64
        );
        job.method = Method::DpoLora;
        // The torch model of the same job is a different one.
        job.backend = Backend::Torch;
        assert_ne!(estimate(&c, &job).total_bytes, d.total_bytes);
    }

    #[test]
    fn eager_attention_grows_quadratically() {
        let c = tiny();
        let mut job = Job::new(Method::Lora);
        job.gradient_checkpointing = false;
        job.attention = Attention::Eager;
        job.seq_len = 1000;
        let a = bytes(&estimate(&c, &job), "activations") as f64;
        job.seq_len = 2000;
        let b = bytes(&estimate(&c, &job), "activations") as f64;
        assert!(
            b / a > 3.0,
            "eager attention should be ~quadratic: {a} -> {b}"
        );
    }
}
