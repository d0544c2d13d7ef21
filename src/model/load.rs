//! Reading weights from Hugging Face folders (safetensors, memory-mapped,
//! single or sharded, f32/f16/bf16) and from GGUF files (blocks kept as they
//! are), mapped to HF names and the HF (un-permuted) q/k row layout.

use super::config::ModelConfig;
use super::gguf::{GgmlType, GgufFile, GgufTensorInfo};
use super::linear::Linear;
use super::quant::{self, QWeight};
use anyhow::{bail, Context, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use memmap2::{Mmap, MmapMut};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A source of named weights in HF naming (`model.layers.0.self_attn.q_proj.weight`).
#[allow(clippy::large_enum_variant)]
pub enum WeightSource {
    Safetensors {
        st: MmapedSafetensors,
        names: BTreeSet<String>,
        dir: PathBuf,
        /// Quantize the decoder layers' linear weights to this type as they
        /// are read (QLoRA's `--quant-bits`); embeddings, norms and lm_head
        /// stay in full precision.
        quantize: Option<GgmlType>,
    },
    Gguf {
        file: GgufFile,
        cfg: ModelConfig,
        /// The tensor data section copied into anonymous (huge-page advised)
        /// memory, q/k rows already un-permuted; tensor `t` is at `base + t.offset`.
        arena: Arc<Mmap>,
        base: usize,
    },
}

/// The safetensors files of an HF folder (index or single file).
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("reading {}", index.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .with_context(|| format!("{} has no weight_map", index.display()))?;
        let files: BTreeSet<&str> = map.values().filter_map(|f| f.as_str()).collect();
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        for p in &paths {
            if !p.exists() {
                bail!(
                    "shard {} named in {} is missing",
                    p.display(),
                    index.display()
                );
            }
        }
        return Ok(paths);
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    found.sort();
    if found.is_empty() {
        bail!("no *.safetensors weights in {}", dir.display());
    }
    Ok(found)
}

/// Row permutation that undoes llama.cpp's q/k permutation: HF row
/// `h*hd + s*hd/2 + i` is GGUF row `h*hd + 2*i + s`.
pub fn unpermute_rows(n_head: usize, rows: usize) -> Vec<usize> {
    let hd = rows / n_head;
    let half = hd / 2;
    let mut perm = vec![0; rows];
    for h in 0..n_head {
        for s in 0..2 {
            for i in 0..half {
                perm[h * hd + s * half + i] = h * hd + 2 * i + s;
            }
        }
    }
    perm
}

/// HF tensor names -> GGUF names: whole-model tensors.
const GGUF_TOP: [(&str, &str); 3] = [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// HF tensor names -> GGUF names: per-layer suffixes (`model.layers.N.` /
/// `blk.N.`).
const GGUF_LAYER: [(&str, &str); 14] = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
];

/// The GGUF name of an HF tensor name.
pub fn gguf_name(hf: &str) -> Option<String> {
    if let Some((_, g)) = GGUF_TOP.iter().find(|(h, _)| *h == hf) {
        return Some(g.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (n, rest) = rest.split_once('.')?;
    GGUF_LAYER
        .iter()
        .find(|(h, _)| *h == rest)
        .map(|(_, g)| format!("blk.{n}.{g}"))
}

/// The HF name of a GGUF tensor name (`None` for tensors HF has no
/// counterpart of, such as `rope_freqs.weight`).
pub fn hf_name(gguf: &str) -> Option<String> {
    if let Some((h, _)) = GGUF_TOP.iter().find(|(_, g)| *g == gguf) {
        return Some(h.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (n, rest) = rest.split_once('.')?;
    n.parse::<usize>().ok()?;
    GGUF_LAYER
        .iter()
        .find(|(_, g)| *g == rest)
        .map(|(h, _)| format!("model.layers.{n}.{h}"))
}

impl WeightSource {
    /// Open the safetensors of an HF folder.
    pub fn hf(dir: &Path) -> Result<WeightSource> {
        let files = safetensors_files(dir)?;
        // SAFETY: read-only memory maps of files we do not modify.
        let st = unsafe { MmapedSafetensors::multi(&files) }
            .with_context(|| format!("memory-mapping safetensors in {}", dir.display()))?;
        let names = st.tensors().into_iter().map(|(n, _)| n).collect();
        Ok(WeightSource::Safetensors {
            st,
            names,
            dir: dir.to_path_buf(),
            quantize: None,
        })
    }

    /// Like [`WeightSource::hf`], quantizing the decoder layers' linear
    /// weights to `t` (NF4 or Q8_0) as they are read, one tensor at a time.
    pub fn hf_quantized(dir: &Path, t: GgmlType) -> Result<WeightSource> {
        if !matches!(t, GgmlType::NF4 | GgmlType::Q8_0 | GgmlType::Q4_0) {
            bail!("quantizing at load supports nf4, q8_0 and q4_0, not {t}");
        }
        let mut s = Self::hf(dir)?;
        if let WeightSource::Safetensors { quantize, .. } = &mut s {
            *quantize = Some(t);
        }
        Ok(s)
    }

    /// Use a parsed GGUF file: its tensor data is read (not mapped) into
    /// anonymous memory advised for huge pages, so the decode kernels stream
    /// it without TLB misses and the file's pages never count twice.
    pub fn gguf(file: GgufFile, cfg: ModelConfig) -> Result<WeightSource> {
        const HUGE: usize = 2 << 20;
        let len = (file.file_size() - file.data_offset) as usize;
        let mut arena = MmapMut::map_anon(len + HUGE).context("allocating weight memory")?;
        #[cfg(target_os = "linux")]
        let _ = arena.advise(memmap2::Advice::HugePage);
        let base = (HUGE - arena.as_ptr() as usize % HUGE) % HUGE;
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::open(&file.path)
                .with_context(|| format!("opening {}", file.path.display()))?;
            f.read_exact_at(&mut arena[base..base + len], file.data_offset)
                .with_context(|| format!("reading tensor data of {}", file.path.display()))?;
        }
        // llama.cpp stores llama q/k rows permuted for interleaved rope: undo it.
        if file.architecture() == Some("llama") {
            for t in &file.tensors {
                let nh = if t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_q.bias") {
                    cfg.num_attention_heads
                } else if t.name.ends_with(".attn_k.weight") || t.name.ends_with(".attn_k.bias") {
                    cfg.num_key_value_heads
                } else {
                    continue;
                };
                let rows = if t.dims.len() == 2 {
                    t.dims[1] as usize
                } else {
                    t.dims[0] as usize
                };
                let start = base + t.offset as usize;
                let nbytes = t.n_bytes() as usize;
                let rb = nbytes / rows;
                let orig = arena[start..start + nbytes].to_vec();
                for (i, &p) in unpermute_rows(nh, rows).iter().enumerate() {
                    arena[start + i * rb..start + (i + 1) * rb]
                        .copy_from_slice(&orig[p * rb..(p + 1) * rb]);
                }
            }
        }
        let arena = Arc::new(arena.make_read_only().context("sealing weight memory")?);
        Ok(WeightSource::Gguf {
            file,
            cfg,
            arena,
            base,
        })
    }

    fn where_(&self) -> String {
        match self {
            WeightSource::Safetensors { dir, .. } => dir.display().to_string(),
            WeightSource::Gguf { file, .. } => file.path.display().to_string(),
        }
    }

    /// Whether a tensor exists.
    pub fn has(&self, name: &str) -> bool {
        match self {
            WeightSource::Safetensors { names, .. } => names.contains(name),
            WeightSource::Gguf { file, .. } => {
                gguf_name(name).is_some_and(|g| file.tensor(&g).is_some())
            }
        }
    }

    fn gguf_info(&self, name: &str) -> Result<GgufTensorInfo> {
        match self {
            WeightSource::Gguf { file, .. } => gguf_name(name)
                .and_then(|g| file.tensor(&g).cloned())
                .with_context(|| format!("tensor {name} is missing from {}", self.where_())),
            _ => unreachable!(),
        }
    }

    /// A tensor as dense f32 (dequantized / converted / un-permuted).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let dev = Device::Cpu;
        match self {
            WeightSource::Safetensors { st, .. } => {
                let t = st
                    .load(name, &dev)
                    .with_context(|| format!("tensor {name} in {}", self.where_()))?;
                // The tensor is a copy now: let its file pages go, so the
                // mapping does not count a second time beside the loaded
                // weights (or beside their quantized form).
                if let Ok(view) = st.get(name) {
                    release_pages(view.data());
                }
                Ok(t.to_dtype(DType::F32)?)
            }
            WeightSource::Gguf { arena, base, .. } => {
                let g = self.gguf_info(name)?;
                let start = base + g.offset as usize;
                let data = quant::dequantize(g.dtype, &arena[start..start + g.n_bytes() as usize])
                    .with_context(|| format!("tensor {}", g.name))?;
                Ok(Tensor::from_vec(data, g.shape(), &dev)?)
            }
        }
    }

    /// A 2-D weight as a [`Linear`] (quantized when the GGUF stores blocks).
    pub fn linear(&self, name: &str, bias: Option<&str>) -> Result<Linear> {
        let bias = match bias {
            Some(b) if self.has(b) => Some(self.tensor(b)?),
            _ => None,
        };
        if let WeightSource::Gguf { arena, base, .. } = self {
            let g = self.gguf_info(name)?;
            if g.dtype.is_quantized() {
                if g.dims.len() != 2 {
                    bail!("tensor {} is not a matrix", g.name);
                }
                let (cols, rows) = (g.dims[0] as usize, g.dims[1] as usize);
                let w =
                    QWeight::mapped(arena.clone(), base + g.offset as usize, g.dtype, rows, cols)
                        .with_context(|| format!("tensor {}", g.name))?;
                return Ok(Linear::Quantized {
                    weight: Arc::new(w),
                    bias,
                });
            }
        }
        let weight = self.tensor(name)?;
        if weight.rank() != 2 {
            bail!("tensor {name} is not a matrix: {:?}", weight.dims());
        }
        if let WeightSource::Safetensors {
            quantize: Some(t), ..
        } = self
        {
            let (rows, cols) = weight.dims2()?;
            if name.starts_with("model.layers.") && cols % t.block_size() == 0 {
                let data: Vec<f32> = weight.flatten_all()?.to_vec1()?;
                drop(weight);
                let bytes = quant::quantize(*t, &data)?;
                let w = QWeight::owned(bytes, *t, rows, cols)
                    .with_context(|| format!("quantizing {name}"))?;
                return Ok(Linear::Quantized {
                    weight: Arc::new(w),
                    bias,
                });
            }
        }
        Ok(Linear::Dense { weight, bias })
    }

    /// The raw GGUF type of an HF-named tensor, if this is a GGUF source.
    pub fn gguf_type(&self, name: &str) -> Option<GgmlType> {
        match self {
            WeightSource::Gguf { file, .. } => gguf_name(name)
                .and_then(|g| file.tensor(&g))
                .map(|t| t.dtype),
            _ => None,
        }
    }

    /// The GGUF file, when this source is one.
    pub fn gguf_file(&self) -> Option<&GgufFile> {
        match self {
            WeightSource::Gguf { file, .. } => Some(file),
            _ => None,
        }
    }
}

/// Drop the pages of `bytes`, a part of a read-only file mapping, from this
/// process's resident set (they stay in the page cache; a later read maps
/// them again from the file). Only whole pages inside `bytes` are dropped.
fn release_pages(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        const MADV_DONTNEED: i32 = 4;
        const PAGE: usize = 4096;
        let start = bytes.as_ptr() as usize;
        let a = start.div_ceil(PAGE) * PAGE;
        let b = (start + bytes.len()) / PAGE * PAGE;
        if b > a {
            // SAFETY: [a, b) lies inside a read-only, file-backed mapping
            // that nothing writes; MADV_DONTNEED only makes the next access
            // fault the same file contents in again. A failure (e.g. another
            // page size) leaves the pages resident, which is harmless.
            unsafe {
                madvise(a as *mut std::ffi::c_void, b - a, MADV_DONTNEED);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: reshape(n_head, 2, hd/2, ...).swapaxes(1, 2): row h*hd + i*2 + s
        // holds HF row h*hd + s*hd/2 + i.
        let (nh, hd) = (3, 8);
        let hf: Vec<usize> = (0..nh * hd).collect();
        let mut gguf = vec![0; nh * hd];
        for h in 0..nh {
            for s in 0..2 {
                for i in 0..hd / 2 {
                    gguf[h * hd + i * 2 + s] = hf[h * hd + s * hd / 2 + i];
                }
            }
        }
        let perm = unpermute_rows(nh, nh * hd);
        let back: Vec<usize> = perm.iter().map(|&p| gguf[p]).collect();
        assert_eq!(back, hf);
    }

    #[test]
    fn names() {
        assert_eq!(
            gguf_name("model.layers.3.mlp.down_proj.weight").unwrap(),
            "blk.3.ffn_down.weight"
        );
        assert_eq!(gguf_name("lm_head.weight").unwrap(), "output.weight");
        assert!(gguf_name("model.layers.3.foo").is_none());
        assert_eq!(
            hf_name("blk.3.ffn_down.weight").unwrap(),
            "model.layers.3.mlp.down_proj.weight"
        );
        assert_eq!(hf_name("output.weight").unwrap(), "lm_head.weight");
        assert!(hf_name("rope_freqs.weight").is_none());
    }
}
