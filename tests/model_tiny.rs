//! Tiny random models of every architecture: loading, forward, batching with
//! left padding, KV-cache decode, LoRA, the candle (training) forward, export.

mod common;

use candle_core::{Device, Tensor};
use common::{max_diff, write_adapter};
use swift::model::testing::{write_tiny_model, TINY_ARCHS};
use swift::model::{KvCache, LoadOptions, Model};

fn load(arch: &str, seed: u64) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), arch, seed).unwrap();
    let m = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    (dir, m)
}

const PROMPT: [u32; 9] = [10, 200, 37, 268, 99, 4, 150, 271, 7];

#[test]
fn every_arch_loads_and_is_a_few_hundred_kb() {
    for arch in TINY_ARCHS {
        let (dir, m) = load(arch, 1);
        let size: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(size < 1_000_000, "{arch}: {size} bytes");
        let c = m.config();
        assert_eq!(
            c.tie_word_embeddings,
            arch.ends_with("-tied") || arch == "qwen3",
            "{arch}"
        );
        let lp = m.token_logprobs(&PROMPT).unwrap();
        assert_eq!(lp.len(), PROMPT.len() - 1);
        assert!(
            lp.iter().all(|v| v.is_finite() && *v < 0.0),
            "{arch}: {lp:?}"
        );
        // A different seed gives a different model.
        let (_d2, m2) = load(arch, 2);
        assert_ne!(lp, m2.token_logprobs(&PROMPT).unwrap(), "{arch}");
        // The tokenizer loads with the tokenizers crate and round-trips.
        let tok = tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
        let enc = tok.encode("the cat sat<|im_end|>", false).unwrap();
        assert!(enc.get_ids().contains(&270), "{:?}", enc.get_ids());
        assert_eq!(
            tok.decode(enc.get_ids(), false).unwrap(),
            "the cat sat<|im_end|>"
        );
    }
}

#[test]
fn kv_cache_decode_equals_full_forward() {
    for arch in TINY_ARCHS {
        let (_d, m) = load(arch, 3);
        let v = m.vocab_size();
        let mut c = KvCache::new(&m, 1);
        let full = m.forward_ids(&PROMPT, 1, &mut c, false).unwrap();
        let mut c = KvCache::new(&m, 1);
        let mut step = m.forward_ids(&PROMPT[..4], 1, &mut c, false).unwrap();
        for &t in &PROMPT[4..] {
            step.extend(m.forward_ids(&[t], 1, &mut c, false).unwrap());
        }
        assert_eq!(c.len(), PROMPT.len());
        let d = max_diff(&full, &step);
        assert!(d < 1e-4, "{arch}: {d}");
        // Tensor API: forward_last equals the last row.
        let mut c = KvCache::new(&m, 1);
        let ids = Tensor::new(&PROMPT[..], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let last: Vec<f32> = m
            .forward_last(&ids, &mut c)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            max_diff(&last, &full[(PROMPT.len() - 1) * v..]) < 1e-4,
            "{arch}"
        );
    }
}

#[test]
fn left_padded_batch_equals_unbatched() {
    for arch in TINY_ARCHS {
        let (_d, m) = load(arch, 4);
        let v = m.vocab_size();
        let a: Vec<u32> = PROMPT.to_vec();
        let b: Vec<u32> = vec![5, 6, 7, 8, 9];
        let pad = a.len() - b.len();
        let mut ids = a.clone();
        ids.extend(std::iter::repeat_n(0, pad));
        ids.extend(&b);
        let mut cache = KvCache::with_left_padding(&m, vec![0, pad]);
        let batched = m.forward_ids(&ids, 2, &mut cache, false).unwrap();
        // Then one decode step for both rows.
        let step = m.forward_ids(&[11, 12], 2, &mut cache, true).unwrap();
        for (row, seq, p, next) in [(0, &a, 0, 11u32), (1, &b, pad, 12)] {
            let mut c = KvCache::new(&m, 1);
            let single = m.forward_ids(seq, 1, &mut c, false).unwrap();
            let t = a.len();
            let got = &batched[(row * t + p) * v..(row + 1) * t * v];
            let d = max_diff(got, &single);
            assert!(d < 1e-4, "{arch} row {row}: {d}");
            let s1 = m.forward_ids(&[next], 1, &mut c, true).unwrap();
            let d = max_diff(&step[row * v..(row + 1) * v], &s1);
            assert!(d < 1e-4, "{arch} row {row} decode: {d}");
        }
        // The candle (training) forward agrees with the fast path, padding included.
        let t = Tensor::from_vec(ids.clone(), (2, a.len()), &Device::Cpu).unwrap();
        let tr: Vec<f32> = m
            .forward_train(&t, Some(&[0, pad]), false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for row in 0..2 {
            let p = if row == 0 { 0 } else { pad };
            let tt = a.len();
            let d = max_diff(
                &tr[(row * tt + p) * v..(row + 1) * tt * v],
                &batched[(row * tt + p) * v..(row + 1) * tt * v],
            );
            assert!(d < 1e-3, "{arch} train row {row}: {d}");
        }
    }
}

#[test]
fn lora_with_zero_b_changes_nothing_and_nonzero_b_does() {
    for arch in ["llama", "qwen2", "qwen3"] {
        let dir = tempfile::tempdir().unwrap();
        let mdir = dir.path().join("m");
        write_tiny_model(&mdir, arch, 5).unwrap();
        let base = Model::load(&mdir, &LoadOptions::default()).unwrap();
        let want = base.token_logprobs(&PROMPT).unwrap();
        let zero = dir.path().join("zero");
        write_adapter(&base, &zero, 0.5, 4, true, 1);
        let m0 = Model::load(
            &mdir,
            &LoadOptions {
                adapters: vec![zero.clone()],
            },
        )
        .unwrap();
        assert_eq!(m0.token_logprobs(&PROMPT).unwrap(), want, "{arch}");
        let nz = dir.path().join("nz");
        write_adapter(&base, &nz, 0.5, 4, false, 2);
        let mut m1 = Model::load(
            &mdir,
            &LoadOptions {
                adapters: vec![nz.clone()],
            },
        )
        .unwrap();
        let got = m1.token_logprobs(&PROMPT).unwrap();
        assert!(
            max_diff(&got, &want) > 1e-3,
            "{arch}: adapter had no effect"
        );
        // Two adapters stack; the zero one adds nothing.
        let m2 = Model::load(
            &mdir,
            &LoadOptions {
                adapters: vec![nz.clone(), zero],
            },
        )
        .unwrap();
        assert!(max_diff(&m2.token_logprobs(&PROMPT).unwrap(), &got) < 1e-6);
        // Merged export equals the unmerged adapter.
        let out = dir.path().join("merged");
        swift::model::export::write_hf(&m1, &out, &Default::default()).unwrap();
        let merged = Model::load(&out, &LoadOptions::default()).unwrap();
        assert!(
            max_diff(&merged.token_logprobs(&PROMPT).unwrap(), &got) < 1e-4,
            "{arch} merged"
        );
        // Gradients reach the LoRA through the candle forward.
        for l in m1.layers[0].q_proj.loras_mut() {
            l.a = candle_core::Var::from_tensor(&l.a)
                .unwrap()
                .as_tensor()
                .clone();
            l.b = candle_core::Var::from_tensor(&l.b)
                .unwrap()
                .as_tensor()
                .clone();
        }
        let ids = Tensor::new(&PROMPT[..], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = m1.forward_train(&ids, None, true).unwrap();
        let loss = logits.sqr().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        let lora = &m1.layers[0].q_proj.loras()[0];
        assert!(
            grads.get(&lora.b).is_some(),
            "{arch}: no gradient for lora_B"
        );
        let ga = grads.get(&lora.a).unwrap();
        let ga_norm: f32 = ga.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(ga_norm > 0.0, "{arch}: zero gradient for lora_A");
    }
}

#[test]
fn export_round_trip_and_sharding() {
    for arch in TINY_ARCHS {
        let (_d, m) = load(arch, 6);
        let want = m.token_logprobs(&PROMPT).unwrap();
        let out = tempfile::tempdir().unwrap();
        let opts = swift::model::export::ExportOptions {
            merge_adapters: true,
            max_shard_bytes: 100_000,
        };
        swift::model::export::write_hf(&m, out.path(), &opts).unwrap();
        assert!(
            out.path().join("model.safetensors.index.json").exists(),
            "{arch}: not sharded"
        );
        let back = Model::load(out.path(), &LoadOptions::default()).unwrap();
        assert_eq!(back.config().family, m.config().family);
        assert!(
            max_diff(&back.token_logprobs(&PROMPT).unwrap(), &want) < 1e-5,
            "{arch}"
        );
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (dir, m) = load("llama", 7);
    // Out-of-range token id.
    let e = m.token_logprobs(&[1, 100_000]).unwrap_err();
    assert!(format!("{e:#}").contains("out of range"), "{e:#}");
    // Longer than the context.
    let long: Vec<u32> = (0..600).map(|i| i % 200).collect();
    let e = m.token_logprobs(&long).unwrap_err();
    assert!(format!("{e:#}").contains("context length"), "{e:#}");
    // Unsupported architecture in config.json.
    let cfgp = dir.path().join("config.json");
    let mut cj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfgp).unwrap()).unwrap();
    cj["model_type"] = "gpt_neox".into();
    std::fs::write(&cfgp, cj.to_string()).unwrap();
    let e = Model::load(dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("gpt_neox"), "{e:#}");
    // Missing path.
    let e = Model::load(&dir.path().join("nope.gguf"), &LoadOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
    // Missing weights.
    let d2 = tempfile::tempdir().unwrap();
    write_tiny_model(d2.path(), "llama", 1).unwrap();
    std::fs::remove_file(d2.path().join("model.safetensors")).unwrap();
    let e = Model::load(d2.path(), &LoadOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("safetensors"), "{e:#}");
}

/// QLoRA's frozen base: the decoder layers' linears quantized to NF4 (or
/// Q8_0) at load, embeddings and head kept; the model still computes nearly
/// what the f32 one does.
#[test]
fn quantized_at_load_stays_close_to_f32() {
    use swift::model::gguf::GgmlType;
    use swift::model::linear::Linear;
    let dir = tempfile::tempdir().unwrap();
    let cfg = swift::model::testing::write_tiny_model(dir.path(), "llama", 21).unwrap();
    let ids: Vec<u32> = (0..24).map(|i| (i * 37 % 300) as u32 + 3).collect();
    let f32m = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    let want = f32m.token_logprobs(&ids).unwrap();
    for (t, tol) in [(GgmlType::NF4, 1.0f32), (GgmlType::Q8_0, 0.05)] {
        let m = Model::load_hf_quantized(dir.path(), t).unwrap();
        let mut quantized = 0;
        for l in &m.layers {
            for name in swift::model::config::LINEAR_MODULES {
                if let Linear::Quantized { weight, .. } = l.linear(name).unwrap() {
                    assert_eq!(weight.dtype, t);
                    quantized += 1;
                }
            }
        }
        assert_eq!(quantized, 7 * cfg.num_hidden_layers, "{t}");
        assert!(
            matches!(m.lm_head, Linear::Dense { .. }),
            "lm_head stays f32"
        );
        let got = m.token_logprobs(&ids).unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err > 0.0 && err < tol, "{t}: max log-prob difference {err}");
    }
}
