//! `swift finetune ... --merge [--serve]`: one job in stages, estimate ->
//! download (a hub id) -> finetune -> merge -> serve, each reported on
//! stderr as `[i/n] stage: ...`. The first failure stops the job with an
//! error naming the stage (its exit code kept: 3 when the estimate does not
//! fit, 130 when training is interrupted). The same command run again skips
//! the stages recorded as finished in `OUTPUT_DIR/pipeline.json` (written
//! atomically after each stage) and resumes an interrupted training from its
//! last checkpoint. Every stage runs in this process through the library
//! (`planner::plan`, `hub`, `train::job::run`, `model::merge::merge`, the
//! server).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::finetune::FinetuneArgs;
use super::merge::FormatArg;
use super::{serving, training};
use crate::error::Exit;
use crate::model::gguf::GgmlType;
use crate::model::merge::{MergeOptions, OutFormat};
use crate::model::sampling::{self, SamplingFields};
use crate::printer::Printer;
use crate::serve::{ServeOptions, ServedModel};

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
    if is_hub_id(&args.data.model) {
        v.push(Stage::Download);
    }
    v.extend([Stage::Finetune, Stage::Merge]);
    if args.serve {
        v.push(Stage::Serve);
    }
    v
}

/// A flag's value as the command line spells it.
fn flag_name<E: ValueEnum>(e: &E) -> Option<String> {
    e.to_possible_value().map(|v| v.get_name().to_string())
}

/// The settings that change what is trained, as JSON: every training flag,
/// named explicitly (not the pipeline's own flags, --output-dir,
/// --resume-from-checkpoint, --threads or --json). A flag added to the
/// command changes no fingerprint until it is listed here, so the jobs
/// already in progress stay valid.
pub fn fingerprint_settings(args: &FinetuneArgs) -> serde_json::Value {
    let (d, l, r) = (&args.data, &args.lora, &args.run);
    json!({
        "model": d.model,
        "datasets": d.datasets,
        "val_datasets": d.val_datasets,
        "split_dataset_ratio": d.split_dataset_ratio,
        "columns": d.columns,
        "max_length": d.max_length,
        "truncation_strategy": flag_name(&d.truncation_strategy),
        "dedup": d.dedup,
        "skip_bad_rows": d.skip_bad_rows,
        "system": d.system,
        "packing": args.packing,
        "loss_on_all_tokens": args.loss_on_all_tokens,
        "method": flag_name(&args.method),
        "tuner": args.tuner.as_ref().and_then(flag_name),
        "quant_bits": args.quant_bits,
        "lora_rank": l.lora_rank,
        "lora_alpha": l.lora_alpha,
        "lora_dropout": l.lora_dropout,
        "target_modules": l.target_modules,
        "use_rslora": l.use_rslora,
        "learning_rate": r.learning_rate,
        "adam_beta1": r.adam_beta1,
        "adam_beta2": r.adam_beta2,
        "adam_epsilon": r.adam_epsilon,
        "weight_decay": r.weight_decay,
        "batch_size": r.batch_size,
        "gradient_accumulation_steps": r.gradient_accumulation_steps,
        "lr_scheduler_type": flag_name(&r.lr_scheduler_type),
        "warmup_ratio": r.warmup_ratio,
        "warmup_steps": r.warmup_steps,
        "max_grad_norm": r.max_grad_norm,
        "num_train_epochs": r.num_train_epochs,
        "max_steps": r.max_steps,
        "seed": r.seed,
        "logging_steps": r.logging_steps,
        "eval_steps": r.eval_steps,
        "save_steps": r.save_steps,
        "save_total_limit": r.save_total_limit,
    })
}

/// A hash of [`fingerprint_settings`] (its JSON, keys in the order listed).
pub fn fingerprint(args: &FinetuneArgs) -> String {
    let text = serde_json::to_string(&fingerprint_settings(args))
        .expect("JSON of plain values always serializes");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What the merge writes: --merge-format, or a GGUF when the base is one
/// (a .gguf file) and an HF folder otherwise.
pub fn merge_format(args: &FinetuneArgs) -> FormatArg {
    match args.merge_format {
        Some(f) => f,
        None if Path::new(&args.data.model).is_file() => FormatArg::Gguf,
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
    let o = &args.run.output_dir;
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
    if args.run.json && args.serve {
        return Err(Exit::Usage(
            "--json prints a summary at the end; --serve does not end (drop one)".into(),
        )
        .into());
    }
    let out = args.run.output_dir.clone();
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
    let mut model = PathBuf::from(&args.data.model);
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
        if args.run.json {
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
    let local = super::resolve_model_arg(Path::new(&args.data.model), &["config.json"])?;
    let src = crate::planner::source::read_model(&local)?;
    let inv = super::inventory()?;
    let max_length = args.data.max_length;
    let (plan, _) =
        crate::train::job::plan(&args.job()?, &src.config, src.gguf_bytes, max_length, &inv);
    let verdict = format!(
        "{} at --max-length {} needs {} of {} free on {}",
        plan.job.method.name(),
        max_length,
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
    printer.info(&format!("{tag}: fetching {}", args.data.model));
    let p = super::resolve_model_arg(Path::new(&args.data.model), &[])?;
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
    let out = &args.run.output_dir;
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
    let mut job = args.job()?;
    job.model = model.to_path_buf();
    if job.resume_from_checkpoint.is_none() {
        if let Some((step, dir)) = crate::train::checkpoint::list(out)?.pop() {
            printer.info(&format!(
                "{tag}: resuming from {} (step {step})",
                dir.display()
            ));
            job.resume_from_checkpoint = Some("latest".into());
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
    let t = training::run_job(
        job,
        printer,
        "run the same command again to continue from it",
    )?;
    printer.info(&training::sft_done_line(&t));
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
    let out = &args.run.output_dir;
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

/// Serve the merged model until SIGINT / SIGTERM, as `swift infer --serve`
/// does with its other flags at their defaults.
fn serve(args: &FinetuneArgs, model: &Path, tag: &str, printer: &Printer) -> Result<()> {
    printer.info(&format!("{tag}: {} (Ctrl-C stops it)", model.display()));
    training::ctrl_c_to_server();
    let loaded = serving::load(model, &[], None, printer)?;
    let gen = sampling::read_generation_config(model)?;
    // What a request that sets no sampling field gets.
    let (defaults, basis) = sampling::resolve(&SamplingFields::default(), &gen, true);
    let mut opts = ServeOptions {
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        model_sampling: gen,
        ..Default::default()
    };
    if let Some(h) = &args.host {
        opts.host = h.clone();
    }
    if let Some(p) = args.port {
        opts.port = p;
    }
    let name = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| model.to_string_lossy().into_owned());
    let models = vec![ServedModel {
        name,
        model: std::sync::Arc::new(loaded.model),
        parent: None,
    }];
    serving::serve(models, loaded.tokenizer, opts, &defaults, basis, printer)
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
        a.data.model = "src".into();
        assert_eq!(merge_format(&a), FormatArg::Hf);
        assert_eq!(merge_output(&a), PathBuf::from("runs/a-merged"));
        a.merge_format = Some(FormatArg::Gguf);
        assert_eq!(merge_output(&a), PathBuf::from("runs/a-merged.gguf"));
        let mut a = args(&["--serve", "--merge-output", "m"]);
        assert_eq!(merge_output(&a), PathBuf::from("m"));
        a.data.model = "org/name".into();
        assert_eq!(stages(&a)[1], Stage::Download);
        a.data.model = "missing.gguf".into();
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
    fn fingerprint_is_an_explicit_stable_description() {
        // The hash of the default settings is pinned: a new flag, a renamed
        // field or another Debug format must not orphan the jobs in progress
        // (change this value only when the listed settings change on purpose).
        let a = args(&[]);
        assert_eq!(
            fingerprint(&a),
            "51be75d18e93fd9c9b157155fcca9a661d20210a227961027bf8565edfc133d7",
            "{}",
            fingerprint_settings(&a)
        );
        let v = fingerprint_settings(&args(&["--lr-scheduler-type", "linear", "--tuner", "full"]));
        assert_eq!(v["lr_scheduler_type"], "linear");
        assert_eq!(v["tuner"], "full");
        assert_eq!(v["method"], "auto");
        assert_eq!(v["model"], "Cargo.toml");
        assert_eq!(v["datasets"], serde_json::json!(["d.jsonl"]));
        assert!(v.get("output_dir").is_none() && v.get("threads").is_none());
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
