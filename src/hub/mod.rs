//! Hugging Face Hub and ModelScope protocols, the HF cache layout, parallel
//! resumable downloads (issue 09).
//!
//! The entry points other modules call:
//!
//! - [`resolve_model`]: a hub id (or a local path) to a local folder holding at
//!   least the requested files (`estimate-vram` asks for `config.json` alone).
//! - [`resolve_dataset`]: a registry short name (`alpaca-zh`) or a hub id to a
//!   local folder plus its registry entry (split, subset, column mapping).
//! - [`download`]: the whole `swift download` operation, with progress.
//!
//! All three are blocking: they run a private tokio runtime (on a separate
//! thread when called from inside one), so commands stay synchronous.
//!
//! Files land in the Hugging Face cache layout
//! (`models--org--name/{blobs,snapshots/<commit>,refs/<rev>}`) so Python tools
//! find what swift fetched and the reverse, or in a plain `--local-dir`.

pub mod cache;
pub mod protocol;
pub mod registry;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use registry::{DatasetEntry, Registry};

/// Which hub speaks for a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hub {
    #[serde(rename = "hf")]
    HuggingFace,
    #[serde(rename = "modelscope")]
    ModelScope,
}

impl Hub {
    pub fn as_str(self) -> &'static str {
        match self {
            Hub::HuggingFace => "hf",
            Hub::ModelScope => "modelscope",
        }
    }
}

/// Model or dataset repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    #[default]
    Model,
    Dataset,
}

impl RepoType {
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
        }
    }
    /// The plural used in HF URLs and cache folder names (`models`, `datasets`).
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
        }
    }
}

/// Everything that decides where files come from and where they go. Build it
/// with [`HubOptions::from_env`] and override fields from flags.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Forced hub; `None` means: the id's `hf::` / `ms::` prefix, else
    /// `USE_HF` (`0` picks ModelScope), else the Hugging Face Hub.
    pub hub: Option<Hub>,
    pub repo_type: RepoType,
    /// Branch, tag or commit; `None` is `main` (HF) / `master` (ModelScope).
    pub revision: Option<String>,
    /// `HF_ENDPOINT`, default `https://huggingface.co`.
    pub hf_endpoint: String,
    /// `MODELSCOPE_URL_SCHEME` + `MODELSCOPE_DOMAIN` (or `MODELSCOPE_ENDPOINT`),
    /// default `https://www.modelscope.cn`.
    pub ms_endpoint: String,
    /// `HF_TOKEN` / `HUGGING_FACE_HUB_TOKEN` / `$HF_HOME/token`.
    pub hf_token: Option<String>,
    /// `MODELSCOPE_API_TOKEN`.
    pub ms_token: Option<String>,
    /// `HF_HUB_CACHE` / `HUGGINGFACE_HUB_CACHE` / `$HF_HOME/hub`.
    pub hf_cache: PathBuf,
    /// `MODELSCOPE_CACHE`, default `~/.cache/modelscope/hub` (HF layout inside).
    pub ms_cache: PathBuf,
    /// Write plain files here instead of the cache.
    pub local_dir: Option<PathBuf>,
    /// Resolve from the cache only (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Download again even when the cache has the file.
    pub force: bool,
    /// Files fetched at once.
    pub max_files: usize,
    /// Byte-range connections per large file.
    pub connections: usize,
    /// Connections in flight over all files.
    pub max_connections: usize,
    /// A file is split into ranges of at least this many bytes.
    pub part_size: u64,
    /// Attempts per request after the first.
    pub retries: u32,
    /// First back-off delay; doubles each attempt, capped at 10 s.
    pub retry_base: Duration,
    /// Longest silence while reading (`HF_HUB_DOWNLOAD_TIMEOUT`, default 10 s).
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
}

impl HubOptions {
    /// Defaults from the process environment.
    pub fn from_env() -> Self {
        Self::from_env_fn(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Defaults from a given environment (tests).
    pub fn from_env_fn(get: impl Fn(&str) -> Option<String>) -> Self {
        let home = get("HOME").map(PathBuf::from).unwrap_or_else(|| ".".into());
        let xdg_cache = get("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache"));
        let hf_home = get("HF_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| xdg_cache.join("huggingface"));
        let hf_cache = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let hf_token = get("HF_TOKEN")
            .or_else(|| get("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = get("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            });
        let ms_endpoint = match (get("MODELSCOPE_ENDPOINT"), get("MODELSCOPE_DOMAIN")) {
            (Some(e), _) => e,
            (None, Some(d)) if d.contains("://") => d,
            (None, Some(d)) => {
                format!(
                    "{}{}",
                    get("MODELSCOPE_URL_SCHEME").unwrap_or_else(|| "https://".into()),
                    d
                )
            }
            (None, None) => "https://www.modelscope.cn".into(),
        };
        let ms_cache = get("MODELSCOPE_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| xdg_cache.join("modelscope").join("hub"));
        let offline = [
            "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE",
            "MODELSCOPE_OFFLINE",
        ]
        .iter()
        .any(|k| get(k).is_some_and(|v| is_true(&v)));
        let hub = get("USE_HF").map(|v| {
            if is_true(&v) {
                Hub::HuggingFace
            } else {
                Hub::ModelScope
            }
        });
        let read_timeout = get("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(10));
        HubOptions {
            hub,
            repo_type: RepoType::Model,
            revision: None,
            hf_endpoint: get("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_string(),
            ms_endpoint: ms_endpoint.trim_end_matches('/').to_string(),
            hf_token,
            ms_token: get("MODELSCOPE_API_TOKEN"),
            hf_cache,
            ms_cache,
            local_dir: None,
            offline,
            force: false,
            max_files: 8,
            connections: 8,
            max_connections: 16,
            part_size: 32 << 20,
            retries: 5,
            retry_base: Duration::from_millis(
                get("SWIFT_HUB_RETRY_BASE_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(400),
            ),
            read_timeout,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Set one token for both hubs (`--token`).
    pub fn set_token(&mut self, token: &str) {
        self.hf_token = Some(token.to_string());
        self.ms_token = Some(token.to_string());
    }

    /// Set the endpoint of the hub that `hub` names (`--endpoint`).
    pub fn set_endpoint(&mut self, hub: Hub, endpoint: &str) {
        let e = endpoint.trim_end_matches('/').to_string();
        match hub {
            Hub::HuggingFace => self.hf_endpoint = e,
            Hub::ModelScope => self.ms_endpoint = e,
        }
    }

    pub(crate) fn endpoint(&self, hub: Hub) -> &str {
        match hub {
            Hub::HuggingFace => &self.hf_endpoint,
            Hub::ModelScope => &self.ms_endpoint,
        }
    }

    pub(crate) fn token(&self, hub: Hub) -> Option<&str> {
        match hub {
            Hub::HuggingFace => self.hf_token.as_deref(),
            Hub::ModelScope => self.ms_token.as_deref(),
        }
    }

    /// The cache root for a hub.
    pub fn cache_root(&self, hub: Hub) -> &Path {
        match hub {
            Hub::HuggingFace => &self.hf_cache,
            Hub::ModelScope => &self.ms_cache,
        }
    }

    fn default_revision(hub: Hub) -> &'static str {
        match hub {
            Hub::HuggingFace => "main",
            Hub::ModelScope => "master",
        }
    }
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}

/// A repository named on a hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoRef {
    pub hub: Hub,
    pub repo_type: RepoType,
    pub id: String,
    pub revision: String,
}

impl RepoRef {
    /// Parse `[hf::|ms::]org/name` under `opts` (prefix wins over `opts.hub`
    /// only when `opts.hub` is unset; a prefix that contradicts `--hub` is an
    /// error).
    pub fn parse(spec: &str, opts: &HubOptions) -> Result<RepoRef> {
        let (prefix, id) = split_hub_prefix(spec);
        let hub = match (prefix, opts.hub) {
            (Some(p), Some(h)) if p != h => bail!(
                "`{spec}` names the {} hub but --hub says {}",
                p.as_str(),
                h.as_str()
            ),
            (Some(p), _) => p,
            (None, Some(h)) => h,
            (None, None) => Hub::HuggingFace,
        };
        validate_repo_id(id)?;
        let revision = opts
            .revision
            .clone()
            .unwrap_or_else(|| HubOptions::default_revision(hub).to_string());
        if revision.is_empty() || revision.contains("..") || revision.starts_with('/') {
            bail!("invalid revision `{revision}`");
        }
        Ok(RepoRef {
            hub,
            repo_type: opts.repo_type,
            id: id.to_string(),
            revision,
        })
    }
}

/// Split ms-swift's hub prefix: `hf::org/name`, `ms::org/name` (also
/// `huggingface::` and `modelscope::`).
pub fn split_hub_prefix(spec: &str) -> (Option<Hub>, &str) {
    for (p, hub) in [
        ("hf::", Hub::HuggingFace),
        ("huggingface::", Hub::HuggingFace),
        ("ms::", Hub::ModelScope),
        ("modelscope::", Hub::ModelScope),
    ] {
        if let Some(rest) = spec.strip_prefix(p) {
            return (Some(hub), rest);
        }
    }
    (None, spec)
}

/// `name` or `org/name`, letters, digits, `-`, `_`, `.`; no `..`.
pub fn validate_repo_id(id: &str) -> Result<()> {
    let parts: Vec<&str> = id.split('/').collect();
    let ok = !id.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.contains("..")
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if !ok {
        bail!("`{id}` is not a valid repository id (expected `org/name`)");
    }
    Ok(())
}

/// Which files of the repository to fetch: HF's `allow_patterns` /
/// `ignore_patterns` (fnmatch: `*` crosses `/`; a pattern ending in `/` means
/// the whole folder).
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Exact paths that must exist in the repository (an error otherwise);
    /// they are fetched even when `include` would not select them.
    pub required: Vec<String>,
}

impl FileFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        FileFilter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
            required: Vec::new(),
        }
    }

    /// Add exact paths that must exist (and are fetched).
    pub fn require(mut self, files: &[String]) -> Self {
        self.required.extend(files.iter().cloned());
        self
    }

    pub(crate) fn compile(&self) -> Result<CompiledFilter> {
        fn set(pats: &[String]) -> Result<Option<globset::GlobSet>> {
            if pats.is_empty() {
                return Ok(None);
            }
            let mut b = globset::GlobSetBuilder::new();
            for p in pats {
                let p = if p.ends_with('/') {
                    format!("{p}*")
                } else {
                    p.clone()
                };
                let g = globset::GlobBuilder::new(&p)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .with_context(|| format!("bad file pattern `{p}`"))?;
                b.add(g);
            }
            Ok(Some(b.build()?))
        }
        // Required files alone (no include patterns) select only themselves.
        let include = if self.include.is_empty() && !self.required.is_empty() {
            Some(globset::GlobSet::empty())
        } else {
            set(&self.include)?
        };
        Ok(CompiledFilter {
            include,
            exclude: set(&self.exclude)?,
            required: self.required.clone(),
        })
    }

    /// The exact paths that must exist.
    pub(crate) fn literal_includes(&self) -> Vec<&str> {
        self.required.iter().map(|s| s.as_str()).collect()
    }
}

pub(crate) struct CompiledFilter {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
    required: Vec<String>,
}

impl CompiledFilter {
    pub(crate) fn matches(&self, path: &str) -> bool {
        self.required.iter().any(|r| r == path)
            || (self.include.as_ref().is_none_or(|s| s.is_match(path))
                && !self.exclude.as_ref().is_some_and(|s| s.is_match(path)))
    }
}

/// One file of a resolved snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotFile {
    /// Path inside the repository.
    pub path: String,
    pub size: u64,
    /// Where it is on disk (a symlink into `blobs/` in the cache).
    pub local_path: PathBuf,
    /// Bytes transferred for it in this run (0 when it was already there).
    pub downloaded: u64,
}

/// The result of a download or a resolution.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub hub: Hub,
    pub repo_id: String,
    pub repo_type: RepoType,
    pub revision: String,
    pub commit: String,
    /// The snapshot folder (or `--local-dir`).
    pub path: PathBuf,
    pub files: Vec<SnapshotFile>,
    /// Bytes transferred over the network in this run.
    pub downloaded_bytes: u64,
    /// True when the hub was not asked (offline, or unreachable and the cache
    /// had everything).
    pub from_cache: bool,
    /// Why the hub was not used although online was allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// Download progress, reported by the library and drawn by the command.
pub trait TransferProgress: Send + Sync {
    /// The plan: files to transfer and their total size (already present
    /// bytes included in `total`, reported through `file_start`'s `have`).
    fn begin(&self, _files: usize, _total_bytes: u64) {}
    /// A file starts; `have` bytes are already on disk (resume or cache).
    fn file_start(&self, _path: &str, _size: u64, _have: u64) {}
    /// `n` more bytes of `path` arrived.
    fn file_progress(&self, _path: &str, _n: u64) {}
    /// A file is verified and published.
    fn file_done(&self, _path: &str) {}
    /// A request failed and will be retried.
    fn retry(&self, _path: &str, _attempt: u32, _error: &str) {}
    /// A file failed verification and was thrown away.
    fn discarded(&self, _path: &str, _reason: &str) {}
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTransferProgress;
impl TransferProgress for NoTransferProgress {}

/// Download (the files of) a repository; the `swift download` operation.
pub fn download(
    spec: &str,
    opts: &HubOptions,
    filter: &FileFilter,
    progress: &dyn TransferProgress,
) -> Result<Snapshot> {
    let repo = RepoRef::parse(spec, opts)?;
    run_blocking(transfer::snapshot(&repo, opts, filter, progress))
}

/// Resolve a model named by a local path or a hub id to a local folder that
/// holds at least `files` (globs; empty means the whole repository). A path
/// that exists on disk is returned as it is.
pub fn resolve_model(id: &str, opts: &HubOptions, files: &[&str]) -> Result<PathBuf> {
    let p = Path::new(id);
    if split_hub_prefix(id).0.is_none() && p.exists() {
        return Ok(p.to_path_buf());
    }
    let mut o = opts.clone();
    o.repo_type = RepoType::Model;
    let is_glob = |f: &str| f.contains(['*', '?', '[', '{']) || f.ends_with('/');
    let (globs, exact): (Vec<String>, Vec<String>) = files
        .iter()
        .map(|s| s.to_string())
        .partition(|f| is_glob(f));
    let filter = FileFilter::new(&globs, &[]).require(&exact);
    let snap = download(id, &o, &filter, &NoTransferProgress)
        .with_context(|| format!("resolving model `{id}`"))?;
    Ok(snap.path)
}

/// A dataset resolved to local files, with its registry entry when it was
/// named by a short name.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedDataset {
    pub entry: Option<DatasetEntry>,
    pub snapshot: Snapshot,
}

/// Resolve a dataset named by a registry short name (`alpaca-zh`), a hub id
/// (`[hf::|ms::]org/name`), or a local path. Local paths give a snapshot of
/// just that path with no hub.
pub fn resolve_dataset(
    name: &str,
    opts: &HubOptions,
    registry: &Registry,
    filter: &FileFilter,
    progress: &dyn TransferProgress,
) -> Result<ResolvedDataset> {
    let mut o = opts.clone();
    o.repo_type = RepoType::Dataset;
    let (prefix, bare) = split_hub_prefix(name);
    if let Some(entry) = registry.get(bare) {
        let hub = prefix.or(o.hub).unwrap_or_else(|| entry.preferred_hub());
        let id = entry.id_for(hub).with_context(|| {
            format!(
                "dataset `{}` has no id on the {} hub",
                entry.name,
                hub.as_str()
            )
        })?;
        o.hub = Some(hub);
        if o.revision.is_none() {
            o.revision = entry.revision.clone();
        }
        let mut f = filter.clone();
        if f.include.is_empty() && f.required.is_empty() {
            f.include = entry.files.clone();
        }
        let snapshot = download(id, &o, &f, progress)
            .with_context(|| format!("fetching dataset `{}` ({id})", entry.name))?;
        return Ok(ResolvedDataset {
            entry: Some(entry.clone()),
            snapshot,
        });
    }
    if prefix.is_none() && Path::new(name).exists() {
        let path = PathBuf::from(name);
        let size = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        return Ok(ResolvedDataset {
            entry: None,
            snapshot: Snapshot {
                hub: Hub::HuggingFace,
                repo_id: name.to_string(),
                repo_type: RepoType::Dataset,
                revision: String::new(),
                commit: String::new(),
                files: vec![SnapshotFile {
                    path: name.to_string(),
                    size,
                    local_path: path.clone(),
                    downloaded: 0,
                }],
                path,
                downloaded_bytes: 0,
                from_cache: true,
                fallback_reason: None,
            },
        });
    }
    if !bare.contains('/') {
        bail!(
            "`{name}` is neither a dataset in the registry, a local path, nor an `org/name` hub id \
             (see `swift download --list-datasets`)"
        );
    }
    let snapshot = download(name, &o, filter, progress)?;
    Ok(ResolvedDataset {
        entry: None,
        snapshot,
    })
}

/// Run a future to completion on a private runtime; on a separate thread when
/// the caller is itself inside a tokio runtime.
fn run_blocking<F, T>(fut: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>> + Send,
    T: Send,
{
    let make = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map(|n| n.get().clamp(2, 8))
                    .unwrap_or(2),
            )
            .enable_all()
            .build()
            .context("starting the download runtime")
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| make()?.block_on(fut))
                .join()
                .unwrap_or_else(|_| bail!("download thread panicked"))
        })
    } else {
        make()?.block_on(fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HubOptions {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubOptions::from_env_fn(|k| m.get(k).cloned())
    }

    #[test]
    fn env_defaults_and_overrides() {
        let o = env(&[("HOME", "/h")]);
        assert_eq!(o.hf_cache, PathBuf::from("/h/.cache/huggingface/hub"));
        assert_eq!(o.ms_cache, PathBuf::from("/h/.cache/modelscope/hub"));
        assert_eq!(o.hf_endpoint, "https://huggingface.co");
        assert_eq!(o.ms_endpoint, "https://www.modelscope.cn");
        assert!(!o.offline);
        let o = env(&[
            ("HOME", "/h"),
            ("HF_HOME", "/hf"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_TOKEN", "t"),
            ("MODELSCOPE_DOMAIN", "127.0.0.1:8"),
            ("MODELSCOPE_URL_SCHEME", "http://"),
            ("MODELSCOPE_API_TOKEN", "m"),
        ]);
        assert_eq!(o.hf_cache, PathBuf::from("/hf/hub"));
        assert_eq!(o.hf_endpoint, "http://127.0.0.1:9");
        assert_eq!(o.ms_endpoint, "http://127.0.0.1:8");
        assert!(o.offline);
        assert_eq!(o.hf_token.as_deref(), Some("t"));
        assert_eq!(o.ms_token.as_deref(), Some("m"));
        let o = env(&[("HOME", "/h"), ("HF_HUB_CACHE", "/c"), ("HF_HOME", "/hf")]);
        assert_eq!(o.hf_cache, PathBuf::from("/c"));
    }

    #[test]
    fn hub_prefixes() {
        let o = env(&[("HOME", "/h")]);
        let r = RepoRef::parse("ms::Qwen/Qwen2.5-0.5B", &o).unwrap();
        assert_eq!(r.hub, Hub::ModelScope);
        assert_eq!(r.revision, "master");
        let r = RepoRef::parse("hf::Qwen/Qwen2.5-0.5B", &o).unwrap();
        assert_eq!((r.hub, r.revision.as_str()), (Hub::HuggingFace, "main"));
        let r = RepoRef::parse("gpt2", &o).unwrap();
        assert_eq!(r.id, "gpt2");
        let mut o2 = o.clone();
        o2.hub = Some(Hub::HuggingFace);
        assert!(RepoRef::parse("ms::a/b", &o2).is_err());
        for bad in ["", "a/b/c", "../x", "a/..", "a b/c", "/abs"] {
            assert!(RepoRef::parse(bad, &o).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_follow_fnmatch() {
        let f = FileFilter::new(&["*.json".into(), "sub/".into()], &["secret*".into()])
            .require(&["secret.bin".into()])
            .compile()
            .unwrap();
        assert!(f.matches("secret.bin"));
        assert!(f.matches("config.json"));
        assert!(f.matches("a/b.json"));
        assert!(f.matches("sub/x.bin"));
        assert!(!f.matches("model.safetensors"));
        assert!(!f.matches("secret.json"));
        let all = FileFilter::default().compile().unwrap();
        assert!(all.matches("anything/at.all"));
        let only = FileFilter::default()
            .require(&["config.json".into()])
            .compile()
            .unwrap();
        assert!(only.matches("config.json"));
        assert!(!only.matches("model.safetensors"));
    }
}
