//! The llama-family decoder: Llama 2/3 (+ llama3 rope scaling), SmolLM,
//! Mistral (sliding window), Qwen2/2.5 (qkv bias), Qwen3 (q/k RMSNorm),
//! tied or untied embeddings, GQA.
//!
//! Two forwards over the same weights:
//! * [`Model::forward`] / [`Model::forward_last`]: inference with a
//!   [`KvCache`] and a batch with left padding, on plain f32 buffers with the
//!   exact quantized kernels of [`super::quant`] (fast, no autograd): the
//!   one inference forward of [`super::forward`], which the server's
//!   batched step runs too.
//! * [`Model::forward_train`]: the same function on candle tensors with
//!   differentiable ops only (no fused rope/softmax/rms_norm), for training.

use super::adapter;
use super::config::{Family, ModelConfig};
use super::forward::{self, KvStore, Scratch};
use super::gguf::GgufFile;
use super::linear::{with_f32, Linear, RowKernel};
use super::load::WeightSource;
use super::quant::{self, QWeight};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// PEFT adapter folders to apply (in order) without merging.
    pub adapters: Vec<PathBuf>,
}

/// The token embedding table.
#[derive(Clone, Debug)]
pub enum Embedding {
    /// `[vocab, hidden]` f32.
    Dense(Tensor),
    /// GGUF blocks (rows dequantized on lookup).
    Quantized(Arc<QWeight>),
}

/// One decoder layer (HF names).
#[derive(Clone, Debug)]
pub struct Layer {
    pub input_layernorm: Tensor,
    pub post_attention_layernorm: Tensor,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    /// Qwen3: RMSNorm over each head of q / k (`[head_dim]`).
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
}

impl Layer {
    /// The linear layer with this HF module name (`q_proj`, ..., `down_proj`).
    pub fn linear_mut(&mut self, module: &str) -> Option<&mut Linear> {
        Some(match module {
            "q_proj" => &mut self.q_proj,
            "k_proj" => &mut self.k_proj,
            "v_proj" => &mut self.v_proj,
            "o_proj" => &mut self.o_proj,
            "gate_proj" => &mut self.gate_proj,
            "up_proj" => &mut self.up_proj,
            "down_proj" => &mut self.down_proj,
            _ => return None,
        })
    }

    /// The linear layer with this HF module name.
    pub fn linear(&self, module: &str) -> Option<&Linear> {
        Some(match module {
            "q_proj" => &self.q_proj,
            "k_proj" => &self.k_proj,
            "v_proj" => &self.v_proj,
            "o_proj" => &self.o_proj,
            "gate_proj" => &self.gate_proj,
            "up_proj" => &self.up_proj,
            "down_proj" => &self.down_proj,
            _ => return None,
        })
    }
}

/// A loaded decoder.
#[derive(Clone, Debug)]
pub struct Model {
    cfg: ModelConfig,
    pub embed: Embedding,
    pub layers: Vec<Layer>,
    pub norm: Tensor,
    pub lm_head: Linear,
    /// Rotary inverse frequencies (`head_dim / 2`), scaling applied.
    inv_freq: Vec<f32>,
    /// Where it came from.
    pub source: PathBuf,
    /// The adapters applied, in order.
    pub adapters: Vec<PathBuf>,
}

/// Keys and values of past positions, per layer and batch row.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// `[layer][batch]` -> `[pos, kv_dim]` rows.
    k: Vec<Vec<Vec<f32>>>,
    v: Vec<Vec<Vec<f32>>>,
    len: usize,
    pads: Vec<usize>,
    kv_dim: usize,
    max_len: usize,
    /// The forward's working buffers, kept between steps.
    scratch: Scratch,
}

impl KvCache {
    /// An empty cache for `batch` rows without padding.
    pub fn new(model: &Model, batch: usize) -> KvCache {
        Self::with_left_padding(model, vec![0; batch])
    }

    /// An empty cache whose rows start with `pads[b]` padding tokens (left
    /// padding): those positions are never attended to, and the first real
    /// token of each row gets position 0.
    pub fn with_left_padding(model: &Model, pads: Vec<usize>) -> KvCache {
        let c = &model.cfg;
        let b = pads.len();
        KvCache {
            k: vec![vec![Vec::new(); b]; c.num_hidden_layers],
            v: vec![vec![Vec::new(); b]; c.num_hidden_layers],
            len: 0,
            pads,
            kv_dim: c.kv_dim(),
            max_len: c.max_position_embeddings,
            scratch: Scratch::default(),
        }
    }

    /// Positions held (including padding).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Batch rows.
    pub fn batch(&self) -> usize {
        self.pads.len()
    }

    /// Left padding per row.
    pub fn pads(&self) -> &[usize] {
        &self.pads
    }

    /// Drop everything after the first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            for layer in self.k.iter_mut().chain(self.v.iter_mut()) {
                for row in layer.iter_mut() {
                    row.truncate(len * self.kv_dim);
                }
            }
            self.len = len;
        }
    }

    /// Bytes held.
    pub fn n_bytes(&self) -> usize {
        self.k
            .iter()
            .chain(self.v.iter())
            .flat_map(|l| l.iter())
            .map(|r| r.len() * 4)
            .sum()
    }
}

impl KvStore for KvCache {
    fn append(&mut self, layer: usize, seq: usize, k: &[f32], v: &[f32]) {
        self.k[layer][seq].extend_from_slice(k);
        self.v[layer][seq].extend_from_slice(v);
    }

    fn get(&self, layer: usize, seq: usize) -> (&[f32], &[f32]) {
        (&self.k[layer][seq], &self.v[layer][seq])
    }
}

/// Give the heap pages freed so far back to the OS before the weights are
/// read. glibc keeps freed small blocks mapped; building a tokenizer from
/// GGUF metadata frees tens of MB of them, which would otherwise count on
/// top of the weights in the peak resident memory.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Rotary inverse frequencies with the config's scaling (HF semantics).
pub fn rope_inv_freq(cfg: &ModelConfig, gguf_factors: Option<&[f32]>) -> Vec<f32> {
    let hd = cfg.head_dim;
    let mut inv: Vec<f64> = (0..hd / 2)
        .map(|i| {
            let e = (2 * i) as f32 / hd as f32;
            1.0 / (cfg.rope_theta as f32).powf(e) as f64
        })
        .collect();
    if let Some(rs) = &cfg.rope_scaling {
        match rs.rope_type.as_str() {
            "llama3" => {
                let factor = rs.factor;
                let lo = rs.low_freq_factor.unwrap_or(1.0);
                let hi = rs.high_freq_factor.unwrap_or(4.0);
                let old = rs.original_max_position_embeddings.unwrap_or(8192) as f64;
                let lo_wl = old / lo;
                let hi_wl = old / hi;
                for f in inv.iter_mut() {
                    let wl = 2.0 * std::f64::consts::PI / *f;
                    if wl > lo_wl {
                        *f /= factor;
                    } else if wl >= hi_wl {
                        let smooth = (old / wl - lo) / (hi - lo);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
            "linear" => {
                for f in inv.iter_mut() {
                    *f /= rs.factor;
                }
            }
            _ => {}
        }
    } else if let Some(fac) = gguf_factors {
        for (f, d) in inv.iter_mut().zip(fac) {
            *f /= *d as f64;
        }
    }
    inv.into_iter().map(|f| f as f32).collect()
}

impl Model {
    /// Load a model: an HF folder (config.json + safetensors) or a `.gguf` file,
    /// then apply `opts.adapters`.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let mut m = if path.is_dir() {
            Self::load_hf(path)?
        } else if path.exists() {
            Self::load_gguf(path)?
        } else {
            bail!("model path {} does not exist", path.display());
        };
        for a in &opts.adapters {
            adapter::apply(&mut m, a)?;
        }
        Ok(m)
    }

    /// Load an HF folder.
    pub fn load_hf(dir: &Path) -> Result<Model> {
        let cfg = ModelConfig::from_path(dir)?;
        let src = WeightSource::hf(dir)?;
        Self::from_source(cfg, &src, None, dir)
    }

    /// Load an HF folder with the decoder layers' linear weights quantized
    /// to `t` (NF4 / Q8_0) as they are read: the frozen base of QLoRA.
    pub fn load_hf_quantized(dir: &Path, t: crate::model::gguf::GgmlType) -> Result<Model> {
        let cfg = ModelConfig::from_path(dir)?;
        let src = WeightSource::hf_quantized(dir, t)?;
        Self::from_source(cfg, &src, None, dir)
    }

    /// Load a GGUF file.
    pub fn load_gguf(path: &Path) -> Result<Model> {
        trim_heap();
        let mut file = GgufFile::open(path)?;
        let cfg = ModelConfig::from_gguf(&file)
            .with_context(|| format!("reading the model config from {}", path.display()))?;
        let factors = match file.tensor("rope_freqs.weight") {
            Some(t) => Some(quant::dequantize(t.dtype, file.tensor_data(t))?),
            None => None,
        };
        // The vocabulary and merges (~100k strings) are the tokenizer's
        // business: free them before the weights are read.
        file.metadata.retain(|k, _| !k.starts_with("tokenizer."));
        trim_heap();
        let src = WeightSource::gguf(file, cfg.clone())?;
        Self::from_source(cfg, &src, factors.as_deref(), path)
    }

    /// Build from a weight source.
    pub fn from_source(
        cfg: ModelConfig,
        src: &WeightSource,
        rope_factors: Option<&[f32]>,
        path: &Path,
    ) -> Result<Model> {
        if cfg.family == Family::Qwen {
            bail!("the original Qwen architecture (model_type: qwen) is not supported by the decoder yet");
        }
        let embed = match src.gguf_file() {
            Some(_)
                if src
                    .gguf_type("model.embed_tokens.weight")
                    .is_some_and(|t| t.is_quantized()) =>
            {
                match src.linear("model.embed_tokens.weight", None)? {
                    Linear::Quantized { weight, .. } => Embedding::Quantized(weight),
                    _ => unreachable!(),
                }
            }
            _ => Embedding::Dense(src.tensor("model.embed_tokens.weight")?),
        };
        let (vocab, hidden) = match &embed {
            Embedding::Dense(t) => t.dims2()?,
            Embedding::Quantized(q) => (q.rows, q.cols),
        };
        if hidden != cfg.hidden_size {
            bail!(
                "embedding width {hidden} differs from hidden_size {}",
                cfg.hidden_size
            );
        }
        let lm_head = if src.has("lm_head.weight") && !cfg.tie_word_embeddings
            || src.has("lm_head.weight") && src.gguf_file().is_some()
        {
            src.linear("lm_head.weight", None)?
        } else {
            match &embed {
                Embedding::Dense(t) => Linear::Dense {
                    weight: t.clone(),
                    bias: None,
                },
                Embedding::Quantized(q) => Linear::Quantized {
                    weight: q.clone(),
                    bias: None,
                },
            }
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let lin = |m: &str, bias: bool| -> Result<Linear> {
                let b = format!("{p}.{m}.bias");
                let l = src.linear(
                    &format!("{p}.{m}.weight"),
                    if bias { Some(b.as_str()) } else { None },
                )?;
                Ok(l)
            };
            let opt = |n: &str| -> Result<Option<Tensor>> {
                let n = format!("{p}.{n}");
                if src.has(&n) {
                    Ok(Some(src.tensor(&n)?))
                } else {
                    Ok(None)
                }
            };
            let layer = Layer {
                input_layernorm: src.tensor(&format!("{p}.input_layernorm.weight"))?,
                post_attention_layernorm: src
                    .tensor(&format!("{p}.post_attention_layernorm.weight"))?,
                q_proj: lin("self_attn.q_proj", true)?,
                k_proj: lin("self_attn.k_proj", true)?,
                v_proj: lin("self_attn.v_proj", true)?,
                o_proj: lin("self_attn.o_proj", false)?,
                gate_proj: lin("mlp.gate_proj", false)?,
                up_proj: lin("mlp.up_proj", false)?,
                down_proj: lin("mlp.down_proj", false)?,
                q_norm: opt("self_attn.q_norm.weight")?,
                k_norm: opt("self_attn.k_norm.weight")?,
            };
            let shapes = cfg.layer_linears();
            for s in shapes.iter() {
                let l = layer.linear(s.name).unwrap();
                if l.in_features() != s.in_features || l.out_features() != s.out_features {
                    bail!(
                        "layer {i} {}: weight is {}x{}, the config says {}x{}",
                        s.name,
                        l.out_features(),
                        l.in_features(),
                        s.out_features,
                        s.in_features
                    );
                }
            }
            layers.push(layer);
        }
        let norm = src.tensor("model.norm.weight")?;
        let mut cfg = cfg;
        cfg.vocab_size = vocab.max(lm_head.out_features());
        if lm_head.out_features() != vocab {
            bail!(
                "lm_head has {} rows but the embedding {vocab}",
                lm_head.out_features()
            );
        }
        let inv_freq = rope_inv_freq(&cfg, rope_factors);
        Ok(Model {
            cfg,
            embed,
            layers,
            norm,
            lm_head,
            inv_freq,
            source: path.to_path_buf(),
            adapters: Vec::new(),
        })
    }

    /// Rotary inverse frequencies (scaling applied), for other forwards
    /// (`model::batched`).
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Vocabulary size (rows of the output head).
    pub fn vocab_size(&self) -> usize {
        self.lm_head.out_features()
    }

    /// The device tensors live on.
    pub fn device(&self) -> Device {
        Device::Cpu
    }

    pub(crate) fn embed_rows(&self, ids: &[u32], out: &mut [f32]) -> Result<()> {
        let h = self.cfg.hidden_size;
        let vocab = self.vocab_size();
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(h)) {
            if id as usize >= vocab {
                bail!("token id {id} is out of range (vocabulary of {vocab})");
            }
            match &self.embed {
                Embedding::Quantized(q) => q.dequantize_row(id as usize, o),
                Embedding::Dense(t) => with_f32(t, |w| {
                    o.copy_from_slice(&w[id as usize * h..(id as usize + 1) * h])
                })?,
            }
        }
        Ok(())
    }

    fn ids_of(input_ids: &Tensor) -> Result<(Vec<u32>, usize, usize)> {
        let (b, t) = input_ids
            .dims2()
            .context("input_ids must be a [batch, seq] tensor")?;
        let ids: Vec<u32> = input_ids.to_dtype(DType::U32)?.flatten_all()?.to_vec1()?;
        Ok((ids, b, t))
    }

    /// Logits for every new position: `input_ids [B, T]` (u32) continue the
    /// sequences in `cache`; returns `[B, T, vocab]` f32.
    pub fn forward(&self, input_ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (ids, b, t) = Self::ids_of(input_ids)?;
        let v = self.forward_ids(&ids, b, cache, false)?;
        Ok(Tensor::from_vec(
            v,
            (b, t, self.vocab_size()),
            &Device::Cpu,
        )?)
    }

    /// Logits of the last new position only: `[B, vocab]`.
    pub fn forward_last(&self, input_ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (ids, b, _) = Self::ids_of(input_ids)?;
        let v = self.forward_ids(&ids, b, cache, true)?;
        Ok(Tensor::from_vec(v, (b, self.vocab_size()), &Device::Cpu)?)
    }

    /// The fast path on plain slices: `ids` holds `b` rows of equal length.
    /// Returns `[b, vocab]` (last_only) or `[b, t, vocab]` logits, flattened.
    pub fn forward_ids(
        &self,
        ids: &[u32],
        b: usize,
        cache: &mut KvCache,
        last_only: bool,
    ) -> Result<Vec<f32>> {
        if b == 0 || ids.len() % b != 0 {
            bail!("{} ids do not split into {b} rows", ids.len());
        }
        if cache.batch() != b {
            bail!("the KV cache holds {} rows, the input {b}", cache.batch());
        }
        let t = ids.len() / b;
        if t == 0 {
            bail!("no input tokens");
        }
        let start = cache.len;
        if start + t > cache.max_len {
            bail!(
                "sequence of {} tokens exceeds the model's context length {}",
                start + t,
                cache.max_len
            );
        }
        let seqs: Vec<forward::Seq> = cache
            .pads
            .iter()
            .map(|&pad| forward::Seq {
                rows: t,
                start,
                pad,
                all_logits: !last_only,
            })
            .collect();
        let mut scratch = std::mem::take(&mut cache.scratch);
        let out = forward::forward(self, ids, &seqs, cache, &mut scratch, RowKernel::Fastest);
        cache.scratch = scratch;
        let logits = out?;
        cache.len = start + t;
        Ok(logits)
    }

    /// `log p(ids[i+1] | ids[..=i])` for every i (length `ids.len() - 1`).
    pub fn token_logprobs(&self, ids: &[u32]) -> Result<Vec<f32>> {
        if ids.len() < 2 {
            return Ok(Vec::new());
        }
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            bail!("token id {bad} is out of range (vocabulary of {vocab})");
        }
        let mut cache = KvCache::new(self, 1);
        let logits = self.forward_ids(&ids[..ids.len() - 1], 1, &mut cache, false)?;
        Ok(logits
            .chunks_exact(vocab)
            .zip(&ids[1..])
            .map(|(row, &next)| log_softmax_at(row, next as usize))
            .collect())
    }

    /// Differentiable forward on candle tensors (no cache): `input_ids [B, T]`
    /// with optional left padding per row; returns `[B, T, vocab]` logits.
    /// `train` enables LoRA dropout.
    pub fn forward_train(
        &self,
        input_ids: &Tensor,
        left_pad: Option<&[usize]>,
        train: bool,
    ) -> Result<Tensor> {
        let x = self.forward_train_hidden(input_ids, left_pad, train)?;
        self.lm_head.forward_t(&x, train)
    }

    /// [`Model::forward_train`] up to the final norm: `[B, T, hidden]`. The
    /// trainer applies `lm_head` only to the positions that have a label.
    pub fn forward_train_hidden(
        &self,
        input_ids: &Tensor,
        left_pad: Option<&[usize]>,
        train: bool,
    ) -> Result<Tensor> {
        let (mut x, ctx) = self.train_embed(input_ids, left_pad)?;
        for i in 0..self.layers.len() {
            x = self.train_layer(i, &x, &ctx, train)?;
        }
        self.train_final_norm(&x)
    }

    /// The final RMSNorm of the training forward.
    pub fn train_final_norm(&self, x: &Tensor) -> Result<Tensor> {
        rms_norm(x, &self.norm, self.cfg.rms_norm_eps)
    }

    /// First piece of the training forward: embeddings `[B, T, hidden]` and
    /// the rotary tables and mask every layer uses (so the trainer can run
    /// layer by layer and recompute a layer in the backward pass).
    pub fn train_embed(
        &self,
        input_ids: &Tensor,
        left_pad: Option<&[usize]>,
    ) -> Result<(Tensor, TrainContext)> {
        let c = &self.cfg;
        let dev = Device::Cpu;
        let (b, t) = input_ids.dims2()?;
        let pads: Vec<usize> = match left_pad {
            Some(p) if p.len() == b => p.to_vec(),
            Some(p) => bail!("{} pad counts for {b} rows", p.len()),
            None => vec![0; b],
        };
        let (h, hd) = (c.hidden_size, c.head_dim);
        let ids = input_ids.to_dtype(DType::U32)?;
        let x = match &self.embed {
            Embedding::Dense(w) => w.embedding(&ids.flatten_all()?)?.reshape((b, t, h))?,
            Embedding::Quantized(_) => {
                let flat: Vec<u32> = ids.flatten_all()?.to_vec1()?;
                let mut buf = vec![0f32; flat.len() * h];
                self.embed_rows(&flat, &mut buf)?;
                Tensor::from_vec(buf, (b, t, h), &dev)?
            }
        };
        // cos/sin [B, 1, T, hd] (HF: cat(freqs, freqs)).
        let half = hd / 2;
        let mut cosv = vec![0f32; b * t * hd];
        let mut sinv = vec![0f32; b * t * hd];
        let mut maskv = vec![0f32; b * t * t];
        for bi in 0..b {
            for ti in 0..t {
                let pos = ti.saturating_sub(pads[bi]) as f32;
                for i in 0..half {
                    let f = pos * self.inv_freq[i];
                    let r = (bi * t + ti) * hd;
                    cosv[r + i] = f.cos();
                    cosv[r + i + half] = f.cos();
                    sinv[r + i] = f.sin();
                    sinv[r + i + half] = f.sin();
                }
                for j in 0..t {
                    let lo = match c.sliding_window {
                        Some(w) if ti + 1 > w => ti + 1 - w,
                        _ => 0,
                    };
                    let ok = (j <= ti && j >= pads[bi] && j >= lo) || (ti < pads[bi] && j == ti);
                    maskv[(bi * t + ti) * t + j] = if ok { 0.0 } else { f32::NEG_INFINITY };
                }
            }
        }
        let ctx = TrainContext {
            cos: Tensor::from_vec(cosv, (b, 1, t, hd), &dev)?,
            sin: Tensor::from_vec(sinv, (b, 1, t, hd), &dev)?,
            mask: Tensor::from_vec(maskv, (b, 1, t, t), &dev)?,
        };
        Ok((x, ctx))
    }

    /// Decoder layer `i` of the training forward: `x [B, T, hidden]` in and out.
    pub fn train_layer(
        &self,
        i: usize,
        x: &Tensor,
        ctx: &TrainContext,
        train: bool,
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let layer = &self.layers[i];
        let (b, t, _) = x.dims3()?;
        let hd = c.head_dim;
        let (nh, nkv) = (c.num_attention_heads, c.num_key_value_heads);
        let eps = c.rms_norm_eps;
        let half = hd / 2;
        let rope = |x: &Tensor| -> Result<Tensor> {
            let x1 = x.narrow(D::Minus1, 0, half)?;
            let x2 = x.narrow(D::Minus1, half, half)?;
            let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
            Ok((x.broadcast_mul(&ctx.cos)? + rot.broadcast_mul(&ctx.sin)?)?)
        };
        let scale = 1.0 / (hd as f64).sqrt();
        let hs = rms_norm(x, &layer.input_layernorm, eps)?;
        let q = layer
            .q_proj
            .forward_t(&hs, train)?
            .reshape((b, t, nh, hd))?
            .transpose(1, 2)?;
        let k = layer
            .k_proj
            .forward_t(&hs, train)?
            .reshape((b, t, nkv, hd))?
            .transpose(1, 2)?;
        let v = layer
            .v_proj
            .forward_t(&hs, train)?
            .reshape((b, t, nkv, hd))?
            .transpose(1, 2)?;
        let q = match &layer.q_norm {
            Some(w) => rms_norm(&q, w, eps)?,
            None => q,
        };
        let k = match &layer.k_norm {
            Some(w) => rms_norm(&k, w, eps)?,
            None => k,
        };
        let q = rope(&q.contiguous()?)?;
        let k = rope(&k.contiguous()?)?;
        let rep = nh / nkv;
        let (k, v) = if rep > 1 {
            let k = k
                .unsqueeze(2)?
                .expand((b, nkv, rep, t, hd))?
                .reshape((b, nh, t, hd))?;
            let v = v
                .unsqueeze(2)?
                .expand((b, nkv, rep, t, hd))?
                .reshape((b, nh, t, hd))?;
            (k, v)
        } else {
            (k.contiguous()?, v.contiguous()?)
        };
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&ctx.mask)?;
        let mx = scores.max_keepdim(D::Minus1)?.detach();
        let e = scores.broadcast_sub(&mx)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        let a = p
            .matmul(&v.contiguous()?)?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        let x = (x + layer.o_proj.forward_t(&a, train)?)?;
        let hs = rms_norm(&x, &layer.post_attention_layernorm, eps)?;
        let gg = layer.gate_proj.forward_t(&hs, train)?.silu()?;
        let uu = layer.up_proj.forward_t(&hs, train)?;
        Ok((x + layer.down_proj.forward_t(&(gg * uu)?, train)?)?)
    }
}

/// What every layer of the training forward shares: rotary tables
/// `[B, 1, T, head_dim]` and the additive attention mask `[B, 1, T, T]`.
#[derive(Clone, Debug)]
pub struct TrainContext {
    pub cos: Tensor,
    pub sin: Tensor,
    pub mask: Tensor,
}

/// Differentiable RMSNorm over the last dimension.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = x.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(xn.broadcast_mul(w)?)
}

/// `log softmax(row)[i]`, computed stably in f64.
pub fn log_softmax_at(row: &[f32], i: usize) -> f32 {
    let mx = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let s: f64 = row.iter().map(|&v| (v as f64 - mx).exp()).sum();
    (row[i] as f64 - mx - s.ln()) as f32
}
