//! `swift download` under injected faults: dropped connections, 500s, a slow
//! server, corrupted bodies, unpublished blobs, a killed client, two clients
//! at once. The server records every request, so the tests check what was
//! asked for, not only that the result is right.

mod hub_server;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use hub_server::{hf_cache, run, swift_cmd, Content, Fault, HubServer, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_swift");
const BIG: &str = "model.safetensors";

fn big_repo(hub: &HubServer, size: u64) -> String {
    hub.add_repo(
        Kind::Model,
        "org/big",
        vec![
            (
                "config.json",
                Content::bytes(br#"{"hidden_size": 8}"#.to_vec()),
            ),
            (BIG, Content::pattern(7, size)),
        ],
    )
}

fn assert_big_ok(hub: &HubServer, home: &Path, commit: &str) {
    let repo = hub.repo(Kind::Model, "org/big");
    let f = repo.files.iter().find(|f| f.path == BIG).unwrap();
    let link = hf_cache(home)
        .join("models--org--big/snapshots")
        .join(commit)
        .join(BIG);
    let got = fs::read(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    assert!(got == f.content.to_vec(), "content differs");
}

fn blob_path(home: &Path, sha: &str) -> std::path::PathBuf {
    hf_cache(home).join("models--org--big/blobs").join(sha)
}

#[test]
fn dropped_connection_resumes_from_where_it_stopped() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 4 << 20);
    hub.set_fault(
        BIG,
        Fault {
            drop_after: Some(1 << 20),
            drop_times: 2,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_big_ok(&hub, home.path(), &commit);
    let gets = hub.file_gets(BIG);
    assert!(gets.len() >= 3, "{gets:?}");
    // Each retry asks for the rest, not the whole file again.
    assert_eq!(gets[0].range.unwrap().0, 0);
    assert!(gets[1].range.unwrap().0 > 0, "{gets:?}");
    assert!(
        gets[2].range.unwrap().0 > gets[1].range.unwrap().0,
        "{gets:?}"
    );
    assert!(hub.bytes_served(BIG) < (4 << 20) + (2 << 20));
    assert!(err.contains("retrying"), "{err}");
}

#[test]
fn server_errors_are_retried_until_success() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 2 << 20);
    hub.set_fault(
        "@api",
        Fault {
            status_500: 2,
            ..Default::default()
        },
    );
    hub.set_fault(
        BIG,
        Fault {
            status_500: 2,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_big_ok(&hub, home.path(), &commit);
    let statuses: Vec<u16> = hub.file_gets(BIG).iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 500, 206]);
    let api: Vec<u16> = hub
        .log()
        .iter()
        .filter(|r| r.uri.starts_with("/api/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(api, vec![500, 500, 200]);
}

#[test]
fn persistent_server_errors_fail_after_the_retries() {
    let hub = HubServer::start();
    big_repo(&hub, 1 << 20);
    hub.set_fault(
        BIG,
        Fault {
            status_500: 1000,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("500") && err.contains(BIG), "{err}");
    assert_eq!(hub.file_gets(BIG).len(), 6, "1 try + 5 retries");
}

#[test]
fn slow_response_times_out_and_is_retried() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 1 << 20);
    hub.set_fault(
        BIG,
        Fault {
            stall: Some(Duration::from_secs(3)),
            stall_times: 1,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.env("HF_HUB_DOWNLOAD_TIMEOUT", "0.5")
        .args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_big_ok(&hub, home.path(), &commit);
    assert_eq!(hub.file_gets(BIG).len(), 2);
    assert!(err.contains("retrying"), "{err}");
}

#[test]
fn corrupted_body_is_detected_and_never_published() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 2 << 20);
    let sha = hub
        .repo(Kind::Model, "org/big")
        .files
        .iter()
        .find(|f| f.path == BIG)
        .unwrap()
        .sha256
        .clone();
    hub.set_fault(
        BIG,
        Fault {
            corrupt_times: 1000,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(
        !blob_path(home.path(), &sha).exists(),
        "a corrupt blob was published"
    );
    let snap = hf_cache(home.path())
        .join("models--org--big/snapshots")
        .join(&commit);
    assert!(
        fs::symlink_metadata(snap.join(BIG)).is_err(),
        "linked a corrupt blob"
    );
    // The partial file is thrown away too.
    let leftovers: Vec<String> = fs::read_dir(hf_cache(home.path()).join("models--org--big/blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&sha))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Corrupt once: discarded, fetched again, published.
    hub.set_fault(
        BIG,
        Fault {
            corrupt_times: 1,
            ..Default::default()
        },
    );
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(err.contains("discarded"), "{err}");
    assert_big_ok(&hub, home.path(), &commit);
}

#[test]
fn blob_never_published_on_the_hub_is_a_clear_error() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 1 << 20);
    hub.set_fault(
        BIG,
        Fault {
            missing: true,
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args(["download", "org/big"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    assert!(err.contains("404") && err.contains(BIG), "{err}");
    assert_eq!(hub.file_gets(BIG).len(), 1, "a 404 is not retried");
    // The other file still arrived.
    let snap = hf_cache(home.path())
        .join("models--org--big/snapshots")
        .join(&commit);
    assert!(snap.join("config.json").is_file());
    assert!(!snap.join(BIG).exists());
}

#[test]
fn large_files_come_as_parallel_byte_ranges() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 8 << 20);
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "org/big",
        "--connections",
        "4",
        "--part-size-mb",
        "1",
    ]);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_big_ok(&hub, home.path(), &commit);
    let mut ranges: Vec<(u64, u64)> = hub
        .file_gets(BIG)
        .iter()
        .map(|r| r.range.unwrap())
        .collect();
    ranges.sort();
    assert_eq!(
        ranges,
        vec![
            (0, (2 << 20) - 1),
            (2 << 20, (4 << 20) - 1),
            (4 << 20, (6 << 20) - 1),
            (6 << 20, (8 << 20) - 1)
        ]
    );
    assert_eq!(hub.bytes_served(BIG), 8 << 20);
}

#[cfg(unix)]
#[test]
fn killed_client_resumes_fetching_only_the_rest() {
    let hub = HubServer::start();
    let size: u64 = 16 << 20;
    let commit = big_repo(&hub, size);
    // 4 ranges of 4 MiB, each sent at 2 MiB/s.
    hub.set_fault(
        BIG,
        Fault {
            throttle_bps: Some(2 << 20),
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "org/big",
        "--connections",
        "4",
        "--part-size-mb",
        "1",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    while hub.bytes_served(BIG) < 10 << 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the download never progressed"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let first_run = hub.bytes_served(BIG);
    assert!(first_run < size, "{first_run}");

    hub.clear_faults();
    hub.clear_log();
    let mut c = swift_cmd(BIN, home.path(), &hub);
    c.args([
        "download",
        "org/big",
        "--connections",
        "4",
        "--part-size-mb",
        "1",
        "--json",
    ]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stderr: {err}");
    assert_big_ok(&hub, home.path(), &commit);
    let gets = hub.file_gets(BIG);
    assert!(!gets.is_empty());
    // Every range starts past what its part had already saved ...
    let part_starts = [0u64, 4 << 20, 8 << 20, 12 << 20];
    for g in &gets {
        let (s, _) = g.range.unwrap();
        assert!(
            !part_starts.contains(&s),
            "range {s} was fetched from its start: {gets:?}"
        );
    }
    // ... and the second run moved only the rest.
    let second = hub.bytes_served(BIG);
    assert!(
        second < size - (4 << 20),
        "second run fetched {second} of {size}"
    );
    assert!(second + first_run >= size);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["downloaded_bytes"].as_u64().unwrap(), second);
}

#[test]
fn two_processes_fetching_the_same_blob_do_not_corrupt_it() {
    let hub = HubServer::start();
    let commit = big_repo(&hub, 4 << 20);
    hub.set_fault(
        BIG,
        Fault {
            throttle_bps: Some(8 << 20),
            ..Default::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let spawn = || {
        let mut c = swift_cmd(BIN, home.path(), &hub);
        c.args(["download", "org/big"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let a = spawn();
    let b = spawn();
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert_big_ok(&hub, home.path(), &commit);
    // The lock made the second wait and reuse the blob.
    assert_eq!(hub.bytes_served(BIG), 4 << 20);
}
