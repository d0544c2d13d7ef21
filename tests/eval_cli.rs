//! `swift eval` end to end on the SmolLM2 test model: perplexity equal to
//! what the PyTorch reference log-probs imply, multiple-choice
//! log-likelihoods equal between the in-process path and `--url` against our
//! own server, few-shot prompts as lm-evaluation-harness builds them, the
//! result files, and clear errors for bad input.

mod common;
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ok_json, reference, root, smollm2, smollm2_tokenizer, stderr, swift_cmd};
use serde_json::Value;
use serve_support::Server;

fn fixture(name: &str) -> PathBuf {
    root().join("fixtures/eval").join(name)
}

/// `swift eval ARGS`.
fn swift(args: &[&str]) -> Output {
    swift_cmd()
        .arg("eval")
        .args(args)
        .output()
        .expect("running swift")
}

fn samples(dir: &Path, task: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(format!("samples_{task}.jsonl"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn metric(result: &Value, name: &str) -> (f64, Option<f64>) {
    let m = result["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {result}"));
    (m["value"].as_f64().unwrap(), m["stderr"].as_f64())
}

#[test]
fn perplexity_equals_the_reference_logprobs() {
    let m = smollm2();
    let r = reference();
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "plain-long")
        .expect("the plain-long case");
    let text = case["text"].as_str().unwrap();
    let n = case["base"]["token_logprobs"].as_array().unwrap().len();
    let sum = case["base"]["sum_logprob"].as_f64().unwrap();
    let want = (-sum / n as f64).exp();
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, text).unwrap();
    let v = ok_json(&swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "perplexity",
        "--dataset",
        doc.to_str().unwrap(),
        "--json",
    ]));
    let res = &v["results"][0];
    let (ppl, stderr) = metric(res, "perplexity");
    assert!(
        (ppl - want).abs() / want < 1e-3,
        "perplexity {ppl}, reference {want}"
    );
    assert_eq!(stderr, None);
    assert_eq!(metric(res, "tokens").0 as usize, n);
    // word / byte perplexity follow from the same sum.
    let words = text.split_whitespace().count() as f64;
    let (wp, _) = metric(res, "word_perplexity");
    assert!((wp.ln() - (-sum / words)).abs() < 1e-3 * (-sum / words));
    let (bp, _) = metric(res, "byte_perplexity");
    assert!((bp.ln() - (-sum / text.len() as f64)).abs() < 1e-3);

    // Sliding windows of 16 tokens: every token still scored once, each
    // with less context, so the perplexity rises; a stride of 8 gives back
    // some context.
    let run = |extra: &[&str]| {
        let mut a = vec![
            "--model",
            m.to_str().unwrap(),
            "--task",
            "ppl",
            "--dataset",
            doc.to_str().unwrap(),
            "--json",
        ];
        a.extend_from_slice(extra);
        let v = ok_json(&swift(&a));
        let r = &v["results"][0];
        (metric(r, "perplexity").0, metric(r, "tokens").0 as usize)
    };
    let (disjoint, t1) = run(&["--max-length", "16"]);
    let (strided, t2) = run(&["--max-length", "16", "--stride", "8"]);
    assert_eq!((t1, t2), (n, n));
    assert!(disjoint > ppl, "{disjoint} vs {ppl}");
    assert!(strided < disjoint && strided > ppl, "{strided}");
}

#[test]
fn multiple_choice_direct_and_url_agree() {
    let m = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let direct = dir.path().join("direct");
    let url_text = dir.path().join("url_text");
    let url_ids = dir.path().join("url_ids");
    let ds = fixture("arc.jsonl");
    let common = |out: &Path| -> Vec<String> {
        [
            "--task",
            "multiple-choice",
            "--dataset",
            ds.to_str().unwrap(),
            "--limit",
            "8",
            "--batch-size",
            "4",
            "--json",
            "--output-dir",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut a = vec!["--model".to_string(), m.display().to_string()];
    a.extend(common(&direct));
    let argv: Vec<&str> = a.iter().map(String::as_str).collect();
    let v_direct = ok_json(&swift(&argv));

    let server = Server::start(&m, &["--served-model-name", "smol"]);
    let mut a = vec!["--url".to_string(), format!("{}/v1", server.url)];
    a.extend(common(&url_text));
    let argv: Vec<&str> = a.iter().map(String::as_str).collect();
    let v_text = ok_json(&swift(&argv));
    assert!(
        v_text["model"].as_str().unwrap().starts_with("smol at "),
        "{}",
        v_text["model"]
    );
    // Token ids tokenized here (lm-eval's tokenized requests).
    let mut a = vec![
        "--url".to_string(),
        server.url.clone(),
        "--served-model".into(),
        "smol".into(),
        "--tokenizer".into(),
        m.display().to_string(),
    ];
    a.extend(common(&url_ids));
    let argv: Vec<&str> = a.iter().map(String::as_str).collect();
    let v_ids = ok_json(&swift(&argv));

    // Perplexity and greedy generation through the server too.
    let other = |task: &str, file: &str, extra: &[&str], via_url: bool| -> Value {
        let f = fixture(file);
        let mut a: Vec<String> = if via_url {
            vec!["--url".into(), server.url.clone()]
        } else {
            vec!["--model".into(), m.display().to_string()]
        };
        for x in ["--task", task, "--dataset", f.to_str().unwrap(), "--json"] {
            a.push(x.to_string());
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = a.iter().map(String::as_str).collect();
        ok_json(&swift(&argv))
    };
    let lim = ["--limit", "3"];
    let (p_url, p_dir) = (
        other("perplexity", "corpus.jsonl", &lim, true),
        other("perplexity", "corpus.jsonl", &lim, false),
    );
    let (a, b) = (
        metric(&p_url["results"][0], "perplexity").0,
        metric(&p_dir["results"][0], "perplexity").0,
    );
    assert!(
        (a - b).abs() / b < 1e-4,
        "perplexity {a} via --url, {b} here"
    );
    let gen = ["--limit", "1", "--max-new-tokens", "12", "--output-dir"];
    let (g1, g2) = (dir.path().join("g1"), dir.path().join("g2"));
    let mut e1 = gen.to_vec();
    e1.push(g1.to_str().unwrap());
    let mut e2 = gen.to_vec();
    e2.push(g2.to_str().unwrap());
    other("exact-match", "gsm8k.jsonl", &e1, true);
    other("exact-match", "gsm8k.jsonl", &e2, false);
    assert_eq!(
        samples(&g1, "gsm8k")[0]["generation"],
        samples(&g2, "gsm8k")[0]["generation"]
    );
    drop(server);

    let sd = samples(&direct, "arc");
    assert_eq!(sd.len(), 8);
    for (name, other) in [("text", &url_text), ("ids", &url_ids)] {
        let so = samples(other, "arc");
        assert_eq!(so.len(), sd.len());
        for (d, o) in sd.iter().zip(&so) {
            assert_eq!(d["prompt"], o["prompt"]);
            assert_eq!(d["tokens"], o["tokens"], "{name}: {}", d["loc"]);
            let (ds_, os) = (
                d["scores"].as_array().unwrap(),
                o["scores"].as_array().unwrap(),
            );
            for (x, y) in ds_.iter().zip(os) {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!(
                    (x - y).abs() < 1e-3 * x.abs().max(1.0),
                    "{name}: {} scores {x} vs {y}",
                    d["loc"]
                );
            }
            assert_eq!(d["prediction"], o["prediction"]);
        }
    }
    for v in [&v_text, &v_ids] {
        assert_eq!(
            metric(&v["results"][0], "acc"),
            metric(&v_direct["results"][0], "acc")
        );
    }
    // results.json is the --json payload; acc and its stderr follow from
    // the per-sample records.
    let rj: Value =
        serde_json::from_str(&std::fs::read_to_string(direct.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(rj, v_direct);
    let accs: Vec<f64> = sd.iter().map(|s| s["acc"].as_f64().unwrap()).collect();
    let mean = accs.iter().sum::<f64>() / 8.0;
    let var = accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 7.0;
    let (acc, se) = metric(&rj["results"][0], "acc");
    assert!((acc - mean).abs() < 1e-12);
    assert!((se.unwrap() - (var / 8.0).sqrt()).abs() < 1e-12);
    assert_eq!(rj["results"][0]["n"], 8);
    // SmolLM2 knows most of these grade-school science answers.
    assert!(acc >= 0.5, "acc {acc}");
}

#[test]
fn fewshot_from_a_dev_split_and_every_layout() {
    let m = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "mc",
        "--dataset",
        fixture("mmlu.jsonl").to_str().unwrap(),
        "--num-fewshot",
        "2",
        "--fewshot-dataset",
        fixture("mmlu_dev.jsonl").to_str().unwrap(),
        "--limit",
        "2",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("mmlu (multiple-choice, 2-shot)"), "{table}");
    assert!(table.contains("acc_norm"), "{table}");
    let s = samples(&out, "mmlu");
    assert_eq!(
        s[0]["prompt"],
        "The following are multiple choice questions (with answers) about geography.\n\n\
         What is 1 + 1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n\
         What is the capital of Germany?\nA. Berlin\nB. Paris\nC. Vienna\nD. Bern\nAnswer: A\n\n\
         What is the capital of France?\nA. Berlin\nB. Madrid\nC. Paris\nD. Rome\nAnswer:"
    );
    assert_eq!(s[0]["choices"], serde_json::json!(["A", "B", "C", "D"]));
    assert_eq!(s[0]["target"], 2);
    // Every choice is one token (" A"), scored after the prompt.
    assert_eq!(s[0]["tokens"], serde_json::json!([1, 1, 1, 1]));

    // The other layouts (C-Eval as CSV, ARC as Parquet, HellaSwag) and the
    // seeded draw from the rest of the file, two items each.
    let v = ok_json(&swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "multiple-choice",
        "--dataset",
        fixture("ceval.csv").to_str().unwrap(),
        "--dataset",
        fixture("arc.parquet").to_str().unwrap(),
        "--dataset",
        fixture("hellaswag.jsonl").to_str().unwrap(),
        "--num-fewshot",
        "1",
        "--limit",
        "2",
        "--json",
        "--output-dir",
        out.to_str().unwrap(),
    ]));
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["task"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ceval", "arc", "hellaswag"]);
    let c = samples(&out, "ceval");
    let p = c[0]["prompt"].as_str().unwrap();
    assert!(p.starts_with("以下是中国关于"), "{p}");
    assert!(
        p.ends_with("中国的首都是哪里？\nA. 上海\nB. 北京\nC. 广州\nD. 深圳\n答案："),
        "{p}"
    );
    let h = samples(&out, "hellaswag");
    assert!(
        h[1]["prompt"]
            .as_str()
            .unwrap()
            .ends_with("\n\nBrushing teeth: A girl puts toothpaste on her toothbrush. She"),
        "{}",
        h[1]["prompt"]
    );
    // The same seed draws the same shots.
    let again = dir.path().join("again");
    let o = swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "multiple-choice",
        "--dataset",
        fixture("hellaswag.jsonl").to_str().unwrap(),
        "--num-fewshot",
        "1",
        "--limit",
        "2",
        "--output-dir",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h2 = samples(&again, "hellaswag");
    assert_eq!(h[0]["prompt"], h2[0]["prompt"]);
    assert_eq!(h[1]["scores"], h2[1]["scores"]);
}

#[test]
fn exact_match_generation_gsm8k() {
    let m = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let v = ok_json(&swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "exact-match",
        "--dataset",
        fixture("gsm8k.jsonl").to_str().unwrap(),
        "--num-fewshot",
        "2",
        "--limit",
        "2",
        "--max-new-tokens",
        "24",
        "--json",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ]));
    let (em, _) = metric(&v["results"][0], "exact_match");
    let s = samples(dir.path(), "gsm8k");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["target"], "7");
    let mut hits = 0.0;
    for x in &s {
        let g = x["generation"].as_str().unwrap();
        assert!(
            !g.contains("Question:"),
            "stops before the next question: {g}"
        );
        hits += x["exact_match"].as_f64().unwrap();
        assert!(x["prompt"].as_str().unwrap().contains("\n#### "));
    }
    assert_eq!(em, hits / 2.0);
}

#[test]
fn bad_input_is_a_clear_error() {
    // Checked before any model is loaded.
    let o = swift(&[
        "--model",
        "nowhere.gguf",
        "--task",
        "bleu",
        "--dataset",
        fixture("mmlu.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("unknown task `bleu`"), "{}", stderr(&o));
    let o = swift(&[
        "--model",
        "nowhere.gguf",
        "--task",
        "mc",
        "--dataset",
        "missing.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("dataset missing.jsonl does not exist"),
        "{}",
        stderr(&o)
    );
    let o = swift(&["--task", "mc", "--dataset", "x.jsonl"]);
    assert_eq!(o.status.code(), Some(2), "needs --model or --url");

    let m = smollm2();
    let o = swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "mc",
        "--dataset",
        fixture("bad_mmlu.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("bad_mmlu.jsonl line 2:"), "{e}");
    assert!(e.contains("`answer`"), "{e}");
    let o = swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "mc",
        "--dataset",
        fixture("bad_json.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bad_json.jsonl line 2: not valid JSON"),
        "{}",
        stderr(&o)
    );
    // A GSM8K file is not a multiple-choice file.
    let o = swift(&[
        "--model",
        m.to_str().unwrap(),
        "--task",
        "mc",
        "--dataset",
        fixture("gsm8k.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("gsm8k.jsonl line 1: not a multiple-choice row"),
        "{}",
        stderr(&o)
    );
    // Nothing listening.
    let o = swift(&[
        "--url",
        "http://127.0.0.1:9/v1",
        "--served-model",
        "x",
        "--task",
        "mc",
        "--dataset",
        fixture("arc.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("connecting to http://127.0.0.1:9/v1/completions"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn perplexity_of_a_corpus_and_a_task_file() {
    let m = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("tasks.json");
    let corpus = fixture("corpus.jsonl");
    std::fs::write(
        &tf,
        serde_json::json!([
            {"task": "perplexity", "dataset": corpus, "name": "corpus"},
            {"task": "perplexity", "dataset": fixture("corpus.txt")},
        ])
        .to_string(),
    )
    .unwrap();
    let v = ok_json(&swift(&[
        "--model",
        m.to_str().unwrap(),
        "--tasks-file",
        tf.to_str().unwrap(),
        "--json",
    ]));
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["task"], "corpus");
    assert_eq!(r[0]["n"], 8);
    assert_eq!(r[1]["n"], 1);
    for x in r {
        let (ppl, _) = metric(x, "perplexity");
        let (bpb, _) = metric(x, "bits_per_byte");
        let (bp, _) = metric(x, "byte_perplexity");
        assert!(ppl > 1.0 && ppl < 1000.0, "{ppl}");
        assert!((bp.log2() - bpb).abs() < 1e-9);
    }
}

#[test]
fn context_continuation_split_like_lm_eval() {
    use swift::eval::backend::encode_pair;
    let tok = smollm2_tokenizer();
    let (c1, k1) = encode_pair(&tok, "The capital of France is", " Paris").unwrap();
    // A trailing space of the context belongs to the continuation.
    let (c2, k2) = encode_pair(&tok, "The capital of France is ", "Paris").unwrap();
    assert_eq!((&c1, &k1), (&c2, &k2));
    assert_eq!(c1, tok.encode("The capital of France is", false).unwrap());
    let whole = tok.encode("The capital of France is Paris", false).unwrap();
    assert_eq!([c1.clone(), k1.clone()].concat(), whole);
    assert_eq!(k1.len(), 1, "\" Paris\" is one token");
    // An empty context is the BOS (else EOS) token.
    let (c, k) = encode_pair(&tok, "", "Hello").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(k, tok.encode("Hello", false).unwrap());
}
