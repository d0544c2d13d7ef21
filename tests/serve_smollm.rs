//! `swift infer --serve` on the SmolLM2 test model: real answers, prompt
//! log-probs equal to `Model::token_logprobs`, 16 concurrent clients batched
//! together, a full queue, a client that goes away, and the official
//! `openai` Python package as the client.

mod common;
mod serve_support;

use std::process::Command;

use common::{root, smollm2};
use serde_json::{json, Value};
use serve_support::*;
use swift::model::{LoadOptions, Model};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smollm_chat_completion_and_prompt_logprobs() {
    let m = smollm2();
    let s = Server::start(&m, &["--served-model-name", "smollm2"]);
    let body = json!({"model": "smollm2", "temperature": 0, "max_tokens": 40,
                      "messages": [{"role": "user", "content": "What is the capital of France?"}]});
    let (code, v) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");
    // The model ended its turn itself (eos, not the length limit).
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    // Prompt scoring (lm-evaluation-harness local-completions) equals the
    // library's token log-probs.
    let model = Model::load(&m, &LoadOptions::default()).unwrap();
    let tok = swift::tokenizer::Tokenizer::load(&m).unwrap();
    let ids = tok
        .encode("The capital of France is Paris.", false)
        .unwrap();
    let want = model.token_logprobs(&ids).unwrap();
    let body = json!({"model": "smollm2", "prompt": "The capital of France is Paris.",
                      "echo": true, "logprobs": 1, "max_tokens": 1, "temperature": 0});
    let (code, v) = s.post("/v1/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    let tl = lp["token_logprobs"].as_array().unwrap();
    assert_eq!(tl.len(), ids.len() + 1);
    for (i, w) in want.iter().enumerate() {
        let got = tl[i + 1].as_f64().unwrap();
        assert!(
            (got - *w as f64).abs() < 1e-3,
            "token {}: {got} vs {w}",
            i + 1
        );
    }
    // " Paris" after "The capital of France is" is the greedy choice.
    let k = ids.len() - 2;
    let top = lp["top_logprobs"][k].as_object().unwrap();
    assert_eq!(top.keys().next().map(String::as_str), Some(" Paris"));
    assert_eq!(top[" Paris"], tl[k]);
}

/// Issue 17: a request that sets no sampling field gets the defaults (the
/// GGUF ships no generation_config): the joke that greedy decoding repeats
/// until the window is full ends; `seed` reproduces it; `"temperature": 0`
/// is still exactly greedy; llama.cpp's `repeat_penalty` is understood.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smollm_requests_without_sampling_fields_get_the_defaults() {
    let m = smollm2();
    let mut s = Server::start(&m, &[]);
    let ask = |extra: Value| {
        let mut b = json!({"messages": [{"role": "user", "content": "Tell me a joke about cats."}],
                           "max_tokens": 200});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let answer = |v: &Value| {
        (
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
            v["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let chat = "/v1/chat/completions";
    let (code, v) = s.post(chat, &ask(json!({"temperature": 0}))).await;
    assert_eq!(code, 200, "{v}");
    let (greedy, finish) = answer(&v);
    assert!(
        greedy.contains("a cat's favorite food is a cat's favorite food"),
        "{greedy}"
    );
    assert_eq!(finish, "length");
    // No sampling field but a seed: sampled, reproducible, and it ends.
    let (_, v) = s.post(chat, &ask(json!({"seed": 3}))).await;
    let (a, finish) = answer(&v);
    assert_eq!(finish, "stop", "{a}");
    assert_ne!(a, greedy);
    let (_, v) = s.post(chat, &ask(json!({"seed": 3}))).await;
    assert_eq!(answer(&v).0, a);
    // repeat_penalty (llama.cpp's name) is the repetition penalty: 1 keeps
    // the greedy text, 1.5 changes it.
    let (_, v) = s
        .post(chat, &ask(json!({"temperature": 0, "repeat_penalty": 1.0})))
        .await;
    assert_eq!(answer(&v).0, greedy);
    let (_, v) = s
        .post(chat, &ask(json!({"temperature": 0, "repeat_penalty": 1.5})))
        .await;
    assert_ne!(answer(&v).0, greedy);
    s.signal("TERM");
    let (_, err) = s.wait();
    assert!(
        err.contains(
            "sampling when a request sets none: temperature 0.8, top-k 40, top-p 0.9, \
             repetition penalty 1.1 (defaults: the model ships no generation_config)"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smollm_16_concurrent_clients_batched_same_greedy_answers() {
    let m = smollm2();
    let s = Server::start(&m, &[]);
    let topics = [
        "France", "Japan", "Brazil", "Canada", "Egypt", "Norway", "India", "Kenya", "Peru",
        "Italy", "Spain", "Chile", "Greece", "Mexico", "Ghana", "Nepal",
    ];
    let body = |t: &str, stream: bool| {
        json!({"messages": [{"role": "user", "content": format!("Name the capital of {t}.")}],
               "max_tokens": 12, "temperature": 0, "stream": stream})
    };
    let mut alone = Vec::new();
    for t in topics {
        let (c, v) = s.post("/v1/chat/completions", &body(t, false)).await;
        assert_eq!(c, 200, "{v}");
        alone.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, h) = s.get("/health").await;
    assert_eq!(h["peak_running"], 1);
    let mut tasks = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let url = s.url.clone();
        let b = body(t, i % 2 == 1);
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let text = r.text().await.unwrap();
            if b["stream"] == true {
                chat_text(&chunks(&sse_data(&text)), 0)
            } else {
                let v: Value = serde_json::from_str(&text).unwrap();
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), alone[i], "client {i} ({})", topics[i]);
    }
    // They were decoded together, not one after another.
    let (_, h) = s.get("/health").await;
    assert!(h["peak_running"].as_u64().unwrap() > 1, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smollm_full_queue_answers_429_and_disconnect_cancels() {
    let m = smollm2();
    let s = Server::start(&m, &["--max-batch", "1", "--queue-size", "1"]);
    // A long answer occupies the only batch slot.
    let long = json!({"prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": true,
                      "stream": true});
    let mut resp = reqwest::Client::new()
        .post(format!("{}/v1/completions", s.url))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Its first token: it is running.
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    // More requests: one or two wait, then the queue is full: 429 at once.
    let mut waiting = Vec::new();
    let mut got_429 = None;
    for _ in 0..6 {
        let url = s.url.clone();
        let h = tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/v1/completions"))
                .json(&json!({"prompt": "Hi", "max_tokens": 2}))
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap())
        });
        // Wait until this one is either queued or refused.
        loop {
            if h.is_finished() {
                let (code, v) = h.await.unwrap();
                assert_eq!(code, 429, "{v}");
                assert_eq!(v["error"]["type"], "rate_limit_error");
                got_429 = Some(v);
                break;
            }
            let (_, hl) = s.get("/health").await;
            if hl["waiting"].as_u64().unwrap() > waiting.len() as u64 {
                waiting.push(h);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if got_429.is_some() {
            break;
        }
    }
    assert!(got_429.is_some(), "no 429 with {} waiting", waiting.len());
    assert!(!waiting.is_empty() && waiting.len() <= 2);
    // The long stream's client goes away: its sequence is cancelled and the
    // waiting requests are served.
    drop(resp);
    for h in waiting {
        let (code, v) = h.await.unwrap();
        assert_eq!(code, 200, "{v}");
    }
    let (_, h) = s.get("/health").await;
    assert_eq!(h["cancelled_sequences"], 1, "{h}");
    assert!(h["generated_tokens"].as_u64().unwrap() < 4000, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_openai_python_client() {
    let m = smollm2();
    let s = Server::start(
        &m,
        &["--served-model-name", "smollm2", "--api-key", "k-test"],
    );
    let script = root().join("fixtures/serve_openai.py");
    let check = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .expect("python3 is needed for this test");
    assert!(
        check.status.success(),
        "the `openai` Python package is not installed: pip install -r fixtures/requirements-ci.txt"
    );
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(format!("{url}/v1"))
            .args(["--model", "smollm2", "--api-key", "k-test"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "serve_openai.py failed:\n{so}\n{se}");
    assert!(so.contains("all checks passed"), "{so}\n{se}");
}
