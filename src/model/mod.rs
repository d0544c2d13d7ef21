//! Model config, loaders (safetensors, GGUF), the decoder, linear layers
//! (dense | quantized | LoRA), KV cache.

pub mod config;
pub mod gguf;
pub mod sampling;
