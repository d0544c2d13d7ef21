//! Trainer tests on tiny random models (fast; the SmolLM2 runs are in
//! tests/finetune_*.rs).

use super::lora::{attach_lora, make_full_trainable, LoraOptions};
use super::sft::CrossEntropy;
use super::*;
use crate::data::{Sample, IGNORE};
use crate::model::linear::{Linear, Lora};
use crate::model::testing::write_tiny_model;
use crate::progress::NoProgress;
use candle_core::{DType, Device, Var};
use rand::Rng;

/// Samples with a random prompt and a fixed answer: easy to learn.
fn samples(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let plen = rng.gen_range(3..8);
            let mut ids: Vec<u32> = (0..plen).map(|_| rng.gen_range(10..200)).collect();
            let mut labels = vec![IGNORE; plen];
            for a in [250u32, 251, 252, 253, 254, 255] {
                ids.push(a);
                labels.push(a as i64);
            }
            Sample {
                input_ids: ids,
                labels,
            }
        })
        .collect()
}

fn tiny(arch: &str) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), arch, 5).unwrap();
    let m = Model::load_hf(dir.path()).unwrap();
    (dir, m)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn lora_layer_gradients_match_finite_differences() {
    let dev = Device::Cpu;
    let (out, inp, r) = (5, 7, 3);
    let w = Tensor::randn(0f64, 0.5, (out, inp), &dev).unwrap();
    let a = Var::from_tensor(&Tensor::randn(0f64, 0.5, (r, inp), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f64, 0.5, (out, r), &dev).unwrap()).unwrap();
    let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 4, inp), &dev).unwrap()).unwrap();
    let probe = Tensor::randn(0f64, 1.0, (2, 4, out), &dev).unwrap();
    let layer = |a: &Tensor, b: &Tensor| {
        Linear::Dense {
            weight: w.clone(),
            bias: None,
        }
        .with_lora(Lora {
            a: a.clone(),
            b: b.clone(),
            scale: 4.0 / 3.0,
            dropout: 0.0,
            name: "t".into(),
        })
        .unwrap()
    };
    let f = |a: &Tensor, b: &Tensor, x: &Tensor| -> f64 {
        let y = layer(a, b).forward(x).unwrap();
        scalar(&(y * &probe).unwrap().sum_all().unwrap())
    };
    let y = layer(a.as_tensor(), b.as_tensor())
        .forward(x.as_tensor())
        .unwrap();
    let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    for (var, which) in [(&a, 0), (&b, 1), (&x, 2)] {
        let g: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let shape = var.as_tensor().shape().clone();
        for i in 0..base.len() {
            let eps = 1e-5;
            let mut plus = base.clone();
            plus[i] += eps;
            let mut minus = base.clone();
            minus[i] -= eps;
            let tp = Tensor::from_vec(plus, shape.clone(), &dev).unwrap();
            let tm = Tensor::from_vec(minus, shape.clone(), &dev).unwrap();
            let (fp, fm) = match which {
                0 => (
                    f(&tp, b.as_tensor(), x.as_tensor()),
                    f(&tm, b.as_tensor(), x.as_tensor()),
                ),
                1 => (
                    f(a.as_tensor(), &tp, x.as_tensor()),
                    f(a.as_tensor(), &tm, x.as_tensor()),
                ),
                _ => (
                    f(a.as_tensor(), b.as_tensor(), &tp),
                    f(a.as_tensor(), b.as_tensor(), &tm),
                ),
            };
            let fd = (fp - fm) / (2.0 * eps);
            assert!(
                (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "param {which} index {i}: finite difference {fd}, autograd {}",
                g[i]
            );
        }
    }
}

#[test]
fn tiny_model_loss_gradients_match_finite_differences() {
    let (_d, mut m) = tiny("llama");
    let opts = LoraOptions {
        dropout: 0.0,
        ..LoraOptions::default()
    };
    let params = attach_lora(&mut m, &opts, 7).unwrap();
    // Non-zero B so A has gradients too.
    for p in &params {
        if p.name.ends_with("lora_B.weight") {
            let t = Tensor::randn(0f32, 0.1, p.var.as_tensor().shape(), &Device::Cpu).unwrap();
            p.var.set(&t).unwrap();
        }
    }
    let data = samples(3, 1);
    let items: Vec<&Sample> = data.iter().collect();
    let obj = CrossEntropy { pad_id: 0 };
    let denom = obj.weight(&items);
    let loss_of = || -> f64 { scalar(&obj.loss(&m, &items, denom, false).unwrap().loss) };
    let out = obj.loss(&m, &items, denom, false).unwrap();
    let grads = out.loss.backward().unwrap();
    let mut checked = 0;
    for p in params.iter().filter(|p| p.name.contains("layers.1.")) {
        let g: Vec<f32> = grads
            .get(p.var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // The largest-gradient entry of each tensor (f32 differences need a
        // gradient well above rounding).
        let (i, gi) = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        let base: Vec<f32> = p.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let shape = p.var.as_tensor().shape().clone();
        let eps = 1e-2f32;
        let at = |d: f32| {
            let mut v = base.clone();
            v[i] += d;
            p.var
                .set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let l = loss_of();
            p.var
                .set(&Tensor::from_vec(base.clone(), shape.clone(), &Device::Cpu).unwrap())
                .unwrap();
            l
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
        let gi = *gi as f64;
        assert!(
            (fd - gi).abs() < 0.05 * gi.abs() + 2e-4,
            "{}[{i}]: finite difference {fd}, autograd {gi}",
            p.name
        );
        checked += 1;
    }
    assert_eq!(checked, 14);
}

fn cfg(dir: &Path) -> TrainConfig {
    TrainConfig {
        output_dir: dir.to_path_buf(),
        batch_size: 2,
        gradient_accumulation_steps: 2,
        learning_rate: 5e-3,
        max_steps: Some(8),
        logging_steps: 1,
        warmup_steps: Some(1),
        seed: 11,
        ..TrainConfig::default()
    }
}

fn run_lora(
    m: &Model,
    c: TrainConfig,
    dropout: f32,
    stop: &AtomicBool,
    data: &[Sample],
    val: &[Sample],
) -> Outcome {
    run_lora_reporting(m, c, dropout, stop, data, val, &NoProgress)
}

/// [`run_lora`] reporting to `progress`.
fn run_lora_reporting(
    m: &Model,
    c: TrainConfig,
    dropout: f32,
    stop: &AtomicBool,
    data: &[Sample],
    val: &[Sample],
    progress: &dyn crate::progress::Progress,
) -> Outcome {
    let mut m = m.clone();
    let opts = LoraOptions {
        dropout,
        ..LoraOptions::default()
    };
    let params = attach_lora(&mut m, &opts, c.seed).unwrap();
    let obj = CrossEntropy { pad_id: 0 };
    let save_params = params.clone();
    let save = move |dir: &Path| {
        lora::save_adapter(
            dir,
            &save_params,
            &opts,
            "tiny",
            &crate::model::adapter::SwiftRecord::new(None),
        )
    };
    run(Trainer {
        model: &m,
        params,
        objective: &obj,
        train: data,
        val,
        cfg: c,
        save_model: &save,
        progress,
        stop,
    })
    .unwrap()
}

/// Keeps the lines a run prints.
#[derive(Default)]
struct Lines(std::sync::Mutex<Vec<String>>);

impl crate::progress::Progress for Lines {
    fn println(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

#[test]
fn step_one_is_logged_whatever_the_logging_interval() {
    let (_d, m) = tiny("llama");
    let data = samples(8, 2);
    let out = tempfile::tempdir().unwrap();
    let mut c = cfg(out.path());
    c.logging_steps = 5;
    c.max_steps = Some(7);
    let lines = Lines::default();
    let o = run_lora_reporting(&m, c, 0.0, &AtomicBool::new(false), &data, &[], &lines);
    // logging.jsonl, the run's history and TensorBoard: steps 1, 5 and the last.
    let logged: Vec<u64> = std::fs::read_to_string(out.path().join("logging.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(logged, [1, 5, 7]);
    assert_eq!(
        losses(&o).iter().map(|l| l.0).collect::<Vec<_>>(),
        [1, 5, 7]
    );
    let ev = events::read_scalars(&o.event_file).unwrap();
    let tb: Vec<u64> = ev
        .iter()
        .filter(|s| s.tag == "train/loss")
        .map(|s| s.step as u64)
        .collect();
    assert_eq!(tb, [1, 5, 7]);
    // The terminal keeps step 1's figures as a line of their own.
    let printed = lines.0.lock().unwrap().clone();
    let first = printed
        .iter()
        .find(|l| l.starts_with("step 1: "))
        .unwrap_or_else(|| panic!("no step 1 line in {printed:?}"));
    let loss = losses(&o)[0].1;
    assert!(first.contains(&format!("loss {loss:.4}")), "{first}");
    assert!(
        first.contains("grad_norm ") && first.contains("learning_rate "),
        "{first}"
    );
}

fn losses(o: &Outcome) -> Vec<(u64, f64)> {
    o.log_history
        .iter()
        .filter_map(|r| Some((r["step"].as_u64()?, r.get("loss")?.as_f64()?)))
        .collect()
}

#[test]
fn first_step_loss_is_the_base_models_and_training_lowers_it() {
    let (_d, m) = tiny("llama");
    let data = samples(8, 2);
    // The base model's mean cross-entropy on the labelled tokens, through the
    // fast inference path.
    let (mut nll, mut n) = (0f64, 0usize);
    for s in &data {
        let lp = m.token_logprobs(&s.input_ids).unwrap();
        for (i, l) in lp.iter().enumerate() {
            if s.labels[i + 1] != IGNORE {
                nll -= *l as f64;
                n += 1;
            }
        }
    }
    let base_loss = nll / n as f64;
    let out = tempfile::tempdir().unwrap();
    let mut c = cfg(out.path());
    // One step = the whole data set, so step 1's loss is the data set's.
    c.batch_size = 8;
    c.gradient_accumulation_steps = 1;
    c.max_steps = Some(20);
    let o = run_lora(&m, c, 0.0, &AtomicBool::new(false), &data, &data[..2]);
    let l = losses(&o);
    assert!(
        (l[0].1 - base_loss).abs() < 1e-3,
        "step 1 loss {} vs base {base_loss}",
        l[0].1
    );
    let last = l.last().unwrap().1;
    assert!(last < 0.5 * l[0].1, "{l:?}");
    // Outputs: adapter, checkpoint, logging.jsonl, events, plots.
    let p = out.path();
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "logging.jsonl",
        "checkpoint-20/trainer_state.json",
        "checkpoint-20/optimizer.safetensors",
        "checkpoint-20/adapter_model.safetensors",
        "images/train_loss.png",
        "images/eval_loss.png",
        "images/train_learning_rate.png",
        "images/train_grad_norm.png",
        "images/train_token_acc.png",
    ] {
        assert!(p.join(f).exists(), "{f} missing");
    }
    let lines = std::fs::read_to_string(p.join("logging.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 20);
    let ev = events::read_scalars(&o.event_file).unwrap();
    let tags: std::collections::BTreeSet<&str> = ev.iter().map(|s| s.tag.as_str()).collect();
    for tag in [
        "train/loss",
        "train/learning_rate",
        "train/grad_norm",
        "train/token_acc",
        "train/tokens_per_second",
        "eval/loss",
    ] {
        assert!(tags.contains(tag), "{tag} not in {tags:?}");
    }
    let first = ev.iter().find(|s| s.tag == "train/loss").unwrap();
    assert_eq!(first.step, 1);
    assert!((first.value as f64 - l[0].1).abs() < 1e-4);
}

#[test]
fn resume_continues_exactly() {
    let (_d, m) = tiny("llama");
    let data = samples(10, 3);
    let a = tempfile::tempdir().unwrap();
    let mut c = cfg(a.path());
    c.save_steps = Some(3);
    c.save_total_limit = Some(5);
    let full = run_lora(&m, c.clone(), 0.1, &AtomicBool::new(false), &data, &[]);
    assert!(a.path().join("checkpoint-3").exists());
    // Resume from step 3 into another folder.
    let b = tempfile::tempdir().unwrap();
    let mut c2 = cfg(b.path());
    c2.save_steps = Some(3);
    c2.resume_from = Some(a.path().join("checkpoint-3"));
    let resumed = run_lora(&m, c2, 0.1, &AtomicBool::new(false), &data, &[]);
    assert_eq!(resumed.resumed_from.as_ref().unwrap().1, 3);
    let (la, lb) = (losses(&full), losses(&resumed));
    assert_eq!(la.len(), lb.len());
    for ((sa, xa), (sb, xb)) in la.iter().zip(&lb) {
        assert_eq!(sa, sb);
        assert!((xa - xb).abs() < 1e-5, "step {sa}: {xa} vs {xb}");
    }
    // A different seed gives different dropout / order: the check has teeth.
    let d = tempfile::tempdir().unwrap();
    let mut c3 = cfg(d.path());
    c3.seed = 12;
    let other = run_lora(&m, c3, 0.1, &AtomicBool::new(false), &data, &[]);
    assert!(losses(&other)
        .iter()
        .zip(&la)
        .skip(3)
        .any(|(x, y)| (x.1 - y.1).abs() > 1e-5));
}

#[test]
fn stop_flag_writes_a_checkpoint_and_returns_interrupted() {
    let (_d, m) = tiny("llama");
    let data = samples(6, 4);
    let out = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(true);
    let o = run_lora(&m, cfg(out.path()), 0.0, &stop, &data, &[]);
    assert!(o.interrupted);
    assert_eq!(o.global_step, 1);
    let ck = out.path().join("checkpoint-1");
    assert!(ck.join("trainer_state.json").exists());
    assert_eq!(checkpoint::resolve("latest", out.path()).unwrap(), ck);
    // No temporary folder left behind.
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn full_tuning_lowers_the_loss_and_writes_an_hf_folder() {
    let (_d, mut m) = tiny("llama-tied");
    let params = make_full_trainable(&mut m).unwrap();
    let data = samples(8, 5);
    let out = tempfile::tempdir().unwrap();
    let mut c = cfg(out.path());
    c.learning_rate = 2e-3;
    c.max_steps = Some(10);
    let obj = CrossEntropy { pad_id: 0 };
    let mm = m.clone();
    let save = move |dir: &Path| {
        crate::model::export::write_hf(
            &mm,
            dir,
            &crate::model::export::ExportOptions {
                merge_adapters: false,
                ..Default::default()
            },
        )
    };
    let o = run(Trainer {
        model: &m,
        params,
        objective: &obj,
        train: &data,
        val: &[],
        cfg: c,
        save_model: &save,
        progress: &NoProgress,
        stop: &AtomicBool::new(false),
    })
    .unwrap();
    let l = losses(&o);
    assert!(l.last().unwrap().1 < 0.7 * l[0].1, "{l:?}");
    let reloaded = Model::load_hf(out.path()).unwrap();
    let ids = Tensor::new(&[[1u32, 250, 251]], &Device::Cpu).unwrap();
    let y1 = m.forward_train(&ids, None, false).unwrap();
    let y2 = reloaded.forward_train(&ids, None, false).unwrap();
    let d: f32 = (y1 - y2)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(d < 1e-4, "{d}");
}

#[test]
fn data_order_is_a_function_of_seed_and_step() {
    let mut a = DataOrder::new(10, 3, 2, 5, true);
    let mut b = DataOrder::new(10, 3, 2, 5, true);
    assert_eq!(a.steps_per_epoch, 2);
    // Step 1 is the last (short) step of epoch 0: micro-batches 2 and 3.
    let s1 = a.step(1);
    assert_eq!(s1.len(), 2);
    assert_eq!(s1[1].len(), 1);
    // Asking out of order gives the same answer.
    let _ = b.step(5);
    assert_eq!(b.step(1), s1);
    // An epoch covers every sample once.
    let mut seen: Vec<usize> = a.step(2).into_iter().chain(a.step(3)).flatten().collect();
    seen.sort();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

fn grads_of(params: &[Param], gs: &candle_core::backprop::GradStore) -> Vec<Vec<f32>> {
    params
        .iter()
        .map(|p| match gs.get(p.var.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
            None => vec![0f32; p.numel()],
        })
        .collect()
}

#[test]
fn layer_by_layer_backward_equals_the_whole_graph() {
    for (arch, full) in [("qwen3", false), ("llama-tied", true), ("llama", true)] {
        let (_d, mut m) = tiny(arch);
        let params = if full {
            make_full_trainable(&mut m).unwrap()
        } else {
            let opts = LoraOptions {
                dropout: 0.0,
                ..LoraOptions::default()
            };
            let p = attach_lora(&mut m, &opts, 3).unwrap();
            for q in &p {
                if q.name.ends_with("lora_B.weight") {
                    let t =
                        Tensor::randn(0f32, 0.1, q.var.as_tensor().shape(), &Device::Cpu).unwrap();
                    q.var.set(&t).unwrap();
                }
            }
            p
        };
        let data = samples(3, 8);
        let items: Vec<&Sample> = data.iter().collect();
        let obj = CrossEntropy { pad_id: 0 };
        let denom = obj.weight(&items);
        let whole = obj.loss(&m, &items, denom, true).unwrap();
        let want = grads_of(&params, &whole.loss.backward().unwrap());
        let mut got: Vec<Vec<f32>> = params.iter().map(|p| vec![0f32; p.numel()]).collect();
        let o = forward_backward(&m, &obj, &items, denom, &params, &mut got, 5).unwrap();
        assert!((scalar(&o.loss) - scalar(&whole.loss)).abs() < 1e-5);
        let mut nonzero = 0;
        for (k, p) in params.iter().enumerate() {
            let scale = want[k].iter().fold(0f32, |a, b| a.max(b.abs())).max(1e-3);
            let diff = want[k]
                .iter()
                .zip(&got[k])
                .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            assert!(
                diff <= 1e-4 * scale,
                "{arch} {}: {diff} (scale {scale})",
                p.name
            );
            nonzero += usize::from(want[k].iter().any(|x| *x != 0.0));
        }
        assert!(
            nonzero >= params.len() / 2,
            "{arch}: {nonzero} of {}",
            params.len()
        );
    }
}

/// `sum_i r_i * logp_i` and its gradient with respect to the hidden rows, the
/// log-probs and the argmaxes, through the fused or the plain head.
fn head_run(
    head: &Linear,
    hs: &[f32],
    n: usize,
    targets: &[u32],
    fused: Option<(usize, usize)>,
) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let dev = Device::Cpu;
    let h = hs.len() / n;
    let x = Var::from_tensor(&Tensor::from_slice(hs, (n, h), &dev).unwrap()).unwrap();
    let lp = match fused {
        Some((chunk, band)) => {
            head::label_logprobs_with(head, x.as_tensor(), targets, true, chunk, band).unwrap()
        }
        None => head::label_logprobs_unfused(head, x.as_tensor(), targets, true).unwrap(),
    };
    let r: Vec<f32> = (0..n).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
    let r = Tensor::from_vec(r, n, &dev).unwrap();
    let gs = (&lp.logps * r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g: Vec<f32> = gs
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    (lp.logps.to_vec1().unwrap(), lp.argmax, g)
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn fused_head_matches_the_plain_head_in_value_and_gradient() {
    use crate::model::gguf::GgmlType;
    use crate::model::quant::{self, QWeight};
    use std::sync::Arc;
    let dev = Device::Cpu;
    let (v, h, n) = (301, 64, 23);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let wv: Vec<f32> = (0..v * h).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let hs: Vec<f32> = (0..n * h).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let targets: Vec<u32> = (0..n).map(|_| rng.gen_range(0..v as u32)).collect();
    let bias = Tensor::from_vec(
        (0..v)
            .map(|_| rng.gen_range(-0.5f32..0.5))
            .collect::<Vec<_>>(),
        v,
        &dev,
    )
    .unwrap();
    let dense = Linear::Dense {
        weight: Tensor::from_slice(&wv, (v, h), &dev).unwrap(),
        bias: None,
    };
    let biased = Linear::Dense {
        weight: Tensor::from_slice(&wv, (v, h), &dev).unwrap(),
        bias: Some(bias),
    };
    let q8 = Linear::Quantized {
        weight: Arc::new(
            QWeight::owned(
                quant::quantize(GgmlType::Q8_0, &wv).unwrap(),
                GgmlType::Q8_0,
                v,
                h,
            )
            .unwrap(),
        ),
        bias: None,
    };
    let q8_dense = Linear::Dense {
        weight: q8.dense_weight().unwrap(),
        bias: None,
    };
    assert!(head::fusable(&dense) && head::fusable(&q8));
    for (name, head_l, plain) in [
        ("dense", &dense, &dense),
        ("dense + bias", &biased, &biased),
        ("q8_0", &q8, &q8_dense),
    ] {
        let (lp0, am0, g0) = head_run(plain, &hs, n, &targets, None);
        // One chunk and one band; several chunks (the last one short) and
        // several bands.
        for (chunk, band) in [(n, v), (5, 64), (1, 300)] {
            let (lp, am, g) = head_run(head_l, &hs, n, &targets, Some((chunk, band)));
            assert!(
                max_rel(&lp0, &lp) < 1e-5,
                "{name} chunk {chunk} band {band}: log-probs {lp0:?} vs {lp:?}"
            );
            assert_eq!(am0, am, "{name} chunk {chunk}: argmax");
            let e = max_rel(&g0, &g);
            assert!(
                e < 1e-5,
                "{name} chunk {chunk} band {band}: input gradient off by {e}"
            );
        }
    }
    // The default chunking, and a label outside the vocabulary is an error.
    let x = Tensor::from_slice(&hs, (n, h), &dev).unwrap();
    let d = head::label_logprobs(&dense, &x, &targets, false).unwrap();
    let (lp0, _, _) = head_run(&dense, &hs, n, &targets, None);
    assert!(max_rel(&lp0, &d.logps.to_vec1::<f32>().unwrap()) < 1e-5);
    let mut bad = targets.clone();
    bad[3] = v as u32;
    assert!(head::label_logprobs(&dense, &x, &bad, false).is_err());
}

/// The SFT loss of [`CrossEntropy`] (fused head) against the same loss
/// written with the plain head, in value and in every LoRA gradient, on a
/// tiny model with tied embeddings (the head is the frozen embedding).
#[test]
fn sft_loss_through_the_fused_head_equals_the_plain_loss() {
    use super::sft::collate;
    let (_d, mut m) = tiny("llama-tied");
    assert!(head::fusable(&m.lm_head));
    let opts = LoraOptions {
        dropout: 0.0,
        ..LoraOptions::default()
    };
    let params = attach_lora(&mut m, &opts, 9).unwrap();
    for p in &params {
        if p.name.ends_with("lora_B.weight") {
            let t = Tensor::randn(0f32, 0.1, p.var.as_tensor().shape(), &Device::Cpu).unwrap();
            p.var.set(&t).unwrap();
        }
    }
    let data = samples(4, 21);
    let items: Vec<&Sample> = data.iter().collect();
    let obj = CrossEntropy { pad_id: 0 };
    let denom = obj.weight(&items);
    let fused = obj.loss(&m, &items, denom, true).unwrap();
    let want_acc = fused.metrics[0].1;
    let fused_g = grads_of(&params, &fused.loss.backward().unwrap());
    // Plain: whole logits, log-softmax, gather.
    let c = collate(&items, 0).unwrap();
    let hid = m.forward_train_hidden(&c.ids, None, true).unwrap();
    let hsz = hid.dim(2).unwrap();
    let flat = hid.reshape((c.b * c.t, hsz)).unwrap();
    let idx = Tensor::from_slice(&c.rows, c.rows.len(), &Device::Cpu).unwrap();
    let hs = flat.index_select(&idx, 0).unwrap();
    let lp = head::label_logprobs_unfused(&m.lm_head, &hs, &c.targets, true).unwrap();
    let plain = (lp.logps.sum_all().unwrap().neg().unwrap() / denom).unwrap();
    let acc = lp
        .argmax
        .iter()
        .zip(&c.targets)
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(acc as f64, want_acc);
    assert!((scalar(&plain) - scalar(&fused.loss)).abs() < 1e-5 * scalar(&plain).abs());
    let plain_g = grads_of(&params, &plain.backward().unwrap());
    for (k, p) in params.iter().enumerate() {
        let e = max_rel(&plain_g[k], &fused_g[k]);
        assert!(e < 1e-4, "{}: gradient off by {e}", p.name);
    }
}

/// Long sequences go through each layer one group of sequences at a time;
/// the loss and gradients equal the whole graph's.
#[test]
fn layer_groups_of_long_sequences_equal_the_whole_graph() {
    let (_d, mut m) = tiny("llama");
    let opts = LoraOptions {
        dropout: 0.0,
        ..LoraOptions::default()
    };
    let params = attach_lora(&mut m, &opts, 4).unwrap();
    for q in &params {
        if q.name.ends_with("lora_B.weight") {
            let t = Tensor::randn(0f32, 0.1, q.var.as_tensor().shape(), &Device::Cpu).unwrap();
            q.var.set(&t).unwrap();
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let data: Vec<Sample> = (0..3)
        .map(|k| {
            let len = 100 + 20 * k;
            let ids: Vec<u32> = (0..len).map(|_| rng.gen_range(10..250)).collect();
            let labels = ids
                .iter()
                .enumerate()
                .map(|(i, &x)| if i < 20 { IGNORE } else { x as i64 })
                .collect();
            Sample {
                input_ids: ids,
                labels,
            }
        })
        .collect();
    let items: Vec<&Sample> = data.iter().collect();
    // 3 sequences of up to 140 tokens: one sequence per group.
    assert_eq!(layer_group(3, 140), 1);
    let obj = CrossEntropy { pad_id: 0 };
    let denom = obj.weight(&items);
    let whole = obj.loss(&m, &items, denom, true).unwrap();
    let want = grads_of(&params, &whole.loss.backward().unwrap());
    let mut got: Vec<Vec<f32>> = params.iter().map(|p| vec![0f32; p.numel()]).collect();
    let o = forward_backward(&m, &obj, &items, denom, &params, &mut got, 5).unwrap();
    assert!((scalar(&o.loss) - scalar(&whole.loss)).abs() < 1e-5);
    for (k, p) in params.iter().enumerate() {
        let e = max_rel(&want[k], &got[k]);
        assert!(e < 1e-4, "{}: gradient off by {e}", p.name);
    }
}
