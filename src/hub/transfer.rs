//! Parallel, resumable, verified transfers into the cache (or a local dir).
//!
//! Several files at once; a large file as several byte ranges at once, each
//! written in place with positioned writes; the done ranges recorded in a
//! small JSON file beside the partial file so a killed run resumes with only
//! the missing bytes; retries with exponential back-off on time-outs, resets
//! and 5xx; the sha256 checked against the hub's metadata before the blob is
//! published by an atomic rename; an exclusive lock per blob shared with
//! huggingface_hub (`.locks/<repo>/<etag>.lock`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};

use super::cache::{self, RepoCache};
use super::protocol::{self, HttpStatusError, RemoteFile, RemoteRepo};
use super::{FileFilter, Hub, HubOptions, RepoRef, Snapshot, SnapshotFile, TransferProgress};

/// Buffer this much before a positioned write.
const WRITE_BUF: usize = 4 << 20;
/// ... or flush sooner when the stream is slow.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Record done ranges at least this often.
const SAVE_EVERY: Duration = Duration::from_millis(500);

enum Event {
    Start(String, u64, u64),
    Progress(String, u64),
    Done(String),
    Retry(String, u32, String),
    Discarded(String, String),
}

struct Ctx {
    client: reqwest::Client,
    hub: Hub,
    token: Option<String>,
    retries: u32,
    retry_base: Duration,
    connections: usize,
    part_size: u64,
    force: bool,
    commit: String,
    conn: Semaphore,
    tx: mpsc::UnboundedSender<Event>,
}

impl Ctx {
    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }
}

/// Where one file goes.
struct Dest {
    /// The published file: `blobs/<etag>` or `<local_dir>/<path>`.
    target: PathBuf,
    part: PathBuf,
    state: PathBuf,
    lock: PathBuf,
    /// A partial file huggingface_hub left (`blobs/<etag>.incomplete`).
    foreign_partial: Option<PathBuf>,
    /// Local-dir metadata file (`.cache/huggingface/download/<path>.metadata`).
    metadata: Option<PathBuf>,
}

fn dest_for(opts: &HubOptions, rc: &RepoCache, f: &RemoteFile) -> Dest {
    match &opts.local_dir {
        None => {
            let blob = rc.blob(&f.etag);
            Dest {
                part: rc
                    .folder
                    .join("blobs")
                    .join(format!("{}.incomplete.swift", f.etag)),
                state: rc
                    .folder
                    .join("blobs")
                    .join(format!("{}.incomplete.swift.json", f.etag)),
                lock: rc.lock_path(&f.etag),
                foreign_partial: Some(
                    rc.folder
                        .join("blobs")
                        .join(format!("{}.incomplete", f.etag)),
                ),
                metadata: None,
                target: blob,
            }
        }
        Some(dir) => {
            let meta_dir = dir.join(".cache").join("huggingface").join("download");
            let base = meta_dir.join(&f.path);
            let with = |suffix: &str| {
                let mut s = base.clone().into_os_string();
                s.push(suffix);
                PathBuf::from(s)
            };
            Dest {
                target: dir.join(&f.path),
                part: with(&format!(".{}.incomplete.swift", f.etag)),
                state: with(&format!(".{}.incomplete.swift.json", f.etag)),
                lock: with(".lock"),
                foreign_partial: None,
                metadata: Some(with(".metadata")),
            }
        }
    }
}

/// The whole snapshot operation.
pub(crate) async fn snapshot(
    repo: &RepoRef,
    opts: &HubOptions,
    filter: &FileFilter,
    progress: &dyn TransferProgress,
) -> Result<Snapshot> {
    let compiled = filter.compile()?;
    let literal = filter.literal_includes();
    let rc = RepoCache::new(opts.cache_root(repo.hub), repo);

    let from_cache = |reason: Option<String>| -> Result<Snapshot> {
        if let Some(dir) = &opts.local_dir {
            bail!(
                "cannot resolve `{}` into {} without the hub{}",
                repo.id,
                dir.display(),
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
        let (commit, path, files) = cache::resolve_offline(&rc, repo, &compiled, &literal)?;
        Ok(Snapshot {
            hub: repo.hub,
            repo_id: repo.id.clone(),
            repo_type: repo.repo_type,
            revision: repo.revision.clone(),
            commit,
            files: files
                .into_iter()
                .map(|(p, size)| SnapshotFile {
                    local_path: path.join(&p),
                    path: p,
                    size,
                    downloaded: 0,
                })
                .collect(),
            path,
            downloaded_bytes: 0,
            from_cache: true,
            fallback_reason: reason,
        })
    };

    if opts.offline {
        return from_cache(None);
    }
    // A commit is immutable: when its listing is cached and the files are
    // there, the hub need not be asked (as huggingface_hub does).
    if cache::is_commit_hash(&repo.revision)
        && !opts.force
        && opts.local_dir.is_none()
        && rc.read_tree(&repo.revision).is_some()
    {
        if let Ok(s) = from_cache(None) {
            return Ok(s);
        }
    }

    let client = reqwest::Client::builder()
        .user_agent(concat!("swift/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .pool_max_idle_per_host(opts.max_connections.max(1))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let endpoint = opts.endpoint(repo.hub).to_string();
    let token = opts.token(repo.hub).map(str::to_string);

    let listing = with_retries(opts, || {
        protocol::list(&client, repo, &endpoint, token.as_deref())
    })
    .await;
    let remote: RemoteRepo = match listing {
        Ok(r) => r,
        Err(e) if is_unreachable(&e) && opts.local_dir.is_none() => {
            return from_cache(Some(format!("{e:#}"))).map_err(|cache_err| {
                e.context(format!(
                    "listing {} `{}` on {} (and the cache cannot stand in: {cache_err})",
                    repo.repo_type.as_str(),
                    repo.id,
                    endpoint
                ))
            });
        }
        Err(e) => {
            return Err(e.context(format!(
                "listing {} `{}` (revision `{}`) on {}",
                repo.repo_type.as_str(),
                repo.id,
                repo.revision,
                endpoint
            )))
        }
    };

    for want in &literal {
        if !remote.files.iter().any(|f| f.path == *want) {
            bail!(
                "`{want}` is not a file of {} `{}` at revision `{}`",
                repo.repo_type.as_str(),
                repo.id,
                repo.revision
            );
        }
    }
    let selected: Vec<RemoteFile> = remote
        .files
        .iter()
        .filter(|f| compiled.matches(&f.path))
        .cloned()
        .collect();
    if selected.is_empty() {
        bail!(
            "no file of `{}` matches the include/exclude patterns ({} file(s) in the repository)",
            repo.id,
            remote.files.len()
        );
    }

    if opts.local_dir.is_none() {
        cache::create_dir_all(&rc.folder.join("blobs"))?;
        rc.write_ref(&repo.revision, &remote.commit)?;
        if repo.hub == Hub::HuggingFace {
            rc.write_tree(&remote.commit, &remote.tree_cache())?;
        }
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        client,
        hub: repo.hub,
        token,
        retries: opts.retries,
        retry_base: opts.retry_base,
        connections: opts.connections.max(1),
        part_size: opts.part_size.max(1 << 20),
        force: opts.force,
        commit: remote.commit.clone(),
        conn: Semaphore::new(opts.max_connections.max(1)),
        tx,
    });
    progress.begin(selected.len(), selected.iter().map(|f| f.size).sum());

    let files_sem = Arc::new(Semaphore::new(opts.max_files.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for f in selected.iter().cloned() {
        let ctx = ctx.clone();
        let dest = dest_for(opts, &rc, &f);
        let sem = files_sem.clone();
        let commit = remote.commit.clone();
        let rc = rc.clone();
        let local = opts.local_dir.is_some();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let r = fetch_file(&ctx, &f, &dest).await;
            let r = match r {
                Ok(n) => publish_link(&rc, &commit, &f, &dest, local).map(|p| (n, p)),
                Err(e) => Err(e),
            };
            (f, r)
        });
    }
    drop(ctx);

    let mut results: Vec<SnapshotFile> = Vec::new();
    let mut errors: Vec<anyhow::Error> = Vec::new();
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => deliver(progress, ev),
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok((f, Ok((n, local_path))))) => results.push(SnapshotFile {
                    path: f.path.clone(),
                    size: f.size,
                    local_path,
                    downloaded: n,
                }),
                Some(Ok((f, Err(e)))) => errors.push(e.context(format!("downloading `{}`", f.path))),
                Some(Err(join)) => errors.push(anyhow!("download task failed: {join}")),
            },
        }
    }
    while let Ok(ev) = rx.try_recv() {
        deliver(progress, ev);
    }
    progress.end();
    if !errors.is_empty() {
        let n = errors.len();
        let first = errors.remove(0);
        return Err(if n > 1 {
            first.context(format!("{n} files failed; the first error follows"))
        } else {
            first
        });
    }
    results.sort_by(|a, b| a.path.cmp(&b.path));
    let path = match &opts.local_dir {
        Some(d) => d.clone(),
        None => rc.snapshot_dir(&remote.commit),
    };
    Ok(Snapshot {
        hub: repo.hub,
        repo_id: repo.id.clone(),
        repo_type: repo.repo_type,
        revision: repo.revision.clone(),
        commit: remote.commit.clone(),
        downloaded_bytes: results.iter().map(|f| f.downloaded).sum(),
        files: results,
        path,
        from_cache: false,
        fallback_reason: None,
    })
}

fn deliver(p: &dyn TransferProgress, ev: Event) {
    match ev {
        Event::Start(path, size, have) => p.file_start(&path, size, have),
        Event::Progress(path, n) => p.file_progress(&path, n),
        Event::Done(path) => p.file_done(&path),
        Event::Retry(path, a, e) => p.retry(&path, a, &e),
        Event::Discarded(path, r) => p.discarded(&path, &r),
    }
}

/// Link the published blob into the snapshot (cache) and return the path the
/// user sees.
fn publish_link(
    rc: &RepoCache,
    commit: &str,
    f: &RemoteFile,
    dest: &Dest,
    local: bool,
) -> Result<PathBuf> {
    if local {
        Ok(dest.target.clone())
    } else {
        rc.link(commit, &f.path, &f.etag)
    }
}

/// Is this the kind of failure where the cache may stand in for the hub?
fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(r) = c.downcast_ref::<reqwest::Error>() {
            return r.is_connect() || r.is_timeout();
        }
        if let Some(s) = c.downcast_ref::<HttpStatusError>() {
            return s.retryable();
        }
        false
    })
}

fn is_retryable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(r) = c.downcast_ref::<reqwest::Error>() {
            return r.is_connect()
                || r.is_timeout()
                || r.is_request()
                || r.is_body()
                || r.is_decode()
                || r.status().is_some_and(|s| s.is_server_error());
        }
        if let Some(s) = c.downcast_ref::<HttpStatusError>() {
            return s.retryable();
        }
        if c.downcast_ref::<ShortBody>().is_some() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        false
    })
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let d = base.saturating_mul(1u32 << attempt.min(10).saturating_sub(1));
    d.min(Duration::from_secs(10))
}

async fn with_retries<T, F, Fut>(opts: &HubOptions, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < opts.retries && is_retryable(&e) => {
                attempt += 1;
                tokio::time::sleep(backoff(opts.retry_base, attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the connection closed after {got} of {want} bytes")]
struct ShortBody {
    got: u64,
    want: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("checksum mismatch: the hub says sha256 {want}, the download has {got}")]
struct Mismatch {
    want: String,
    got: String,
}

/// Done byte ranges of a partial file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartState {
    size: u64,
    etag: String,
    /// `[start, end, done]`: bytes `start..start+done` of `start..end` are on disk.
    parts: Vec<[u64; 3]>,
}

impl PartState {
    fn done(&self) -> u64 {
        self.parts.iter().map(|p| p[2]).sum()
    }
}

struct Shared {
    state: Mutex<PartState>,
    path: PathBuf,
    last_save: Mutex<Instant>,
}

impl Shared {
    fn save(&self) -> Result<()> {
        let st = self.state.lock().unwrap();
        let text = serde_json::to_vec(&*st)?;
        cache::write_atomic(&self.path, &text)?;
        *self.last_save.lock().unwrap() = Instant::now();
        Ok(())
    }
    fn maybe_save(&self) -> Result<()> {
        if self.last_save.lock().unwrap().elapsed() >= SAVE_EVERY {
            self.save()?;
        }
        Ok(())
    }
}

/// Fetch one file to its target (verified, published). Returns the bytes
/// transferred.
async fn fetch_file(ctx: &Arc<Ctx>, f: &RemoteFile, dest: &Dest) -> Result<u64> {
    if !ctx.force && is_present(f, dest) {
        ctx.send(Event::Start(f.path.clone(), f.size, f.size));
        ctx.send(Event::Done(f.path.clone()));
        return Ok(0);
    }
    if let Some(parent) = dest.lock.parent() {
        cache::create_dir_all(parent)?;
    }
    let lock_path = dest.lock.clone();
    let _lock = tokio::task::spawn_blocking(move || -> Result<fs::File> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening lock {}", lock_path.display()))?;
        fs2::FileExt::lock_exclusive(&file)
            .with_context(|| format!("locking {}", lock_path.display()))?;
        Ok(file)
    })
    .await??;
    // Another process may have finished it while we waited.
    if !ctx.force && is_present(f, dest) {
        ctx.send(Event::Start(f.path.clone(), f.size, f.size));
        ctx.send(Event::Done(f.path.clone()));
        return Ok(0);
    }
    if ctx.force {
        let _ = fs::remove_file(&dest.state);
        let _ = fs::remove_file(&dest.part);
    }
    let mut transferred = 0;
    let mut discarded = 0;
    loop {
        match fetch_parts(ctx, f, dest, &mut transferred).await {
            Ok(()) => break,
            Err(e) if e.downcast_ref::<Mismatch>().is_some() => {
                let _ = fs::remove_file(&dest.part);
                let _ = fs::remove_file(&dest.state);
                ctx.send(Event::Discarded(f.path.clone(), e.to_string()));
                discarded += 1;
                if discarded > 1 {
                    return Err(e.context(format!(
                        "`{}` was downloaded twice and failed verification both times; nothing was published",
                        f.path
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(parent) = dest.target.parent() {
        cache::create_dir_all(parent)?;
    }
    fs::rename(&dest.part, &dest.target)
        .with_context(|| format!("publishing {}", dest.target.display()))?;
    let _ = fs::remove_file(&dest.state);
    if let Some(meta) = &dest.metadata {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        cache::write_atomic(
            meta,
            format!("{}\n{}\n{ts}\n", ctx.commit, f.etag).as_bytes(),
        )?;
    }
    ctx.send(Event::Done(f.path.clone()));
    Ok(transferred)
}

fn is_present(f: &RemoteFile, dest: &Dest) -> bool {
    let Ok(md) = fs::metadata(&dest.target) else {
        return false;
    };
    if md.len() != f.size {
        return false;
    }
    match &dest.metadata {
        None => true,
        Some(meta) => fs::read_to_string(meta)
            .ok()
            .and_then(|t| t.lines().nth(1).map(|l| l.trim() == f.etag))
            .unwrap_or(false),
    }
}

/// Bring the partial file to completion and verify it.
async fn fetch_parts(
    ctx: &Arc<Ctx>,
    f: &RemoteFile,
    dest: &Dest,
    transferred: &mut u64,
) -> Result<()> {
    if let Some(parent) = dest.part.parent() {
        cache::create_dir_all(parent)?;
    }
    let state = load_or_plan(ctx, f, dest)?;
    let have = state.done();
    ctx.send(Event::Start(f.path.clone(), f.size, have));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(&dest.part)
        .with_context(|| format!("opening {}", dest.part.display()))?;
    let file = Arc::new(file);
    // Hash as the bytes arrive when one stream writes the file from its start.
    let inline_hash = f.sha256.is_some() && state.parts.len() == 1 && state.parts[0][2] == 0;
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        path: dest.state.clone(),
        last_save: Mutex::new(Instant::now()),
    });
    shared.save()?;

    let n_parts = shared.state.lock().unwrap().parts.len();
    let mut set = tokio::task::JoinSet::new();
    for idx in 0..n_parts {
        let [start, end, done] = shared.state.lock().unwrap().parts[idx];
        if start + done >= end {
            continue;
        }
        let ctx = ctx.clone();
        let shared = shared.clone();
        let file = file.clone();
        let url = f.url.clone();
        let path = f.path.clone();
        let hasher = inline_hash.then(Sha256::new);
        set.spawn(async move { fetch_range(&ctx, &url, &path, &file, &shared, idx, hasher).await });
    }
    let mut first_err = None;
    let mut digest = None;
    while let Some(j) = set.join_next().await {
        match j {
            Ok(Ok((n, h))) => {
                *transferred += n;
                if h.is_some() {
                    digest = h;
                }
            }
            Ok(Err((n, e))) => {
                *transferred += n;
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow!("range task failed: {e}"));
            }
        }
    }
    shared.save()?;
    if let Some(e) = first_err {
        return Err(e);
    }
    let len = file.metadata()?.len();
    if len != f.size {
        if len < f.size {
            file.set_len(f.size)?;
        } else {
            bail!("`{}` grew to {len} bytes, the hub says {}", f.path, f.size);
        }
    }
    drop(file);
    if let Some(want) = &f.sha256 {
        let got = match digest {
            Some(d) if inline_hash => d,
            _ => {
                let p = dest.part.clone();
                tokio::task::spawn_blocking(move || hash_file(&p)).await??
            }
        };
        if &got != want {
            return Err(Mismatch {
                want: want.clone(),
                got,
            }
            .into());
        }
    }
    Ok(())
}

fn load_or_plan(ctx: &Ctx, f: &RemoteFile, dest: &Dest) -> Result<PartState> {
    if let Ok(text) = fs::read(&dest.state) {
        if let Ok(st) = serde_json::from_slice::<PartState>(&text) {
            let part_len = fs::metadata(&dest.part).map(|m| m.len()).unwrap_or(0);
            let consistent = st.size == f.size
                && st.etag == f.etag
                && st.parts.iter().all(|p| p[0] + p[2] <= p[1])
                && st
                    .parts
                    .iter()
                    .all(|p| p[2] == 0 || p[0] + p[2] <= part_len);
            if consistent {
                return Ok(st);
            }
        }
    }
    // No usable record: start over, or take over huggingface_hub's partial file.
    let _ = fs::remove_file(&dest.part);
    let mut prefix = 0;
    if let Some(foreign) = &dest.foreign_partial {
        if let Ok(md) = fs::metadata(foreign) {
            if md.len() <= f.size && fs::rename(foreign, &dest.part).is_ok() {
                prefix = md.len();
            }
        }
    }
    let mut parts = Vec::new();
    if prefix > 0 {
        parts.push([0, prefix, prefix]);
    }
    let rest = f.size - prefix;
    if rest > 0 || f.size == 0 {
        let n = (rest.div_ceil(ctx.part_size)).clamp(1, ctx.connections as u64);
        let step = rest.div_ceil(n).max(1);
        let mut s = prefix;
        while s < f.size {
            let e = (s + step).min(f.size);
            parts.push([s, e, 0]);
            s = e;
        }
        if parts.is_empty() {
            parts.push([0, 0, 0]);
        }
    }
    Ok(PartState {
        size: f.size,
        etag: f.etag.clone(),
        parts,
    })
}

fn hash_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

type RangeResult = std::result::Result<(u64, Option<String>), (u64, anyhow::Error)>;

/// Fetch part `idx` with retries. Returns bytes transferred and, when
/// hashing inline, the digest.
async fn fetch_range(
    ctx: &Ctx,
    url: &str,
    path: &str,
    file: &fs::File,
    shared: &Shared,
    idx: usize,
    mut hasher: Option<Sha256>,
) -> RangeResult {
    let mut transferred = 0u64;
    let mut attempt = 0u32;
    loop {
        let before = transferred;
        let r = range_once(
            ctx,
            url,
            path,
            file,
            shared,
            idx,
            &mut hasher,
            &mut transferred,
        )
        .await;
        let _ = shared.save();
        match r {
            Ok(()) => return Ok((transferred, hasher.map(|h| hex::encode(h.finalize())))),
            Err(e) if is_retryable(&e) => {
                // Progress resets the count: a long download may drop often.
                attempt = if transferred > before { 1 } else { attempt + 1 };
                if attempt > ctx.retries {
                    return Err((
                        transferred,
                        e.context(format!("giving up after {} attempts", ctx.retries + 1)),
                    ));
                }
                ctx.send(Event::Retry(path.to_string(), attempt, format!("{e:#}")));
                tokio::time::sleep(backoff(ctx.retry_base, attempt)).await;
            }
            Err(e) => return Err((transferred, e)),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn range_once(
    ctx: &Ctx,
    url: &str,
    path: &str,
    file: &fs::File,
    shared: &Shared,
    idx: usize,
    hasher: &mut Option<Sha256>,
    transferred: &mut u64,
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let [start, end, done] = shared.state.lock().unwrap().parts[idx];
    let from = start + done;
    if from >= end {
        return Ok(());
    }
    let _permit = ctx.conn.acquire().await.expect("semaphore open");
    let req = ctx
        .client
        .get(url)
        .header(reqwest::header::RANGE, format!("bytes={from}-{}", end - 1))
        .header(reqwest::header::ACCEPT_ENCODING, "identity");
    let mut resp = protocol::auth(req, ctx.hub, ctx.token.as_deref())
        .send()
        .await
        .with_context(|| format!("requesting {url}"))?;
    let status = resp.status();
    match status.as_u16() {
        206 => {
            let cr = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let got_start = cr
                .strip_prefix("bytes ")
                .and_then(|s| s.split('-').next())
                .and_then(|s| s.parse::<u64>().ok());
            if got_start != Some(from) {
                bail!("{url}: asked for bytes from {from}, got `Content-Range: {cr}`");
            }
        }
        200 if from == 0 => {}
        200 => bail!("{url}: the server ignores byte ranges; cannot resume `{path}`"),
        _ => return Err(protocol::status_error(url, status, ctx.hub).into()),
    }
    let want = end - from;
    let mut pos = from;
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BUF.min(want as usize));
    let mut last_flush = Instant::now();
    let mut flush = |buf: &mut Vec<u8>, pos: &mut u64, hasher: &mut Option<Sha256>| -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        file.write_all_at(buf, *pos)
            .with_context(|| format!("writing the partial file of `{path}`"))?;
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..]);
        }
        let n = buf.len() as u64;
        *pos += n;
        *transferred += n;
        shared.state.lock().unwrap().parts[idx][2] += n;
        ctx.send(Event::Progress(path.to_string(), n));
        buf.clear();
        shared.maybe_save()
    };
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                flush(&mut buf, &mut pos, hasher)?;
                return Err(anyhow::Error::new(e).context(format!("reading {url}")));
            }
        };
        let room = (end - pos) as usize - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= WRITE_BUF || last_flush.elapsed() >= FLUSH_EVERY {
            flush(&mut buf, &mut pos, hasher)?;
            last_flush = Instant::now();
        }
        if pos + buf.len() as u64 >= end {
            break;
        }
    }
    flush(&mut buf, &mut pos, hasher)?;
    if pos < end {
        return Err(ShortBody {
            got: pos - from,
            want,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 1), Duration::from_millis(100));
        assert_eq!(backoff(b, 2), Duration::from_millis(200));
        assert_eq!(backoff(b, 3), Duration::from_millis(400));
        assert_eq!(backoff(b, 30), Duration::from_secs(10));
    }
}
