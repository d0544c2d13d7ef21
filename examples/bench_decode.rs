//! Decode / prefill speed of the model core (used by `just bench`).
//!
//! `cargo run --release --example bench_decode -- [MODEL] [--threads N]
//!  [--prompt-tokens P] [--new-tokens N] [--json]`
//!
//! Prefills P tokens (a fixed id sequence), then decodes N tokens greedily
//! (eos ignored) with the KV cache; prints tokens/s for both phases.

use std::path::PathBuf;
use std::time::Instant;
use swift::model::{KvCache, LoadOptions, Model};

/// CPU seconds used by this process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is index 0; utime 11, stime 12 (clock ticks).
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
        + f.get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
    ticks / 100.0
}

fn main() -> anyhow::Result<()> {
    let mut model = PathBuf::from("fixtures/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (mut threads, mut p, mut n, mut json) = (2usize, 32usize, 128usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().unwrap().parse()?,
            "--prompt-tokens" => p = args.next().unwrap().parse()?,
            "--new-tokens" => n = args.next().unwrap().parse()?,
            "--json" => json = true,
            "--kernels" => return kernels(),
            other => model = PathBuf::from(other),
        }
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let t0 = Instant::now();
    let m = Model::load(&model, &LoadOptions::default())?;
    let load_s = t0.elapsed().as_secs_f64();
    // A fixed, plausible prompt: ids spread over the vocabulary.
    let vocab = m.vocab_size() as u32;
    let prompt: Vec<u32> = (0..p as u32).map(|i| (i * 7919 + 198) % vocab).collect();
    // Warm-up (page in the weights).
    let mut c = KvCache::new(&m, 1);
    m.forward_ids(&prompt[..4.min(p)], 1, &mut c, true)?;

    let mut cache = KvCache::new(&m, 1);
    let t1 = Instant::now();
    let mut logits = m.forward_ids(&prompt, 1, &mut cache, true)?;
    let prefill_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let c2 = cpu_seconds();
    for _ in 0..n {
        let next = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap();
        logits = m.forward_ids(&[next], 1, &mut cache, true)?;
    }
    let decode_s = t2.elapsed().as_secs_f64();
    let decode_cpu_ms = (cpu_seconds() - c2) * 1000.0 / n as f64;
    let (pf, dc) = (p as f64 / prefill_s, n as f64 / decode_s);
    if json {
        println!(
            "{{\"engine\":\"swift\",\"threads\":{threads},\"prompt_tokens\":{p},\"new_tokens\":{n},\"load_s\":{load_s:.3},\"prefill_tok_s\":{pf:.1},\"decode_tok_s\":{dc:.1},\"decode_cpu_ms_per_token\":{decode_cpu_ms:.2}}}"
        );
    } else {
        println!("model {} ({threads} threads)", model.display());
        println!("load     {load_s:.3} s");
        println!("prefill  {p} tokens  {pf:.1} tok/s");
        println!("decode   {n} tokens  {dc:.1} tok/s  ({decode_cpu_ms:.2} CPU-ms per token, all threads)");
    }
    Ok(())
}

/// Matrix-vector kernel throughput on one thread, in cache and out of cache.
fn kernels() -> anyhow::Result<()> {
    use swift::model::gguf::GgmlType;
    use swift::model::quant::{matvec, QWeight};
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()?;
    for t in [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        for (label, n_mats) in [("in-cache", 1usize), ("streamed", 120)] {
            let (rows, cols) = (1536, 576);
            let nbytes = rows * cols / t.block_size() * t.type_size();
            let mut mats = Vec::new();
            for m in 0..n_mats {
                let mut b: Vec<u8> = (0..nbytes).map(|i| (i * 31 + m) as u8).collect();
                // Keep f16 scales finite: zero the top byte of every 2-byte slot we might read as f16.
                for v in b.iter_mut() {
                    *v &= 0x3b;
                }
                mats.push(QWeight::owned(b, t, rows, cols)?);
            }
            let x: Vec<f32> = (0..cols).map(|i| (i as f32).sin()).collect();
            let mut y = vec![0f32; rows];
            let reps = 2000 / n_mats.max(1) + 1;
            let t0 = Instant::now();
            for _ in 0..reps {
                for w in &mats {
                    matvec(w, &x, &mut y);
                }
            }
            let s = t0.elapsed().as_secs_f64();
            let bytes = (reps * n_mats * nbytes) as f64;
            let weights = (reps * n_mats * rows * cols) as f64;
            println!(
                "{t:>5} {label:>9}: {:6.2} GB/s  {:6.2} Gweights/s  ({:.1} us per 1536x576)",
                bytes / s / 1e9,
                weights / s / 1e9,
                s / (reps * n_mats) as f64 * 1e6
            );
        }
    }
    Ok(())
}
