//! The GGUF reader and `ModelConfig::from_gguf` on the SmolLM2 test model.

mod common;

use common::smollm2;
use swift::model::config::{Family, ModelConfig};
use swift::model::gguf::{GgmlType, GgufFile};

#[test]
fn reads_smollm2_metadata_and_tensors() {
    let g = GgufFile::open(smollm2()).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.get_u64("llama.block_count"), Some(30));
    assert_eq!(g.get_str("tokenizer.ggml.pre"), Some("smollm"));
    assert_eq!(g.tensors.len(), 272);
    let emb = g.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dtype, GgmlType::Q8_0);
    assert_eq!(emb.shape(), vec![49152, 576]);
    let q = g.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.dtype, GgmlType::Q4_1);
    assert_eq!(g.tensor_data(q).len(), 576 * 576 / 32 * 20);
}

#[test]
fn config_from_smollm2_gguf() {
    let g = GgufFile::open(smollm2()).unwrap();
    let c = ModelConfig::from_gguf(&g).unwrap();
    assert_eq!(c.family, Family::Llama);
    assert_eq!(c.hidden_size, 576);
    assert_eq!(c.intermediate_size, 1536);
    assert_eq!(c.num_hidden_layers, 30);
    assert_eq!(c.num_attention_heads, 9);
    assert_eq!(c.num_key_value_heads, 3);
    assert_eq!(c.head_dim, 64);
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.max_position_embeddings, 8192);
    assert_eq!(c.rope_theta, 100000.0);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-9);
    assert!(c.tie_word_embeddings);
    assert!(!c.attention_bias);
    assert!(!c.qk_norm);
    assert_eq!(c.eos_token_ids, vec![2]);
    assert_eq!(c.bos_token_id, Some(1));
}

#[test]
fn non_gguf_and_truncated_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("model.gguf");
    std::fs::write(&bad, b"{\"not\": \"gguf\"}").unwrap();
    let e = format!("{:#}", GgufFile::open(&bad).unwrap_err());
    assert!(e.contains("not a GGUF file"), "{e}");
    let bytes = std::fs::read(smollm2()).unwrap();
    let t = dir.path().join("trunc.gguf");
    std::fs::write(&t, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", GgufFile::open(&t).unwrap_err());
    assert!(e.contains("truncated"), "{e}");
    let e = format!(
        "{:#}",
        GgufFile::open(dir.path().join("nope.gguf")).unwrap_err()
    );
    assert!(e.contains("nope.gguf"), "{e}");
}
