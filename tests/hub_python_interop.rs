//! The cache is shared with Python: `huggingface_hub` in offline mode finds a
//! snapshot swift downloaded, and swift offline finds one `huggingface_hub`
//! downloaded (from the same loopback hub). Needs `python3` with
//! `huggingface_hub` (fixtures/requirements-ci.txt); fails, not skips, without.

mod hub_server;

use std::path::Path;
use std::process::Command;

use hub_server::{hf_cache, run, swift_cmd, tiny_model, HubServer, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_swift");

fn python(home: &Path, hub: &HubServer, script: &str, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new("python3");
    for (k, _) in std::env::vars() {
        if k.starts_with("HF_") || k.starts_with("HUGGING") || k == "TRANSFORMERS_OFFLINE" {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("HF_HOME", home.join("hf"))
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .arg("-c")
        .arg(script)
        .args(args);
    match c.output() {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => panic!(
            "python3 is needed for this test ({e}); install Python 3 and \
             `pip install -r fixtures/requirements-ci.txt`"
        ),
    }
}

fn require_huggingface_hub(home: &Path, hub: &HubServer) {
    let (code, out, err) = python(
        home,
        hub,
        "import huggingface_hub; print(huggingface_hub.__version__)",
        &[],
    );
    assert_eq!(
        code, 0,
        "this test needs the Python package huggingface_hub: \
         `python3 -m pip install -r fixtures/requirements-ci.txt`\n{out}{err}"
    );
}

const OFFLINE_SCRIPT: &str = r#"
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
from huggingface_hub import snapshot_download, hf_hub_download, scan_cache_dir
repo = sys.argv[1]
p = snapshot_download(repo)
print(p)
print(hf_hub_download(repo, "config.json"))
info = scan_cache_dir()
print(sorted(r.repo_id for r in info.repos))
"#;

#[test]
fn huggingface_hub_offline_finds_the_snapshot_swift_downloaded() {
    let hub = HubServer::start();
    let commit = tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    require_huggingface_hub(home.path(), &hub);

    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let snap = out.trim().to_string();

    hub.clear_log();
    let (code, out, err) = python(home.path(), &hub, OFFLINE_SCRIPT, &["org/tiny"]);
    assert_eq!(code, 0, "huggingface_hub failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], snap);
    assert!(lines[0].ends_with(&commit));
    assert_eq!(lines[1], format!("{snap}/config.json"));
    assert!(lines[2].contains("'org/tiny'"), "{out}");
    assert!(hub.log().is_empty(), "offline Python asked the hub");
}

const ONLINE_SCRIPT: &str = r#"
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1]))
"#;

#[test]
fn swift_offline_finds_the_snapshot_huggingface_hub_downloaded() {
    let hub = HubServer::start();
    let commit = tiny_model(&hub, "org/tiny");
    let home = tempfile::tempdir().unwrap();
    require_huggingface_hub(home.path(), &hub);

    let (code, out, err) = python(home.path(), &hub, ONLINE_SCRIPT, &["org/tiny"]);
    assert_eq!(code, 0, "huggingface_hub failed:\n{out}\n{err}");
    let py_snap = out.trim().to_string();
    assert_eq!(
        Path::new(&py_snap),
        hf_cache(home.path())
            .join("models--org--tiny/snapshots")
            .join(&commit)
    );

    hub.clear_log();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "--offline", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["path"].as_str().unwrap(), py_snap);
    assert_eq!(v["files"].as_array().unwrap().len(), 4);
    assert!(hub.log().is_empty());
    // And online, swift reuses Python's blobs: nothing is transferred.
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/tiny", "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["downloaded_bytes"], 0);
    let repo = hub.repo(Kind::Model, "org/tiny");
    assert!(repo.files.iter().all(|f| hub.file_gets(&f.path).is_empty()));
}
