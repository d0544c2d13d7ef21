//! `swift download` against a ModelScope protocol hub on loopback: models by
//! `ms::` prefix or `--hub modelscope`, datasets, checksums, faults.

mod hub_server;

use std::fs;

use hub_server::{run, swift_cmd, tiny_model, Content, Fault, HubServer, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_swift");

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

#[test]
fn modelscope_model_by_prefix_and_flag() {
    let hub = HubServer::start();
    tiny_model(&hub, "Qwen/tiny");
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("MODELSCOPE_API_TOKEN", "ms_secret")
        .args(["download", "ms::Qwen/tiny", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v = json(&out);
    assert_eq!(v["hub"], "modelscope");
    assert_eq!(v["revision"], "master");
    let path = std::path::PathBuf::from(v["path"].as_str().unwrap());
    assert!(
        path.starts_with(home.path().join("ms").join("models--Qwen--tiny")),
        "{}",
        path.display()
    );
    let repo = hub.repo(Kind::Model, "Qwen/tiny");
    for f in &repo.files {
        assert_eq!(fs::read(path.join(&f.path)).unwrap(), f.content.to_vec());
    }
    // Only ModelScope routes were used, with the token.
    let log = hub.log();
    assert!(
        log.iter()
            .all(|r| r.uri.starts_with("/api/v1/models/Qwen/tiny/repo")),
        "{log:?}"
    );
    assert!(log.iter().any(|r| r.uri.contains("Recursive=true")));
    assert!(log
        .iter()
        .all(|r| r.auth.as_deref() == Some("Bearer ms_secret")));

    // Same repository with --hub and the ms-swift spelling of --local-dir.
    let dir = home.path().join("plain");
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "Qwen/tiny",
        "--hub",
        "modelscope",
        "--include",
        "*.json",
        "--local_dir",
    ])
    .arg(&dir);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out.trim(), dir.to_str().unwrap());
    assert!(dir.join("config.json").is_file());
    assert!(!dir.join("model.safetensors").exists());

    // A prefix that contradicts --hub is refused.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "ms::Qwen/tiny", "--hub", "hf"]);
    let (code, _, err) = run(c);
    assert_ne!(code, 0);
    assert!(err.contains("--hub"), "{err}");
}

#[test]
fn modelscope_checksum_and_retries() {
    let hub = HubServer::start();
    tiny_model(&hub, "Qwen/tiny");
    hub.set_fault(
        "model.safetensors",
        Fault {
            corrupt_times: 1000,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "ms::Qwen/tiny"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("checksum mismatch"), "{err}");

    hub.set_fault(
        "model.safetensors",
        Fault {
            status_500: 1,
            drop_after: Some(500_000),
            drop_times: 1,
            ..Default::default()
        },
    );
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "ms::Qwen/tiny", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let path = std::path::PathBuf::from(json(&out)["path"].as_str().unwrap().to_string());
    let repo = hub.repo(Kind::Model, "Qwen/tiny");
    let f = repo
        .files
        .iter()
        .find(|f| f.path == "model.safetensors")
        .unwrap();
    assert!(fs::read(path.join(&f.path)).unwrap() == f.content.to_vec());
    let statuses: Vec<u16> = hub
        .file_gets("model.safetensors")
        .iter()
        .map(|r| r.status)
        .collect();
    assert!(statuses.ends_with(&[500, 206, 206]), "{statuses:?}");
}

#[test]
fn modelscope_dataset_listing_is_paged() {
    let hub = HubServer::start();
    // More files than one page of the tree listing (500).
    let mut files: Vec<(String, Content)> = (0..620)
        .map(|i| {
            (
                format!("shards/part-{i:04}.jsonl"),
                Content::bytes(format!("{{\"i\": {i}}}\n")),
            )
        })
        .collect();
    files.push(("README.md".into(), Content::bytes(b"# ds\n".to_vec())));
    hub.add_repo(
        Kind::Dataset,
        "AI-ModelScope/many",
        files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect(),
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "AI-ModelScope/many",
        "--hub",
        "ms",
        "--repo-type",
        "dataset",
        "--include",
        "shards/part-06*",
        "--json",
    ]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v = json(&out);
    assert_eq!(v["repo_type"], "dataset");
    assert_eq!(v["files"].as_array().unwrap().len(), 20, "part-0600..0619");
    let path = std::path::PathBuf::from(v["path"].as_str().unwrap());
    assert!(path.starts_with(home.path().join("ms").join("datasets--AI-ModelScope--many")));
    assert_eq!(
        fs::read_to_string(path.join("shards/part-0612.jsonl")).unwrap(),
        "{\"i\": 612}\n"
    );
    let pages: Vec<String> = hub
        .log()
        .iter()
        .filter(|r| r.uri.contains("/repo/tree"))
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].contains("PageNumber=2"));
    assert!(hub
        .log()
        .iter()
        .filter(|r| r.file.is_some())
        .all(|r| r.uri.contains("Source=SDK") && r.uri.contains("FilePath=")));
}
