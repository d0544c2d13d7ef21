//! Where a training step's time goes on SmolLM2 (run by hand:
//! `cargo test --release --test finetune_profile -- --ignored --nocapture`).

mod common;

use std::time::Instant;

use candle_core::{Device, Tensor};
use swift::data::{Sample, IGNORE};
use swift::model::{LoadOptions, Model};
use swift::train::lora::{attach_lora, LoraOptions};
use swift::train::sft::{collate, cross_entropy_sum};

#[test]
#[ignore = "a profile, not a test"]
fn profile_one_step() {
    let path = common::smollm2();
    let mut m = Model::load(&path, &LoadOptions::default()).unwrap();
    let _params = attach_lora(&mut m, &LoraOptions::default(), 1).unwrap();
    let samples: Vec<Sample> = (0..4)
        .map(|i| {
            let ids: Vec<u32> = (0..48).map(|j| (100 + i * 7 + j * 13) as u32).collect();
            let labels = ids
                .iter()
                .enumerate()
                .map(|(j, &t)| if j >= 36 { t as i64 } else { IGNORE })
                .collect();
            Sample {
                input_ids: ids,
                labels,
            }
        })
        .collect();
    let items: Vec<&Sample> = samples.iter().collect();
    let c = collate(&items, 0).unwrap();
    for _ in 0..2 {
        let t = Instant::now();
        let h = m.forward_train_hidden(&c.ids, None, true).unwrap();
        let t_fwd = t.elapsed();
        let t = Instant::now();
        let (loss, _) = cross_entropy_sum(&m, &c, &h, true).unwrap();
        let t_full = t.elapsed();
        let t = Instant::now();
        let g = loss.backward().unwrap();
        let t_bwd = t.elapsed();
        drop((h, g));
        // The fast inference path over the same tokens, for scale.
        let t = Instant::now();
        for s in &samples {
            let _ = m.token_logprobs(&s.input_ids).unwrap();
        }
        let t_inf = t.elapsed();
        let x = Tensor::zeros((192, 576), candle_core::DType::F32, &Device::Cpu).unwrap();
        let t = Instant::now();
        for l in &m.layers {
            let _ = l.gate_proj.forward_t(&x, false).unwrap();
        }
        let t_q = t.elapsed();
        eprintln!(
            "forward_hidden {t_fwd:?}  forward+loss {t_full:?}  backward {t_bwd:?}  inference fwd {t_inf:?}  30 gate_proj fwd {t_q:?}"
        );
    }
}
