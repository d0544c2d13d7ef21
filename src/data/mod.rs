//! Dataset formats -> tokenized, label-masked samples (issue 04).
//!
//! The contract the trainer (`src/train/`) relies on is the set of types in
//! this file: [`DatasetSpec`], [`SftOptions`], [`Sample`], [`SftData`],
//! [`DataReport`] and [`load_sft`].

use crate::progress::Progress;
use crate::tokenizer::Tokenizer;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

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

/// `--dataset PATH[#N]`: a file or folder (or hub dataset id), optionally
/// sampled down to `N` rows.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    pub path: PathBuf,
    pub sample: Option<usize>,
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

/// What the data looked like (printed before training, kept in args.json).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DataReport {
    pub sources: Vec<SourceReport>,
    pub duplicates: usize,
    pub duplicates_removed: bool,
    pub train_rows: usize,
    pub val_rows: usize,
    pub max_length: usize,
    /// Token counts of the kept rows: min, median, p95, max.
    pub length_min: usize,
    pub length_median: usize,
    pub length_p95: usize,
    pub length_max: usize,
}

/// Per-file counts.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceReport {
    pub path: String,
    pub format: String,
    pub layout: String,
    pub rows: usize,
    pub kept: usize,
    pub malformed: usize,
    pub over_length: usize,
    pub empty_answer: usize,
    pub truncated: usize,
}

/// The result of loading: train and validation samples and the report.
#[derive(Clone, Debug, Default)]
pub struct SftData {
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub report: DataReport,
}

/// Load, render through the chat template, tokenize, mask, filter, split.
pub fn load_sft(
    _train: &[DatasetSpec],
    _val: &[DatasetSpec],
    _tok: &Tokenizer,
    _opts: &SftOptions,
    _progress: &dyn Progress,
) -> Result<SftData> {
    bail!("dataset loading is being written (src/data)")
}
