//! Shared by the `serve_*` tests: start the real binary on a free loopback
//! port, talk HTTP to it, read SSE streams, write tiny adapters. A test file
//! that uses it declares `mod common;` too.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use serde_json::Value;

use crate::common::{ok_json, swift_cmd};

/// A running `swift infer --serve`.
pub struct Server {
    pub child: Option<Child>,
    pub url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Start on `--port 0` and wait for the `listening on` line.
    pub fn start(model: &Path, extra: &[&str]) -> Server {
        Self::start_env(model, extra, &[])
    }

    pub fn start_env(model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = swift_cmd();
        cmd.args(["infer", "--model"])
            .arg(model)
            .args(["--serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting swift");
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(u) = line.strip_prefix("listening on ") {
                url = Some(u.trim().to_string());
                break;
            }
        }
        let Some(url) = url else {
            let status = child.wait().unwrap();
            let err = stderr.join().unwrap();
            panic!("the server did not start ({status}): {err}");
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child: Some(child),
            url,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Send a signal (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait for the process to end; its status and stderr.
    pub fn wait(&mut self) -> (ExitStatus, String) {
        let status = self.child.take().unwrap().wait().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (status, err)
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client()
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// POST raw bytes with extra headers.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut rb = self
            .client()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// POST a streaming request and read every SSE `data:` payload to the end.
    pub async fn stream(&self, path: &str, body: &Value) -> Vec<String> {
        let r = self
            .client()
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let text = r.text().await.unwrap();
        sse_data(&text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|s| s.trim().to_string())
        .collect()
}

/// The chunks of a stream as JSON (without the final `[DONE]`, which must be last).
pub fn chunks(data: &[String]) -> Vec<Value> {
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

/// Chat stream: the concatenated content of choice `index`.
pub fn chat_text(chunks: &[Value], index: u64) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter(|ch| ch["index"] == index)
        .filter_map(|ch| ch["delta"]["content"].as_str().map(str::to_string))
        .collect()
}

/// Completion stream: the concatenated text of choice `index`.
pub fn completion_text(chunks: &[Value], index: u64) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter(|ch| ch["index"] == index)
        .filter_map(|ch| ch["text"].as_str().map(str::to_string))
        .collect()
}

/// The finish_reason of choice `index` in a stream.
pub fn stream_finish(chunks: &[Value], index: u64) -> Option<String> {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter(|ch| ch["index"] == index)
        .find_map(|ch| ch["finish_reason"].as_str().map(str::to_string))
}

/// `swift infer --json` (the terminal path) for comparison.
pub fn infer_json(model: &Path, args: &[&str]) -> Value {
    let o = swift_cmd()
        .args(["infer", "--model"])
        .arg(model)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    ok_json(&o)
}
