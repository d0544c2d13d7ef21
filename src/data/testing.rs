//! A tiny byte-level tokenizer with a ChatML template, for fast data tests
//! (here and in `tests/data_*.rs`): every byte of plain text is one token,
//! and `<|endoftext|>` (0), `<|im_start|>` (1), `<|im_end|>` (2, eos) are
//! special tokens.

use crate::tokenizer::gguf_vocab::{bytes_to_unicode, GgufVocab};
use crate::tokenizer::Tokenizer;

/// The ChatML template the tiny tokenizer carries.
pub const TINY_TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Build the tiny tokenizer.
pub fn tiny_tokenizer() -> Tokenizer {
    let table = bytes_to_unicode();
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    let mut types = vec![3, 3, 3];
    for b in 0..=255u8 {
        tokens.push(table[b as usize].to_string());
        types.push(1);
    }
    let v = GgufVocab {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        token_types: Some(types),
        merges: Some(Vec::new()),
        bos_id: Some(1),
        eos_id: Some(2),
        unk_id: Some(0),
        pad_id: Some(2),
        add_bos: Some(false),
        chat_template: Some(TINY_TEMPLATE.into()),
        ..Default::default()
    };
    Tokenizer::from_gguf_vocab(&v).expect("the tiny tokenizer builds")
}
