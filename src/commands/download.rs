//! `swift download`: fetch a model or dataset from the Hugging Face Hub or
//! ModelScope into the shared cache (or `--local-dir`). Prints the snapshot
//! path on stdout (`--json`: path and files); talk goes to stderr.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Exit;
use crate::hub::{
    self, FileFilter, Hub, HubOptions, Registry, RepoType, Snapshot, TransferProgress,
};
use crate::printer::Printer;
use crate::progress::Progress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HubArg {
    /// The Hugging Face Hub (HF_ENDPOINT)
    #[value(alias = "huggingface")]
    Hf,
    /// ModelScope (MODELSCOPE_DOMAIN)
    #[value(alias = "ms")]
    Modelscope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RepoTypeArg {
    Model,
    Dataset,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  swift download Qwen/Qwen2.5-0.5B-Instruct
  swift download ms::Qwen/Qwen2.5-0.5B-Instruct --include '*.json' --local-dir qwen
  swift download HuggingFaceTB/SmolLM2-135M-Instruct config.json --json
  swift download --dataset alpaca-zh
  swift download --list-datasets

Environment: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN,
HF_HUB_DOWNLOAD_TIMEOUT, MODELSCOPE_DOMAIN, MODELSCOPE_CACHE, MODELSCOPE_API_TOKEN,
USE_HF (0 picks ModelScope), SWIFT_DATASET_REGISTRY.")]
pub struct DownloadArgs {
    /// Model or dataset id (`org/name`, optionally `hf::` or `ms::` prefixed), or a dataset short name
    pub repo_id: Option<String>,

    /// Fetch only these files (paths in the repository)
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,

    /// Model id (same as the positional id)
    #[arg(long, value_name = "ID", alias = "model_id", conflicts_with_all = ["repo_id", "dataset"])]
    pub model: Option<String>,

    /// Dataset short name (see --list-datasets) or dataset id
    #[arg(
        long,
        value_name = "NAME|ID",
        alias = "dataset_id",
        conflicts_with = "repo_id"
    )]
    pub dataset: Option<String>,

    /// Which hub (default: the id's `hf::`/`ms::` prefix, else USE_HF, else hf)
    #[arg(long, value_enum)]
    pub hub: Option<HubArg>,

    /// Repository type of the positional id
    #[arg(long, value_enum, alias = "repo_type", default_value_t = RepoTypeArg::Model)]
    pub repo_type: RepoTypeArg,

    /// Branch, tag or commit (default main on hf, master on ModelScope)
    #[arg(long)]
    pub revision: Option<String>,

    /// Only files matching this glob (repeatable; `*` crosses `/`)
    #[arg(
        long,
        value_name = "GLOB",
        alias = "allow_patterns",
        alias = "allow_file_pattern"
    )]
    pub include: Vec<String>,

    /// Skip files matching this glob (repeatable)
    #[arg(
        long,
        value_name = "GLOB",
        alias = "ignore_patterns",
        alias = "ignore_file_pattern"
    )]
    pub exclude: Vec<String>,

    /// Write plain files into DIR instead of the cache
    #[arg(long, value_name = "DIR", alias = "local_dir")]
    pub local_dir: Option<PathBuf>,

    /// Cache root (default HF_HUB_CACHE, or MODELSCOPE_CACHE for ModelScope)
    #[arg(long, value_name = "DIR", alias = "cache_dir")]
    pub cache_dir: Option<PathBuf>,

    /// Access token (default HF_TOKEN / MODELSCOPE_API_TOKEN)
    #[arg(long, alias = "hub_token")]
    pub token: Option<String>,

    /// Hub endpoint URL (default HF_ENDPOINT / MODELSCOPE_DOMAIN)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Resolve from the cache only (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    pub offline: bool,

    /// Download again even when the cache has the files
    #[arg(long, alias = "force_download")]
    pub force: bool,

    /// Files fetched at once
    #[arg(long, value_name = "N", alias = "max_workers", default_value_t = 8)]
    pub max_workers: usize,

    /// Byte-range connections per large file
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub connections: usize,

    /// Smallest byte range per connection, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 32, hide = true)]
    pub part_size_mb: u64,

    /// Print the result (snapshot path and files) as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Print the dataset registry and exit
    #[arg(long, alias = "list_datasets")]
    pub list_datasets: bool,

    /// A user dataset registry file (default SWIFT_DATASET_REGISTRY or ~/.config/swift/datasets.json)
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
}

pub fn run(args: DownloadArgs, printer: &Printer) -> Result<()> {
    let registry = Registry::load(args.registry.as_deref())?;
    if args.list_datasets {
        return list_datasets(&registry, args.json, printer);
    }

    let mut opts = HubOptions::from_env();
    if let Some(h) = args.hub {
        opts.hub = Some(match h {
            HubArg::Hf => Hub::HuggingFace,
            HubArg::Modelscope => Hub::ModelScope,
        });
    }
    opts.revision = args.revision.clone();
    if let Some(t) = &args.token {
        opts.set_token(t);
    }
    opts.offline |= args.offline;
    opts.force = args.force;
    opts.local_dir = args.local_dir.clone();
    opts.max_files = args.max_workers.max(1);
    opts.connections = args.connections.max(1);
    opts.max_connections = (opts.max_files * 2).max(opts.connections);
    opts.part_size = args.part_size_mb.max(1) << 20;

    let filter = FileFilter::new(&args.include, &args.exclude).require(&args.files);

    // What is being fetched: a dataset (by short name or id) or a model.
    let (spec, dataset) = match (&args.dataset, &args.model, &args.repo_id) {
        (Some(d), _, _) => (d.clone(), true),
        (None, Some(m), _) => (m.clone(), false),
        (None, None, Some(id)) => {
            let bare = hub::split_hub_prefix(id).1;
            let named = !bare.contains('/') && registry.get(bare).is_some();
            (id.clone(), args.repo_type == RepoTypeArg::Dataset || named)
        }
        (None, None, None) => {
            return Err(Exit::Usage(
                "name a model or dataset to download (or pass --list-datasets)".into(),
            )
            .into())
        }
    };
    let hub_for_flags = hub::split_hub_prefix(&spec)
        .0
        .or(opts.hub)
        .or_else(|| {
            dataset
                .then(|| registry.get(hub::split_hub_prefix(&spec).1))
                .flatten()
                .map(|e| e.preferred_hub())
        })
        .unwrap_or(Hub::HuggingFace);
    if let Some(e) = &args.endpoint {
        opts.set_endpoint(hub_for_flags, e);
    }
    if let Some(c) = &args.cache_dir {
        match hub_for_flags {
            Hub::HuggingFace => opts.hf_cache = c.clone(),
            Hub::ModelScope => opts.ms_cache = c.clone(),
        }
    }

    let reporter = Reporter::new(printer);
    let started = Instant::now();
    let (snapshot, entry) = if dataset {
        opts.repo_type = RepoType::Dataset;
        let r = hub::resolve_dataset(&spec, &opts, &registry, &filter, &reporter)?;
        (r.snapshot, r.entry)
    } else {
        opts.repo_type = RepoType::Model;
        (hub::download(&spec, &opts, &filter, &reporter)?, None)
    };
    let elapsed = started.elapsed();
    reporter.clear();

    if let Some(reason) = &snapshot.fallback_reason {
        printer.warn(&format!(
            "the hub could not be reached ({}); using the cached snapshot",
            reason.lines().next().unwrap_or(reason)
        ));
    }
    summary(printer, &snapshot, elapsed);
    if args.json {
        let mut v = serde_json::to_value(&snapshot)?;
        if let Some(e) = entry {
            v["dataset"] = serde_json::to_value(e)?;
        }
        printer.data(&serde_json::to_string_pretty(&v)?);
    } else {
        printer.data(&snapshot.path.display().to_string());
    }
    Ok(())
}

fn summary(printer: &Printer, s: &Snapshot, elapsed: Duration) {
    let total: u64 = s.files.iter().map(|f| f.size).sum();
    let fetched = s.files.iter().filter(|f| f.downloaded > 0).count();
    let rate = if elapsed.as_secs_f64() > 0.0 {
        s.downloaded_bytes as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    let how = if s.from_cache {
        "from the cache".to_string()
    } else if s.downloaded_bytes == 0 {
        "all already cached".to_string()
    } else {
        format!(
            "{fetched} fetched, {} in {:.1}s, {}/s",
            human(s.downloaded_bytes),
            elapsed.as_secs_f64(),
            human(rate as u64)
        )
    };
    printer.info(&format!(
        "{} {} ({}, {} files, {}; {how})",
        s.repo_type.as_str(),
        s.repo_id,
        s.hub.as_str(),
        s.files.len(),
        human(total)
    ));
}

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn list_datasets(registry: &Registry, json: bool, printer: &Printer) -> Result<()> {
    if json {
        printer.data(&serde_json::to_string_pretty(registry.entries())?);
        return Ok(());
    }
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "name",
        "kind",
        "hf",
        "modelscope",
        "subset/split",
        "description",
    ]);
    for e in registry.entries() {
        let ss = match (&e.subset, &e.split) {
            (Some(s), Some(p)) => format!("{s}/{p}"),
            (None, Some(p)) => p.clone(),
            (Some(s), None) => s.clone(),
            (None, None) => String::new(),
        };
        b.push_record([
            e.name.clone(),
            e.kind.clone(),
            e.hf.clone().unwrap_or_else(|| "-".into()),
            e.ms.clone().unwrap_or_else(|| "-".into()),
            ss,
            e.description.clone(),
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::sharp());
    printer.data(&t.to_string());
    if let Some(p) = &registry.user_file {
        printer.info(&format!("user entries from {}", p.display()));
    }
    Ok(())
}

/// Draws download progress: a bar per file plus a total on a terminal,
/// periodic lines otherwise, nothing when quiet.
enum Reporter {
    Bars {
        mp: MultiProgress,
        total: ProgressBar,
        files: Mutex<HashMap<String, ProgressBar>>,
    },
    Lines(Box<dyn Progress>),
}

impl Reporter {
    fn new(printer: &Printer) -> Self {
        if printer.bars {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = mp.add(ProgressBar::new(0));
            total.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            total.set_prefix("total");
            Reporter::Bars {
                mp,
                total,
                files: Mutex::new(HashMap::new()),
            }
        } else {
            Reporter::Lines(printer.progress())
        }
    }

    fn clear(&self) {
        if let Reporter::Bars { mp, total, .. } = self {
            total.finish_and_clear();
            let _ = mp.clear();
        }
    }
}

impl TransferProgress for Reporter {
    fn begin(&self, _files: usize, total_bytes: u64) {
        match self {
            Reporter::Bars { total, .. } => total.set_length(total_bytes),
            Reporter::Lines(p) => p.start("download", Some(total_bytes)),
        }
    }
    fn file_start(&self, path: &str, size: u64, have: u64) {
        match self {
            Reporter::Bars { mp, total, files } => {
                total.inc(have);
                if have < size {
                    let bar = mp.insert_from_back(1, ProgressBar::new(size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg:>30.dim} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    );
                    let short: String = if path.chars().count() > 30 {
                        let tail: Vec<char> = path.chars().rev().take(29).collect();
                        std::iter::once('…').chain(tail.into_iter().rev()).collect()
                    } else {
                        path.to_string()
                    };
                    bar.set_message(short);
                    bar.set_position(have);
                    files.lock().unwrap().insert(path.to_string(), bar);
                }
            }
            Reporter::Lines(p) => p.inc(have),
        }
    }
    fn file_progress(&self, path: &str, n: u64) {
        match self {
            Reporter::Bars { total, files, .. } => {
                total.inc(n);
                if let Some(b) = files.lock().unwrap().get(path) {
                    b.inc(n);
                }
            }
            Reporter::Lines(p) => p.inc(n),
        }
    }
    fn file_done(&self, path: &str) {
        if let Reporter::Bars { mp, files, .. } = self {
            if let Some(b) = files.lock().unwrap().remove(path) {
                b.finish_and_clear();
                mp.remove(&b);
            }
        }
    }
    fn retry(&self, path: &str, attempt: u32, error: &str) {
        let line = format!("retrying {path} (attempt {attempt}): {error}");
        match self {
            Reporter::Bars { mp, .. } => {
                let _ = mp.println(format!("warning: {line}"));
            }
            Reporter::Lines(p) => p.println(&format!("warning: {line}")),
        }
    }
    fn discarded(&self, path: &str, reason: &str) {
        let line = format!("warning: discarded {path}: {reason}");
        match self {
            Reporter::Bars { mp, .. } => {
                let _ = mp.println(line);
            }
            Reporter::Lines(p) => p.println(&line),
        }
    }
    fn end(&self) {
        if let Reporter::Lines(p) = self {
            p.finish();
        }
    }
}
