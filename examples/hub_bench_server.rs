//! The loopback test hub (tests/hub_server) as a program, for
//! `fixtures/bench_download.py`: serves one generated multi-file model
//! repository and prints `URL COMMIT` on stdout; runs until stdin closes.
//!
//! cargo run --release --example hub_bench_server -- --files 4 --size-mb 1024

#[path = "../tests/hub_server/mod.rs"]
mod hub_server;

use std::io::{BufRead, Write};

use hub_server::{Content, HubServer, Kind};

fn main() {
    let mut files = 4u64;
    let mut size_mb = 1024u64;
    let mut id = "bench/generated".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--files" => files = val().parse().expect("--files N"),
            "--size-mb" => size_mb = val().parse().expect("--size-mb N"),
            "--id" => id = val(),
            other => panic!("unknown flag {other}"),
        }
    }
    let hub = HubServer::start();
    let names: Vec<String> = (1..=files)
        .map(|i| format!("model-{i:05}-of-{files:05}.safetensors"))
        .collect();
    let mut content: Vec<(&str, Content)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), Content::pattern(i as u64 + 1, size_mb << 20)))
        .collect();
    content.push((
        "config.json",
        Content::bytes(br#"{"model_type": "llama"}"#.to_vec()),
    ));
    let commit = hub.add_repo(Kind::Model, &id, content);
    println!("{} {commit}", hub.url);
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
        line.clear();
    }
}
