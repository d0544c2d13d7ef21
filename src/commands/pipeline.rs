//! `swift finetune ... --merge [--serve]`: one job in stages, estimate ->
//! download (a hub id) -> finetune -> merge -> serve, each reported on
//! stderr as `[i/n] stage: ...`. The first failure stops the job with an
//! error naming the stage (its exit code kept: 3 when the estimate does not
//! fit, 130 when training is interrupted). The same command run again skips
//! the stages recorded as finished in `OUTPUT_DIR/pipeline.json` (written
//! atomically after each stage) and resumes an interrupted training from its
//! last checkpoint. Every stage runs in this process through the library
//! (`finetune::train`, `model::merge::merge`, `infer::run`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::finetune::{self, FinetuneArgs};
use super::merge::FormatArg;
use crate::error::Exit;
use crate::model::gguf::GgmlType;
use crate::model::merge::{MergeOptions, OutFormat};
use crate::printer::Printer;

/// The pipeline's record of finished stages, in --output-dir.
pub const STATE_FILE: &str = "pipeline.json";

/// What `pipeline.json` holds.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Of the training settings ([`fingerprint`]): a rerun with other
    /// settings in the same folder is refused rather than mixed.
    pub fingerprint: String,
    /// The estimate's verdict, once it fitted.
    #[serde(default)]
    pub estimate: Option<String>,
    /// The local snapshot of a hub model, once fetched.
    #[serde(default)]
    pub download: Option<PathBuf>,
    /// Training finished (the adapter or model is in --output-dir).
    #[serde(default)]
    pub finetune: bool,
    #[serde(default)]
    pub merge: Option<MergeState>,
}

/// The merge stage: where it writes, and whether it finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeState {
    pub output: PathBuf,
    pub done: bool,
}

impl State {
    pub fn load(dir: &Path) -> Result<Option<State>> {
        let p = dir.join(STATE_FILE);
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| anyhow!(e).context(format!("reading {}", p.display())))?;
        let s = serde_json::from_str(&text).map_err(|e| {
            anyhow!(e).context(format!(
                "reading {} (remove it to start the job over)",
                p.display()
            ))
        })?;
        Ok(Some(s))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::train::checkpoint::write_atomic(
            &dir.join(STATE_FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// The stages of a job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Estimate,
    Download,
    Finetune,
    Merge,
    Serve,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Estimate => "estimate",
            Stage::Download => "download",
            Stage::Finetune => "finetune",
            Stage::Merge => "merge",
            Stage::Serve => "serve",
        }
    }
}

/// A --model that names a hub repository rather than a path (as
/// `resolve_model_arg` reads it).
fn is_hub_id(model: &str) -> bool {
    if Path::new(model).exists() {
        return false;
    }
    let (prefix, id) = crate::hub::split_hub_prefix(model);
    prefix.is_some()
        || (id.split('/').count() == 2 && !id.starts_with('.') && !id.ends_with(".gguf"))
}

/// The stages `args` asks for: a download only when --model is a hub id, a
/// serve only with --serve.
pub fn stages(args: &FinetuneArgs) -> Vec<Stage> {
    let mut v = vec![Stage::Estimate];
    if is_hub_id(&args.model) {
        v.push(Stage::Download);
    }
    v.extend([Stage::Finetune, Stage::Merge]);
    if args.serve {
        v.push(Stage::Serve);
    }
    v
}

/// A hash of every flag that changes what is trained (not the pipeline's own
/// flags, --output-dir, --resume-from-checkpoint, --threads or --json).
pub fn fingerprint(args: &FinetuneArgs) -> String {
    let mut a = args.clone();
    a.output_dir = PathBuf::new();
    a.resume_from_checkpoint = None;
    a.threads = None;
    a.json = false;
    a.merge = false;
    a.merge_output = None;
    a.merge_format = None;
    a.serve = false;
    a.host = None;
    a.port = None;
    a.api_key = None;
    a.served_model_name = None;
    hex::encode(Sha256::digest(format!("{a:?}").as_bytes()))
}

/// What the merge writes: --merge-format, or a GGUF when the base is one
/// (a .gguf file) and an HF folder otherwise.
pub fn merge_format(args: &FinetuneArgs) -> FormatArg {
    match args.merge_format {
        Some(f) => f,
        None if Path::new(&args.model).is_file() => FormatArg::Gguf,
        None => FormatArg::Hf,
    }
}

/// Where the merged model goes: --merge-output, or beside the adapter (so
/// the adapter folder stays small enough to share) `OUTPUT_DIR-merged.gguf`
/// for a GGUF, `OUTPUT_DIR-merged` for an HF folder.
pub fn merge_output(args: &FinetuneArgs) -> PathBuf {
    if let Some(p) = &args.merge_output {
        return p.clone();
    }
    let ext = match merge_format(args) {
        FormatArg::Gguf => ".gguf",
        FormatArg::Hf => "",
    };
    let o = &args.output_dir;
    match o.file_name() {
        Some(n) => o.with_file_name(format!("{}-merged{ext}", n.to_string_lossy())),
        None => o.join(format!("merged{ext}")),
    }
}

/// What a training run left in `dir`, if it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trained {
    /// A peft adapter.
    Adapter,
    /// A whole model (full tuning): nothing to merge.
    Model,
}

pub fn trained_output(dir: &Path) -> Option<Trained> {
    if dir.join("adapter_config.json").is_file() && dir.join("adapter_model.safetensors").is_file()
    {
        Some(Trained::Adapter)
    } else if dir.join("config.json").is_file()
        && (dir.join("model.safetensors").is_file()
            || dir.join("model.safetensors.index.json").is_file())
    {
        Some(Trained::Model)
    } else {
        None
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

pub fn run(mut args: FinetuneArgs, printer: &Printer) -> Result<()> {
    args.merge = true; // --serve implies --merge
    if args.json && args.serve {
        return Err(Exit::Usage(
            "--json prints a summary at the end; --serve does not end (drop one)".into(),
        )
        .into());
    }
    let out = args.output_dir.clone();
    let merged = merge_output(&args);
    if merged == out {
        return Err(
            Exit::Usage("--merge-output must be another folder than --output-dir".into()).into(),
        );
    }
    let fp = fingerprint(&args);
    let loaded = State::load(&out)?;
    let had_state = loaded.is_some();
    let mut state = match loaded {
        Some(s) if s.fingerprint != fp => {
            return Err(Exit::Usage(format!(
                "{} holds a job with other training settings ({}): run the same command as before to continue it, or choose another --output-dir",
                out.display(),
                out.join(STATE_FILE).display()
            ))
            .into())
        }
        Some(s) => {
            printer.info(&format!(
                "continuing the job in {} (finished stages are skipped)",
                out.display()
            ));
            s
        }
        None => State {
            version: 1,
            fingerprint: fp,
            ..Default::default()
        },
    };
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow!(e).context(format!("creating {}", out.display())))?;
    state.save(&out)?;

    let stages = stages(&args);
    let n = stages.len();
    let mut model = PathBuf::from(&args.model);
    let mut serve_model = merged.clone();
    for (i, &stage) in stages.iter().enumerate() {
        let tag = format!("[{}/{n}] {}", i + 1, stage.name());
        let r = match stage {
            Stage::Estimate => estimate(&args, &mut state, &tag, printer),
            Stage::Download => download(&args, &mut state, &tag, printer).map(|p| model = p),
            Stage::Finetune => train(&args, &model, &mut state, had_state, &tag, printer),
            Stage::Merge => merge(&args, &model, &merged, &mut state, &tag, printer).map(|p| {
                serve_model = p;
            }),
            Stage::Serve => serve(&args, &serve_model, &tag, printer),
        };
        if let Err(e) = r {
            if crate::error::exit_code_for(&e) == crate::error::EXIT_INTERRUPTED {
                printer.warn(&format!(
                    "{tag} interrupted: run the same command again to continue"
                ));
                return Err(e);
            }
            return Err(e.context(format!(
                "{tag} failed (fix the cause and run the same command again: finished stages are skipped)"
            )));
        }
        state.save(&out)?;
    }
    if !args.serve {
        printer.info(&format!("merged model: {}", serve_model.display()));
        if args.json {
            let v = serde_json::json!({
                "output_dir": out.display().to_string(),
                "merged": serve_model.display().to_string(),
            });
            printer.data(&serde_json::to_string_pretty(&v)?);
        } else {
            printer.data(&serve_model.display().to_string());
        }
    }
    Ok(())
}

/// Does the job fit? The planner on the model's config (fetched alone for a
/// hub id) at --max-length, for the device training runs on: exit 3 when
/// even its smallest plan does not. The data is not read yet, so this is an
/// upper bound: the finetune stage plans again for the data's longest sample
/// and says so.
fn estimate(args: &FinetuneArgs, state: &mut State, tag: &str, printer: &Printer) -> Result<()> {
    if let Some(v) = &state.estimate {
        printer.info(&format!("{tag}: done before ({v}), skipped"));
        return Ok(());
    }
    let local = super::resolve_model_arg(Path::new(&args.model), &["config.json"])?;
    let src = super::estimate_vram::read_model(&local)?;
    let inv = super::inventory()?;
    let plan = finetune::plan_run(args, &src.config, &local, args.max_length, &inv);
    let verdict = format!(
        "{} at --max-length {} needs {} of {} free on {}",
        plan.job.method.name(),
        args.max_length,
        gib(plan.estimate.total_bytes),
        gib(plan.budget_bytes),
        crate::planner::plan::training_device(&inv).id
    );
    if !plan.fits {
        return Err(anyhow!(Exit::DoesNotFit).context(format!(
            "{verdict}: lower --max-length or --batch-size, or try --method qlora (`swift estimate-vram` shows the parts)"
        )));
    }
    printer.info(&format!(
        "{tag}: {verdict}: fits (an upper bound: once the data is read, training plans for its longest sample)"
    ));
    state.estimate = Some(verdict);
    Ok(())
}

/// Fetch a hub model into the cache; its local folder.
fn download(
    args: &FinetuneArgs,
    state: &mut State,
    tag: &str,
    printer: &Printer,
) -> Result<PathBuf> {
    if let Some(p) = state.download.as_ref().filter(|p| p.exists()) {
        printer.info(&format!("{tag}: done before ({}), skipped", p.display()));
        return Ok(p.clone());
    }
    printer.info(&format!("{tag}: fetching {}", args.model));
    let p = super::resolve_model_arg(Path::new(&args.model), &[])?;
    printer.info(&format!("{tag}: {}", p.display()));
    state.download = Some(p.clone());
    Ok(p)
}

fn train(
    args: &FinetuneArgs,
    model: &Path,
    state: &mut State,
    had_state: bool,
    tag: &str,
    printer: &Printer,
) -> Result<()> {
    let out = &args.output_dir;
    let finished = trained_output(out);
    if state.finetune && finished.is_some() {
        printer.info(&format!(
            "{tag}: done before (trained output in {}), skipped",
            out.display()
        ));
        return Ok(());
    }
    if !had_state && finished.is_some() {
        // A plain `swift finetune` finished here before --merge was added.
        printer.info(&format!(
            "{tag}: a finished training run is already in {}, skipped (choose another --output-dir to train again)",
            out.display()
        ));
        state.finetune = true;
        return Ok(());
    }
    let mut targs = args.clone();
    targs.model = model.to_string_lossy().into_owned();
    if targs.resume_from_checkpoint.is_none() {
        if let Some((step, dir)) = crate::train::checkpoint::list(out)?.pop() {
            printer.info(&format!(
                "{tag}: resuming from {} (step {step})",
                dir.display()
            ));
            targs.resume_from_checkpoint = Some("latest".into());
        } else {
            printer.info(&format!("{tag}: training into {}", out.display()));
        }
    } else {
        printer.info(&format!("{tag}: training into {}", out.display()));
    }
    // A merged model from an earlier training is stale now.
    state.finetune = false;
    if let Some(m) = &mut state.merge {
        m.done = false;
    }
    state.save(out)?;
    let t = finetune::train(&targs, printer)?;
    state.finetune = true;
    printer.info(&format!(
        "{tag}: done, {} in {}",
        if t.full { "model" } else { "adapter" },
        out.display()
    ));
    Ok(())
}

/// The block type of the tensors the adapter changes in a GGUF merge of a
/// GGUF base (the others keep the base's own types).
pub const MERGE_CHANGED_TYPE: GgmlType = GgmlType::Q8_0;

/// Fold the adapter into the base (a GGUF file or an HF folder at `merged`,
/// as [`merge_format`] says); the model to serve (the training output itself
/// after full tuning).
fn merge(
    args: &FinetuneArgs,
    model: &Path,
    merged: &Path,
    state: &mut State,
    tag: &str,
    printer: &Printer,
) -> Result<PathBuf> {
    let out = &args.output_dir;
    match trained_output(out) {
        Some(Trained::Model) => {
            printer.info(&format!(
                "{tag}: full tuning wrote a whole model to {}, nothing to merge",
                out.display()
            ));
            return Ok(out.clone());
        }
        Some(Trained::Adapter) => {}
        None => {
            return Err(anyhow!(
                "no finished adapter in {} (adapter_config.json, adapter_model.safetensors)",
                out.display()
            ))
        }
    }
    let ours = state.merge.as_ref().filter(|m| m.output == merged);
    if ours.is_some_and(|m| m.done) && merged.exists() {
        printer.info(&format!(
            "{tag}: done before ({}), skipped",
            merged.display()
        ));
        return Ok(merged.to_path_buf());
    }
    // Replace only what this job wrote before (an older merge).
    let force = ours.is_some();
    if merged.exists() && !force {
        return Err(anyhow!(
            "{} already exists and this job did not write it: remove it or choose another --merge-output",
            merged.display()
        ));
    }
    state.merge = Some(MergeState {
        output: merged.to_path_buf(),
        done: false,
    });
    state.save(out)?;
    printer.info(&format!(
        "{tag}: {} + {} -> {}",
        model.display(),
        out.display(),
        merged.display()
    ));
    // A GGUF from a GGUF base keeps the base's own blocks wherever the
    // adapter changed nothing, so the merged model decodes like the base.
    let gguf = merge_format(args) == FormatArg::Gguf;
    let opts = MergeOptions {
        base: model.to_path_buf(),
        adapters: vec![out.clone()],
        output: merged.to_path_buf(),
        format: if gguf { OutFormat::Gguf } else { OutFormat::Hf },
        dtype: None,
        quant: MERGE_CHANGED_TYPE,
        keep_base_types: gguf && model.is_file(),
        max_shard_bytes: 5_000_000_000,
        force,
    };
    let progress = printer.progress();
    let report = crate::model::merge::merge(&opts, progress.as_ref())?;
    for w in &report.warnings {
        printer.warn(w);
    }
    printer.info(&format!(
        "{tag}: wrote {} tensors ({} changed by the adapter{}), {:.1} MB of {} weights",
        report.tensors,
        report.merged_tensors,
        if report.kept_tensors > 0 {
            format!(", {} as the base stores them", report.kept_tensors)
        } else {
            String::new()
        },
        report.bytes_written as f64 / 1e6,
        report.dtype
    ));
    state.merge = Some(MergeState {
        output: merged.to_path_buf(),
        done: true,
    });
    Ok(merged.to_path_buf())
}

/// Serve the merged model until SIGINT / SIGTERM (`swift infer --serve`).
fn serve(args: &FinetuneArgs, model: &Path, tag: &str, printer: &Printer) -> Result<()> {
    let mut ia = super::infer::InferArgs::for_serving(model.to_string_lossy().into_owned());
    if let Some(h) = &args.host {
        ia.host = h.clone();
    }
    if let Some(p) = args.port {
        ia.port = p;
    }
    ia.api_key = args.api_key.clone();
    ia.served_model_name = args.served_model_name.clone();
    ia.threads = args.threads;
    printer.info(&format!("{tag}: {} (Ctrl-C stops it)", model.display()));
    finetune::ctrl_c_to_server();
    super::infer::run(ia, printer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> FinetuneArgs {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: FinetuneArgs,
        }
        let mut v = vec!["t", "--model", "Cargo.toml", "--dataset", "d.jsonl"];
        v.extend_from_slice(extra);
        T::parse_from(v).a
    }

    #[test]
    fn stages_and_merge_output() {
        // A file base (a GGUF) merges into a GGUF beside the adapter, a
        // folder into an HF folder; --merge-format picks the other.
        let a = args(&["--merge"]);
        assert_eq!(stages(&a), [Stage::Estimate, Stage::Finetune, Stage::Merge]);
        assert_eq!(merge_format(&a), FormatArg::Gguf);
        assert_eq!(merge_output(&a), PathBuf::from("output-merged.gguf"));
        let a = args(&["--merge", "--merge-format", "hf"]);
        assert_eq!(merge_output(&a), PathBuf::from("output-merged"));
        let mut a = args(&["--serve", "--output-dir", "runs/a/"]);
        assert_eq!(
            stages(&a),
            [Stage::Estimate, Stage::Finetune, Stage::Merge, Stage::Serve]
        );
        assert_eq!(merge_output(&a), PathBuf::from("runs/a-merged.gguf"));
        a.model = "src".into();
        assert_eq!(merge_format(&a), FormatArg::Hf);
        assert_eq!(merge_output(&a), PathBuf::from("runs/a-merged"));
        a.merge_format = Some(FormatArg::Gguf);
        assert_eq!(merge_output(&a), PathBuf::from("runs/a-merged.gguf"));
        let mut a = args(&["--serve", "--merge-output", "m"]);
        assert_eq!(merge_output(&a), PathBuf::from("m"));
        a.model = "org/name".into();
        assert_eq!(stages(&a)[1], Stage::Download);
        a.model = "missing.gguf".into();
        assert_eq!(stages(&a)[1], Stage::Finetune);
    }

    #[test]
    fn fingerprint_ignores_pipeline_flags_only() {
        let base = fingerprint(&args(&[]));
        assert_eq!(
            base,
            fingerprint(&args(&[
                "--serve",
                "--port",
                "0",
                "--merge-output",
                "x",
                "--merge-format",
                "hf",
                "--output-dir",
                "elsewhere",
                "--resume-from-checkpoint",
                "latest",
                "--threads",
                "2",
            ]))
        );
        assert_ne!(base, fingerprint(&args(&["--max-steps", "3"])));
        assert_ne!(base, fingerprint(&args(&["--learning-rate", "1e-3"])));
    }

    #[test]
    fn state_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), None);
        let s = State {
            version: 1,
            fingerprint: "f".into(),
            finetune: true,
            merge: Some(MergeState {
                output: "m".into(),
                done: false,
            }),
            ..Default::default()
        };
        s.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), Some(s));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [STATE_FILE]);
    }
}
