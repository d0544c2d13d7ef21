//! The SmolLM2 GGUF's tokenizer against the reference token ids
//! (PyTorch + transformers) and SmolLM2's own tokenizer pipeline.

mod common;

use std::path::Path;

use common::{ids, read_json, root, smollm2, smollm2_tokenizer};
use serde_json::Value;
use swift::model::gguf::GgufFile;
use swift::tokenizer::{Message, StopMatcher, StreamDecoder, Tokenizer};

fn ids_fixture() -> Value {
    read_json(&root().join("fixtures/tokenizer/smollm2_ids.json"))
}

#[test]
fn reference_ids_match_transformers() {
    let tok = smollm2_tokenizer();
    assert!(tok.warnings().is_empty(), "{:?}", tok.warnings());
    let fx = ids_fixture();
    let cases = fx["reference"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want = ids(&c["input_ids"]);
        let got = tok.encode(text, true).unwrap();
        assert_eq!(got, want, "case {}", c["name"]);
        assert_eq!(tok.decode(&got, false).unwrap(), text, "case {}", c["name"]);
    }
}

#[test]
fn fixture_copy_matches_shared_reference() {
    // The committed copy must agree with ../shared/reference when it exists.
    let shared = root().join("../shared/reference/smollm2/reference.json");
    if !shared.exists() {
        return;
    }
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&shared).unwrap()).unwrap();
    let fx = ids_fixture();
    for (a, b) in r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fx["reference"].as_array().unwrap())
    {
        assert_eq!(a["text"], b["text"]);
        assert_eq!(a["input_ids"], b["input_ids"]);
    }
}

#[test]
fn harder_strings_match_smollm2_pipeline() {
    let tok = smollm2_tokenizer();
    for c in ids_fixture()["extra"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        let got = tok.encode(text, true).unwrap();
        assert_eq!(got, ids(&c["input_ids"]), "text {text:?}");
        assert_eq!(tok.decode(&got, false).unwrap(), text);
    }
}

#[test]
fn digits_are_split_one_by_one() {
    let tok = smollm2_tokenizer();
    let got = tok.encode("2024", false).unwrap();
    assert_eq!(got.len(), 4, "{got:?}");
    let pieces: Vec<String> = got.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(pieces, ["2", "0", "2", "4"]);
}

#[test]
fn special_tokens_and_eos() {
    let tok = smollm2_tokenizer();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(tok.id_to_token(1).as_deref(), Some("<|im_start|>"));
    // GGUF eos is <|im_end|> and the template ends turns with it.
    assert_eq!(tok.eos_ids(), [2]);
    assert!(tok.is_eos(2));
    assert!(!tok.adds_bos());
    assert!(tok.is_special(0) && tok.is_special(1) && !tok.is_special(504));
    assert_eq!(tok.decode(&[1, 4093, 198, 2], true).unwrap(), "user\n");
}

#[test]
fn chat_template_renders_the_reference_prompts() {
    let tok = smollm2_tokenizer();
    let fx = ids_fixture();
    let cases = fx["reference"].as_array().unwrap();
    let want = |name: &str| {
        cases.iter().find(|c| c["name"] == name).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let s = tok
        .apply_chat_template(&[Message::user("What is the capital of France?")], true)
        .unwrap();
    assert_eq!(s, want("chat-capital"));
    let s = tok
        .apply_chat_template(
            &[
                Message::system("You answer in one short sentence."),
                Message::user("Why is the sky blue?"),
            ],
            true,
        )
        .unwrap();
    assert_eq!(s, want("chat-system"));
    assert_eq!(tok.encode(&s, false).unwrap(), ids(&cases[3]["input_ids"]));
}

#[test]
fn greedy_answers_decode_and_stream() {
    let tok = smollm2_tokenizer();
    for c in ids_fixture()["reference"].as_array().unwrap() {
        let Some(g) = c.get("greedy_ids") else {
            continue;
        };
        let g = ids(g);
        let want = c["greedy_text"].as_str().unwrap();
        assert_eq!(tok.decode(&g, false).unwrap(), want);

        // Streaming: chunks concatenate to decode(); generation stops at eos.
        let mut dec = StreamDecoder::new(&tok, false);
        let mut out = String::new();
        for &id in &g {
            if tok.is_eos(id) {
                break;
            }
            if let Some(chunk) = dec.step(id).unwrap() {
                out.push_str(&chunk);
            }
        }
        let want_no_eos = want.trim_end_matches("<|im_end|>");
        assert_eq!(out, want_no_eos);

        // Stop strings hold back partial matches and cut at the match.
        let mut stop = StopMatcher::new(&[" blue", "Paris"]);
        let mut dec = StreamDecoder::new(&tok, true);
        let mut shown = String::new();
        let mut hit = None;
        for &id in &g {
            if let Some(chunk) = dec.step(id).unwrap() {
                let r = stop.push(&chunk);
                shown.push_str(&r.text);
                if r.stopped.is_some() {
                    hit = r.stopped;
                    break;
                }
            }
        }
        let cut = [" blue", "Paris"]
            .iter()
            .filter_map(|s| want_no_eos.find(s))
            .min()
            .unwrap();
        assert!(hit.is_some());
        assert_eq!(shown, want_no_eos[..cut]);
    }
}

#[test]
fn stream_decoding_multibyte_text_matches_decode() {
    let tok = smollm2_tokenizer();
    let text = "naïve café — “quotes” 日本語のテキスト 🦀🚀 emoji<|im_end|>";
    let ids = tok.encode(text, false).unwrap();
    let mut dec = StreamDecoder::new(&tok, false);
    let mut chunks = Vec::new();
    for &id in &ids {
        if let Some(c) = dec.step(id).unwrap() {
            assert!(!c.contains('\u{FFFD}'), "split character in {c:?}");
            chunks.push(c);
        }
    }
    chunks.extend(dec.flush().unwrap());
    assert!(chunks.len() > 5);
    assert_eq!(chunks.concat(), tok.decode(&ids, false).unwrap());
    assert_eq!(chunks.concat(), text);
}

#[test]
fn saved_folder_reloads_identically() {
    let tok = smollm2_tokenizer();
    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["chat_template"].as_str(), tok.chat_template());
    assert_eq!(cfg["eos_token"], "<|im_end|>");
    assert_eq!(cfg["add_bos_token"], false);

    let back = Tokenizer::load(dir.path()).unwrap();
    assert_eq!(back.eos_ids(), tok.eos_ids());
    assert_eq!(back.bos_id(), tok.bos_id());
    assert_eq!(back.chat_template(), tok.chat_template());
    let fx = ids_fixture();
    for c in fx["reference"]
        .as_array()
        .unwrap()
        .iter()
        .chain(fx["extra"].as_array().unwrap())
    {
        let text = c["text"].as_str().unwrap();
        assert_eq!(back.encode(text, true).unwrap(), ids(&c["input_ids"]));
    }
    // Loading by the tokenizer.json path works too.
    let again = Tokenizer::load(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!(again.vocab_size(), tok.vocab_size());
}

#[test]
fn from_gguf_and_load_agree() {
    let g = GgufFile::open(smollm2()).unwrap();
    let a = Tokenizer::from_gguf(&g).unwrap();
    let b = smollm2_tokenizer();
    let text = "Hello 123 <|im_start|>";
    assert_eq!(a.encode(text, true).unwrap(), b.encode(text, true).unwrap());
}

#[test]
fn missing_or_bad_paths_are_clear_errors() {
    let err = Tokenizer::load(Path::new("/nonexistent/model.gguf")).unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    let dir = tempfile::tempdir().unwrap();
    let err = Tokenizer::load(dir.path()).unwrap_err();
    assert!(format!("{err:#}").contains("tokenizer.json"), "{err:#}");
    let bad = dir.path().join("x.gguf");
    std::fs::write(&bad, b"not a gguf").unwrap();
    assert!(Tokenizer::load(&bad).is_err());
}

#[test]
fn gguf_metadata_round_trips_from_gguf_and_from_folder() {
    use swift::model::gguf::write_gguf;
    let g = GgufFile::open(smollm2()).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let dir = tempfile::tempdir().unwrap();
    tok.save(&dir.path().join("hf")).unwrap();
    let from_folder = Tokenizer::from_dir(&dir.path().join("hf")).unwrap();

    for (label, t) in [("gguf", &tok), ("folder", &from_folder)] {
        let meta = t.gguf_metadata().unwrap();
        let get = |k: &str| {
            meta.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        // The vocabulary written is the one the original file holds.
        for key in [
            "tokenizer.ggml.model",
            "tokenizer.ggml.pre",
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.merges",
            "tokenizer.ggml.token_type",
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.add_bos_token",
            "tokenizer.chat_template",
        ] {
            let want = g.get(key).unwrap();
            let got = get(key).unwrap_or_else(|| panic!("{label}: {key} missing"));
            match (want.as_array(), got.as_array()) {
                (Some(a), Some(b)) => {
                    assert_eq!(a.len(), b.len(), "{label}: {key}");
                    for (x, y) in a.iter().zip(b) {
                        assert_eq!(
                            (x.as_str(), x.as_i64()),
                            (y.as_str(), y.as_i64()),
                            "{label}: {key}"
                        );
                    }
                }
                _ => assert_eq!(
                    (want.as_str(), want.as_u64(), want.as_bool()),
                    (got.as_str(), got.as_u64(), got.as_bool()),
                    "{label}: {key}"
                ),
            }
        }
        // And a GGUF written with it loads back to the same tokenizer.
        let path = dir.path().join(format!("{label}.gguf"));
        let mut all = vec![(
            "general.architecture".to_string(),
            swift::model::gguf::GgufValue::String("llama".into()),
        )];
        all.extend(meta);
        write_gguf(&path, &all, &[]).unwrap();
        let back = Tokenizer::load(&path).unwrap();
        for c in ids_fixture()["extra"].as_array().unwrap() {
            let text = c["text"].as_str().unwrap();
            assert_eq!(
                back.encode(text, true).unwrap(),
                ids(&c["input_ids"]),
                "{label}"
            );
        }
        assert_eq!(back.eos_ids(), tok.eos_ids());
        assert_eq!(back.chat_template(), tok.chat_template());
    }
}
