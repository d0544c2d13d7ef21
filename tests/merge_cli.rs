//! `swift merge`: adapters folded into the weights give the same numbers as
//! the unmerged pair (tiny models of every architecture, and SmolLM2 against
//! PyTorch's reference numbers), conversions GGUF <-> HF keep the model,
//! errors are clear, and memory stays bounded by the largest tensor.

mod common;

use common::{
    max_diff, python_has, reference, reference_dir, root, s, smollm2, smollm2_tokenizer, swift,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use swift::model::gguf::GgmlType;
use swift::model::merge::{merge, MergeOptions, OutFormat};
use swift::model::testing::{write_random_adapter, write_tiny_model, TINY_ARCHS};
use swift::model::{LoadOptions, Model};
use swift::progress::NoProgress;
use swift::tokenizer::Tokenizer;

fn opts(base: &Path, adapters: &[PathBuf], out: &Path) -> MergeOptions {
    MergeOptions {
        base: base.to_path_buf(),
        adapters: adapters.to_vec(),
        output: out.to_path_buf(),
        format: OutFormat::Hf,
        dtype: Some(GgmlType::F32),
        quant: GgmlType::F32,
        keep_base_types: false,
        max_shard_bytes: 5_000_000_000,
        force: false,
    }
}

const IDS: [u32; 12] = [5, 17, 200, 33, 71, 9, 250, 64, 101, 3, 44, 12];

#[test]
fn merged_tiny_models_match_the_unmerged_pair() {
    for (i, arch) in TINY_ARCHS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let cfg = write_tiny_model(&base, arch, 11 + i as u64).unwrap();
        let ad = dir.path().join("adapter");
        write_random_adapter(&ad, &cfg, 4, 8.0, true, "tiny", 5 + i as u64).unwrap();
        let ad2 = dir.path().join("adapter2");
        write_random_adapter(&ad2, &cfg, 2, 4.0, false, "tiny", 99 + i as u64).unwrap();
        let adapters = vec![ad.clone(), ad2.clone()];
        let unmerged = Model::load(
            &base,
            &LoadOptions {
                adapters: adapters.clone(),
            },
        )
        .unwrap();
        let want = unmerged.token_logprobs(&IDS).unwrap();
        let plain = Model::load(&base, &LoadOptions::default()).unwrap();
        assert!(
            max_diff(&plain.token_logprobs(&IDS).unwrap(), &want) > 1e-3,
            "{arch}: the adapters change nothing"
        );

        // HF folder, f32.
        let out = dir.path().join("merged");
        let report = merge(&opts(&base, &adapters, &out), &NoProgress).unwrap();
        assert!(
            report.merged_tensors >= 7 * cfg.num_hidden_layers,
            "{arch}: {report:?}"
        );
        let merged = Model::load(&out, &LoadOptions::default()).unwrap();
        let got = merged.token_logprobs(&IDS).unwrap();
        assert!(
            max_diff(&got, &want) < 1e-4,
            "{arch}: merged {got:?} vs unmerged {want:?}"
        );
        // The lm_head LoRA unties a tied head; the embedding stays the base's.
        let c: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(c["tie_word_embeddings"], Value::Bool(false), "{arch}");
        assert!(
            Tokenizer::load(&out).is_ok(),
            "{arch}: tokenizer not written"
        );

        // A GGUF straight from the HF base + adapters (f32: exact).
        let gg = dir.path().join("merged.gguf");
        let mut o = opts(&base, &adapters, &gg);
        o.format = OutFormat::Gguf;
        merge(&o, &NoProgress).unwrap();
        let from_gguf = Model::load(&gg, &LoadOptions::default()).unwrap();
        let got = from_gguf.token_logprobs(&IDS).unwrap();
        assert!(
            max_diff(&got, &want) < 1e-4,
            "{arch} gguf: {got:?} vs {want:?}"
        );
        let tok = Tokenizer::load(&gg).unwrap();
        assert_eq!(
            tok.encode("hello world", false).unwrap(),
            Tokenizer::load(&base)
                .unwrap()
                .encode("hello world", false)
                .unwrap(),
            "{arch}: GGUF tokenizer"
        );

        // And back: GGUF -> HF without adapters is a plain conversion.
        let back = dir.path().join("back");
        merge(&opts(&gg, &[], &back), &NoProgress).unwrap();
        let m = Model::load(&back, &LoadOptions::default()).unwrap();
        assert!(
            max_diff(&m.token_logprobs(&IDS).unwrap(), &want) < 1e-4,
            "{arch}: gguf -> hf"
        );
    }
}

/// A GGUF merge that keeps the base's types copies every tensor the adapter
/// leaves alone bit for bit, writes the changed ones as --quant, and
/// computes what the all-f32 merge computes (up to q8_0 rounding of the
/// changed tensors). Adapters written before `swift_adapter.json` (their
/// record in `adapter_config.json`) still merge, and their record is read.
#[test]
fn gguf_merge_keeping_the_base_types_changes_only_the_adapted_tensors() {
    use swift::model::export::{write_safetensors, RawTensor};
    use swift::model::gguf::GgufFile;
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    let cfg = write_tiny_model(&hf, "llama", 21).unwrap();
    let base = dir.path().join("base.q4_1.gguf");
    let mut o = opts(&hf, &[], &base);
    o.format = OutFormat::Gguf;
    o.quant = GgmlType::Q4_1;
    merge(&o, &NoProgress).unwrap();
    // An adapter on three modules only (q and k: the permuted ones).
    let ad = dir.path().join("adapter");
    write_random_adapter(&ad, &cfg, 4, 8.0, false, "tiny", 8).unwrap();
    let st = ad.join("adapter_model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    let all = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let keep = [
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.k_proj",
        "model.layers.1.mlp.down_proj",
    ];
    let subset: Vec<RawTensor> = all
        .tensors()
        .into_iter()
        .filter(|(n, _)| keep.iter().any(|k| n.contains(&format!("{k}.lora_"))))
        .map(|(n, v)| RawTensor {
            name: n,
            shape: v.shape().to_vec(),
            dtype: v.dtype(),
            data: v.data().to_vec(),
        })
        .collect();
    assert_eq!(subset.len(), 6);
    write_safetensors(&st, &subset).unwrap();
    // As an older swift wrote it: its record inside peft's config.
    let cfg_path = ad.join("adapter_config.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    c["swift_quantization"] =
        serde_json::json!({"method": "nf4", "bits": 4, "block_size": 64, "double_quant": false});
    std::fs::write(&cfg_path, c.to_string()).unwrap();

    let kept = dir.path().join("kept.gguf");
    let mut o = opts(&base, std::slice::from_ref(&ad), &kept);
    o.format = OutFormat::Gguf;
    o.quant = GgmlType::Q8_0;
    o.keep_base_types = true;
    let r = merge(&o, &NoProgress).unwrap();
    assert_eq!(r.merged_tensors, 3, "{r:?}");
    assert_eq!(r.dtype, "q4_1+q8_0");
    assert!(
        r.notes.len() == 1 && r.notes[0].contains("nf4"),
        "{:?}",
        r.notes
    );
    let a = GgufFile::open(&base).unwrap();
    let b = GgufFile::open(&kept).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    assert_eq!(r.kept_tensors, a.tensors.len() - 3);
    let changed = [
        "blk.0.attn_q.weight",
        "blk.0.attn_k.weight",
        "blk.1.ffn_down.weight",
    ];
    for t in &a.tensors {
        let u = b.tensor(&t.name).unwrap();
        if changed.contains(&t.name.as_str()) {
            assert_eq!(t.dtype, GgmlType::Q4_1, "{}", t.name);
            assert_eq!(u.dtype, GgmlType::Q8_0, "{}", t.name);
        } else {
            assert_eq!(u.dtype, t.dtype, "{}", t.name);
            assert!(
                a.tensor_data(t) == b.tensor_data(u),
                "{}: blocks differ",
                t.name
            );
        }
    }
    assert_eq!(
        b.get_u64("general.file_type"),
        a.get_u64("general.file_type")
    );
    // The same function as the all-f32 merge of the same base and adapter.
    let f32_out = dir.path().join("f32.gguf");
    let mut o = opts(&base, std::slice::from_ref(&ad), &f32_out);
    o.format = OutFormat::Gguf;
    o.quant = GgmlType::F32;
    merge(&o, &NoProgress).unwrap();
    let want = Model::load(&f32_out, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    let got = Model::load(&kept, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    let plain = Model::load(&base, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    let d = max_diff(&got, &want);
    assert!(
        d < 0.1 * max_diff(&plain, &want),
        "kept {got:?} vs f32 {want:?} (base {plain:?})"
    );
    // Keeping types needs a GGUF base.
    let mut o = opts(&hf, std::slice::from_ref(&ad), &dir.path().join("x.gguf"));
    o.format = OutFormat::Gguf;
    o.keep_base_types = true;
    let e = merge(&o, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("GGUF base"), "{e}");
}

#[test]
fn tied_model_without_head_adapter_stays_tied_and_dtype_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let cfg = write_tiny_model(&base, "qwen2-tied", 3).unwrap();
    let ad = dir.path().join("adapter");
    write_random_adapter(&ad, &cfg, 4, 8.0, false, "tiny", 4).unwrap();
    let out = dir.path().join("merged");
    let r = merge(&opts(&base, std::slice::from_ref(&ad), &out), &NoProgress).unwrap();
    assert!(r.tied_embeddings);
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["tie_word_embeddings"], Value::Bool(true));
    let header = std::fs::read(out.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(header[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&header[8..8 + n]).unwrap();
    assert!(h.get("lm_head.weight").is_none());
    let want = Model::load(&base, &LoadOptions { adapters: vec![ad] })
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    let got = Model::load(&out, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    assert!(max_diff(&got, &want) < 1e-4, "{got:?} vs {want:?}");

    // Without --dtype the base's dtype is kept (the tiny mistral is f16).
    let base = dir.path().join("f16");
    let cfg = write_tiny_model(&base, "mistral", 3).unwrap();
    let ad = dir.path().join("adapter16");
    write_random_adapter(&ad, &cfg, 4, 8.0, false, "tiny", 4).unwrap();
    let out = dir.path().join("merged16");
    let mut o = opts(&base, std::slice::from_ref(&ad), &out);
    o.dtype = None;
    let r = merge(&o, &NoProgress).unwrap();
    assert_eq!(r.dtype, "f16");
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["torch_dtype"], "float16");
    let want = Model::load(&base, &LoadOptions { adapters: vec![ad] })
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    let got = Model::load(&out, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    assert!(
        max_diff(&got, &want) < 0.02,
        "f16 rounding only: {got:?} vs {want:?}"
    );
}

#[test]
fn sharded_output_has_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_tiny_model(&base, "llama", 8).unwrap();
    let out = dir.path().join("sharded");
    let o = swift(&[
        "merge",
        "--model",
        s(&base),
        "--output",
        s(&out),
        "--max-shard-size",
        "100kB",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "hf");
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let files: std::collections::BTreeSet<&str> = index["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(files.len() > 1, "{files:?}");
    let a = Model::load(&base, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    let b = Model::load(&out, &LoadOptions::default())
        .unwrap()
        .token_logprobs(&IDS)
        .unwrap();
    assert!(max_diff(&a, &b) < 1e-5);
}

#[test]
fn errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let cfg = write_tiny_model(&base, "llama", 1).unwrap();
    // An adapter for a model with more layers.
    let mut big = cfg.clone();
    big.num_hidden_layers += 3;
    let deep = dir.path().join("deep");
    write_random_adapter(&deep, &big, 2, 4.0, false, "tiny", 1).unwrap();
    let o = swift(&[
        "merge",
        "--model",
        s(&base),
        "--adapter",
        s(&deep),
        "--output",
        s(&dir.path().join("o1")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("which the base model has no weight for"),
        "{err}"
    );
    assert!(!dir.path().join("o1").exists());
    // An adapter of another shape.
    let mut wide = cfg.clone();
    wide.intermediate_size *= 2;
    let other = dir.path().join("other");
    write_random_adapter(&other, &wide, 2, 4.0, false, "tiny", 1).unwrap();
    let o = swift(&[
        "merge",
        "--model",
        s(&base),
        "--adapter",
        s(&other),
        "--output",
        s(&dir.path().join("o2")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("adapter trained on another model?"), "{err}");
    // The output exists.
    let out = dir.path().join("o3");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), "x").unwrap();
    let o = swift(&["merge", "--model", s(&base), "--output", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert!(out.join("keep").exists());
    let o = swift(&["merge", "--model", s(&base), "--output", s(&out), "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("keep").exists() && out.join("model.safetensors").exists());
    // A different recorded base name only warns.
    let named = dir.path().join("named");
    write_random_adapter(&named, &cfg, 2, 4.0, false, "someone/OtherModel-7B", 2).unwrap();
    let o = swift(&[
        "merge",
        "--model",
        s(&base),
        "--adapter",
        s(&named),
        "--output",
        s(&dir.path().join("o4")),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("was trained on someone/OtherModel-7B"));
    // No temporary leftovers beside the outputs.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp-"), "left behind: {n}");
    }
    // A missing base.
    let o = swift(&[
        "merge",
        "--model",
        s(&dir.path().join("nope")),
        "--output",
        s(&dir.path().join("o5")),
    ]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn reference_adapter_merged_into_smollm2_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged");
    let refdir = reference_dir();
    let o = swift(&[
        "merge",
        "--model",
        s(&smollm2()),
        "--adapter",
        s(&refdir.join("adapter")),
        "--output",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["merged_tensors"], 30 * 7);
    let merged = Model::load(&out, &LoadOptions::default()).unwrap();
    let unmerged = Model::load(
        &smollm2(),
        &LoadOptions {
            adapters: vec![refdir.join("adapter")],
        },
    )
    .unwrap();
    let reference: Value = reference();
    let tok_gguf = smollm2_tokenizer();
    let tok_out = Tokenizer::load(&out).unwrap();
    let mut worst = 0f32;
    for case in reference["cases"].as_array().unwrap() {
        let ids: Vec<u32> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let want: Vec<f32> = case["with_adapter"]["token_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let got = merged.token_logprobs(&ids).unwrap();
        let e = max_diff(&got, &want);
        worst = worst.max(e);
        assert!(e < 1e-3, "{}: merged vs PyTorch {e}", case["name"]);
        let e2 = max_diff(&got, &unmerged.token_logprobs(&ids).unwrap());
        assert!(e2 < 1e-4, "{}: merged vs unmerged {e2}", case["name"]);
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok_out.encode(text, false).unwrap(),
            tok_gguf.encode(text, false).unwrap()
        );
    }
    eprintln!("max |log-prob error| of the merged folder vs PyTorch: {worst:.2e}");
    assert_eq!(tok_out.chat_template(), tok_gguf.chat_template());
    assert_eq!(tok_out.eos_ids(), tok_gguf.eos_ids());
}

#[test]
fn smollm2_gguf_to_hf_to_gguf_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    let o = swift(&["merge", "--model", s(&smollm2()), "--output", s(&hf)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let original = Model::load(&smollm2(), &LoadOptions::default()).unwrap();
    let ids = Tokenizer::load(&smollm2())
        .unwrap()
        .encode(
            "The capital of France is Paris, and the capital of Italy is",
            false,
        )
        .unwrap();
    let want = original.token_logprobs(&ids).unwrap();
    // Tolerances: f16 rounding; q8_0 blocks; q4_1 differs from the file only
    // in its token embedding (Q8_0 there), checked block for block below.
    let mut swift_answer = String::new();
    for (quant, tol) in [("f16", 0.02f32), ("q8_0", 0.25), ("q4_1", 1.0)] {
        let gg = dir.path().join(format!("back-{quant}.gguf"));
        let o = swift(&[
            "merge",
            "--model",
            s(&hf),
            "--output",
            s(&gg),
            "--format",
            "gguf",
            "--quant",
            quant,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m = Model::load(&gg, &LoadOptions::default()).unwrap();
        let e = max_diff(&m.token_logprobs(&ids).unwrap(), &want);
        eprintln!("{quant}: max |log-prob difference| after GGUF -> HF -> GGUF: {e:.3e}");
        assert!(e < tol, "{quant}: {e}");
        let o = swift(&[
            "infer",
            "--model",
            s(&gg),
            "--prompt",
            "What is the capital of France?",
            "--temperature",
            "0",
            "--max-new-tokens",
            "12",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let answer = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(answer.contains("Paris"), "{quant}: {answer}");
        swift_answer = answer;
    }
    // Requantizing the dequantized Q4_1 weights as Q4_1 gives back the very
    // same blocks (the file's token embedding is Q8_0, ours Q4_1).
    let a = swift::model::gguf::GgufFile::open(smollm2()).unwrap();
    let b = swift::model::gguf::GgufFile::open(dir.path().join("back-q4_1.gguf")).unwrap();
    let mut same = 0;
    for t in &a.tensors {
        let u = b
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!(t.dims, u.dims, "{}", t.name);
        if t.name != "token_embd.weight" {
            assert_eq!(t.dtype, u.dtype, "{}", t.name);
            assert!(
                a.tensor_data(t) == b.tensor_data(u),
                "{}: blocks differ",
                t.name
            );
            same += 1;
        }
    }
    assert_eq!(same, a.tensors.len() - 1);
    // llama.cpp itself loads what we wrote and answers as we do, when
    // llama-cpp-python is installed (CI installs it; see .ci/run).
    let check = root().join("fixtures/merge_llama_cpp.py");
    if python_has(
        "llama_cpp",
        "SWIFT_REQUIRE_LLAMA_CPP",
        "fixtures/install-llama-cpp.sh",
        "the GGUF was not loaded in llama.cpp",
    ) {
        let gg = dir.path().join("back-q4_1.gguf");
        let o = std::process::Command::new("python3")
            .arg(&check)
            .arg(&gg)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "llama.cpp could not run {}: {}",
            gg.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let answer = String::from_utf8_lossy(&o.stdout);
        assert!(
            answer.contains("Paris"),
            "llama.cpp answered {answer}, swift {swift_answer}"
        );
    }
}

/// A model of ~440 MB merges in a small fraction of that.
#[test]
fn merge_memory_is_bounded_by_the_largest_tensor() {
    use swift::model::export::{config_json, write_safetensors, RawTensor};
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("big");
    std::fs::create_dir_all(&base).unwrap();
    let mut cfg = swift::model::testing::tiny_config("llama").unwrap();
    cfg.hidden_size = 1024;
    cfg.intermediate_size = 2816;
    cfg.num_hidden_layers = 8;
    cfg.num_attention_heads = 16;
    cfg.num_key_value_heads = 16;
    cfg.head_dim = 64;
    cfg.vocab_size = 8192;
    cfg.tie_word_embeddings = true;
    let (h, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let t = |name: &str, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let data: Vec<u8> = (0..n)
            .flat_map(|i| (((i * 7919) % 1000) as f32 * 1e-5).to_le_bytes())
            .collect();
        RawTensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype: safetensors::Dtype::F32,
            data,
        }
    };
    let mut total = 0usize;
    let mut shard = 0;
    let mut put = |ts: Vec<RawTensor>, total: &mut usize| {
        *total += ts.iter().map(|t| t.data.len()).sum::<usize>();
        write_safetensors(&base.join(format!("part-{shard}.safetensors")), &ts).unwrap();
        shard += 1;
    };
    put(
        vec![
            t("model.embed_tokens.weight", &[v, h]),
            t("model.norm.weight", &[h]),
        ],
        &mut total,
    );
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        put(
            vec![
                t(&format!("{p}.input_layernorm.weight"), &[h]),
                t(&format!("{p}.post_attention_layernorm.weight"), &[h]),
                t(&format!("{p}.self_attn.q_proj.weight"), &[h, h]),
                t(&format!("{p}.self_attn.k_proj.weight"), &[h, h]),
                t(&format!("{p}.self_attn.v_proj.weight"), &[h, h]),
                t(&format!("{p}.self_attn.o_proj.weight"), &[h, h]),
                t(&format!("{p}.mlp.gate_proj.weight"), &[f, h]),
                t(&format!("{p}.mlp.up_proj.weight"), &[f, h]),
                t(&format!("{p}.mlp.down_proj.weight"), &[h, f]),
            ],
            &mut total,
        );
    }
    std::fs::write(
        base.join("config.json"),
        serde_json::to_string(&config_json(&cfg)).unwrap(),
    )
    .unwrap();
    let ad = dir.path().join("adapter");
    write_random_adapter(&ad, &cfg, 8, 16.0, false, "big", 1).unwrap();
    let out = dir.path().join("merged");
    let o = swift(&[
        "merge",
        "--model",
        s(&base),
        "--adapter",
        s(&ad),
        "--output",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let peak = v["peak_rss_bytes"].as_u64().expect("peak_rss_bytes");
    eprintln!(
        "model {:.0} MB, merge peak RSS {:.0} MB",
        total as f64 / 1e6,
        peak as f64 / 1e6
    );
    assert!(total > 400_000_000);
    assert!(
        (peak as usize) < total / 3,
        "peak {peak} for a model of {total} bytes"
    );
    assert_eq!(v["merged_tensors"], 7 * 8);
}
