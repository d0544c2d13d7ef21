//! `swift merge`: fold peft LoRA adapters into a base model, and convert
//! between Hugging Face folders and GGUF files.
//!
//! Everything streams one tensor at a time: a tensor is read with a
//! positioned read (not a memory map, whose touched pages would stay resident
//! and count against the process), converted to f32, merged, converted to the
//! output type and written, so peak memory is a small multiple of the largest
//! tensor, not of the model. Output headers (safetensors and GGUF) need every
//! tensor's size up front; the sizes are known from the base's shapes, so
//! the headers are written first and the data streamed after them.
//!
//! The output goes to a temporary name beside the destination and is renamed
//! into place only when complete.

use super::config::{Family, ModelConfig};
use super::export::config_json;
use super::gguf::{encode_header, GgmlType, GgufFile, GgufValue};
use super::load::{gguf_name, hf_name, safetensors_files, unpermute_rows};
use super::quant;
use crate::progress::Progress;
use crate::tokenizer::Tokenizer;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The kind of output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    /// A Hugging Face folder (safetensors shards + config + tokenizer).
    Hf,
    /// One GGUF file.
    Gguf,
}

/// Options of [`merge`].
#[derive(Clone, Debug)]
pub struct MergeOptions {
    /// An HF folder or a GGUF file.
    pub base: PathBuf,
    /// peft LoRA adapter folders, applied in order.
    pub adapters: Vec<PathBuf>,
    pub output: PathBuf,
    pub format: OutFormat,
    /// HF output: f32 / f16 / bf16 (default: the base's dtype; f32 for a GGUF base).
    pub dtype: Option<GgmlType>,
    /// GGUF output: the type of the 2-D weights (q4_0, q4_1, q8_0, f16, f32);
    /// with `keep_base_types`, of those an adapter changes.
    pub quant: GgmlType,
    /// GGUF output from a GGUF base: copy every tensor no adapter changes
    /// as the base stores it (its own block type, bit for bit), so the
    /// merged file decodes like the base; only changed tensors take `quant`.
    pub keep_base_types: bool,
    /// HF output: start a new shard beyond this many bytes.
    pub max_shard_bytes: u64,
    /// Replace an existing output.
    pub force: bool,
}

/// What [`merge`] did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MergeReport {
    pub output: PathBuf,
    pub format: String,
    /// Output weight type (`f32`, `bf16`, `q8_0`, ...).
    pub dtype: String,
    pub tensors: usize,
    /// Base tensors an adapter changed.
    pub merged_tensors: usize,
    pub adapters: Vec<PathBuf>,
    pub bytes_written: u64,
    pub tied_embeddings: bool,
    /// Tensors copied from the base as stored (`keep_base_types`).
    pub kept_tensors: usize,
    /// What the adapters' `swift_adapter.json` say about their training
    /// (`out/: trained against a base quantized as nf4`), for the user.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------- sources

/// How to get one tensor's bytes from the base.
#[derive(Clone, Debug)]
enum Loc {
    /// A safetensors file (index into `Source::files`), its dtype, and the
    /// absolute byte range.
    St {
        file: usize,
        dtype: String,
        start: u64,
        end: u64,
    },
    /// GGUF blocks at an absolute offset; llama q/k rows to un-permute with
    /// this many heads.
    Gguf {
        dtype: GgmlType,
        start: u64,
        len: u64,
        unpermute: Option<usize>,
    },
    /// Another tensor's data (a tied lm_head written out untied).
    Alias(String),
}

#[derive(Clone, Debug)]
struct SrcTensor {
    /// HF name (or, for GGUF-only tensors such as `rope_freqs.weight`, the
    /// GGUF name).
    name: String,
    /// Row-major shape.
    shape: Vec<usize>,
    loc: Loc,
    /// A GGUF tensor with no HF counterpart.
    gguf_only: bool,
}

/// The base model, opened for positioned reads.
struct Source {
    cfg: ModelConfig,
    tensors: Vec<SrcTensor>,
    files: Vec<File>,
    gguf: Option<GgufFile>,
    /// The HF folder, when the base is one.
    dir: Option<PathBuf>,
    /// `torch_dtype` of an HF base, or `f32` for GGUF.
    dtype: GgmlType,
}

/// One entry of a safetensors header: name, dtype, shape, absolute start, end.
type StEntry = (String, String, Vec<usize>, u64, u64);

/// A LoRA half read from an adapter: values and shape.
type Half = Option<(Vec<f32>, Vec<usize>)>;

/// The tensors in a safetensors file.
fn st_header(path: &Path) -> Result<Vec<StEntry>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata()?.len();
    let mut n = [0u8; 8];
    f.read_exact_at(&mut n, 0)
        .with_context(|| format!("reading {}: truncated", path.display()))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 || 8 + n > size {
        bail!(
            "{}: not a safetensors file (header length {n})",
            path.display()
        );
    }
    let mut buf = vec![0u8; n as usize];
    f.read_exact_at(&mut buf, 8)?;
    let v: Value = serde_json::from_slice(&buf)
        .with_context(|| format!("{}: the safetensors header is not JSON", path.display()))?;
    let obj = v.as_object().with_context(|| {
        format!(
            "{}: the safetensors header is not an object",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for (name, t) in obj {
        if name == "__metadata__" {
            continue;
        }
        let bad = || format!("{}: malformed header entry for {name}", path.display());
        let dtype = t["dtype"].as_str().with_context(bad)?.to_string();
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .with_context(bad)?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .with_context(bad)?;
        let offs = t["data_offsets"].as_array().with_context(bad)?;
        let (Some(b), Some(e)) = (
            offs.first().and_then(Value::as_u64),
            offs.get(1).and_then(Value::as_u64),
        ) else {
            bail!(bad());
        };
        if e < b || 8 + n + e > size {
            bail!(
                "{}: {name} lies outside the file (truncated?)",
                path.display()
            );
        }
        out.push((name.clone(), dtype, shape, 8 + n + b, 8 + n + e));
    }
    Ok(out)
}

/// Sort key putting tensors in model order: embeddings, layers by number,
/// then the final norm and the head.
fn order_key(name: &str) -> (usize, usize, String) {
    if name.contains("embed_tokens") || name == "token_embd.weight" {
        return (0, 0, name.to_string());
    }
    if let Some(rest) = name.strip_prefix("model.layers.") {
        if let Some((n, r)) = rest.split_once('.') {
            if let Ok(n) = n.parse() {
                return (1, n, r.to_string());
            }
        }
    }
    (2, 0, name.to_string())
}

fn dtype_from_torch(s: &str) -> Option<GgmlType> {
    match s {
        "float32" | "F32" => Some(GgmlType::F32),
        "float16" | "F16" => Some(GgmlType::F16),
        "bfloat16" | "BF16" => Some(GgmlType::BF16),
        _ => None,
    }
}

impl Source {
    fn open(base: &Path) -> Result<Source> {
        if base.is_dir() {
            Self::open_hf(base)
        } else if base.exists() {
            Self::open_gguf(base)
        } else {
            bail!("{} does not exist", base.display())
        }
    }

    fn open_hf(dir: &Path) -> Result<Source> {
        let cfg = ModelConfig::from_path(dir)?;
        let paths = safetensors_files(dir)?;
        let mut files = Vec::new();
        let mut tensors = Vec::new();
        let mut dtypes = BTreeMap::new();
        for (i, p) in paths.iter().enumerate() {
            for (name, dtype, shape, start, end) in st_header(p)? {
                *dtypes.entry(dtype.clone()).or_insert(0usize) += 1;
                tensors.push(SrcTensor {
                    name,
                    shape,
                    loc: Loc::St {
                        file: i,
                        dtype,
                        start,
                        end,
                    },
                    gguf_only: false,
                });
            }
            files.push(File::open(p).with_context(|| format!("opening {}", p.display()))?);
        }
        tensors.sort_by_key(|t| order_key(&t.name));
        let dtype = cfg
            .torch_dtype
            .as_deref()
            .and_then(dtype_from_torch)
            .or_else(|| {
                dtypes
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .and_then(|(d, _)| dtype_from_torch(d))
            })
            .unwrap_or(GgmlType::F32);
        Ok(Source {
            cfg,
            tensors,
            files,
            gguf: None,
            dir: Some(dir.to_path_buf()),
            dtype,
        })
    }

    fn open_gguf(path: &Path) -> Result<Source> {
        let g = GgufFile::open(path)?;
        let mut cfg = ModelConfig::from_gguf(&g)?;
        if let (None, Some(t)) = (&cfg.rope_scaling, g.tensor("rope_freqs.weight")) {
            let factors = quant::dequantize(t.dtype, g.tensor_data(t))?;
            cfg.rope_scaling = Some(llama3_scaling_from_factors(&cfg, &factors).with_context(|| {
                format!(
                    "{}: rope_freqs.weight does not follow llama3 rope scaling, which a Hugging Face config can express",
                    path.display()
                )
            })?);
        }
        let permuted = g.architecture() == Some("llama");
        let mut tensors = Vec::new();
        for t in &g.tensors {
            if !quant::is_supported(t.dtype) {
                bail!(
                    "{}: tensor {} has type {:?}, which cannot be dequantized",
                    path.display(),
                    t.name,
                    t.dtype
                );
            }
            let hf = hf_name(&t.name);
            let unpermute = if !permuted {
                None
            } else if t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_q.bias") {
                Some(cfg.num_attention_heads)
            } else if t.name.ends_with(".attn_k.weight") || t.name.ends_with(".attn_k.bias") {
                Some(cfg.num_key_value_heads)
            } else {
                None
            };
            tensors.push(SrcTensor {
                name: hf.clone().unwrap_or_else(|| t.name.clone()),
                shape: t.shape(),
                loc: Loc::Gguf {
                    dtype: t.dtype,
                    start: g.data_offset + t.offset,
                    len: t.n_bytes(),
                    unpermute,
                },
                gguf_only: hf.is_none(),
            });
        }
        tensors.sort_by_key(|t| order_key(&t.name));
        let files = vec![File::open(path).with_context(|| format!("opening {}", path.display()))?];
        Ok(Source {
            cfg,
            tensors,
            files,
            gguf: Some(g),
            dir: None,
            dtype: GgmlType::F32,
        })
    }

    fn find(&self, name: &str) -> Option<&SrcTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A GGUF tensor's stored blocks and their type (following an alias), in
    /// the file's own row layout; `None` for a safetensors tensor.
    fn stored(&self, t: &SrcTensor) -> Option<(GgmlType, u64, u64)> {
        match &t.loc {
            Loc::Alias(other) => self.stored(self.find(other)?),
            Loc::Gguf {
                dtype, start, len, ..
            } => Some((*dtype, *start, *len)),
            Loc::St { .. } => None,
        }
    }

    /// A tensor as f32, in HF layout.
    fn read(&self, t: &SrcTensor) -> Result<Vec<f32>> {
        match &t.loc {
            Loc::Alias(other) => {
                let o = self
                    .find(other)
                    .with_context(|| format!("tensor {other} is missing"))?;
                self.read(o)
            }
            Loc::St {
                file,
                dtype,
                start,
                end,
            } => {
                let mut buf = vec![0u8; (end - start) as usize];
                self.files[*file]
                    .read_exact_at(&mut buf, *start)
                    .with_context(|| format!("reading tensor {}", t.name))?;
                let n: usize = t.shape.iter().product();
                let ty = dtype_from_torch(dtype).with_context(|| {
                    format!(
                        "tensor {} has dtype {dtype} (supported: F32, F16, BF16)",
                        t.name
                    )
                })?;
                if buf.len() != n * ty.type_size() {
                    bail!(
                        "tensor {}: {} bytes for shape {:?}",
                        t.name,
                        buf.len(),
                        t.shape
                    );
                }
                quant::dequantize(ty, &buf)
            }
            Loc::Gguf {
                dtype,
                start,
                len,
                unpermute,
            } => {
                let mut buf = vec![0u8; *len as usize];
                self.files[0]
                    .read_exact_at(&mut buf, *start)
                    .with_context(|| format!("reading tensor {}", t.name))?;
                let v = quant::dequantize(*dtype, &buf)
                    .with_context(|| format!("tensor {}", t.name))?;
                Ok(match unpermute {
                    Some(heads) => permute_rows(&v, t.shape[0], *heads, false),
                    None => v,
                })
            }
        }
    }
}

/// Reorder the rows of a `[rows, ..]` tensor between the HF layout and
/// llama.cpp's interleaved q/k layout (`to_gguf`), or back.
fn permute_rows(v: &[f32], rows: usize, heads: usize, to_gguf: bool) -> Vec<f32> {
    let rb = v.len() / rows;
    let perm = unpermute_rows(heads, rows);
    let mut out = vec![0f32; v.len()];
    for (i, &p) in perm.iter().enumerate() {
        let (dst, src) = if to_gguf { (p, i) } else { (i, p) };
        out[dst * rb..(dst + 1) * rb].copy_from_slice(&v[src * rb..(src + 1) * rb]);
    }
    out
}

// --------------------------------------------------------------- adapters

/// One LoRA pair: `delta = scale * B A`.
struct Pair {
    a: Vec<f32>,
    a_shape: [usize; 2],
    b: Vec<f32>,
    b_shape: [usize; 2],
    scale: f32,
    /// An embedding LoRA (`lora_embedding_A [r, vocab]`, `lora_embedding_B
    /// [dim, r]`): the delta is `(B A)^T`.
    embedding: bool,
}

struct Adapter {
    dir: PathBuf,
    /// Module path (`model.layers.0.self_attn.q_proj`) -> pair.
    pairs: BTreeMap<String, Pair>,
    /// Full tensors that replace the base's (peft `modules_to_save`), by HF
    /// tensor name.
    replace: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
    base_name: Option<String>,
    /// swift's record of its training, when it has one.
    record: Option<super::adapter::SwiftRecord>,
}

enum Part {
    A,
    B,
    EmbA,
    EmbB,
    Saved(String),
}

/// Split a peft tensor name into the module path and what it is.
fn classify(name: &str) -> Option<(String, Part)> {
    let n = name.strip_prefix("base_model.model.").unwrap_or(name);
    for (suffix, part) in [
        (".lora_A.weight", 0),
        (".lora_A.default.weight", 0),
        (".lora_B.weight", 1),
        (".lora_B.default.weight", 1),
        (".lora_embedding_A", 2),
        (".lora_embedding_A.default", 2),
        (".lora_embedding_B", 3),
        (".lora_embedding_B.default", 3),
    ] {
        if let Some(m) = n.strip_suffix(suffix) {
            let p = match part {
                0 => Part::A,
                1 => Part::B,
                2 => Part::EmbA,
                _ => Part::EmbB,
            };
            return Some((m.to_string(), p));
        }
    }
    for marker in [".modules_to_save.default.", ".modules_to_save."] {
        if let Some((m, leaf)) = n.split_once(marker) {
            return Some((m.to_string(), Part::Saved(leaf.to_string())));
        }
    }
    None
}

impl Adapter {
    fn read(dir: &Path, warnings: &mut Vec<String>) -> Result<Adapter> {
        let cfg = super::adapter::AdapterConfig::read(dir)?;
        let cfg_path = dir.join("adapter_config.json");
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path)?)
            .with_context(|| format!("parsing {}", cfg_path.display()))?;
        let base_name = raw
            .get("base_model_name_or_path")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from);
        let st = super::adapter::weights_file(dir)?;
        let f = File::open(&st).with_context(|| format!("opening {}", st.display()))?;
        let mut halves: BTreeMap<String, [Half; 2]> = BTreeMap::new();
        let mut emb: BTreeMap<String, bool> = BTreeMap::new();
        let mut replace = BTreeMap::new();
        for (name, dtype, shape, start, end) in st_header(&st)? {
            let mut buf = vec![0u8; (end - start) as usize];
            f.read_exact_at(&mut buf, start)
                .with_context(|| format!("reading {name} from {}", st.display()))?;
            let ty = dtype_from_torch(&dtype)
                .with_context(|| format!("{}: {name} has dtype {dtype}", st.display()))?;
            let v = quant::dequantize(ty, &buf)?;
            match classify(&name) {
                Some((module, Part::Saved(leaf))) => {
                    replace.insert(format!("{module}.{leaf}"), (v, shape));
                }
                Some((module, part)) => {
                    if shape.len() != 2 {
                        bail!("{}: {name} is not a matrix ({shape:?})", st.display());
                    }
                    let (slot, is_emb) = match part {
                        Part::A => (0, false),
                        Part::B => (1, false),
                        Part::EmbA => (0, true),
                        _ => (1, true),
                    };
                    emb.insert(module.clone(), is_emb);
                    halves.entry(module).or_default()[slot] = Some((v, shape));
                }
                None => warnings.push(format!(
                    "{}: ignored tensor {name} (not a LoRA or saved-module weight)",
                    st.display()
                )),
            }
        }
        let mut pairs = BTreeMap::new();
        for (module, [a, b]) in halves {
            let (Some((a, ash)), Some((b, bsh))) = (a, b) else {
                bail!("{}: {module} has only one of lora_A / lora_B", st.display());
            };
            let r = ash[0];
            if bsh[1] != r {
                bail!(
                    "{}: {module}: lora_A is {ash:?} but lora_B is {bsh:?} (ranks differ)",
                    st.display()
                );
            }
            pairs.insert(
                module.clone(),
                Pair {
                    scale: cfg.scale_for(&module, r) as f32,
                    a,
                    a_shape: [ash[0], ash[1]],
                    b,
                    b_shape: [bsh[0], bsh[1]],
                    embedding: emb[&module],
                },
            );
        }
        if pairs.is_empty() && replace.is_empty() {
            bail!("{} holds no LoRA weights", st.display());
        }
        Ok(Adapter {
            dir: dir.to_path_buf(),
            pairs,
            replace,
            base_name,
            record: super::adapter::SwiftRecord::read(dir)?,
        })
    }

    /// What its record says about the base it trained against, if quantized.
    fn note(&self) -> Option<String> {
        let q = self.record.as_ref()?.quantization.as_ref()?;
        Some(match &q.types {
            Some(types) => format!(
                "{} was trained on a GGUF's own blocks ({}); the merge adds it to the base's weights",
                self.dir.display(),
                types
                    .iter()
                    .map(|(t, n)| format!("{n} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!(
                "{} was trained against the base quantized as {} (QLoRA); the merge adds it to the base's weights",
                self.dir.display(),
                q.method
            ),
        })
    }
}

/// `w += scale * B A` (or its transpose for embeddings), in place.
fn add_delta(w: &mut [f32], shape: &[usize], p: &Pair) {
    let (rows, cols) = (shape[0], shape[1]);
    let r = p.a_shape[0];
    if !p.embedding {
        // A [r, cols], B [rows, r].
        w.par_chunks_mut(cols).enumerate().for_each(|(o, row)| {
            for k in 0..r {
                let c = p.scale * p.b[o * r + k];
                if c != 0.0 {
                    let a = &p.a[k * cols..(k + 1) * cols];
                    row.iter_mut().zip(a).for_each(|(y, x)| *y += c * x);
                }
            }
        });
    } else {
        // A [r, rows(vocab)], B [cols(dim), r]; delta[v, d] = sum_k B[d,k] A[k,v].
        let mut bt = vec![0f32; r * cols];
        for d in 0..cols {
            for k in 0..r {
                bt[k * cols + d] = p.b[d * r + k];
            }
        }
        w.par_chunks_mut(cols).enumerate().for_each(|(v, row)| {
            for k in 0..r {
                let c = p.scale * p.a[k * rows + v];
                if c != 0.0 {
                    let b = &bt[k * cols..(k + 1) * cols];
                    row.iter_mut().zip(b).for_each(|(y, x)| *y += c * x);
                }
            }
        });
    }
}

/// The shape a pair's delta has.
fn delta_shape(p: &Pair) -> [usize; 2] {
    if p.embedding {
        [p.a_shape[1], p.b_shape[0]]
    } else {
        [p.b_shape[0], p.a_shape[1]]
    }
}

/// A comparable form of a model name or path: its last component, lower
/// case, without `.gguf`, a quantization suffix or `-gguf`.
fn name_key(s: &str) -> String {
    let last = s
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(s)
        .to_lowercase();
    let mut k = last.trim_end_matches(".gguf").to_string();
    for sep in ['.', '-'] {
        if let Some((head, tail)) = k.rsplit_once(sep) {
            let t = tail.to_string();
            if t.starts_with('q')
                && t.len() <= 7
                && t.chars().nth(1).is_some_and(|c| c.is_ascii_digit())
                || t == "f16"
                || t == "f32"
                || t == "bf16"
                || t == "gguf"
            {
                k = head.to_string();
            }
        }
    }
    k.trim_end_matches("-gguf").to_string()
}

// ---------------------------------------------------------------- writing

/// One output tensor: where it comes from and what is written.
struct Planned {
    /// Output name (HF, or GGUF for GGUF output).
    out_name: String,
    /// Index into `Source::tensors`, or a synthetic source.
    src: SrcTensor,
    /// HF name (for adapters).
    hf: String,
    ty: GgmlType,
    /// Row permutation for llama q/k in GGUF output: the number of heads.
    permute: Option<usize>,
    nbytes: u64,
    /// Copy the base's stored bytes at this absolute offset (a GGUF tensor
    /// no adapter changes, with `keep_base_types`).
    raw: Option<u64>,
}

/// Elements per block type over `(type, shape)` pairs of matrices (2-D
/// shapes only), most first.
fn tally_matrix_types<'a>(
    tensors: impl Iterator<Item = (GgmlType, &'a [usize])>,
) -> Vec<(GgmlType, usize)> {
    let mut by: Vec<(GgmlType, usize)> = Vec::new();
    for (ty, shape) in tensors.filter(|(_, s)| s.len() == 2) {
        let n: usize = shape.iter().product();
        match by.iter_mut().find(|(t, _)| *t == ty) {
            Some(e) => e.1 += n,
            None => by.push((ty, n)),
        }
    }
    by.sort_by_key(|e| std::cmp::Reverse(e.1));
    by
}

/// The block types of the planned matrices, by elements, most first.
fn matrix_types(plan: &[Planned]) -> Vec<(GgmlType, usize)> {
    tally_matrix_types(plan.iter().map(|p| (p.ty, p.src.shape.as_slice())))
}

/// The type most matrix elements of the plan have.
fn main_type(plan: &[Planned]) -> GgmlType {
    matrix_types(plan)
        .first()
        .map(|(t, _)| *t)
        .unwrap_or(GgmlType::F32)
}

/// The type most matrix elements of a GGUF file have.
fn main_type_of(g: &GgufFile) -> Option<GgmlType> {
    let shapes: Vec<(GgmlType, Vec<usize>)> =
        g.tensors.iter().map(|t| (t.dtype, t.shape())).collect();
    tally_matrix_types(shapes.iter().map(|(t, s)| (*t, s.as_slice())))
        .first()
        .map(|e| e.0)
}

fn type_name(t: GgmlType) -> String {
    match t {
        GgmlType::F32 => "f32".into(),
        GgmlType::F16 => "f16".into(),
        GgmlType::BF16 => "bf16".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn st_dtype(t: GgmlType) -> &'static str {
    match t {
        GgmlType::F16 => "F16",
        GgmlType::BF16 => "BF16",
        _ => "F32",
    }
}

fn torch_name(t: GgmlType) -> &'static str {
    match t {
        GgmlType::F16 => "float16",
        GgmlType::BF16 => "bfloat16",
        _ => "float32",
    }
}

/// The llama.cpp architecture name and whether its q/k rows are permuted.
fn gguf_arch(f: Family) -> Result<(&'static str, bool)> {
    Ok(match f {
        Family::Llama | Family::Mistral => ("llama", true),
        Family::Qwen2 => ("qwen2", false),
        Family::Qwen3 => ("qwen3", false),
        Family::Qwen => bail!("writing a GGUF of the original Qwen architecture is not supported"),
    })
}

/// llama.cpp's `general.file_type` for an output type.
fn file_type(t: GgmlType) -> u32 {
    match t {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::BF16 => 32,
        _ => 0,
    }
}

/// The per-frequency factors llama.cpp reads from `rope_freqs.weight` for
/// llama3 rope scaling (the same rule transformers applies to inv_freq).
fn llama3_rope_factors(cfg: &ModelConfig) -> Option<Vec<f32>> {
    let rs = cfg.rope_scaling.as_ref()?;
    if rs.rope_type != "llama3" {
        return None;
    }
    let factor = rs.factor;
    let low = rs.low_freq_factor.unwrap_or(1.0);
    let high = rs.high_freq_factor.unwrap_or(4.0);
    let old = rs.original_max_position_embeddings.unwrap_or(8192) as f64;
    let (low_wl, high_wl) = (old / low, old / high);
    let d = cfg.head_dim;
    Some(
        (0..d / 2)
            .map(|i| {
                let freq = 1.0 / cfg.rope_theta.powf((2 * i) as f64 / d as f64);
                let wl = 2.0 * std::f64::consts::PI / freq;
                let f = if wl < high_wl {
                    1.0
                } else if wl > low_wl {
                    factor
                } else {
                    let smooth = (old / wl - low) / (high - low);
                    1.0 / ((1.0 - smooth) / factor + smooth)
                };
                f as f32
            })
            .collect(),
    )
}

/// The llama3 `rope_scaling` whose per-frequency factors are `factors`
/// (llama.cpp's `rope_freqs.weight`), for writing a GGUF model's config.json.
/// Only two combinations of (low, high, original context) matter, so the
/// candidates are a fit through the smoothly scaled frequencies, Llama 3.1's
/// constants, and boundaries placed between the unscaled and fully scaled
/// frequencies; the first that reproduces every factor is returned.
fn llama3_scaling_from_factors(
    cfg: &ModelConfig,
    factors: &[f32],
) -> Option<super::config::RopeScaling> {
    let hd = cfg.head_dim;
    if factors.len() != hd / 2 {
        return None;
    }
    let factor = factors.iter().cloned().fold(0f32, f32::max) as f64;
    let wl: Vec<f64> = (0..hd / 2)
        .map(|i| 2.0 * std::f64::consts::PI * cfg.rope_theta.powf((2 * i) as f64 / hd as f64))
        .collect();
    let make = |low: f64, high: f64, old: f64| super::config::RopeScaling {
        rope_type: "llama3".into(),
        factor,
        low_freq_factor: Some(low),
        high_freq_factor: Some(high),
        original_max_position_embeddings: Some(old.round() as usize),
    };
    let mut candidates = Vec::new();
    // smooth s = (old/wl - low) / (high - low) = a/wl - b, with low = 1.
    let smooth: Vec<(f64, f64)> = factors
        .iter()
        .zip(&wl)
        .filter(|(d, _)| **d as f64 > 1.0 + 1e-6 && (**d as f64) < factor * (1.0 - 1e-6))
        .map(|(d, w)| {
            let s = (1.0 / *d as f64 - 1.0 / factor) / (1.0 - 1.0 / factor);
            (*w, s)
        })
        .collect();
    if let (Some(&(w1, s1)), Some(&(w2, s2))) = (smooth.first(), smooth.last()) {
        if smooth.len() >= 2 && w1 != w2 {
            let a = (s1 - s2) / (1.0 / w1 - 1.0 / w2);
            let b = a / w1 - s1;
            if b > 0.0 {
                candidates.push(make(1.0, 1.0 + 1.0 / b, a / b));
            }
        }
    }
    candidates.push(make(1.0, 4.0, 8192.0));
    // Llama 3.1's low/high factors with the original context that puts this
    // smooth frequency where it is.
    if let Some(&(w, s)) = smooth.first() {
        candidates.push(make(1.0, 4.0, w * (3.0 * s + 1.0)));
    }
    if smooth.is_empty() {
        // Unscaled below wl_hi, fully scaled above wl_lo: put the original
        // context between them.
        let last_one = factors
            .iter()
            .zip(&wl)
            .filter(|(d, _)| **d as f64 <= 1.0 + 1e-6)
            .map(|(_, w)| *w)
            .fold(0.0, f64::max);
        let first_full = factors
            .iter()
            .zip(&wl)
            .filter(|(d, _)| **d as f64 >= factor * (1.0 - 1e-6))
            .map(|(_, w)| *w)
            .fold(f64::INFINITY, f64::min);
        if last_one > 0.0 && first_full.is_finite() {
            let old = (last_one * first_full).sqrt();
            candidates.push(make(1.0, 1.0 + 1e-9, old));
        }
    }
    candidates.into_iter().find(|rs| {
        let mut c = cfg.clone();
        c.rope_scaling = Some(rs.clone());
        llama3_rope_factors(&c).is_some_and(|f| {
            f.iter()
                .zip(factors)
                .all(|(x, y)| (x - y).abs() <= 1e-4 * y.abs().max(1.0))
        })
    })
}

/// GGUF metadata for an HF base: hyper-parameters from the config, the
/// tokenizer and chat template from the folder.
fn gguf_metadata_from_hf(
    src: &Source,
    dir: &Path,
    quant: GgmlType,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, GgufValue)>> {
    let c = &src.cfg;
    let (arch, _) = gguf_arch(c.family)?;
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let k = |s: &str| format!("{arch}.{s}");
    let u = |x: usize| GgufValue::U32(x as u32);
    let mut md = vec![
        (
            "general.architecture".into(),
            GgufValue::String(arch.into()),
        ),
        ("general.name".into(), GgufValue::String(name)),
        ("general.file_type".into(), GgufValue::U32(file_type(quant))),
        ("general.quantization_version".into(), GgufValue::U32(2)),
        (k("context_length"), u(c.max_position_embeddings)),
        (k("embedding_length"), u(c.hidden_size)),
        (k("block_count"), u(c.num_hidden_layers)),
        (k("feed_forward_length"), u(c.intermediate_size)),
        (k("attention.head_count"), u(c.num_attention_heads)),
        (k("attention.head_count_kv"), u(c.num_key_value_heads)),
        (k("attention.key_length"), u(c.head_dim)),
        (k("attention.value_length"), u(c.head_dim)),
        (
            k("attention.layer_norm_rms_epsilon"),
            GgufValue::F32(c.rms_norm_eps as f32),
        ),
        (k("rope.freq_base"), GgufValue::F32(c.rope_theta as f32)),
        (k("rope.dimension_count"), u(c.head_dim)),
        (k("vocab_size"), u(c.vocab_size)),
    ];
    if let Some(rs) = &c.rope_scaling {
        if rs.rope_type != "llama3" {
            md.push((
                k("rope.scaling.type"),
                GgufValue::String(rs.rope_type.clone()),
            ));
            md.push((k("rope.scaling.factor"), GgufValue::F32(rs.factor as f32)));
            if let Some(o) = rs.original_max_position_embeddings {
                md.push((k("rope.scaling.original_context_length"), u(o)));
            }
        }
    }
    if let Some(w) = c.sliding_window {
        // Our loader reads it back; llama.cpp's llama/qwen2 architectures
        // have no sliding-window attention and ignore the key.
        md.push((k("attention.sliding_window"), u(w)));
        warnings.push(format!(
            "sliding_window {w} is recorded in the GGUF, but llama.cpp attends to the whole context for the {arch} architecture"
        ));
    }
    let tok = Tokenizer::from_dir(dir)
        .with_context(|| format!("reading the tokenizer of {}", dir.display()))?;
    md.extend(tok.gguf_metadata()?);
    Ok(md)
}

/// Replace an existing output, or refuse.
fn prepare_output(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !force {
            bail!(
                "{} already exists (pass --force to replace it)",
                out.display()
            );
        }
    } else if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

/// `OUT` -> `.OUT.tmp-PID` beside it.
fn temp_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Put a finished temporary output in place (replacing what `--force`
/// allowed to replace).
fn commit(tmp: &Path, out: &Path) -> Result<()> {
    if out.is_dir() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    } else if out.exists() {
        std::fs::remove_file(out).with_context(|| format!("removing {}", out.display()))?;
    }
    std::fs::rename(tmp, out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
}

/// Removes the temporary output unless disarmed (on error or panic).
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// Merge the adapters into the base and write the output. See the module
/// documentation.
pub fn merge(opts: &MergeOptions, progress: &dyn Progress) -> Result<MergeReport> {
    let src = Source::open(&opts.base)
        .with_context(|| format!("opening the base model {}", opts.base.display()))?;
    let mut warnings = Vec::new();
    let adapters: Vec<Adapter> = opts
        .adapters
        .iter()
        .map(|d| Adapter::read(d, &mut warnings))
        .collect::<Result<_>>()?;
    prepare_output(&opts.output, opts.force)?;

    // Does each adapter belong to this base? Shapes decide (an error below);
    // the recorded name only warns, since folders get renamed.
    let mut base_keys = vec![name_key(&opts.base.to_string_lossy())];
    if let Some(g) = &src.gguf {
        for key in ["general.name", "general.basename"] {
            if let Some(n) = g.get_str(key) {
                base_keys.push(name_key(n));
            }
        }
    }
    if let Some(dir) = &src.dir {
        if let Ok(text) = std::fs::read_to_string(dir.join("config.json")) {
            if let Some(n) = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("_name_or_path")?.as_str().map(String::from))
            {
                base_keys.push(name_key(&n));
            }
        }
    }
    for a in &adapters {
        if let Some(n) = &a.base_name {
            let k = name_key(n);
            if !base_keys
                .iter()
                .any(|b| b == &k || b.contains(&k) || k.contains(b.as_str()))
            {
                warnings.push(format!(
                    "{} was trained on {n}, and the base is {}: merging anyway since the shapes match",
                    a.dir.display(),
                    opts.base.display()
                ));
            }
        }
    }

    // Every module an adapter targets must exist with the right shape.
    let embed = "model.embed_tokens";
    let has_lm_head = src.find("lm_head.weight").is_some();
    let tied_in = !has_lm_head;
    for a in &adapters {
        for (module, p) in &a.pairs {
            let t = if module == "lm_head" && tied_in {
                src.find(&format!("{embed}.weight"))
            } else {
                src.find(&format!("{module}.weight"))
            };
            let t = t.with_context(|| {
                format!(
                    "{}: the adapter targets {module}, which the base model has no weight for",
                    a.dir.display()
                )
            })?;
            if t.shape.len() != 2 || t.shape[..] != delta_shape(p) {
                bail!(
                    "{}: {module}: the adapter's update is {:?} but the base weight is {:?} (adapter trained on another model?)",
                    a.dir.display(),
                    delta_shape(p),
                    t.shape
                );
            }
            if p.embedding != (module == embed) {
                bail!(
                    "{}: {module}: {} weights on a {} layer",
                    a.dir.display(),
                    if p.embedding {
                        "embedding LoRA"
                    } else {
                        "linear LoRA"
                    },
                    if module == embed {
                        "embedding"
                    } else {
                        "linear"
                    }
                );
            }
        }
        for (name, (_, shape)) in &a.replace {
            let target = if name == "lm_head.weight" && tied_in {
                format!("{embed}.weight")
            } else {
                name.clone()
            };
            let t = src.find(&target).with_context(|| {
                format!(
                    "{}: the adapter saves a full {name}, which the base model lacks",
                    a.dir.display()
                )
            })?;
            if &t.shape != shape {
                bail!(
                    "{}: saved {name} is {shape:?} but the base's is {:?}",
                    a.dir.display(),
                    t.shape
                );
            }
        }
    }
    let touches = |prefix: &str| {
        adapters.iter().any(|a| {
            a.pairs.contains_key(prefix) || a.replace.keys().any(|k| k.starts_with(prefix))
        })
    };
    // A tied head that an adapter changes (directly, or through the
    // embedding it shares) is written as its own tensor.
    let untie = tied_in && (touches("lm_head") || touches(embed));
    let mut tensors = src.tensors.clone();
    if untie {
        let e = src
            .find(&format!("{embed}.weight"))
            .context("the base model has no model.embed_tokens.weight")?;
        tensors.push(SrcTensor {
            name: "lm_head.weight".into(),
            shape: e.shape.clone(),
            loc: Loc::Alias(e.name.clone()),
            gguf_only: false,
        });
    }
    let tied_out = src.cfg.tie_word_embeddings && !has_lm_head && !untie;
    // Does an adapter change this (HF-named) tensor?
    let changed = |hf: &str| {
        let module = hf.strip_suffix(".weight").unwrap_or(hf);
        adapters
            .iter()
            .any(|a| a.pairs.contains_key(module) || a.replace.contains_key(hf))
    };
    let keep = opts.keep_base_types;
    if keep && (opts.format != OutFormat::Gguf || src.gguf.is_none()) {
        bail!("keeping the base's tensor types needs a GGUF base and a GGUF output");
    }

    // The plan: output names and types.
    let (out_ty, arch) = match opts.format {
        OutFormat::Hf => {
            let t = opts.dtype.unwrap_or(src.dtype);
            if !matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
                bail!("--dtype for a Hugging Face folder must be f32, f16 or bf16");
            }
            (t, None)
        }
        OutFormat::Gguf => {
            if !quant::can_quantize(opts.quant) {
                bail!("--quant must be one of q4_0, q4_1, q8_0, f16, f32");
            }
            (opts.quant, Some(gguf_arch(src.cfg.family)?))
        }
    };
    let mut plan = Vec::new();
    for t in tensors {
        if t.name.ends_with("rotary_emb.inv_freq") {
            continue;
        }
        let n: usize = t.shape.iter().product();
        match arch {
            None => {
                if t.gguf_only {
                    if t.name != "rope_freqs.weight" {
                        warnings.push(format!(
                            "{} has no Hugging Face counterpart; not written",
                            t.name
                        ));
                    }
                    continue;
                }
                plan.push(Planned {
                    out_name: t.name.clone(),
                    hf: t.name.clone(),
                    ty: out_ty,
                    permute: None,
                    nbytes: (n * out_ty.type_size()) as u64,
                    raw: None,
                    src: t,
                });
            }
            Some((_, permuted)) => {
                let gname = if t.gguf_only {
                    t.name.clone()
                } else {
                    match gguf_name(&t.name) {
                        Some(g) => g,
                        None => {
                            warnings
                                .push(format!("{} has no GGUF counterpart; not written", t.name));
                            continue;
                        }
                    }
                };
                if keep && !changed(&t.name) {
                    if let Some((ty, start, len)) = src.stored(&t) {
                        plan.push(Planned {
                            out_name: gname,
                            hf: t.name.clone(),
                            ty,
                            permute: None,
                            nbytes: len,
                            raw: Some(start),
                            src: t,
                        });
                        continue;
                    }
                }
                let matrix = t.shape.len() == 2;
                let ty = if !matrix {
                    GgmlType::F32
                } else if t.shape[1] % out_ty.block_size() != 0 {
                    warnings.push(format!(
                        "{}: {} columns are not a multiple of {}; written as f16",
                        t.name,
                        t.shape[1],
                        out_ty.block_size()
                    ));
                    GgmlType::F16
                } else {
                    out_ty
                };
                let permute = if !permuted {
                    None
                } else if t.name.contains(".q_proj.") {
                    Some(src.cfg.num_attention_heads)
                } else if t.name.contains(".k_proj.") {
                    Some(src.cfg.num_key_value_heads)
                } else {
                    None
                };
                plan.push(Planned {
                    out_name: gname,
                    hf: t.name.clone(),
                    ty,
                    permute,
                    nbytes: ty.bytes_for(n as u64),
                    raw: None,
                    src: t,
                });
            }
        }
    }
    // llama3 rope scaling: llama.cpp wants the per-frequency factors as a tensor.
    let mut extra: Vec<(String, Vec<f32>)> = Vec::new();
    if arch.is_some() && !plan.iter().any(|p| p.out_name == "rope_freqs.weight") {
        if let Some(f) = llama3_rope_factors(&src.cfg) {
            extra.push(("rope_freqs.weight".into(), f));
        }
    }

    // Produce one tensor's output bytes.
    let mut merged_tensors = 0usize;
    let mut produce = |p: &Planned| -> Result<Vec<u8>> {
        if let Some(start) = p.raw {
            let mut buf = vec![0u8; p.nbytes as usize];
            src.files[0]
                .read_exact_at(&mut buf, start)
                .with_context(|| format!("reading tensor {}", p.hf))?;
            return Ok(buf);
        }
        let mut w = src.read(&p.src)?;
        let mut changed = false;
        for a in &adapters {
            let module = p.hf.strip_suffix(".weight").unwrap_or(&p.hf);
            if let Some((v, _)) = a.replace.get(&p.hf) {
                w = v.clone();
                changed = true;
            }
            if let Some(pair) = a.pairs.get(module) {
                add_delta(&mut w, &p.src.shape, pair);
                changed = true;
            }
        }
        merged_tensors += changed as usize;
        if let Some(heads) = p.permute {
            w = permute_rows(&w, p.src.shape[0], heads, true);
        }
        quant::quantize(p.ty, &w).with_context(|| format!("converting {}", p.hf))
    };

    let tmp = temp_beside(&opts.output);
    let mut cleanup = Cleanup(Some(tmp.clone()));
    let total = plan.len() + extra.len();
    progress.start("merging", Some(total as u64));
    let mut bytes_written = 0u64;
    match opts.format {
        OutFormat::Hf => {
            std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            // Shards: consecutive tensors up to the size limit.
            let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
            let mut size = 0u64;
            for (i, p) in plan.iter().enumerate() {
                if size > 0 && size + p.nbytes > opts.max_shard_bytes {
                    shards.push(Vec::new());
                    size = 0;
                }
                size += p.nbytes;
                shards.last_mut().unwrap().push(i);
            }
            let n = shards.len();
            let mut weight_map = BTreeMap::new();
            for (si, shard) in shards.iter().enumerate() {
                let file = if n == 1 {
                    "model.safetensors".to_string()
                } else {
                    format!("model-{:05}-of-{:05}.safetensors", si + 1, n)
                };
                let mut header = serde_json::Map::new();
                header.insert("__metadata__".into(), json!({"format": "pt"}));
                let mut off = 0u64;
                for &i in shard {
                    let p = &plan[i];
                    header.insert(
                        p.out_name.clone(),
                        json!({"dtype": st_dtype(p.ty), "shape": p.src.shape, "data_offsets": [off, off + p.nbytes]}),
                    );
                    off += p.nbytes;
                    weight_map.insert(p.out_name.clone(), json!(file));
                }
                let mut h = serde_json::to_vec(&Value::Object(header))?;
                while h.len() % 8 != 0 {
                    h.push(b' ');
                }
                let path = tmp.join(&file);
                let f =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                w.write_all(&(h.len() as u64).to_le_bytes())?;
                w.write_all(&h)?;
                for &i in shard {
                    let bytes = produce(&plan[i])?;
                    debug_assert_eq!(bytes.len() as u64, plan[i].nbytes);
                    w.write_all(&bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    bytes_written += bytes.len() as u64;
                    progress.inc(1);
                }
                w.into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if n > 1 {
                let total: u64 = plan.iter().map(|p| p.nbytes).sum();
                let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
                let p = tmp.join("model.safetensors.index.json");
                std::fs::write(&p, serde_json::to_string_pretty(&index)?)
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            write_hf_side_files(&src, &tmp, out_ty, tied_out)?;
        }
        OutFormat::Gguf => {
            let md = match (&src.gguf, &src.dir) {
                (Some(g), _) => {
                    let mut md: Vec<(String, GgufValue)> = g
                        .metadata
                        .iter()
                        .filter(|(k, _)| {
                            !matches!(
                                k.as_str(),
                                "general.file_type" | "general.quantization_version"
                            ) && !k.starts_with("GGUF.")
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    // A mixed file (kept base types) is named by the type
                    // most of its matrix weights have, as llama.cpp does.
                    let ft = if keep {
                        let main = main_type(&plan);
                        match g
                            .metadata
                            .iter()
                            .find(|(k, _)| k.as_str() == "general.file_type")
                        {
                            Some((_, v)) if Some(main) == main_type_of(g) => v.clone(),
                            _ => GgufValue::U32(file_type(main)),
                        }
                    } else {
                        GgufValue::U32(file_type(out_ty))
                    };
                    md.push(("general.file_type".into(), ft));
                    md.push(("general.quantization_version".into(), GgufValue::U32(2)));
                    // Keep general.architecture first, as llama.cpp writes it.
                    md.sort_by_key(|(k, _)| k != "general.architecture");
                    md
                }
                (None, Some(dir)) => gguf_metadata_from_hf(&src, dir, out_ty, &mut warnings)?,
                _ => unreachable!(),
            };
            let mut infos: Vec<(String, Vec<u64>, GgmlType, u64)> = plan
                .iter()
                .map(|p| {
                    let dims: Vec<u64> = p.src.shape.iter().rev().map(|&d| d as u64).collect();
                    (p.out_name.clone(), dims, p.ty, p.nbytes)
                })
                .collect();
            for (name, v) in &extra {
                infos.push((
                    name.clone(),
                    vec![v.len() as u64],
                    GgmlType::F32,
                    4 * v.len() as u64,
                ));
            }
            let (header, offsets) = encode_header(&md, &infos);
            let f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            w.write_all(&header)?;
            let mut pos = 0u64;
            let mut emit = |w: &mut BufWriter<File>, off: u64, bytes: &[u8]| -> Result<()> {
                while pos < off {
                    w.write_all(&[0])?;
                    pos += 1;
                }
                w.write_all(bytes)
                    .with_context(|| format!("writing {}", tmp.display()))?;
                pos += bytes.len() as u64;
                Ok(())
            };
            for (i, p) in plan.iter().enumerate() {
                let bytes = produce(p)?;
                emit(&mut w, offsets[i], &bytes)?;
                bytes_written += bytes.len() as u64;
                progress.inc(1);
            }
            for (j, (_, v)) in extra.iter().enumerate() {
                let bytes = quant::quantize(GgmlType::F32, v)?;
                emit(&mut w, offsets[plan.len() + j], &bytes)?;
                bytes_written += bytes.len() as u64;
                progress.inc(1);
            }
            w.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
    }
    progress.finish();
    commit(&tmp, &opts.output)?;
    cleanup.0 = None;
    Ok(MergeReport {
        output: opts.output.clone(),
        format: match opts.format {
            OutFormat::Hf => "hf".into(),
            OutFormat::Gguf => "gguf".into(),
        },
        dtype: if keep {
            matrix_types(&plan)
                .iter()
                .map(|(t, _)| type_name(*t))
                .collect::<Vec<_>>()
                .join("+")
        } else {
            type_name(out_ty)
        },
        tensors: total,
        merged_tensors,
        adapters: opts.adapters.clone(),
        bytes_written,
        tied_embeddings: tied_out,
        kept_tensors: plan.iter().filter(|p| p.raw.is_some()).count(),
        notes: adapters.iter().filter_map(Adapter::note).collect(),
        warnings,
    })
}

/// `config.json`, `generation_config.json` and the tokenizer beside the
/// weights of an HF output.
fn write_hf_side_files(src: &Source, out: &Path, ty: GgmlType, tied: bool) -> Result<()> {
    let write = |name: &str, v: &Value| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(v)? + "\n")
            .with_context(|| format!("writing {}", p.display()))
    };
    match (&src.dir, &src.gguf) {
        (Some(dir), _) => {
            let p = dir.join("config.json");
            let mut cfg: Value = serde_json::from_str(
                &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("parsing {}", p.display()))?;
            if let Some(o) = cfg.as_object_mut() {
                o.insert("torch_dtype".into(), json!(torch_name(ty)));
                if o.contains_key("dtype") {
                    o.insert("dtype".into(), json!(torch_name(ty)));
                }
                o.insert("tie_word_embeddings".into(), json!(tied));
            }
            write("config.json", &cfg)?;
            // The tokenizer and generation settings, as they are.
            for name in [
                "generation_config.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "special_tokens_map.json",
                "added_tokens.json",
                "chat_template.jinja",
                "chat_template.json",
                "tokenizer.model",
                "vocab.json",
                "merges.txt",
            ] {
                let from = dir.join(name);
                if from.exists() {
                    std::fs::copy(&from, out.join(name))
                        .with_context(|| format!("copying {}", from.display()))?;
                }
            }
            if !dir.join("generation_config.json").exists() {
                write("generation_config.json", &generation_config(&src.cfg))?;
            }
        }
        (None, Some(g)) => {
            let mut cfg = src.cfg.clone();
            cfg.tie_word_embeddings = tied;
            cfg.torch_dtype = Some(torch_name(ty).into());
            let tok = Tokenizer::from_gguf(g)
                .with_context(|| format!("reading the tokenizer of {}", g.path.display()))?;
            cfg.eos_token_ids = tok.eos_ids().to_vec();
            cfg.bos_token_id = tok.bos_id();
            let mut v = config_json(&cfg);
            v["torch_dtype"] = json!(torch_name(ty));
            write("config.json", &v)?;
            write("generation_config.json", &generation_config(&cfg))?;
            tok.save(out)?;
        }
        _ => unreachable!(),
    }
    Ok(())
}

fn generation_config(c: &ModelConfig) -> Value {
    let mut v = json!({});
    if let Some(b) = c.bos_token_id {
        v["bos_token_id"] = json!(b);
    }
    match c.eos_token_ids.as_slice() {
        [] => {}
        [one] => v["eos_token_id"] = json!(one),
        many => v["eos_token_id"] = json!(many),
    }
    v
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keys() {
        assert_eq!(
            name_key("HuggingFaceTB/SmolLM2-135M-Instruct"),
            "smollm2-135m-instruct"
        );
        assert_eq!(
            name_key("/x/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "smollm2-135m-instruct"
        );
        assert_eq!(name_key("out/merged/"), "merged");
    }

    #[test]
    fn permute_round_trip() {
        let v: Vec<f32> = (0..48).map(|x| x as f32).collect();
        let g = permute_rows(&v, 12, 2, true);
        assert_ne!(g, v);
        assert_eq!(permute_rows(&g, 12, 2, false), v);
    }

    #[test]
    fn deltas() {
        // w [2, 3] += 2 * B[2,1] A[1,3]
        let p = Pair {
            a: vec![1.0, 2.0, 3.0],
            a_shape: [1, 3],
            b: vec![1.0, -1.0],
            b_shape: [2, 1],
            scale: 2.0,
            embedding: false,
        };
        let mut w = vec![0f32; 6];
        add_delta(&mut w, &[2, 3], &p);
        assert_eq!(w, vec![2.0, 4.0, 6.0, -2.0, -4.0, -6.0]);
        // Embedding [vocab 3, dim 2] += 2 * (B[2,1] A[1,3])^T
        let p = Pair {
            embedding: true,
            ..p
        };
        let mut w = vec![0f32; 6];
        add_delta(&mut w, &[3, 2], &p);
        assert_eq!(w, vec![2.0, -2.0, 4.0, -4.0, 6.0, -6.0]);
    }

    #[test]
    fn llama3_factors() {
        let mut c = crate::model::testing::tiny_config("llama3").unwrap();
        c.rope_scaling = Some(super::super::config::RopeScaling {
            rope_type: "llama3".into(),
            factor: 8.0,
            low_freq_factor: Some(1.0),
            high_freq_factor: Some(4.0),
            original_max_position_embeddings: Some(8192),
        });
        c.rope_theta = 500000.0;
        c.head_dim = 128;
        let f = llama3_rope_factors(&c).unwrap();
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
    }
}
