//! Hugging Face folders: how tokenizer_config.json, chat_template.jinja,
//! special_tokens_map.json and generation_config.json shape the tokenizer.
//! The folder is the SmolLM2 GGUF's tokenizer saved by swift, then edited.

mod common;

use std::path::Path;

use common::smollm2_tokenizer;
use serde_json::{json, Value};
use swift::tokenizer::{Message, Tokenizer};

fn smollm2_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    smollm2_tokenizer().save(dir.path()).unwrap();
    dir
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let p = dir.join("tokenizer_config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn generation_config_eos_list_joins_eos_ids() {
    let dir = smollm2_dir();
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"bos_token_id": 1, "eos_token_id": [2, 0]}"#,
    )
    .unwrap();
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(t.eos_ids(), [2, 0]);
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"eos_token_id": 0}"#,
    )
    .unwrap();
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(t.eos_ids(), [2, 0]);
}

#[test]
fn template_end_of_turn_tokens_become_eos() {
    // A fine-tuned model whose config says eos = <|endoftext|> but whose
    // template ends turns with <|im_end|> must still stop at <|im_end|>.
    let dir = smollm2_dir();
    edit_config(dir.path(), |c| {
        c.insert("eos_token".into(), json!("<|endoftext|>"));
    });
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(t.eos_ids(), [0, 2]);
    assert_eq!(t.eos_token(), Some("<|endoftext|>"));
}

#[test]
fn chat_template_jinja_file_wins_and_lists_are_understood() {
    let dir = smollm2_dir();
    edit_config(dir.path(), |c| {
        c.insert(
            "chat_template".into(),
            json!([
                {"name": "tool_use", "template": "TOOLS"},
                {"name": "default", "template": "{% for m in messages %}[{{ m.content }}]{% endfor %}"}
            ]),
        );
    });
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(
        t.apply_chat_template(&[Message::user("a"), Message::assistant("b")], false)
            .unwrap(),
        "[a][b]"
    );
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "{{ bos_token }}{{ messages[0].content }}<|endoftext|>\n",
    )
    .unwrap();
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(
        t.apply_chat_template(&[Message::user("x")], true).unwrap(),
        "<|im_start|>x<|endoftext|>"
    );
    assert!(t.eos_ids().contains(&0), "{:?}", t.eos_ids());
}

#[test]
fn special_tokens_map_fills_missing_tokens() {
    let dir = smollm2_dir();
    edit_config(dir.path(), |c| {
        c.remove("eos_token");
        c.remove("bos_token");
    });
    std::fs::write(
        dir.path().join("special_tokens_map.json"),
        r#"{"bos_token": {"content": "<|im_start|>", "special": true}, "eos_token": "<|endoftext|>"}"#,
    )
    .unwrap();
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(t.bos_id(), Some(1));
    assert_eq!(t.eos_ids()[0], 0);
}

#[test]
fn add_bos_and_clean_up_flags() {
    let dir = smollm2_dir();
    edit_config(dir.path(), |c| {
        c.insert("add_bos_token".into(), json!(true));
        c.insert("clean_up_tokenization_spaces".into(), json!(true));
    });
    let t = Tokenizer::from_dir(dir.path()).unwrap();
    let ids = t.encode("Hi , there .", true).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(&ids[1..], t.encode("Hi , there .", false).unwrap());
    assert_eq!(t.decode(&ids, true).unwrap(), "Hi, there.");
}

#[test]
fn no_template_is_a_clear_error_and_builtins_fill_in() {
    let dir = smollm2_dir();
    edit_config(dir.path(), |c| {
        c.remove("chat_template");
    });
    let mut t = Tokenizer::from_dir(dir.path()).unwrap();
    assert!(t.chat_template().is_none());
    let err = t
        .apply_chat_template(&[Message::user("x")], true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("chatml"), "{err:#}");
    t.use_builtin_template("chatml").unwrap();
    assert_eq!(
        t.apply_chat_template(&[Message::user("x")], true).unwrap(),
        "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(t.eos_ids(), [2]);
    t.use_builtin_template("alpaca").unwrap();
    assert!(t.stop_strings().iter().any(|s| s == "### Instruction:"));
}
