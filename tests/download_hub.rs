//! `swift download` against a Hugging Face protocol hub on loopback: the cache
//! layout, filters, `--local-dir`, `--json`, offline mode, datasets by name.

mod hub_server;

use std::fs;
use std::path::Path;

use hub_server::{hf_cache, run, swift_cmd, tiny_model, Content, HubServer, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_swift");

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

#[cfg(unix)]
fn assert_not_world_writable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walk(root) {
        let md = fs::symlink_metadata(&entry).unwrap();
        if md.file_type().is_symlink() {
            continue;
        }
        assert_eq!(
            md.permissions().mode() & 0o002,
            0,
            "{} is world-writable",
            entry.display()
        );
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn download_fills_the_hf_cache_layout() {
    let hub = HubServer::start();
    let commit = tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v = json(&out);
    let cache = hf_cache(home.path());
    let folder = cache.join("models--org--tiny");
    let snap = folder.join("snapshots").join(&commit);
    assert_eq!(v["path"].as_str().unwrap(), snap.to_str().unwrap());
    assert_eq!(v["commit"], commit.as_str());
    assert_eq!(v["hub"], "hf");
    assert_eq!(v["files"].as_array().unwrap().len(), 4);
    assert_eq!(
        fs::read_to_string(folder.join("refs/main")).unwrap(),
        commit
    );
    assert!(folder
        .join("trees")
        .join(format!("{commit}.json"))
        .is_file());

    let repo = hub.repo(Kind::Model, "org/tiny");
    for f in &repo.files {
        let link = snap.join(&f.path);
        let target = fs::read_link(&link).unwrap();
        assert!(target.is_relative(), "{}", target.display());
        let etag = if f.lfs { &f.sha256 } else { &f.oid };
        assert!(
            target.ends_with(Path::new("blobs").join(etag)),
            "{}",
            target.display()
        );
        assert_eq!(fs::read(&link).unwrap(), f.content.to_vec(), "{}", f.path);
    }
    // No partial files or state left behind.
    for e in fs::read_dir(folder.join("blobs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("incomplete"), "left over: {name}");
    }
    #[cfg(unix)]
    assert_not_world_writable(&cache);

    // A second run transfers nothing.
    hub.clear_log();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(json(&out)["downloaded_bytes"], 0);
    assert!(
        hub.log().iter().all(|r| r.file.is_none()),
        "files fetched again"
    );

    // Without --json: the snapshot path alone on stdout.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "hf::org/tiny"]);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), snap.to_str().unwrap());
}

#[test]
fn include_exclude_and_positional_files() {
    let hub = HubServer::start();
    tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "org/tiny",
        "--include",
        "*.json",
        "--exclude",
        "tokenizer*",
        "--json",
    ]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let files: Vec<String> = json(&out)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files, vec!["config.json"]);
    assert!(hub.file_gets("model.safetensors").is_empty());

    // ms-swift spellings are accepted; a positional file narrows the same way.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "org/tiny",
        "sub/notes.txt",
        "--allow_patterns",
        "nothing",
        "--json",
    ]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(json(&out)["files"][0]["path"], "sub/notes.txt");

    // A file that is not in the repository is an error that names it.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "missing.json"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("missing.json"), "{err}");
}

#[test]
fn local_dir_gets_plain_files_and_metadata() {
    let hub = HubServer::start();
    let commit = tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("out");
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "--local_dir"])
        .arg(&dir)
        .arg("--json");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(json(&out)["path"].as_str().unwrap(), dir.to_str().unwrap());
    let repo = hub.repo(Kind::Model, "org/tiny");
    for f in &repo.files {
        let p = dir.join(&f.path);
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&p).unwrap(), f.content.to_vec());
        let meta = dir
            .join(".cache/huggingface/download")
            .join(format!("{}.metadata", f.path));
        let text = fs::read_to_string(&meta).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(commit.as_str()));
        assert_eq!(
            lines.next(),
            Some(if f.lfs {
                f.sha256.as_str()
            } else {
                f.oid.as_str()
            })
        );
    }
    assert!(!hf_cache(home.path())
        .join("models--org--tiny/blobs")
        .exists());
}

#[test]
fn offline_mode_resolves_from_the_cache_only() {
    let hub = HubServer::start();
    let commit = tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "config.json"]);
    assert_eq!(run(c).0, 0);

    hub.clear_log();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("HF_HUB_OFFLINE", "1")
        .args(["download", "org/tiny", "config.json", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v = json(&out);
    assert_eq!(v["from_cache"], true);
    assert_eq!(v["commit"], commit.as_str());
    assert!(hub.log().is_empty(), "offline mode asked the hub");

    // A file that was never fetched is an error offline, with a hint.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "model.safetensors", "--offline"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(
        err.contains("not in the cache") && err.contains("--offline"),
        "{err}"
    );
    // So is a repository the cache does not hold.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/other", "--offline"]);
    assert_eq!(run(c).0, 1);
    assert!(hub.log().is_empty());
}

#[test]
fn unreachable_hub_falls_back_to_the_cache() {
    let hub = HubServer::start();
    let commit = tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny"]);
    assert_eq!(run(c).0, 0);
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("HF_ENDPOINT", &dead_url)
        .args(["download", "org/tiny", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(json(&out)["commit"], commit.as_str());
    assert!(err.contains("could not be reached"), "{err}");
    // Nothing cached for this one: the connection error is reported.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("HF_ENDPOINT", &dead_url)
        .args(["download", "org/other"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("org/other"), "{err}");
}

#[test]
fn errors_for_missing_repos_and_tokens_sent() {
    let hub = HubServer::start();
    tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/nope"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");

    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "--revision", "v9"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("v9"), "{err}");

    hub.clear_log();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("HF_TOKEN", "hf_secret")
        .args(["download", "org/tiny", "config.json"]);
    assert_eq!(run(c).0, 0);
    assert!(hub
        .log()
        .iter()
        .all(|r| r.auth.as_deref() == Some("Bearer hf_secret")));

    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download"]);
    assert_eq!(run(c).0, 2);
}

#[test]
fn datasets_by_registry_name_and_listing() {
    let hub = HubServer::start();
    let commit = hub.add_repo(
        Kind::Dataset,
        "org/tiny-data",
        vec![
            (
                "data/train.jsonl",
                Content::bytes(b"{\"instruction\": \"hi\", \"output\": \"yo\"}\n".to_vec()),
            ),
            ("README.md", Content::bytes(b"# data\n".to_vec())),
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let reg = home.path().join("registry.json");
    fs::write(
        &reg,
        r#"{"datasets": [{"name": "tiny-sft", "kind": "sft", "format": "alpaca",
            "hf": "org/tiny-data", "split": "train", "files": ["data/*"],
            "columns": {"instruction": "instruction", "output": "output"}}]}"#,
    )
    .unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "--dataset", "tiny-sft", "--registry"])
        .arg(&reg)
        .arg("--json");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v = json(&out);
    let snap = hf_cache(home.path())
        .join("datasets--org--tiny-data/snapshots")
        .join(&commit);
    assert_eq!(v["path"].as_str().unwrap(), snap.to_str().unwrap());
    assert_eq!(v["repo_type"], "dataset");
    assert_eq!(v["dataset"]["split"], "train");
    assert_eq!(
        v["files"].as_array().unwrap().len(),
        1,
        "registry `files` narrows"
    );
    assert!(snap.join("data/train.jsonl").is_file());

    // The same name as a positional id, through SWIFT_DATASET_REGISTRY.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("SWIFT_DATASET_REGISTRY", &reg)
        .args(["download", "tiny-sft"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out.trim(), snap.to_str().unwrap());

    // The built-in registry lists at least twenty datasets, both hubs.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "--list-datasets", "--json"]);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    let list = json(&out);
    let list = list.as_array().unwrap();
    assert!(list.len() >= 20, "{}", list.len());
    for name in [
        "alpaca-zh",
        "alpaca-en",
        "mmlu",
        "ceval",
        "gsm8k",
        "arc-challenge",
        "orca-dpo-pairs",
    ] {
        assert!(list.iter().any(|e| e["name"] == name), "{name}");
    }
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "--list-datasets"]);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    assert!(out.contains("AI-ModelScope/alpaca-gpt4-data-zh"), "{out}");
}
