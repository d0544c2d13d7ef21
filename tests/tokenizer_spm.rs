//! SentencePiece-style GGUF vocabularies (`tokenizer.ggml.model = "llama"`,
//! merges recovered from scores) against transformers' GGUF converter
//! (fixtures/tokenizer/spm_tiny.json, made by make_spm_ids.py).

mod common;

use common::{ids, read_json, root};
use serde_json::Value;
use swift::tokenizer::gguf_vocab::GgufVocab;
use swift::tokenizer::{StreamDecoder, Tokenizer};

fn fixture() -> Value {
    read_json(&root().join("fixtures/tokenizer/spm_tiny.json"))
}

fn tokenizer(fx: &Value) -> Tokenizer {
    let v = &fx["vocab"];
    let strs = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let vocab = GgufVocab {
        model: "llama".into(),
        tokens: strs("tokens"),
        scores: Some(
            v["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect(),
        ),
        token_types: Some(
            v["token_type"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect(),
        ),
        bos_id: Some(1),
        eos_id: Some(2),
        unk_id: Some(0),
        add_space_prefix: Some(true),
        ..Default::default()
    };
    Tokenizer::from_gguf_vocab(&vocab).unwrap()
}

#[test]
fn spm_ids_match_transformers_gguf_converter() {
    let fx = fixture();
    let tok = tokenizer(&fx);
    for c in fx["cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        let want = ids(&c["ids"]);
        let got = tok.encode(text, false).unwrap();
        assert_eq!(got, want, "text {text:?}");
        assert_eq!(
            tok.decode(&got, true).unwrap(),
            c["decoded"].as_str().unwrap(),
            "text {text:?}"
        );
    }
}

#[test]
fn spm_adds_bos_by_default_like_llama_cpp() {
    let fx = fixture();
    let tok = tokenizer(&fx);
    assert!(tok.adds_bos());
    assert_eq!(tok.encode("hello", true).unwrap(), [1, 274]);
    assert_eq!(tok.eos_ids(), [2]);
}

#[test]
fn spm_stream_decoding_keeps_spaces_and_characters() {
    let fx = fixture();
    let tok = tokenizer(&fx);
    let text = "hello world 日本 é  abc";
    let ids = tok.encode(text, false).unwrap();
    let mut d = StreamDecoder::new(&tok, true);
    let mut out = String::new();
    for &id in &ids {
        if let Some(c) = d.step(id).unwrap() {
            assert!(!c.contains('\u{FFFD}'));
            out.push_str(&c);
        }
    }
    out.extend(d.flush().unwrap());
    assert_eq!(out, tok.decode(&ids, true).unwrap());
    assert_eq!(out, text);
}

#[test]
fn spm_save_reload() {
    let fx = fixture();
    let tok = tokenizer(&fx);
    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    let back = Tokenizer::from_dir(dir.path()).unwrap();
    for t in ["hello world", "héllo\nworld é", "<s>x"] {
        assert_eq!(back.encode(t, true).unwrap(), tok.encode(t, true).unwrap());
    }
}

#[test]
fn spm_folder_to_gguf_metadata_and_back() {
    use swift::model::gguf::{write_gguf, GgufValue};
    let fx = fixture();
    let tok = tokenizer(&fx);
    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    let folder = Tokenizer::from_dir(dir.path()).unwrap();
    let mut meta = vec![(
        "general.architecture".to_string(),
        GgufValue::String("llama".into()),
    )];
    meta.extend(folder.gguf_metadata().unwrap());
    let model = meta
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.model")
        .unwrap();
    assert_eq!(model.1.as_str(), Some("llama"));
    let path = dir.path().join("t.gguf");
    write_gguf(&path, &meta, &[]).unwrap();
    let back = Tokenizer::load(&path).unwrap();
    for c in fx["cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        assert_eq!(
            back.encode(text, false).unwrap(),
            ids(&c["ids"]),
            "text {text:?}"
        );
    }
    assert_eq!(back.encode("hello", true).unwrap(), [1, 274]);
}
