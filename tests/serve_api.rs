//! `swift infer --serve` on tiny random models: every endpoint, streaming and
//! not, logprobs, stop strings, every error case, adapters, 16 concurrent
//! clients, shutdown by signal. The real binary on a free loopback port.

mod common;
mod serve_support;

use common::write_adapter;
use serde_json::{json, Value};
use serve_support::*;
use swift::model::testing::write_tiny_model;
use swift::model::{LoadOptions, Model};

fn tiny(arch: &str, seed: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_tiny_model(&d.path().join("m"), arch, seed).unwrap();
    d
}

fn chat_body(content: &str, max_tokens: u64) -> Value {
    json!({"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
           "temperature": 0, "ignore_eos": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_endpoints_match_the_terminal_path() {
    let d = tiny("llama", 11);
    let m = d.path().join("m");
    let s = Server::start(&m, &["--served-model-name", "tiny"]);

    let (code, h) = s.get("/health").await;
    assert_eq!(code, 200);
    assert_eq!(h["status"], "ok");

    let (code, models) = s.get("/v1/models").await;
    assert_eq!(code, 200);
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny");
    assert_eq!(models["data"][0]["object"], "model");
    let (code, one) = s.get("/v1/models/tiny").await;
    assert_eq!((code, one["id"].as_str()), (200, Some("tiny")));

    // Chat, non-streaming: the same greedy text as `swift infer`.
    let want = infer_json(
        &m,
        &[
            "--prompt",
            "hello there",
            "--max-new-tokens",
            "12",
            "--ignore-eos",
            "--temperature",
            "0",
        ],
    );
    let mut body = chat_body("hello there", 12);
    body["model"] = json!("tiny");
    let (code, v) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "tiny");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let ch = &v["choices"][0];
    assert_eq!(ch["message"]["role"], "assistant");
    assert_eq!(ch["message"]["content"], want["text"]);
    assert_eq!(ch["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 12);
    assert_eq!(v["usage"]["prompt_tokens"], want["prompt_tokens"]);
    assert_eq!(
        v["usage"]["total_tokens"],
        want["prompt_tokens"].as_u64().unwrap() + 12
    );

    // max_completion_tokens is the newer name of max_tokens.
    let mut b2 = chat_body("hello there", 1);
    b2.as_object_mut().unwrap().remove("max_tokens");
    b2["max_completion_tokens"] = json!(12);
    let (_, v2) = s.post("/v1/chat/completions", &b2).await;
    assert_eq!(v2["choices"][0]["message"]["content"], want["text"]);

    // Chat, streaming: the deltas add up to the same text; usage at the end.
    let mut sb = chat_body("hello there", 12);
    sb["stream"] = json!(true);
    sb["stream_options"] = json!({"include_usage": true});
    let data = s.stream("/v1/chat/completions", &sb).await;
    let cs = chunks(&data);
    assert!(cs.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(cs[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chat_text(&cs, 0), want["text"].as_str().unwrap());
    assert_eq!(stream_finish(&cs, 0).as_deref(), Some("length"));
    let last = cs.last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0);
    assert_eq!(last["usage"]["completion_tokens"], 12);

    // Completions on raw text: the same as `swift infer --raw`.
    let want = infer_json(
        &m,
        &[
            "--raw",
            "--prompt",
            "the weather",
            "--max-new-tokens",
            "10",
            "--ignore-eos",
            "--temperature",
            "0",
        ],
    );
    let body = json!({"model": "tiny", "prompt": "the weather", "max_tokens": 10, "temperature": 0,
                      "ignore_eos": true});
    let (code, v) = s.post("/v1/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["choices"][0]["text"], want["text"]);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 10);
    // echo puts the prompt in front.
    let mut eb = body.clone();
    eb["echo"] = json!(true);
    let (_, ev) = s.post("/v1/completions", &eb).await;
    assert_eq!(
        ev["choices"][0]["text"].as_str().unwrap(),
        format!("the weather{}", want["text"].as_str().unwrap())
    );
    // Streaming completions.
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let cs = chunks(&s.stream("/v1/completions", &sb).await);
    assert!(cs.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(completion_text(&cs, 0), want["text"].as_str().unwrap());
    assert_eq!(stream_finish(&cs, 0).as_deref(), Some("length"));

    // A list of prompts and n: one choice per (prompt, n), in order.
    let body = json!({"prompt": ["the weather", "hello"], "n": 2, "max_tokens": 10,
                      "temperature": 0, "ignore_eos": true});
    let (code, v) = s.post("/v1/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    let chs = v["choices"].as_array().unwrap();
    assert_eq!(chs.len(), 4);
    for (i, c) in chs.iter().enumerate() {
        assert_eq!(c["index"], i);
    }
    assert_eq!(chs[0]["text"], want["text"]);
    assert_eq!(chs[1]["text"], want["text"]);
    assert_eq!(chs[2]["text"], chs[3]["text"]);
    assert_eq!(v["usage"]["completion_tokens"], 40);

    // Unknown routes are JSON 404s.
    let (code, v) = s.get("/v2/nothing").await;
    assert_eq!(code, 404);
    assert!(v["error"]["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_logprobs_and_echo_scoring() {
    let d = tiny("qwen2", 12);
    let m = d.path().join("m");
    let s = Server::start(&m, &[]);

    // Chat logprobs: one entry per token, the greedy token on top.
    let mut body = chat_body("hi", 6);
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(3);
    let (code, v) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 6);
    for e in content {
        let top = e["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["logprob"], e["logprob"]);
        assert!(e["logprob"].as_f64().unwrap() <= 0.0);
        assert!(top[0]["logprob"].as_f64() >= top[1]["logprob"].as_f64());
        assert!(e["token"].is_string() && e["bytes"].is_array());
    }
    // Streamed, the same entries arrive chunk by chunk.
    body["stream"] = json!(true);
    let cs = chunks(&s.stream("/v1/chat/completions", &body).await);
    let streamed: Vec<Value> = cs
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|ch| ch["logprobs"]["content"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(&streamed, content);

    // Scoring as lm-evaluation-harness does: token ids, echo, logprobs, max_tokens 1.
    let model = Model::load(&m, &LoadOptions::default()).unwrap();
    let ids: Vec<u32> = vec![40, 41, 300, 7, 99, 256, 120, 33];
    let want = model.token_logprobs(&ids).unwrap();
    let body =
        json!({"prompt": ids, "echo": true, "logprobs": 1, "max_tokens": 1, "temperature": 0});
    let (code, v) = s.post("/v1/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    let tl = lp["token_logprobs"].as_array().unwrap();
    assert_eq!(tl.len(), ids.len() + 1);
    assert!(tl[0].is_null());
    for (i, w) in want.iter().enumerate() {
        let got = tl[i + 1].as_f64().unwrap();
        assert!(
            (got - *w as f64).abs() < 1e-4,
            "token {}: {got} vs {w}",
            i + 1
        );
        // is_greedy as the harness checks it.
        let top = lp["top_logprobs"][i + 1].as_object().unwrap();
        let best = top
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert!(got <= best + 1e-6);
    }
    assert_eq!(lp["tokens"].as_array().unwrap().len(), ids.len() + 1);
    assert_eq!(lp["text_offset"][0], 0);
    // max_tokens 0: the prompt alone, same numbers; several prompts at once.
    let body = json!({"prompt": [ids, ids[..4]], "echo": true, "logprobs": 0, "max_tokens": 0});
    let (code, v) = s.post("/v1/completions", &body).await;
    assert_eq!(code, 200, "{v}");
    let tl = v["choices"][0]["logprobs"]["token_logprobs"]
        .as_array()
        .unwrap();
    assert_eq!(tl.len(), ids.len());
    for (i, w) in want.iter().enumerate() {
        assert!((tl[i + 1].as_f64().unwrap() - *w as f64).abs() < 1e-4);
    }
    let tl1 = v["choices"][1]["logprobs"]["token_logprobs"]
        .as_array()
        .unwrap();
    assert_eq!(tl1.len(), 4);
    assert_eq!(v["usage"]["completion_tokens"], 0);
    assert_eq!(v["usage"]["prompt_tokens"], ids.len() + 4);
    // Streamed with echo: the prompt's logprobs come first.
    let body = json!({"prompt": ids, "echo": true, "logprobs": 2, "max_tokens": 2,
                      "stream": true, "temperature": 0});
    let cs = chunks(&s.stream("/v1/completions", &body).await);
    let first = &cs[0]["choices"][0];
    let tl = first["logprobs"]["token_logprobs"].as_array().unwrap();
    assert_eq!(tl.len(), ids.len());
    assert!((tl[1].as_f64().unwrap() - want[0] as f64).abs() < 1e-4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_stop_strings_cut_the_text() {
    let d = tiny("llama", 13);
    let m = d.path().join("m");
    let s = Server::start(&m, &[]);
    let body = json!({"prompt": "the sea", "max_tokens": 40, "temperature": 0, "ignore_eos": true});
    let (_, v) = s.post("/v1/completions", &body).await;
    let full = v["choices"][0]["text"].as_str().unwrap().to_string();
    // The first character that does not occur before it, past the start.
    let chars: Vec<(usize, char)> = full.char_indices().collect();
    let (at, stop) = chars
        .iter()
        .skip(1)
        .find(|(i, c)| !full[..*i].contains(*c))
        .map(|(i, c)| (*i, c.to_string()))
        .expect("a varied completion");
    for stream in [false, true] {
        let mut b = body.clone();
        b["stop"] = json!([stop.clone(), "zzzz-not-there"]);
        b["stream"] = json!(stream);
        let (text, finish) = if stream {
            let cs = chunks(&s.stream("/v1/completions", &b).await);
            (completion_text(&cs, 0), stream_finish(&cs, 0).unwrap())
        } else {
            let (code, v) = s.post("/v1/completions", &b).await;
            assert_eq!(code, 200);
            (
                v["choices"][0]["text"].as_str().unwrap().to_string(),
                v["choices"][0]["finish_reason"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        };
        assert_eq!(text, &full[..at], "stop {stop:?} in {full:?}");
        assert_eq!(finish, "stop");
    }
    // A single string works too, and in chat.
    let (_, v) = s.post("/v1/chat/completions", &chat_body("hi", 30)).await;
    let chat_full = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    if let Some((i, c)) = chat_full
        .char_indices()
        .skip(1)
        .find(|(i, c)| !chat_full[..*i].contains(*c))
    {
        let mut b = chat_body("hi", 30);
        b["stop"] = json!(c.to_string());
        let (_, v) = s.post("/v1/chat/completions", &b).await;
        assert_eq!(v["choices"][0]["message"]["content"], &chat_full[..i]);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_errors_are_openai_shaped() {
    let d = tiny("llama", 14);
    let m = d.path().join("m");
    let s = Server::start(&m, &["--max-body-bytes", "20000"]);
    let check = |code: u16, v: &Value, want: u16| {
        assert_eq!(code, want, "{v}");
        let e = &v["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(e["type"].is_string(), "{v}");
        assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    };
    let chat = "/v1/chat/completions";
    let comp = "/v1/completions";
    // Malformed JSON.
    let (c, v) = s.post_raw(chat, b"{\"messages\": [".to_vec(), &[]).await;
    check(c, &v, 400);
    // A missing field names it.
    let (c, v) = s.post(chat, &json!({"max_tokens": 3})).await;
    check(c, &v, 400);
    assert_eq!(v["error"]["param"], "messages");
    let (c, v) = s.post(comp, &json!({"max_tokens": 3})).await;
    check(c, &v, 400);
    assert_eq!(v["error"]["param"], "prompt");
    // A wrong type.
    let (c, v) = s.post(chat, &json!({"messages": "hi"})).await;
    check(c, &v, 400);
    // Unknown model.
    let (c, v) = s
        .post(
            chat,
            &json!({"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    check(c, &v, 404);
    assert_eq!(v["error"]["code"], "model_not_found");
    // A prompt longer than the context window (512).
    let long = "a ".repeat(600);
    let (c, v) = s
        .post(comp, &json!({"prompt": long, "max_tokens": 1}))
        .await;
    check(c, &v, 400);
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    // max_tokens out of range.
    for bad in [json!(-1), json!(100000)] {
        let (c, v) = s
            .post(comp, &json!({"prompt": "hi", "max_tokens": bad}))
            .await;
        check(c, &v, 400);
        assert_eq!(v["error"]["param"], "max_tokens");
    }
    let (c, v) = s
        .post(
            chat,
            &json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
        )
        .await;
    check(c, &v, 400);
    // Other bad values.
    for body in [
        json!({"prompt": "hi", "temperature": -1}),
        json!({"prompt": "hi", "top_p": 0}),
        json!({"prompt": "hi", "n": 0}),
        json!({"prompt": "hi", "logprobs": 50}),
        json!({"prompt": [1, 2, 99999]}),
        json!({"prompt": []}),
    ] {
        let (c, v) = s.post(comp, &body).await;
        check(c, &v, 400);
    }
    let (c, v) = s
        .post(chat, &json!({"messages": [], "max_tokens": 2}))
        .await;
    check(c, &v, 400);
    let (c, v) = s
        .post(
            chat,
            &json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}),
        )
        .await;
    check(c, &v, 400);
    // Body over the limit.
    let big = json!({"prompt": "x".repeat(30000)})
        .to_string()
        .into_bytes();
    let (c, v) = s.post_raw(comp, big, &[]).await;
    check(c, &v, 413);
    // After all that the server still answers.
    let (c, v) = s
        .post(comp, &json!({"prompt": "hi", "max_tokens": 2}))
        .await;
    assert_eq!(c, 200, "{v}");

    // --api-key (or SWIFT_API_KEY): 401 without the bearer token.
    let s = Server::start_env(&m, &[], &[("SWIFT_API_KEY", "sekret")]);
    let body = json!({"prompt": "hi", "max_tokens": 2})
        .to_string()
        .into_bytes();
    let (c, v) = s.post_raw(comp, body.clone(), &[]).await;
    check(c, &v, 401);
    let (c, v) = s
        .post_raw(comp, body.clone(), &[("authorization", "Bearer nope")])
        .await;
    check(c, &v, 401);
    let (c, _) = s
        .post_raw(comp, body, &[("authorization", "Bearer sekret")])
        .await;
    assert_eq!(c, 200);
    let r = reqwest::get(format!("{}/v1/models", s.url)).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (c, _) = s.get("/health").await;
    assert_eq!(c, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_adapters_are_models() {
    let d = tiny("llama", 15);
    let m = d.path().join("m");
    let base = Model::load(&m, &LoadOptions::default()).unwrap();
    let ad = d.path().join("style");
    write_adapter(&base, &ad, 2.0, 8, false, 3);
    let spec = format!("tuned={}", ad.display());
    let s = Server::start(&m, &["--served-model-name", "base", "--adapter", &spec]);
    let (_, models) = s.get("/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["base", "tuned"]);
    assert_eq!(models["data"][1]["parent"], "base");
    // The adapter model answers as `swift infer --adapter` does, the base as the base.
    let want_tuned = infer_json(
        &m,
        &[
            "--adapter",
            ad.to_str().unwrap(),
            "--raw",
            "--prompt",
            "abc",
            "--max-new-tokens",
            "12",
            "--ignore-eos",
            "--temperature",
            "0",
        ],
    );
    let want_base = infer_json(
        &m,
        &[
            "--raw",
            "--prompt",
            "abc",
            "--max-new-tokens",
            "12",
            "--ignore-eos",
            "--temperature",
            "0",
        ],
    );
    assert_ne!(
        want_tuned["text"], want_base["text"],
        "the adapter changes nothing"
    );
    // Both at once: they run in the same steps, each with its own weights.
    let b = |model: &str| {
        json!({"model": model, "prompt": "abc", "max_tokens": 12,
                                 "temperature": 0, "ignore_eos": true})
    };
    let (bt, bb) = (b("tuned"), b("base"));
    let (t, u) = tokio::join!(
        s.post("/v1/completions", &bt),
        s.post("/v1/completions", &bb)
    );
    assert_eq!(t.1["choices"][0]["text"], want_tuned["text"]);
    assert_eq!(t.1["model"], "tuned");
    assert_eq!(u.1["choices"][0]["text"], want_base["text"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_16_concurrent_clients_get_their_own_answers() {
    let d = tiny("llama", 16);
    let m = d.path().join("m");
    let s = Server::start(&m, &["--max-batch", "8"]);
    // Different prompts and lengths, so that a mix-up shows.
    let words = ["sea", "the", "at", "rain", "win", "tan", "on", "were"];
    let prompts: Vec<String> = (0..16)
        .map(|i| {
            format!(
                "{} {} {i}",
                words[i % 8],
                words[(i * 3 + 1) % 8].repeat(i % 3 + 1)
            )
        })
        .collect();
    let body = |p: &str, stream: bool| {
        let i: usize = p.rsplit(' ').next().unwrap().parse().unwrap();
        json!({"messages": [{"role": "user", "content": p}], "max_tokens": 8 + i,
               "temperature": 0, "ignore_eos": true, "stream": stream})
    };
    // One at a time first.
    let mut alone = Vec::new();
    for p in &prompts {
        let (c, v) = s.post("/v1/chat/completions", &body(p, false)).await;
        assert_eq!(c, 200, "{v}");
        alone.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        alone.iter().collect::<std::collections::HashSet<_>>().len() > 8,
        "{alone:?}"
    );
    // Then all at once, half streaming: nobody fails, nobody gets another's answer.
    let mut tasks = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let url = s.url.clone();
        let b = body(p, i % 2 == 0);
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
        assert_eq!(t.await.unwrap(), alone[i], "client {i}");
    }
    // The scheduler retires a sequence on its next loop after the last chunk
    // went out, so "running" reaches 0 shortly after the clients finish.
    let mut h = Value::Null;
    for _ in 0..100 {
        h = s.get("/health").await.1;
        if h["running"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(h["running"], 0, "{h}");
    assert!(h["peak_running"].as_u64().unwrap() <= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_sigterm_and_sigint_finish_in_flight_and_exit_zero() {
    let d = tiny("llama", 17);
    let m = d.path().join("m");
    for sig in ["TERM", "INT"] {
        let mut s = Server::start(&m, &[]);
        // A streamed answer in flight when the signal comes.
        let url = s.url.clone();
        let body = json!({"prompt": "once upon", "max_tokens": 300, "ignore_eos": true,
                          "temperature": 0, "stream": true});
        let resp = reqwest::Client::new()
            .post(format!("{url}/v1/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        s.signal(sig);
        let text = resp.text().await.unwrap();
        let cs = chunks(&sse_data(&text));
        assert!(stream_finish(&cs, 0).is_some(), "{text}");
        let (status, err) = s.wait();
        assert_eq!(status.code(), Some(0), "{sig}: {err}");
        assert!(err.contains("server stopped"), "{err}");
        // Nothing listens any more.
        assert!(reqwest::get(format!("{url}/health")).await.is_err());
    }
}
