//! A hub on loopback for the download tests and the bench: it speaks the
//! Hugging Face Hub protocol (`/api/{models,datasets}/{id}/revision/{rev}`,
//! `/tree/`, `/{id}/resolve/{rev}/{path}` redirecting LFS files to `/cdn/`,
//! with `X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size`) and
//! ModelScope's (`/api/v1/models/{id}/repo/files`, `/api/v1/models/{id}/repo`,
//! `/api/v1/datasets/{id}/repo/tree`, `/api/v1/datasets/{id}/repo`), serves
//! byte ranges, records every request, and injects faults per file: 500s,
//! stalls, dropped connections, corrupted bodies, throttling, missing blobs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Model,
    Dataset,
}

/// File content: literal bytes, or a block repeated to a length (multi-GB
/// files without the memory).
#[derive(Clone)]
pub enum Content {
    Bytes(Bytes),
    Pattern { block: Bytes, len: u64 },
}

impl Content {
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Content::Bytes(Bytes::from(b.into()))
    }
    /// `len` bytes of a deterministic pseudo-random 1 MiB block, repeated.
    pub fn pattern(seed: u64, len: u64) -> Self {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | 1;
        let mut block = Vec::with_capacity(1 << 20);
        while block.len() < (1 << 20) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            block.extend_from_slice(&x.to_le_bytes());
        }
        Content::Pattern {
            block: Bytes::from(block),
            len,
        }
    }
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Pattern { len, .. } => *len,
        }
    }
    /// A zero-copy chunk starting at `off`, at most `max` bytes.
    fn chunk(&self, off: u64, max: usize) -> Bytes {
        match self {
            Content::Bytes(b) => {
                let s = off as usize;
                b.slice(s..(s + max).min(b.len()))
            }
            Content::Pattern { block, len } => {
                let bl = block.len() as u64;
                let s = (off % bl) as usize;
                let n = (max as u64).min(bl - s as u64).min(len - off) as usize;
                block.slice(s..s + n)
            }
        }
    }
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        let mut off = 0;
        while off < self.len() {
            let c = self.chunk(off, 1 << 20);
            off += c.len() as u64;
            v.extend_from_slice(&c);
        }
        v
    }
    fn sha256(&self) -> String {
        let mut h = Sha256::new();
        let mut off = 0;
        while off < self.len() {
            let c = self.chunk(off, 1 << 20);
            off += c.len() as u64;
            h.update(&c);
        }
        hex::encode(h.finalize())
    }
}

#[derive(Clone)]
pub struct FileSpec {
    pub path: String,
    pub content: Content,
    pub sha256: String,
    pub oid: String,
    pub lfs: bool,
}

#[derive(Clone)]
pub struct Repo {
    pub kind: Kind,
    pub id: String,
    pub commit: String,
    pub files: Vec<FileSpec>,
}

/// Faults for one file (key: its path in the repository; `@api` for the
/// listing endpoints). Counters are decremented per request.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// Answer this many requests with 500.
    pub status_500: u32,
    /// Sleep this long before answering, for `stall_times` requests.
    pub stall: Option<Duration>,
    pub stall_times: u32,
    /// Close the connection after this many body bytes, for `drop_times` requests.
    pub drop_after: Option<u64>,
    pub drop_times: u32,
    /// Flip a byte of the body, for this many requests.
    pub corrupt_times: u32,
    /// Send at most this many bytes per second per request.
    pub throttle_bps: Option<u64>,
    /// Listed, but the blob is never served (404).
    pub missing: bool,
}

#[derive(Debug, Clone)]
pub struct ReqLog {
    pub method: String,
    pub uri: String,
    pub file: Option<String>,
    pub range: Option<(u64, u64)>,
    pub status: u16,
    pub sent: Arc<AtomicU64>,
    pub auth: Option<String>,
}

impl ReqLog {
    pub fn bytes(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

pub struct St {
    repos: Mutex<Vec<Repo>>,
    faults: Mutex<HashMap<String, Fault>>,
    log: Mutex<Vec<ReqLog>>,
    base: Mutex<String>,
}

pub struct HubServer {
    pub url: String,
    pub state: Arc<St>,
    rt: tokio::runtime::Runtime,
}

impl HubServer {
    pub fn start() -> HubServer {
        Self::start_on("127.0.0.1:0")
    }

    pub fn start_on(addr: &str) -> HubServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        let state = Arc::new(St {
            repos: Mutex::new(Vec::new()),
            faults: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            base: Mutex::new(String::new()),
        });
        let std_listener = std::net::TcpListener::bind(addr).expect("bind loopback");
        std_listener.set_nonblocking(true).unwrap();
        let local = std_listener.local_addr().unwrap();
        assert!(
            local.ip().is_loopback(),
            "the test hub listens on loopback only"
        );
        let url = format!("http://{local}");
        *state.base.lock().unwrap() = url.clone();
        let app = Router::new().fallback(handle).with_state(state.clone());
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        HubServer { url, state, rt }
    }

    /// Add a repository; returns its commit hash. Files over 1 KiB or named
    /// `*.safetensors` / `*.bin` / `*.gguf` / `*.parquet` are LFS files.
    pub fn add_repo(&self, kind: Kind, id: &str, files: Vec<(&str, Content)>) -> String {
        let mut listing = Sha256::new();
        let specs: Vec<FileSpec> = files
            .into_iter()
            .map(|(path, content)| {
                let sha256 = content.sha256();
                listing.update(format!("{path}:{sha256}\n").as_bytes());
                let lfs = content.len() > 1024
                    || [".safetensors", ".bin", ".gguf", ".parquet"]
                        .iter()
                        .any(|e| path.ends_with(e));
                let oid = hex::encode(Sha256::digest(format!("blob {sha256}").as_bytes()))[..40]
                    .to_string();
                FileSpec {
                    path: path.to_string(),
                    content,
                    sha256,
                    oid,
                    lfs,
                }
            })
            .collect();
        listing.update(id.as_bytes());
        let commit = hex::encode(listing.finalize())[..40].to_string();
        let mut repos = self.state.repos.lock().unwrap();
        repos.retain(|r| !(r.kind == kind && r.id == id));
        repos.push(Repo {
            kind,
            id: id.to_string(),
            commit: commit.clone(),
            files: specs,
        });
        commit
    }

    pub fn repo(&self, kind: Kind, id: &str) -> Repo {
        self.state
            .repos
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.kind == kind && r.id == id)
            .cloned()
            .expect("repo exists")
    }

    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .insert(path.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    pub fn log(&self) -> Vec<ReqLog> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Body bytes sent for a file (all requests so far).
    pub fn bytes_served(&self, path: &str) -> u64 {
        self.log()
            .iter()
            .filter(|r| r.file.as_deref() == Some(path))
            .map(|r| r.bytes())
            .sum()
    }

    /// GET requests for the content of `path` (not the redirects to the CDN).
    pub fn file_gets(&self, path: &str) -> Vec<ReqLog> {
        self.log()
            .into_iter()
            .filter(|r| r.file.as_deref() == Some(path) && r.method == "GET" && r.status != 302)
            .collect()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        // Nothing to do: the runtime shuts the server down with it.
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let mut it = kv.splitn(2, '=');
            (
                decode(it.next().unwrap_or("")),
                decode(it.next().unwrap_or("")),
            )
        })
        .collect()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    let mut r = json(StatusCode::NOT_FOUND, serde_json::json!({ "error": what }));
    r.headers_mut()
        .insert("X-Error-Code", HeaderValue::from_static("EntryNotFound"));
    r
}

async fn handle(State(st): State<Arc<St>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let path = uri.path().to_string();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let log = |file: Option<String>, range: Option<(u64, u64)>, status: u16| -> Arc<AtomicU64> {
        let sent = Arc::new(AtomicU64::new(0));
        st.log.lock().unwrap().push(ReqLog {
            method: method.to_string(),
            uri: uri.to_string(),
            file,
            range,
            status,
            sent: sent.clone(),
            auth: auth.clone(),
        });
        sent
    };
    let find = |kind: Kind, id: &str| -> Option<Repo> {
        st.repos
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.kind == kind && r.id == id)
            .cloned()
    };
    let api_fault = || take_fault(&st, "@api");

    // ModelScope.
    for (prefix, kind) in [
        ("/api/v1/models/", Kind::Model),
        ("/api/v1/datasets/", Kind::Dataset),
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let q = query(&uri);
            let (id, tail) = match rest.rsplit_once("/repo") {
                Some((id, tail)) => (decode(id), tail.to_string()),
                None => {
                    log(None, None, 404);
                    return not_found("no such route");
                }
            };
            let Some(repo) = find(kind, &id) else {
                log(None, None, 404);
                return json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"Code": 10010101, "Message": "not found", "Success": false}),
                );
            };
            if tail == "/files" || tail == "/tree" {
                let f = api_fault();
                if let Some(r) = apply_pre_faults(&f).await {
                    log(None, None, r.status().as_u16());
                    return r;
                }
                log(None, None, 200);
                let mut files: Vec<serde_json::Value> = repo
                    .files
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "Name": f.path.rsplit('/').next().unwrap(),
                            "Path": f.path,
                            "Type": "blob",
                            "Size": f.content.len(),
                            "Sha256": f.sha256,
                            "Revision": repo.commit,
                            "IsLFS": f.lfs,
                        })
                    })
                    .collect();
                if tail == "/tree" {
                    let size: usize = q
                        .get("PageSize")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(100);
                    let page: usize = q
                        .get("PageNumber")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    files = files
                        .into_iter()
                        .skip((page - 1) * size)
                        .take(size)
                        .collect();
                }
                return json(
                    StatusCode::OK,
                    serde_json::json!({"Code": 200, "Data": {"Files": files}, "Message": "success", "Success": true}),
                );
            }
            if tail.is_empty() {
                let fp = q.get("FilePath").cloned().unwrap_or_default();
                let Some(file) = repo.files.iter().find(|f| f.path == fp).cloned() else {
                    log(None, None, 404);
                    return not_found("no such file");
                };
                return serve(&st, &method, &headers, &file, &repo, &log).await;
            }
            log(None, None, 404);
            return not_found("no such route");
        }
    }

    // Hugging Face API.
    for (prefix, kind) in [
        ("/api/models/", Kind::Model),
        ("/api/datasets/", Kind::Dataset),
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let (id, rev, tree) = if let Some((id, rev)) = rest.split_once("/revision/") {
                (id.to_string(), decode(rev), false)
            } else if let Some((id, rev)) = rest.split_once("/tree/") {
                (
                    id.to_string(),
                    decode(rev.split('/').next().unwrap_or("")),
                    true,
                )
            } else {
                log(None, None, 404);
                return not_found("no such route");
            };
            let Some(repo) = find(kind, &id) else {
                log(None, None, 404);
                let mut r = json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "Repository not found"}),
                );
                r.headers_mut()
                    .insert("X-Error-Code", HeaderValue::from_static("RepoNotFound"));
                return r;
            };
            if rev != "main" && rev != repo.commit {
                log(None, None, 404);
                let mut r = json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "Invalid rev id"}),
                );
                r.headers_mut()
                    .insert("X-Error-Code", HeaderValue::from_static("RevisionNotFound"));
                return r;
            }
            let f = api_fault();
            if let Some(r) = apply_pre_faults(&f).await {
                log(None, None, r.status().as_u16());
                return r;
            }
            log(None, None, 200);
            if tree {
                let entries: Vec<serde_json::Value> = repo
                    .files
                    .iter()
                    .map(|f| {
                        let mut v = serde_json::json!({
                            "type": "file", "oid": f.oid, "size": f.content.len(), "path": f.path,
                        });
                        if f.lfs {
                            v["lfs"] = serde_json::json!({"oid": f.sha256, "size": f.content.len(), "pointerSize": 134});
                        }
                        v
                    })
                    .collect();
                return json(StatusCode::OK, serde_json::Value::Array(entries));
            }
            let siblings: Vec<serde_json::Value> = repo
                .files
                .iter()
                .map(|f| {
                    let mut v = serde_json::json!({"rfilename": f.path, "size": f.content.len(), "blobId": f.oid});
                    if f.lfs {
                        v["lfs"] = serde_json::json!({"sha256": f.sha256, "size": f.content.len(), "pointerSize": 134});
                    }
                    v
                })
                .collect();
            return json(
                StatusCode::OK,
                serde_json::json!({
                    "_id": repo.commit, "id": repo.id, "sha": repo.commit, "private": false,
                    "disabled": false, "gated": false, "tags": [], "siblings": siblings,
                }),
            );
        }
    }

    // CDN: blobs by sha256.
    if let Some(sha) = path.strip_prefix("/cdn/") {
        let found = st.repos.lock().unwrap().iter().find_map(|r| {
            r.files
                .iter()
                .find(|f| f.sha256 == sha)
                .map(|f| (r.clone(), f.clone()))
        });
        let Some((repo, file)) = found else {
            log(None, None, 404);
            return not_found("no such blob");
        };
        return serve(&st, &method, &headers, &file, &repo, &log).await;
    }

    // Hugging Face resolve.
    let (kind, rest) = match path.strip_prefix("/datasets/") {
        Some(r) => (Kind::Dataset, r.to_string()),
        None => (Kind::Model, path.trim_start_matches('/').to_string()),
    };
    if let Some((id, tail)) = rest.split_once("/resolve/") {
        let (rev, fpath) = tail.split_once('/').unwrap_or((tail, ""));
        let (rev, fpath) = (decode(rev), decode(fpath));
        let Some(repo) = find(kind, id) else {
            log(None, None, 404);
            return not_found("Repository not found");
        };
        if rev != "main" && rev != repo.commit {
            log(None, None, 404);
            return not_found("Invalid rev id");
        }
        let Some(file) = repo.files.iter().find(|f| f.path == fpath).cloned() else {
            log(None, None, 404);
            return not_found("Entry not found");
        };
        if file.lfs {
            log(Some(file.path.clone()), None, 302);
            let base = st.base.lock().unwrap().clone();
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::FOUND;
            let h = r.headers_mut();
            h.insert(header::LOCATION, hv(&format!("{base}/cdn/{}", file.sha256)));
            h.insert("X-Repo-Commit", hv(&repo.commit));
            h.insert(header::ETAG, hv(&format!("\"{}\"", file.oid)));
            h.insert("X-Linked-Etag", hv(&format!("\"{}\"", file.sha256)));
            h.insert("X-Linked-Size", hv(&file.content.len().to_string()));
            h.insert(header::CONTENT_LENGTH, hv("0"));
            return r;
        }
        return serve(&st, &method, &headers, &file, &repo, &log).await;
    }
    log(None, None, 404);
    not_found("no such route")
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("header value")
}

fn take_fault(st: &St, key: &str) -> Fault {
    let mut faults = st.faults.lock().unwrap();
    let Some(f) = faults.get_mut(key) else {
        return Fault::default();
    };
    let now = Fault {
        status_500: (f.status_500 > 0) as u32,
        stall: if f.stall_times > 0 { f.stall } else { None },
        stall_times: 0,
        drop_after: if f.drop_times > 0 { f.drop_after } else { None },
        drop_times: 0,
        corrupt_times: (f.corrupt_times > 0) as u32,
        throttle_bps: f.throttle_bps,
        missing: f.missing,
    };
    f.status_500 = f.status_500.saturating_sub(1);
    if now.status_500 == 0 {
        f.stall_times = f.stall_times.saturating_sub(now.stall.is_some() as u32);
        f.drop_times = f.drop_times.saturating_sub(now.drop_after.is_some() as u32);
        f.corrupt_times = f.corrupt_times.saturating_sub(now.corrupt_times);
    }
    now
}

async fn apply_pre_faults(f: &Fault) -> Option<Response> {
    if f.status_500 > 0 {
        return Some((StatusCode::INTERNAL_SERVER_ERROR, "injected 500").into_response());
    }
    if let Some(d) = f.stall {
        tokio::time::sleep(d).await;
    }
    None
}

fn parse_range(h: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let spec = v.strip_prefix("bytes=").ok_or(())?;
    let (a, b) = spec.split_once('-').ok_or(())?;
    let start: u64 = a.parse().map_err(|_| ())?;
    let end: u64 = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
    };
    if start >= len || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Records one request; returns the counter of body bytes sent.
type LogFn<'a> = dyn Fn(Option<String>, Option<(u64, u64)>, u16) -> Arc<AtomicU64> + Sync + 'a;

async fn serve(
    st: &St,
    method: &Method,
    headers: &HeaderMap,
    file: &FileSpec,
    repo: &Repo,
    log: &LogFn<'_>,
) -> Response {
    let len = file.content.len();
    let fault = take_fault(st, &file.path);
    let range = match parse_range(headers, len) {
        Ok(r) => r,
        Err(()) => {
            log(Some(file.path.clone()), None, 416);
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            r.headers_mut()
                .insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
            return r;
        }
    };
    if fault.missing {
        log(Some(file.path.clone()), range, 404);
        return not_found("blob not published");
    }
    if fault.status_500 > 0 {
        log(Some(file.path.clone()), range, 500);
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected 500").into_response();
    }
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let n = if len == 0 { 0 } else { end - start + 1 };
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    // Logged before a stall: a client that gives up drops this handler.
    let sent = log(Some(file.path.clone()), range, status.as_u16());
    if let Some(d) = fault.stall {
        tokio::time::sleep(d).await;
    }
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, n.to_string())
        .header(header::ACCEPT_RANGES, "bytes")
        .header("X-Repo-Commit", repo.commit.as_str())
        .header(
            header::ETAG,
            format!("\"{}\"", if file.lfs { &file.sha256 } else { &file.oid }),
        );
    if range.is_some() {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    if method == Method::HEAD {
        return builder.body(Body::empty()).unwrap();
    }
    struct S {
        content: Content,
        pos: u64,
        end: u64,
        sent: Arc<AtomicU64>,
        fault: Fault,
        first: bool,
        body_sent: u64,
    }
    let s = S {
        content: file.content.clone(),
        pos: start,
        end: start + n,
        sent,
        fault,
        first: true,
        body_sent: 0,
    };
    let stream = futures_util::stream::unfold(s, |mut s| async move {
        if s.pos >= s.end {
            return None;
        }
        let mut max = 256 << 10;
        if let Some(bps) = s.fault.throttle_bps {
            max = max.min((bps / 20).max(1) as usize);
        }
        if let Some(d) = s.fault.drop_after {
            if s.body_sent >= d {
                return Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected drop",
                    )),
                    S { pos: s.end, ..s },
                ));
            }
            max = max.min((d - s.body_sent) as usize);
        }
        let max = max.min((s.end - s.pos) as usize);
        let mut chunk = s.content.chunk(s.pos, max);
        if s.first && s.fault.corrupt_times > 0 {
            let mut v = chunk.to_vec();
            v[0] ^= 0xff;
            chunk = Bytes::from(v);
        }
        s.first = false;
        if let Some(bps) = s.fault.throttle_bps {
            tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / bps as f64)).await;
        }
        s.pos += chunk.len() as u64;
        s.body_sent += chunk.len() as u64;
        s.sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Some((Ok::<Bytes, std::io::Error>(chunk), s))
    });
    builder.body(Body::from_stream(stream)).unwrap()
}

/// A `swift` command with a clean hub environment: caches under `home`,
/// both hubs pointed at `server`, fast retries.
pub fn swift_cmd(bin: &str, home: &std::path::Path, server: &HubServer) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("HF_")
            || k.starts_with("HUGGING")
            || k.starts_with("MODELSCOPE")
            || k.starts_with("SWIFT_")
            || k == "TRANSFORMERS_OFFLINE"
            || k == "USE_HF"
            || k == "XDG_CACHE_HOME"
            || k == "XDG_CONFIG_HOME"
        {
            c.env_remove(k);
        }
    }
    let addr = server.url.trim_start_matches("http://");
    c.env("HOME", home)
        .env("HF_HOME", home.join("hf"))
        .env("HF_ENDPOINT", &server.url)
        .env("MODELSCOPE_DOMAIN", addr)
        .env("MODELSCOPE_URL_SCHEME", "http://")
        .env("MODELSCOPE_CACHE", home.join("ms"))
        .env("SWIFT_HUB_RETRY_BASE_MS", "20")
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "5")
        .env("NO_COLOR", "1");
    c
}

/// The HF cache root `swift_cmd` uses.
pub fn hf_cache(home: &std::path::Path) -> std::path::PathBuf {
    home.join("hf").join("hub")
}

/// Run and capture; panics with both streams when `ok` is not met.
pub fn run(mut c: std::process::Command) -> (i32, String, String) {
    let out = c.output().expect("running swift");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A small model repository: two JSON files, a 3 MiB safetensors, a nested file.
pub fn tiny_model(server: &HubServer, id: &str) -> String {
    server.add_repo(
        Kind::Model,
        id,
        vec![
            (
                "config.json",
                Content::bytes(br#"{"model_type": "llama", "hidden_size": 64}"#.to_vec()),
            ),
            (
                "tokenizer.json",
                Content::bytes(br#"{"version": "1.0"}"#.to_vec()),
            ),
            ("model.safetensors", Content::pattern(1, 3 << 20)),
            ("sub/notes.txt", Content::bytes(b"nested file\n".to_vec())),
        ],
    )
}
