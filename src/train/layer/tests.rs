//! The fused layer against the candle graph (the present, independent path)
//! and against finite differences.

use super::Plan;
use crate::data::{Sample, IGNORE};
use crate::model::gguf::GgmlType;
use crate::model::testing::write_tiny_model;
use crate::model::Model;
use crate::train::lora::{attach_lora, LoraOptions};
use crate::train::optim::Param;
use crate::train::sft::CrossEntropy;
use crate::train::{
    forward_backward, forward_backward_graph, fused_forward_backward, hidden_no_grad, Objective,
};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};

/// Sequences of different lengths (so packing matters), labels on the tail.
fn samples(lens: &[usize], seed: u64) -> Vec<Sample> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    lens.iter()
        .map(|&n| {
            let ids: Vec<u32> = (0..n).map(|_| rng.gen_range(10..250)).collect();
            let labels = ids
                .iter()
                .enumerate()
                .map(|(i, &x)| if i < n / 3 { IGNORE } else { x as i64 })
                .collect();
            Sample {
                input_ids: ids,
                labels,
            }
        })
        .collect()
}

/// A tiny model with LoRA on every projection, B random (so every gradient
/// is non-zero).
fn lora_model(
    arch: &str,
    quant: Option<GgmlType>,
    dropout: f32,
) -> (tempfile::TempDir, Model, Vec<Param>) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), arch, 5).unwrap();
    let mut m = match quant {
        None => Model::load_hf(dir.path()).unwrap(),
        Some(t) => Model::load_hf_quantized(dir.path(), t).unwrap(),
    };
    let opts = LoraOptions {
        dropout,
        ..LoraOptions::default()
    };
    let params = attach_lora(&mut m, &opts, 3).unwrap();
    for p in &params {
        if p.name.ends_with("lora_B.weight") {
            let t = Tensor::randn(0f32, 0.1, p.var.as_tensor().shape(), &Device::Cpu).unwrap();
            p.var.set(&t).unwrap();
        }
    }
    (dir, m, params)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

fn zeros(params: &[Param]) -> Vec<Vec<f32>> {
    params.iter().map(|p| vec![0f32; p.numel()]).collect()
}

/// max |a - b| / max |a|
fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn fused_layers_equal_the_candle_graph_on_every_architecture() {
    // llama (GQA), tied heads, Mistral's sliding window (6 < the longest
    // sequence), Qwen2's q/k/v biases, Qwen3's per-head q/k norms; dense
    // f32 and GGUF-block bases.
    let cases = [
        ("llama", None),
        ("llama-tied", None),
        ("mistral", None),
        ("qwen2", None),
        ("qwen3", None),
        ("llama", Some(GgmlType::Q8_0)),
        ("qwen2", Some(GgmlType::Q4_0)),
    ];
    let data = samples(&[5, 13, 9, 1], 7);
    let items: Vec<&Sample> = data.iter().collect();
    let obj = CrossEntropy { pad_id: 0 };
    let denom = obj.weight(&items);
    for (arch, quant) in cases {
        let (_d, m, params) = lora_model(arch, quant, 0.0);
        assert!(
            Plan::new(&m, &params).is_some(),
            "{arch}: fused path not taken"
        );
        let mut want = zeros(&params);
        let lw = forward_backward_graph(&m, &obj, &items, denom, &params, &mut want, 5).unwrap();
        let mut got = zeros(&params);
        let lg = forward_backward(&m, &obj, &items, denom, &params, &mut got, 5).unwrap();
        let (a, b) = (scalar(&lw.loss), scalar(&lg.loss));
        assert!(
            (a - b).abs() < 1e-5 * a.abs().max(1.0),
            "{arch} {quant:?}: loss {a} vs {b}"
        );
        assert_eq!(lw.metrics, lg.metrics, "{arch}");
        for (k, p) in params.iter().enumerate() {
            assert!(
                want[k].iter().any(|v| *v != 0.0),
                "{arch} {}: zero gradient",
                p.name
            );
            let e = max_rel(&want[k], &got[k]);
            assert!(e < 2e-4, "{arch} {quant:?} {}: gradient off by {e}", p.name);
        }
    }
}

#[test]
fn activations_kept_or_recomputed_give_the_same_gradients() {
    // Past the planner's budget the trainer keeps only a layer's input and
    // recomputes the layer (dropout masks included) in the backward: the
    // same numbers as keeping everything.
    let (_d, m, params) = lora_model("qwen3", None, 0.1);
    let obj = CrossEntropy { pad_id: 0 };
    let data = samples(&[8, 6, 11], 1);
    let items: Vec<&Sample> = data.iter().collect();
    let denom = obj.weight(&items);
    let plan = Plan::new(&m, &params).unwrap();
    let run = |keep: usize| {
        let mut g = zeros(&params);
        let o =
            fused_forward_backward(&m, &plan, &obj, &items, denom, &mut g, 9, Some(keep)).unwrap();
        (scalar(&o.loss), g)
    };
    // All layers kept, the first only, none.
    let (lk, gk) = run(m.layers.len());
    assert!(gk.iter().all(|g| g.iter().any(|v| *v != 0.0)));
    for keep in [1, 0] {
        let (lr, gr) = run(keep);
        assert_eq!(lk, lr, "keep {keep}");
        assert_eq!(gk, gr, "keep {keep}");
    }
    // The budget: a few hundred tokens of SmolLM2 keep everything, a long
    // batch recomputes.
    let per = super::saved_floats_per_row(&m);
    let layers = m.layers.len();
    assert_eq!(crate::planner::chunks::kept_layers(30, per, layers), layers);
    let cfg = crate::model::config::ModelConfig::from_json(&serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
            "rms_norm_eps": 1e-5, "max_position_embeddings": 8192, "tie_word_embeddings": true
    }))
    .unwrap();
    let per = crate::planner::chunks::saved_values_per_token(&cfg);
    assert_eq!(crate::planner::chunks::kept_layers(4 * 64, per, 30), 30);
    let long = crate::planner::chunks::kept_layers(4 * 1024, per, 30);
    assert!((1..30).contains(&long), "{long}");
    assert_eq!(crate::planner::chunks::kept_layers(64 * 1024, per, 30), 0);
}

#[test]
fn dropout_gradients_match_finite_differences_of_the_same_masks() {
    // With dropout on, the fused path draws each row's mask from (seed,
    // layer, projection, row): the loss is a deterministic function of the
    // weights for a fixed seed, and its gradient must be that function's.
    let (_d, m, params) = lora_model("qwen2", None, 0.3);
    let data = samples(&[7, 11, 4], 3);
    let items: Vec<&Sample> = data.iter().collect();
    let obj = CrossEntropy { pad_id: 0 };
    let denom = obj.weight(&items);
    let loss = |seed: u64| -> (f64, Vec<Vec<f32>>) {
        let mut g = zeros(&params);
        let o = forward_backward(&m, &obj, &items, denom, &params, &mut g, seed).unwrap();
        (scalar(&o.loss), g)
    };
    let (l0, g) = loss(21);
    assert_eq!(l0, loss(21).0, "same seed, same masks");
    assert_ne!(l0, loss(22).0, "another seed, other masks");
    // The same weights without dropout: the masks are what changes the loss.
    let no_drop = {
        let (_d2, m2, p2) = lora_model("qwen2", None, 0.0);
        for (a, b) in p2.iter().zip(&params) {
            a.var.set(b.var.as_tensor()).unwrap();
        }
        let mut g2 = zeros(&p2);
        scalar(
            &forward_backward(&m2, &obj, &items, denom, &p2, &mut g2, 21)
                .unwrap()
                .loss,
        )
    };
    assert!((no_drop - l0).abs() > 1e-6, "dropout changed nothing");
    // Directional derivative along a random direction over a few tensors.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for k in [0usize, 1, params.len() - 2, params.len() - 1] {
        let p = &params[k];
        let base: Vec<f32> = p.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let dir: Vec<f32> = (0..base.len()).map(|_| rng.gen_range(-1f32..1.0)).collect();
        let eps = 2e-3f32;
        let at = |s: f32| -> f64 {
            let v: Vec<f32> = base.iter().zip(&dir).map(|(b, d)| b + s * d).collect();
            p.var
                .set(&Tensor::from_vec(v, p.var.as_tensor().shape(), &Device::Cpu).unwrap())
                .unwrap();
            loss(21).0
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
        p.var
            .set(&Tensor::from_vec(base.clone(), p.var.as_tensor().shape(), &Device::Cpu).unwrap())
            .unwrap();
        let an: f64 = g[k]
            .iter()
            .zip(&dir)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        assert!(
            (fd - an).abs() <= 2e-2 * an.abs().max(1e-3),
            "{}: finite difference {fd} vs gradient {an}",
            p.name
        );
    }
}

#[test]
fn fused_forward_without_gradients_equals_the_candle_layers() {
    for arch in ["llama", "qwen3", "mistral"] {
        let (_d, m, _params) = lora_model(arch, None, 0.2);
        let ids = Tensor::from_vec(
            (0..24u32).map(|i| 10 + (i * 37) % 200).collect::<Vec<_>>(),
            (2, 12),
            &Device::Cpu,
        )
        .unwrap();
        // The candle layers (no dropout outside training).
        let (mut x, ctx) = m.train_embed(&ids, None).unwrap();
        for i in 0..m.layers.len() {
            x = m.train_layer(i, &x, &ctx, false).unwrap();
        }
        let want: Vec<f32> = m
            .train_final_norm(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got: Vec<f32> = hidden_no_grad(&m, &ids, None)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let e = max_rel(&want, &got);
        assert!(e < 1e-5, "{arch}: {e}");
        // With the rows' real lengths (the second is 7 tokens, then padding)
        // the real positions are the same and the padding is zero.
        let packed: Vec<f32> = hidden_no_grad(&m, &ids, Some(&[12, 7]))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let h = m.config().hidden_size;
        let real = 12 * h + 7 * h;
        assert!(max_rel(&got[..real], &packed[..real]) < 1e-6, "{arch}");
        assert!(packed[real..].iter().all(|v| *v == 0.0), "{arch}");
    }
}
