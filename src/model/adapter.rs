//! PEFT LoRA adapters at inference: `adapter_config.json` +
//! `adapter_model.safetensors` as peft writes them, attached to the matching
//! [`Linear`]s without merging; and swift's own record of how an adapter was
//! trained ([`SwiftRecord`], `swift_adapter.json` beside peft's files).

use super::decoder::Model;
use super::linear::{Linear, Lora};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// swift's record beside an adapter. `adapter_config.json` holds peft's
/// keys only (peft warns about any other, and users read that warning as a
/// broken adapter), so what swift knows beyond them lives here.
pub const SWIFT_RECORD_FILE: &str = "swift_adapter.json";

/// The `schema_version` this build writes and the newest it reads.
pub const SWIFT_RECORD_SCHEMA: u32 = 1;

/// `swift_adapter.json`: how the adapter was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwiftRecord {
    /// [`SWIFT_RECORD_SCHEMA`] when written; 0 for a record read from the
    /// `swift_quantization` key older swift wrote into `adapter_config.json`.
    pub schema_version: u32,
    /// The swift that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swift_version: Option<String>,
    /// The frozen base's weights during training, when they were quantized
    /// (QLoRA); `None` when the adapter trained on them as stored.
    #[serde(default)]
    pub quantization: Option<Quantization>,
}

/// How the frozen base was quantized while the adapter trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// `nf4` or `q8_0` (quantized at load), or `gguf` (the GGUF's own blocks).
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_quant: Option<bool>,
    /// `gguf`: how many tensors of each block type the base file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<BTreeMap<String, usize>>,
}

impl Quantization {
    /// A base quantized at load to `method` (`nf4`, `q8_0`).
    pub fn at_load(method: &str, bits: u32, block_size: usize) -> Quantization {
        Quantization {
            method: method.into(),
            bits: Some(bits),
            block_size: Some(block_size),
            double_quant: Some(false),
            types: None,
        }
    }

    /// Training on the blocks of a GGUF file, whose tensor types are counted.
    pub fn gguf(file: &super::gguf::GgufFile) -> Quantization {
        let mut types = BTreeMap::new();
        for t in &file.tensors {
            *types.entry(t.dtype.to_string()).or_insert(0usize) += 1;
        }
        Quantization {
            method: "gguf".into(),
            bits: None,
            block_size: None,
            double_quant: None,
            types: Some(types),
        }
    }
}

impl SwiftRecord {
    /// A record for this build of swift.
    pub fn new(quantization: Option<Quantization>) -> SwiftRecord {
        SwiftRecord {
            schema_version: SWIFT_RECORD_SCHEMA,
            swift_version: Some(env!("CARGO_PKG_VERSION").into()),
            quantization,
        }
    }

    /// The record of the adapter in `dir`: `swift_adapter.json`, or for an
    /// adapter written before that file existed the `swift_quantization` key
    /// of its `adapter_config.json`; `None` when it has neither (an adapter
    /// from peft, or from a swift that recorded nothing).
    pub fn read(dir: &Path) -> Result<Option<SwiftRecord>> {
        let p = dir.join(SWIFT_RECORD_FILE);
        if p.exists() {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let v: Value =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
            let version = v
                .get("schema_version")
                .and_then(Value::as_u64)
                .with_context(|| format!("{}: no schema_version", p.display()))?;
            if version > SWIFT_RECORD_SCHEMA as u64 {
                bail!(
                    "{}: schema_version {version} was written by a newer swift (this one reads up to {SWIFT_RECORD_SCHEMA})",
                    p.display()
                );
            }
            let r: SwiftRecord =
                serde_json::from_value(v).with_context(|| format!("reading {}", p.display()))?;
            return Ok(Some(r));
        }
        let c = dir.join("adapter_config.json");
        let Ok(text) = std::fs::read_to_string(&c) else {
            return Ok(None);
        };
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", c.display()))?;
        match v.get("swift_quantization") {
            None | Some(Value::Null) => Ok(None),
            Some(q) => {
                let q: Quantization = serde_json::from_value(q.clone())
                    .with_context(|| format!("{}: reading swift_quantization", c.display()))?;
                Ok(Some(SwiftRecord {
                    schema_version: 0,
                    swift_version: None,
                    quantization: Some(q),
                }))
            }
        }
    }
}

/// What we read from `adapter_config.json`.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub use_rslora: bool,
    pub lora_dropout: f32,
    /// Module names, or `None` for `all-linear`.
    pub target_modules: Option<Vec<String>>,
    pub rank_pattern: HashMap<String, usize>,
    pub alpha_pattern: HashMap<String, f64>,
}

impl AdapterConfig {
    /// Read and check `adapter_config.json` in `dir`.
    pub fn read(dir: &Path) -> Result<AdapterConfig> {
        let p = dir.join("adapter_config.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        let ptype = v.get("peft_type").and_then(Value::as_str).unwrap_or("LORA");
        if ptype != "LORA" {
            bail!(
                "{}: peft_type {ptype} is not supported (only LORA)",
                p.display()
            );
        }
        if v.get("use_dora").and_then(Value::as_bool).unwrap_or(false) {
            bail!("{}: DoRA adapters are not supported", p.display());
        }
        let r = v
            .get("r")
            .and_then(Value::as_u64)
            .context("adapter_config.json has no `r`")? as usize;
        let lora_alpha = v
            .get("lora_alpha")
            .and_then(Value::as_f64)
            .unwrap_or(r as f64);
        let target_modules = match v.get("target_modules") {
            Some(Value::String(s)) if s == "all-linear" => None,
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
            ),
            _ => None,
        };
        let pat_u = |k: &str| -> HashMap<String, usize> {
            v.get(k)
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_u64().map(|x| (k.clone(), x as usize)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let alpha_pattern = v
            .get("alpha_pattern")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(AdapterConfig {
            r,
            lora_alpha,
            use_rslora: v
                .get("use_rslora")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            lora_dropout: v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            target_modules,
            rank_pattern: pat_u("rank_pattern"),
            alpha_pattern,
        })
    }

    /// The LoRA scale for a module (full dotted name), honouring the patterns.
    pub fn scale_for(&self, module: &str, r: usize) -> f64 {
        fn matches(module: &str, k: &str) -> bool {
            module == k || module.ends_with(&format!(".{k}"))
        }
        let alpha = self
            .alpha_pattern
            .iter()
            .find(|(k, _)| matches(module, k))
            .map(|(_, v)| *v)
            .unwrap_or(self.lora_alpha);
        let r = self
            .rank_pattern
            .iter()
            .find(|(k, _)| matches(module, k))
            .map(|(_, v)| *v)
            .unwrap_or(r);
        if self.use_rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        }
    }
}

/// Strip peft's prefixes: `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`
/// -> (`model.layers.0.self_attn.q_proj`, `A`).
fn split_name(name: &str) -> Option<(String, char)> {
    let n = name.strip_prefix("base_model.model.").unwrap_or(name);
    for (suffix, which) in [
        (".lora_A.weight", 'A'),
        (".lora_B.weight", 'B'),
        (".lora_A.default.weight", 'A'),
        (".lora_B.default.weight", 'B'),
    ] {
        if let Some(m) = n.strip_suffix(suffix) {
            return Some((m.to_string(), which));
        }
    }
    None
}

/// The adapter's `adapter_model.safetensors`, or an error saying why not
/// (missing, or only peft's older pickle `adapter_model.bin`).
pub fn weights_file(dir: &Path) -> Result<std::path::PathBuf> {
    let st = dir.join("adapter_model.safetensors");
    if !st.exists() {
        if dir.join("adapter_model.bin").exists() {
            bail!(
                "{}: adapter_model.bin (pickle) is not supported; save with safetensors",
                dir.display()
            );
        }
        bail!("{} is missing", st.display());
    }
    Ok(st)
}

/// Attach the adapter in `dir` to `model`. Returns how many layers got a LoRA.
pub fn apply(model: &mut Model, dir: &Path) -> Result<usize> {
    let cfg = AdapterConfig::read(dir)?;
    let st = weights_file(dir)?;
    let tensors = candle_core::safetensors::load(&st, &Device::Cpu)
        .with_context(|| format!("reading {}", st.display()))?;
    let mut pairs: HashMap<String, (Option<Tensor>, Option<Tensor>)> = HashMap::new();
    for (name, t) in tensors {
        let Some((module, which)) = split_name(&name) else {
            continue;
        };
        let e = pairs.entry(module).or_default();
        let t = t.to_dtype(DType::F32)?;
        if which == 'A' {
            e.0 = Some(t);
        } else {
            e.1 = Some(t);
        }
    }
    if pairs.is_empty() {
        bail!("{} holds no LoRA weights", st.display());
    }
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let mut attached = 0;
    let mut keys: Vec<_> = pairs.keys().cloned().collect();
    keys.sort();
    for module in keys {
        let (a, b) = pairs.remove(&module).unwrap();
        let (Some(a), Some(b)) = (a, b) else {
            bail!("{}: {module} has only one of lora_A / lora_B", st.display());
        };
        let r = a.dims()[0];
        let lora = Lora {
            a,
            b,
            scale: cfg.scale_for(&module, r),
            dropout: cfg.lora_dropout,
            name: name.clone(),
        };
        let slot = find_linear(model, &module)
            .with_context(|| format!("{}: no layer named {module} in the model", st.display()))?;
        let base = std::mem::replace(
            slot,
            Linear::Dense {
                weight: Tensor::zeros((1, 1), DType::F32, &Device::Cpu)?,
                bias: None,
            },
        );
        *slot = base
            .with_lora(lora)
            .with_context(|| format!("attaching {module} from {}", dir.display()))?;
        attached += 1;
    }
    model.adapters.push(dir.to_path_buf());
    Ok(attached)
}

/// The linear layer with an HF module path (`model.layers.3.mlp.up_proj`, `lm_head`).
pub fn find_linear<'a>(model: &'a mut Model, module: &str) -> Option<&'a mut Linear> {
    if module == "lm_head" {
        return Some(&mut model.lm_head);
    }
    let rest = module.strip_prefix("model.layers.")?;
    let (n, rest) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let leaf = rest.rsplit('.').next()?;
    model.layers.get_mut(n)?.linear_mut(leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swift_record_reads_its_file_and_the_key_older_adapters_hold() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(SwiftRecord::read(d).unwrap(), None);
        // An adapter written before swift_adapter.json: the record was a key
        // of adapter_config.json, and still reads.
        std::fs::write(
            d.join("adapter_config.json"),
            r#"{"peft_type": "LORA", "r": 8, "swift_quantization": {"method": "nf4", "bits": 4, "block_size": 64, "double_quant": false}}"#,
        )
        .unwrap();
        let old = SwiftRecord::read(d).unwrap().unwrap();
        assert_eq!(old.schema_version, 0);
        assert_eq!(old.quantization, Some(Quantization::at_load("nf4", 4, 64)));
        std::fs::write(
            d.join("adapter_config.json"),
            r#"{"peft_type": "LORA", "r": 8, "swift_quantization": {"method": "gguf", "types": {"F32": 61, "Q4_1": 210}}}"#,
        )
        .unwrap();
        let q = SwiftRecord::read(d).unwrap().unwrap().quantization.unwrap();
        assert_eq!(q.method, "gguf");
        assert_eq!(q.types.unwrap()["Q4_1"], 210);
        // The file wins over the old key, and round-trips.
        let rec = SwiftRecord::new(Some(Quantization::at_load("q8_0", 8, 32)));
        std::fs::write(
            d.join(SWIFT_RECORD_FILE),
            serde_json::to_string(&rec).unwrap(),
        )
        .unwrap();
        assert_eq!(SwiftRecord::read(d).unwrap(), Some(rec));
        let plain = SwiftRecord::new(None);
        std::fs::write(
            d.join(SWIFT_RECORD_FILE),
            serde_json::to_string(&plain).unwrap(),
        )
        .unwrap();
        assert_eq!(SwiftRecord::read(d).unwrap(), Some(plain));
        // A newer schema or a broken file is an error naming the file.
        std::fs::write(d.join(SWIFT_RECORD_FILE), r#"{"schema_version": 2}"#).unwrap();
        let e = format!("{:#}", SwiftRecord::read(d).unwrap_err());
        assert!(
            e.contains(SWIFT_RECORD_FILE) && e.contains("newer swift"),
            "{e}"
        );
        std::fs::write(d.join(SWIFT_RECORD_FILE), "{").unwrap();
        let e = format!("{:#}", SwiftRecord::read(d).unwrap_err());
        assert!(e.contains(SWIFT_RECORD_FILE), "{e}");
    }
}
