//! The working-set sizes swift's CPU trainer obeys. They live in the planner
//! because the planner owns them: the memory model predicts a step's peak
//! from these very numbers, and the trainer takes them from here (never the
//! other way round), so the estimate and the run cannot drift apart.

use crate::model::config::ModelConfig;

/// Tokens a decoder layer runs at once in the trainer's forward and backward:
/// the batch goes through each layer in groups of `max(1, LAYER_TOKENS / T)`
/// sequences, so the working set of one layer (its graph, the attention
/// scores) is that of a group, not of the whole batch. Layers never mix
/// sequences, so the result is the same as one pass over the whole batch.
pub const LAYER_TOKENS: usize = 256;

/// Sequences per layer group for a batch of `b` sequences of `t` tokens.
pub fn layer_group(b: usize, t: usize) -> usize {
    (LAYER_TOKENS / t.max(1)).clamp(1, b.max(1))
}

/// f32 values in one chunk of logits (`rows x vocab`) of the fused output
/// head: about 8 MiB.
pub const HEAD_CHUNK_FLOATS: usize = 2 << 20;

/// Token rows per chunk of the fused output head for a vocabulary of `vocab`.
pub fn head_chunk_rows(vocab: usize) -> usize {
    (HEAD_CHUNK_FLOATS / vocab.max(1)).clamp(8, 1024)
}

/// f32 values the fused training layer keeps per token of a decoder layer
/// for its backward: the layer input and the residual after attention, q, k
/// (and their un-normed copies under Qwen3's per-head norms), v, the
/// attention output, the MLP's gate and up, two `1 / rms`, and the LoRAs'
/// low-rank products (counted as 64 values: rank 8 on seven projections).
pub fn saved_values_per_token(cfg: &ModelConfig) -> usize {
    let (h, q, kv, i) = (
        cfg.hidden_size,
        cfg.q_dim(),
        cfg.kv_dim(),
        cfg.intermediate_size,
    );
    let qk_norm = if cfg.qk_norm { q + kv } else { 0 };
    2 * h + 2 * q + 2 * kv + qk_norm + 2 * i + 2 + 64
}

/// Bytes of kept activations (layers whose backward then needs no
/// recomputation) the trainer allows itself per micro-batch.
pub const KEPT_ACTIVATION_BYTES: usize = 384 << 20;

/// How many layers (the first ones) keep their activations for `tokens`
/// packed tokens at `values` f32 per token: as many as fit
/// [`KEPT_ACTIVATION_BYTES`]. The others keep their input only and are
/// recomputed, one at a time, in the backward; so memory grows with the
/// batch up to the budget, and the work by one layer forward per layer over it.
pub fn kept_layers(tokens: usize, values: usize, layers: usize) -> usize {
    (KEPT_ACTIVATION_BYTES / (tokens * values * 4).max(1)).min(layers)
}
