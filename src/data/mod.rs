//! Dataset formats -> tokenized, label-masked samples (issue 04).
//!
//! The contract the trainer (`src/train/`) relies on is the set of types in
//! this file: [`DatasetSpec`], [`SftOptions`], [`Sample`], [`SftData`],
//! [`DataReport`] and [`load_sft`].
//!
//! # What `load_sft` does, in order
//!
//! 1. **Resolve** each `--dataset PATH[#N]`: a file, a folder (every
//!    `.jsonl` / `.json` / `.csv` / `.parquet` below it), or, when the path
//!    does not exist, a hub dataset (registry short name, `org/name`,
//!    `hf::` / `ms::` prefixes) fetched through [`crate::hub::resolve_dataset`]
//!    (its registry entry's column mapping applies under `--columns`). When a
//!    folder holds files named for both splits (`train-*.parquet` beside
//!    `test-*.parquet`), a training dataset reads the train files and a
//!    validation dataset the others.
//! 2. **Read** rows ([`formats`]) and turn each into a conversation
//!    ([`layouts`]: messages, ShareGPT, Alpaca, query/response, after the
//!    `--columns` renaming). A malformed row is an error naming the file, the
//!    line (or element / row index) and the field; with `skip_bad_rows` it is
//!    counted instead. Rows with an empty (whitespace) assistant turn are
//!    dropped and counted.
//! 3. **Duplicates**: conversations identical to an earlier one (across all
//!    training datasets) are counted, and removed only with `dedup`.
//! 4. **Sample** `#N` rows with the seed: `N` below the row count draws `N`
//!    distinct rows; above it, the dataset is repeated whole `N / rows` times
//!    plus a draw of the remainder (as ms-swift does).
//! 5. **Render and mask** ([`render`]): the chat template, every assistant
//!    turn trained including its end-of-turn token.
//! 6. **Length**: rows over `max_length` tokens are dropped
//!    ([`Truncation::Delete`]) or cut keeping the end (`Left`) or the start
//!    (`Right`); a cut row with no trained token left is dropped as over
//!    length. `max_length = 0` means no limit.
//! 7. **Split**: validation rows come from the validation datasets, else
//!    `ceil(rows * split_ratio)` rows drawn with the seed (at least one row
//!    stays for training).
//! 8. **Pack** (optional, [`pack`]): consecutive samples are concatenated
//!    into rows of at most `max_length` tokens. Attention crosses the sample
//!    boundaries inside a packed row (no position-id reset; the trainer sees
//!    one sequence); the first token of every sample after the first is
//!    masked, so no loss term predicts one sample from another.
//!
//! An empty training set after all this is an error.

pub mod formats;
pub mod layouts;
pub mod preference;
pub mod render;
pub mod report;
#[doc(hidden)]
pub mod testing;

use crate::progress::Progress;
use crate::tokenizer::Tokenizer;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use formats::{Format, Loc};
use layouts::Conversation;
pub use preference::{load_preferences, PreferenceData, PreferenceSample};

/// The label value the loss ignores (PyTorch's `ignore_index`).
pub const IGNORE: i64 = -100;

/// One tokenized training example. `labels` is aligned with `input_ids`
/// (not shifted, as in transformers): position `i`'s label is the token at
/// `i`, and the trainer predicts `labels[i + 1]` from positions `..=i`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub input_ids: Vec<u32>,
    pub labels: Vec<i64>,
}

impl Sample {
    /// The number of trained (not ignored) labels.
    pub fn trained_tokens(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }
}

/// `--dataset PATH[#N]`: a file or folder (or hub dataset id), optionally
/// sampled down to `N` rows.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    pub path: PathBuf,
    pub sample: Option<usize>,
}

impl std::str::FromStr for DatasetSpec {
    type Err = anyhow::Error;

    /// `PATH` or `PATH#N` (`N` a positive integer). A `#` followed by
    /// anything else is part of the path.
    fn from_str(s: &str) -> Result<DatasetSpec> {
        let s = s.trim();
        if s.is_empty() {
            bail!("an empty dataset name");
        }
        if let Some((path, n)) = s.rsplit_once('#') {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                let n: usize = n
                    .parse()
                    .with_context(|| format!("the row count in `{s}` is too large"))?;
                if n == 0 {
                    bail!("`{s}`: the number of rows to sample must be at least 1");
                }
                if path.is_empty() {
                    bail!("`{s}`: a dataset path is missing before `#`");
                }
                return Ok(DatasetSpec {
                    path: PathBuf::from(path),
                    sample: Some(n),
                });
            }
        }
        Ok(DatasetSpec {
            path: PathBuf::from(s),
            sample: None,
        })
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(n) = self.sample {
            write!(f, "#{n}")?;
        }
        Ok(())
    }
}

/// How the sequence is cut when longer than `max_length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Drop the row (counted in the report).
    #[default]
    Delete,
    /// Keep the end.
    Left,
    /// Keep the start.
    Right,
}

impl std::str::FromStr for Truncation {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Truncation> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "delete" => Truncation::Delete,
            "left" => Truncation::Left,
            "right" => Truncation::Right,
            _ => bail!("unknown truncation strategy `{s}` (delete, left or right)"),
        })
    }
}

/// Everything `load_sft` needs besides the files and the tokenizer.
#[derive(Clone, Debug)]
pub struct SftOptions {
    pub max_length: usize,
    pub truncation: Truncation,
    pub packing: bool,
    /// Train on every token (pre-training style) instead of assistant turns only.
    pub loss_on_all_tokens: bool,
    pub dedup: bool,
    pub skip_bad_rows: bool,
    /// `--columns` mapping: source column name -> standard name.
    pub columns: BTreeMap<String, String>,
    /// Fraction of the training rows held out for validation when no
    /// validation dataset is given (0 = none).
    pub split_ratio: f64,
    pub seed: u64,
    /// A default system prompt for rows that have none.
    pub system: Option<String>,
}

impl Default for SftOptions {
    fn default() -> Self {
        SftOptions {
            max_length: 2048,
            truncation: Truncation::Delete,
            packing: false,
            loss_on_all_tokens: false,
            dedup: false,
            skip_bad_rows: false,
            columns: BTreeMap::new(),
            split_ratio: 0.0,
            seed: 42,
            system: None,
        }
    }
}

/// What the data looked like (printed before training, kept in args.json).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DataReport {
    pub sources: Vec<SourceReport>,
    pub duplicates: usize,
    pub duplicates_removed: bool,
    /// Samples (conversations) in each split, before packing.
    pub train_rows: usize,
    pub val_rows: usize,
    pub max_length: usize,
    /// Token counts of the kept rows: min, median, p95, max.
    pub length_min: usize,
    pub length_median: usize,
    pub length_p95: usize,
    pub length_max: usize,
    /// Whether samples were packed; the sequences the trainer gets (equal to
    /// the rows without packing).
    pub packing: bool,
    pub train_sequences: usize,
    pub val_sequences: usize,
    /// Which chat template rendered the rows (a built-in's name, or `model`).
    pub template: String,
}

/// Per-dataset counts (one per `--dataset` / `--val-dataset`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceReport {
    pub path: String,
    /// `train` or `val`.
    pub split: String,
    pub format: String,
    pub layout: String,
    /// Rows read from the files (bad ones included).
    pub rows: usize,
    /// Samples this dataset contributes (after sampling and filtering).
    pub kept: usize,
    pub malformed: usize,
    pub over_length: usize,
    pub empty_answer: usize,
    pub truncated: usize,
    /// Rows identical to an earlier row (removed only with `dedup`).
    pub duplicates: usize,
}

/// The result of loading: train and validation samples and the report.
#[derive(Clone, Debug, Default)]
pub struct SftData {
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub report: DataReport,
}

const SKIP_HINT: &str = "hint: --skip-bad-rows skips such rows and counts them in the report";

/// Local files of a dataset spec, and the registry's column mapping when it
/// came from the hub registry.
fn resolve_files(
    spec: &DatasetSpec,
    want: &str,
) -> Result<(Vec<PathBuf>, BTreeMap<String, String>)> {
    let p = &spec.path;
    let name = p.to_string_lossy().to_string();
    let local = crate::hub::split_hub_prefix(&name).0.is_none() && p.exists();
    let (files, columns, split) = if local {
        let files = if p.is_dir() {
            formats::files_in(p)?
        } else {
            vec![p.clone()]
        };
        (files, BTreeMap::new(), None)
    } else {
        let registry = crate::hub::registry::Registry::load(None)?;
        let resolved = crate::hub::resolve_dataset(
            &name,
            &crate::hub::HubOptions::from_env(),
            &registry,
            &crate::hub::FileFilter::default(),
            &crate::hub::NoTransferProgress,
        )
        .with_context(|| {
            format!("`{name}` is not a local file or folder; looking it up on the hub")
        })?;
        let files: Vec<PathBuf> = resolved
            .snapshot
            .files
            .iter()
            .map(|f| f.local_path.clone())
            .filter(|f| Format::of(f).is_some())
            .collect();
        let (columns, split) = match &resolved.entry {
            Some(e) => (e.columns.clone(), e.split.clone()),
            None => (BTreeMap::new(), None),
        };
        (files, columns, split)
    };
    let files = pick_split(files, want, split.as_deref());
    if files.is_empty() {
        bail!(
            "{}: no dataset files (.jsonl, .json, .csv, .parquet) found",
            p.display()
        );
    }
    Ok((files, columns))
}

/// Keep the files of one split when a folder holds several.
fn pick_split(files: Vec<PathBuf>, want: &str, named: Option<&str>) -> Vec<PathBuf> {
    if files.len() < 2 {
        return files;
    }
    if let Some(split) = named.filter(|_| want == "train") {
        let hits: Vec<PathBuf> = files
            .iter()
            .filter(|f| {
                f.to_string_lossy()
                    .to_ascii_lowercase()
                    .contains(&split.to_ascii_lowercase())
            })
            .cloned()
            .collect();
        if !hits.is_empty() {
            return hits;
        }
    }
    let splits: BTreeSet<Option<&str>> = files.iter().map(|f| formats::split_of(f)).collect();
    if splits.len() > 1 && splits.contains(&Some(want)) {
        files
            .into_iter()
            .filter(|f| formats::split_of(f) == Some(want))
            .collect()
    } else {
        files
    }
}

/// Indices of `n` rows drawn from `len` with `seed`: distinct rows in file
/// order when `n <= len`; otherwise the whole set `n / len` times and a draw
/// of the remainder.
pub fn sample_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    if len == 0 {
        return Vec::new();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n / len {
        out.extend(0..len);
    }
    let rest = n % len;
    if rest > 0 {
        let mut idx: Vec<usize> = (0..len).collect();
        idx.shuffle(&mut rng);
        let mut pick = idx[..rest].to_vec();
        pick.sort_unstable();
        out.extend(pick);
    }
    out
}

/// Concatenate consecutive samples into rows of at most `max_length`
/// tokens (greedy, in order). The first token of every sample after the
/// first in a row gets [`IGNORE`], so no loss term predicts across a seam;
/// attention does cross seams (the trainer sees one sequence).
pub fn pack(samples: Vec<Sample>, max_length: usize) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut cur: Option<Sample> = None;
    for s in samples {
        match cur.as_mut() {
            Some(c) if c.input_ids.len() + s.input_ids.len() <= max_length => {
                let start = c.labels.len();
                c.input_ids.extend_from_slice(&s.input_ids);
                c.labels.extend_from_slice(&s.labels);
                c.labels[start] = IGNORE;
            }
            _ => {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
                cur = Some(s);
            }
        }
    }
    out.extend(cur);
    out
}

/// Cut a sample to `max_length` tokens; `None` when it must be dropped.
fn fit(mut s: Sample, max_length: usize, how: Truncation) -> (Option<Sample>, bool) {
    if max_length == 0 || s.input_ids.len() <= max_length {
        return (Some(s), false);
    }
    match how {
        Truncation::Delete => return (None, false),
        Truncation::Left => {
            let cut = s.input_ids.len() - max_length;
            s.input_ids.drain(..cut);
            s.labels.drain(..cut);
        }
        Truncation::Right => {
            s.input_ids.truncate(max_length);
            s.labels.truncate(max_length);
        }
    }
    if s.trained_tokens() == 0 {
        (None, false)
    } else {
        (Some(s), true)
    }
}

/// What the pipeline needs to know about a converted row.
pub(crate) struct RowInfo {
    /// The layout's name, for the report.
    pub layout: &'static str,
    /// An answer is empty (the row is dropped and counted).
    pub empty_answer: bool,
    /// Equal keys mean exact duplicates.
    pub key: String,
}

/// Turns a row (columns already renamed) into an item to tokenize.
pub(crate) type Convert<'a, T> = dyn Fn(
        &serde_json::Map<String, serde_json::Value>,
    ) -> std::result::Result<(T, RowInfo), layouts::FieldError>
    + 'a;

/// Read every file of a dataset into items (bad rows counted or reported),
/// dropping empty answers and counting duplicates.
fn read_items<T>(
    spec: &DatasetSpec,
    want: &str,
    opts: &SftOptions,
    seen: &mut HashSet<String>,
    report: &mut SourceReport,
    convert: &Convert<'_, T>,
) -> Result<Vec<(Loc, T)>> {
    let (files, registry_columns) = resolve_files(spec, want)?;
    let mut columns = registry_columns;
    columns.retain(|k, v| k != v);
    columns.extend(opts.columns.clone());
    let mut formats_seen = BTreeSet::new();
    let mut layouts_seen: Vec<&'static str> = Vec::new();
    let mut out = Vec::new();
    for file in &files {
        let format = Format::of(file).context("unknown format")?;
        formats_seen.insert(format.name());
        let rows = formats::read_as(file, format)?;
        report.rows += rows.rows.len() + rows.bad.len();
        if let Some(bad) = rows.bad.first() {
            if !opts.skip_bad_rows {
                bail!("{bad}\n{SKIP_HINT}");
            }
            report.malformed += rows.bad.len();
        }
        for row in rows.rows {
            let renamed = layouts::rename_columns(&row.value, &columns);
            let (item, info) = match convert(&renamed) {
                Ok(c) => c,
                Err(e) => {
                    if opts.skip_bad_rows {
                        report.malformed += 1;
                        continue;
                    }
                    bail!("{}: {e}\n{SKIP_HINT}", row.loc);
                }
            };
            if info.empty_answer {
                report.empty_answer += 1;
                continue;
            }
            if !seen.insert(info.key) {
                report.duplicates += 1;
                if opts.dedup {
                    continue;
                }
            }
            if !layouts_seen.contains(&info.layout) {
                layouts_seen.push(info.layout);
            }
            out.push((row.loc, item));
        }
    }
    report.format = formats_seen.into_iter().collect::<Vec<_>>().join("+");
    report.layout = layouts_seen.join("+");
    Ok(out)
}

/// Load one split's datasets: read, convert, sample, encode (in parallel),
/// fit to the length. Returns the samples and the duplicate count.
#[allow(clippy::too_many_arguments)]
fn load_split<T: Sync, S: Send>(
    specs: &[DatasetSpec],
    split: &str,
    opts: &SftOptions,
    progress: &dyn Progress,
    reports: &mut Vec<SourceReport>,
    convert: &Convert<'_, T>,
    encode: &(dyn Fn(&T) -> Result<S> + Sync),
    fit: &dyn Fn(S) -> (Option<S>, bool),
) -> Result<(Vec<S>, usize)> {
    use rayon::prelude::*;
    let want = if split == "train" {
        "train"
    } else {
        "validation"
    };
    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    for (si, spec) in specs.iter().enumerate() {
        let mut report = SourceReport {
            path: spec.to_string(),
            split: split.to_string(),
            ..Default::default()
        };
        let items = read_items(spec, want, opts, &mut seen, &mut report, convert)
            .with_context(|| format!("loading dataset `{spec}`"))?;
        let picked: Vec<&(Loc, T)> = match spec.sample {
            Some(n) => sample_indices(
                items.len(),
                n,
                opts.seed ^ (si as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )
            .into_iter()
            .map(|i| &items[i])
            .collect(),
            None => items.iter().collect(),
        };
        progress.start(&format!("tokenizing {spec}"), Some(picked.len() as u64));
        let encoded: Vec<Result<S>> = picked
            .par_iter()
            .map(|(_, item)| {
                let r = encode(item);
                progress.inc(1);
                r
            })
            .collect();
        progress.finish();
        for ((loc, _), r) in picked.iter().zip(encoded) {
            let s = match r {
                Ok(s) => s,
                Err(e) => {
                    if opts.skip_bad_rows {
                        report.malformed += 1;
                        continue;
                    }
                    bail!("{loc}: {e:#}\n{SKIP_HINT}");
                }
            };
            match fit(s) {
                (Some(s), cut) => {
                    report.truncated += cut as usize;
                    report.kept += 1;
                    samples.push(s);
                }
                (None, _) => report.over_length += 1,
            }
        }
        reports.push(report);
    }
    let dups = reports
        .iter()
        .filter(|r| r.split == split)
        .map(|r| r.duplicates)
        .sum();
    Ok((samples, dups))
}

fn why_empty(reports: &[SourceReport], split: &str, opts: &SftOptions) -> String {
    let sum = |f: fn(&SourceReport) -> usize| -> usize {
        reports.iter().filter(|r| r.split == split).map(f).sum()
    };
    let mut parts = vec![format!("{} rows read", sum(|r| r.rows))];
    for (n, what) in [
        (sum(|r| r.malformed), "malformed"),
        (sum(|r| r.empty_answer), "with an empty answer"),
        (sum(|r| r.over_length), "over --max-length"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if opts.dedup {
        parts.push(format!("{} duplicates removed", sum(|r| r.duplicates)));
    }
    parts.join(", ")
}

fn check_common(tok: &Tokenizer, train: &[DatasetSpec], opts: &SftOptions) -> Result<()> {
    if train.is_empty() {
        bail!("no training dataset given (--dataset)");
    }
    if tok.template().is_none() {
        bail!(
            "the model's tokenizer has no chat template, so conversations cannot be rendered; \
             choose a built-in one ({})",
            crate::tokenizer::ChatTemplate::builtin_names().join(", ")
        );
    }
    if !(0.0..1.0).contains(&opts.split_ratio) {
        bail!(
            "the validation split ratio must be in [0, 1), got {}",
            opts.split_ratio
        );
    }
    Ok(())
}

/// Load both splits through `load_split`, holding out `split_ratio` of the
/// training rows when no validation dataset is given; fill the report's
/// counts and length distribution (`len` of each kept sample).
#[allow(clippy::too_many_arguments)]
fn load_both<T: Sync, S: Send>(
    train: &[DatasetSpec],
    val: &[DatasetSpec],
    tok: &Tokenizer,
    opts: &SftOptions,
    progress: &dyn Progress,
    convert: &Convert<'_, T>,
    encode: &(dyn Fn(&T) -> Result<S> + Sync),
    fit: &dyn Fn(S) -> (Option<S>, bool),
    len: &dyn Fn(&S) -> usize,
) -> Result<(Vec<S>, Vec<S>, DataReport)> {
    let mut reports = Vec::new();
    let (mut train_samples, duplicates) = load_split(
        train,
        "train",
        opts,
        progress,
        &mut reports,
        convert,
        encode,
        fit,
    )?;
    if train_samples.is_empty() {
        bail!(
            "the training data is empty after filtering ({})",
            why_empty(&reports, "train", opts)
        );
    }
    let mut val_samples = Vec::new();
    if !val.is_empty() {
        val_samples = load_split(
            val,
            "val",
            opts,
            progress,
            &mut reports,
            convert,
            encode,
            fit,
        )?
        .0;
        if val_samples.is_empty() {
            bail!(
                "the validation data is empty after filtering ({})",
                why_empty(&reports, "val", opts)
            );
        }
    } else if opts.split_ratio > 0.0 && train_samples.len() > 1 {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let n = train_samples.len();
        let n_val = ((n as f64 * opts.split_ratio).ceil() as usize).clamp(1, n - 1);
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(opts.seed));
        let mut is_val = vec![false; n];
        for &i in &idx[..n_val] {
            is_val[i] = true;
        }
        let all = std::mem::take(&mut train_samples);
        for (s, v) in all.into_iter().zip(is_val) {
            if v {
                val_samples.push(s);
            } else {
                train_samples.push(s);
            }
        }
    }
    let mut lengths: Vec<usize> = train_samples.iter().chain(&val_samples).map(len).collect();
    lengths.sort_unstable();
    let template = match tok.template().and_then(|t| t.name()) {
        Some(n) => n.to_string(),
        None => "model".to_string(),
    };
    let report = DataReport {
        sources: reports,
        duplicates,
        duplicates_removed: opts.dedup,
        train_rows: train_samples.len(),
        val_rows: val_samples.len(),
        max_length: opts.max_length,
        length_min: lengths.first().copied().unwrap_or(0),
        length_median: report::percentile(&lengths, 0.5),
        length_p95: report::percentile(&lengths, 0.95),
        length_max: lengths.last().copied().unwrap_or(0),
        packing: false,
        train_sequences: train_samples.len(),
        val_sequences: val_samples.len(),
        template,
    };
    Ok((train_samples, val_samples, report))
}

/// Load, render through the chat template, tokenize, mask, filter, split.
pub fn load_sft(
    train: &[DatasetSpec],
    val: &[DatasetSpec],
    tok: &Tokenizer,
    opts: &SftOptions,
    progress: &dyn Progress,
) -> Result<SftData> {
    check_common(tok, train, opts)?;
    if opts.packing && opts.max_length == 0 {
        bail!("packing needs a --max-length to pack into");
    }
    let markers = render::end_markers(tok);
    let system = opts.system.as_deref();
    let convert = |row: &serde_json::Map<String, serde_json::Value>| {
        let c = layouts::to_conversation(row, system)?;
        let info = RowInfo {
            layout: c.layout.name(),
            empty_answer: c.has_empty_answer(),
            key: serde_json::to_string(&c.messages).unwrap_or_default(),
        };
        Ok((c, info))
    };
    let encode = |c: &Conversation| {
        render::encode_conversation(tok, &c.messages, opts.loss_on_all_tokens, &markers)
    };
    let fit_one = |s: Sample| fit(s, opts.max_length, opts.truncation);
    let (mut train_samples, mut val_samples, mut report) = load_both(
        train,
        val,
        tok,
        opts,
        progress,
        &convert,
        &encode,
        &fit_one,
        &|s: &Sample| s.input_ids.len(),
    )?;
    if opts.packing {
        train_samples = pack(train_samples, opts.max_length);
        val_samples = pack(val_samples, opts.max_length);
        report.packing = true;
    }
    report.train_sequences = train_samples.len();
    report.val_sequences = val_samples.len();
    Ok(SftData {
        train: train_samples,
        val: val_samples,
        report,
    })
}

#[cfg(test)]
mod tests;
