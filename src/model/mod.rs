//! Model config, loaders (safetensors, GGUF), the decoder, linear layers
//! (dense | quantized | LoRA), KV cache.
//!
//! # Public API (others build on it; keep it stable)
//!
//! ```no_run
//! use swift::model::{KvCache, LoadOptions, Model};
//! use candle_core::{Device, Tensor};
//! # fn main() -> anyhow::Result<()> {
//! // A folder (config.json + safetensors) or a .gguf file; adapters are PEFT folders.
//! let opts = LoadOptions { adapters: vec![] };
//! let model = Model::load(std::path::Path::new("model.gguf"), &opts)?;
//! let cfg = model.config(); // &ModelConfig
//! // Prefill a batch of 2 rows, the second left-padded by 1 token (pad ids are ignored).
//! let ids = Tensor::new(&[[1u32, 2, 3], [0, 5, 6]], &Device::Cpu)?;
//! let mut cache = KvCache::with_left_padding(&model, vec![0, 1]);
//! let logits = model.forward(&ids, &mut cache)?; // [B, T, vocab] f32
//! // Decode one more token per row: only the last position's logits.
//! let next = Tensor::new(&[[7u32], [8]], &Device::Cpu)?;
//! let last = model.forward_last(&next, &mut cache)?; // [B, vocab]
//! // log p(ids[i+1] | ids[..=i])
//! let lp = model.token_logprobs(&[1, 2, 3, 4])?;
//! # Ok(()) }
//! ```
//!
//! * [`Model::forward_ids`]: the same on plain slices (`Vec<f32>` logits).
//! * [`Model::forward_train`]: differentiable candle forward (training).
//! * [`linear::Linear`]: `Dense | Quantized | Lora`; [`quant`]: GGUF block
//!   kernels; [`gguf::GgufFile`]: the GGUF reader; [`export::write_hf`]: write
//!   a model as an HF folder (f32 safetensors + config.json);
//!   [`testing::write_tiny_model`]: tiny random models for tests.

pub mod adapter;
pub mod attention;
pub mod batched;
pub mod config;
pub mod decoder;
pub mod forward;
pub mod generate;
pub mod gguf;
pub mod linear;
pub mod load;
pub mod merge;
pub mod pool;
pub mod quant;
pub mod sampling;
pub mod vmath;

pub use decoder::{KvCache, LoadOptions, Model};
pub mod export;
pub mod testing;
