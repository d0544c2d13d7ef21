//! The working-set sizes swift's CPU trainer obeys. They live in the planner
//! because the planner owns them: the memory model predicts a step's peak
//! from these very numbers, and the trainer takes them from here (never the
//! other way round), so the estimate and the run cannot drift apart.

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
