//! A GGUF (v2/v3) reader: header, metadata and tensor infos.
//!
//! [`GgufFile::open`] memory-maps the file and parses everything except the
//! tensor data, which stays in the map and is reached lazily through
//! [`GgufFile::tensor_data`] (raw block bytes, zero-copy).

use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The magic bytes at the start of every GGUF file ("GGUF").
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Default tensor data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The string, for a `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any non-negative integer value as u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v as u64),
            GgufValue::U16(v) => Some(v as u64),
            GgufValue::U32(v) => Some(v as u64),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer value as i64 (None when a u64 does not fit).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            GgufValue::U8(v) => Some(v as i64),
            GgufValue::U16(v) => Some(v as i64),
            GgufValue::U32(v) => Some(v as i64),
            GgufValue::U64(v) => i64::try_from(v).ok(),
            GgufValue::I8(v) => Some(v as i64),
            GgufValue::I16(v) => Some(v as i64),
            GgufValue::I32(v) => Some(v as i64),
            GgufValue::I64(v) => Some(v),
            _ => None,
        }
    }

    /// Any numeric value as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => self
                .as_i64()
                .map(|v| v as f64)
                .or_else(|| self.as_u64().map(|v| v as f64)),
        }
    }

    /// The boolean, for a `Bool` value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, for an `Array` value.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// The ggml tensor element types (numbering as in ggml.h).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    /// 4-bit NormalFloat (QLoRA, bitsandbytes): blocks of 64 weights, an f32
    /// absmax then 32 bytes of codes. Not a ggml type: used in memory only
    /// (`--quant-bits 4`), never written to a file.
    NF4,
}

impl GgmlType {
    /// The type for a ggml type id.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            34 => TQ1_0,
            35 => TQ2_0,
            _ => return None,
        })
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            IQ1_M => 29,
            BF16 => 30,
            TQ1_0 => 34,
            TQ2_0 => 35,
            // Outside ggml's numbering; `from_id` never returns NF4.
            NF4 => 0x4E46_3400,
        }
    }

    /// Number of elements in one block.
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 | I8 | I16 | I32 | I64 | F64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | IQ4_NL => 32,
            NF4 => 64,
            _ => 256,
        }
    }

    /// Number of bytes in one block.
    pub fn type_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 => 4,
            F16 | BF16 => 2,
            I8 => 1,
            I16 => 2,
            I32 => 4,
            I64 | F64 => 8,
            Q4_0 => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q8_1 => 36,
            Q2_K => 84,
            Q3_K => 110,
            Q4_K => 144,
            Q5_K => 176,
            Q6_K => 210,
            Q8_K => 292,
            IQ2_XXS => 66,
            IQ2_XS => 74,
            IQ3_XXS => 98,
            IQ1_S => 50,
            IQ4_NL => 18,
            IQ3_S => 110,
            IQ2_S => 82,
            IQ4_XS => 136,
            IQ1_M => 56,
            TQ1_0 => 54,
            TQ2_0 => 66,
            NF4 => 36,
        }
    }

    /// Bytes needed for `n` elements (n must be a multiple of the block size).
    pub fn bytes_for(self, n: u64) -> u64 {
        n / self.block_size() as u64 * self.type_size() as u64
    }

    /// Average bits per weight.
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }

    /// Whether this is a block-quantized type.
    pub fn is_quantized(self) -> bool {
        !matches!(
            self,
            GgmlType::F32
                | GgmlType::F16
                | GgmlType::BF16
                | GgmlType::I8
                | GgmlType::I16
                | GgmlType::I32
                | GgmlType::I64
                | GgmlType::F64
        )
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Where one tensor lives in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the fastest-varying (row length).
    pub dims: Vec<u64>,
    pub dtype: GgmlType,
    /// Offset relative to the start of the tensor data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Size of the tensor data in bytes.
    pub fn n_bytes(&self) -> u64 {
        self.dtype.bytes_for(self.n_elements())
    }

    /// Shape in row-major (PyTorch) order: the reverse of `dims`.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file; tensor data stays in the memory map.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<GgufTensorInfo>,
    /// Absolute file offset of the tensor data section.
    pub data_offset: u64,
    pub alignment: u64,
    mmap: Arc<Mmap>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    version: u32,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => bail!(
                "truncated GGUF file: needed {n} bytes at offset {} but the file has {}",
                self.pos,
                self.buf.len()
            ),
        }
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// Counts and lengths: u64 in v2/v3, u32 in v1.
    fn len(&mut self) -> Result<u64> {
        if self.version == 1 {
            Ok(self.u32()? as u64)
        } else {
            self.u64()
        }
    }
    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        let n = usize::try_from(n).context("string length overflows")?;
        let bytes = self.take(n)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
    fn value(&mut self, ty: u32, depth: usize) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(self.u8()?),
            1 => GgufValue::I8(self.u8()? as i8),
            2 => GgufValue::U16(self.u16()?),
            3 => GgufValue::I16(self.u16()? as i16),
            4 => GgufValue::U32(self.u32()?),
            5 => GgufValue::I32(self.u32()? as i32),
            6 => GgufValue::F32(f32::from_bits(self.u32()?)),
            7 => GgufValue::Bool(self.u8()? != 0),
            8 => GgufValue::String(self.string()?),
            9 => {
                if depth > 8 {
                    bail!("GGUF arrays nested too deeply");
                }
                let elem_ty = self.u32()?;
                let n = self.len()?;
                // Each element takes at least one byte: reject absurd counts early.
                if n > (self.buf.len() - self.pos) as u64 {
                    bail!(
                        "truncated GGUF file: array of {n} elements at offset {} exceeds the file",
                        self.pos
                    );
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(elem_ty, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64()?),
            11 => GgufValue::I64(self.u64()? as i64),
            12 => GgufValue::F64(f64::from_bits(self.u64()?)),
            other => bail!("unknown GGUF metadata value type {other}"),
        })
    }
}

impl GgufFile {
    /// Open and parse a GGUF file (header, metadata, tensor infos).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the file is opened read-only; we never hand out mutable views.
        // A concurrent truncation by another process is outside our control (as
        // for every mmap-based model loader).
        let mmap = unsafe { Mmap::map(&file) }
            .with_context(|| format!("memory-mapping {}", path.display()))?;
        Self::parse(path.to_path_buf(), Arc::new(mmap))
            .with_context(|| format!("reading GGUF file {}", path.display()))
    }

    fn parse(path: PathBuf, mmap: Arc<Mmap>) -> Result<GgufFile> {
        let buf: &[u8] = &mmap;
        if buf.len() < 4 {
            bail!("not a GGUF file: only {} bytes", buf.len());
        }
        if buf[..4] != GGUF_MAGIC {
            bail!(
                "not a GGUF file: bad magic {:?} (expected \"GGUF\")",
                String::from_utf8_lossy(&buf[..4])
            );
        }
        let mut r = Reader {
            buf,
            pos: 4,
            version: 3,
        };
        let version = r.u32()?;
        if !(1..=3).contains(&version) {
            bail!("unsupported GGUF version {version} (supported: 1, 2, 3)");
        }
        r.version = version;
        let n_tensors = r.len()?;
        let n_kv = r.len()?;
        if n_tensors > buf.len() as u64 || n_kv > buf.len() as u64 {
            bail!("truncated or corrupt GGUF header: {n_tensors} tensors, {n_kv} metadata entries");
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string()?;
            let ty = r.u32()?;
            let v = r
                .value(ty, 0)
                .with_context(|| format!("reading metadata value {key:?}"))?;
            metadata.insert(key, v);
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims > 8 {
                bail!("tensor {name:?} has {n_dims} dimensions (corrupt file?)");
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.len()?);
            }
            let ty = r.u32()?;
            let dtype = GgmlType::from_id(ty)
                .with_context(|| format!("tensor {name:?} has unknown ggml type {ty}"))?;
            let offset = r.u64()?;
            tensors.push(GgufTensorInfo {
                name,
                dims,
                dtype,
                offset,
            });
        }
        let alignment = metadata
            .get("general.alignment")
            .and_then(|v| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT);
        if alignment == 0 || !alignment.is_power_of_two() {
            bail!("invalid general.alignment {alignment}");
        }
        let pos = r.pos as u64;
        let data_offset = pos.div_ceil(alignment) * alignment;
        let file_len = buf.len() as u64;
        for t in &tensors {
            if t.n_elements() % t.dtype.block_size() as u64 != 0 {
                bail!(
                    "tensor {:?}: {} elements is not a multiple of the {} block size {}",
                    t.name,
                    t.n_elements(),
                    t.dtype,
                    t.dtype.block_size()
                );
            }
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.n_bytes()));
            match end {
                Some(end) if end <= file_len => {}
                _ => bail!(
                    "truncated GGUF file: tensor {:?} ({} bytes at data offset {}) extends past the end of the file ({} bytes)",
                    t.name,
                    t.n_bytes(),
                    t.offset,
                    file_len
                ),
            }
        }
        Ok(GgufFile {
            path,
            version,
            metadata,
            tensors,
            data_offset,
            alignment,
            mmap,
        })
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// An integer metadata value.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.as_u64())
    }

    /// A numeric metadata value.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.as_f64())
    }

    /// A boolean metadata value.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(|v| v.as_bool())
    }

    /// An array metadata value.
    pub fn get_array(&self, key: &str) -> Option<&[GgufValue]> {
        self.get(key).and_then(|v| v.as_array())
    }

    /// `general.architecture` (e.g. "llama", "qwen2").
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The tensor info with this name.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes (ggml blocks) of a tensor, zero-copy from the memory map.
    pub fn tensor_data(&self, info: &GgufTensorInfo) -> &[u8] {
        let start = (self.data_offset + info.offset) as usize;
        &self.mmap[start..start + info.n_bytes() as usize]
    }

    /// The memory map shared by all tensors (kept alive by quantized weights).
    pub fn mmap(&self) -> &Arc<Mmap> {
        &self.mmap
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.mmap.len() as u64
    }
}

/// Write a GGUF v3 file held in memory (tests and fixture generators).
/// Tensors are given as (name, ggml dims, type, raw block bytes).
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, GgufValue)],
    tensors: &[(String, Vec<u64>, GgmlType, Vec<u8>)],
) -> Result<()> {
    let infos: Vec<(String, Vec<u64>, GgmlType, u64)> = tensors
        .iter()
        .map(|(n, d, t, b)| (n.clone(), d.clone(), *t, b.len() as u64))
        .collect();
    let (mut out, offsets) = encode_header(metadata, &infos);
    let base = out.len() as u64;
    for ((_, _, _, data), off) in tensors.iter().zip(offsets) {
        out.resize((base + off) as usize, 0);
        out.extend_from_slice(data);
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// The bytes of a GGUF v3 header (magic, metadata, tensor infos, padding to
/// the default alignment) for tensors given as (name, ggml dims, type, byte
/// length), and each tensor's offset in the data section that follows. A
/// writer streams the tensors after it, zero-padding each to its offset.
pub fn encode_header(
    metadata: &[(String, GgufValue)],
    tensors: &[(String, Vec<u64>, GgmlType, u64)],
) -> (Vec<u8>, Vec<u64>) {
    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn type_id(v: &GgufValue) -> u32 {
        match v {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::String(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }
    fn put_val(out: &mut Vec<u8>, v: &GgufValue) {
        match v {
            GgufValue::U8(x) => out.push(*x),
            GgufValue::I8(x) => out.push(*x as u8),
            GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::Bool(x) => out.push(*x as u8),
            GgufValue::String(s) => put_str(out, s),
            GgufValue::Array(a) => {
                let et = a.first().map(type_id).unwrap_or(4);
                out.extend_from_slice(&et.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for e in a {
                    put_val(out, e);
                }
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&GGUF_MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut out, k);
        out.extend_from_slice(&type_id(v).to_le_bytes());
        put_val(&mut out, v);
    }
    let align = DEFAULT_ALIGNMENT;
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for (name, dims, ty, len) in tensors {
        put_str(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&ty.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + len).div_ceil(align) * align;
    }
    while out.len() as u64 % align != 0 {
        out.push(0);
    }
    (out, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> PathBuf {
        let p = dir.join("t.gguf");
        let md = vec![
            (
                "general.architecture".to_string(),
                GgufValue::String("llama".into()),
            ),
            ("llama.block_count".to_string(), GgufValue::U32(2)),
            ("llama.rope.freq_base".to_string(), GgufValue::F32(10000.0)),
            (
                "tokenizer.ggml.tokens".to_string(),
                GgufValue::Array(vec![
                    GgufValue::String("a".into()),
                    GgufValue::String("b".into()),
                ]),
            ),
        ];
        let data: Vec<u8> = (0..4 * 8).map(|i| i as u8).collect();
        let tensors = vec![
            ("w".to_string(), vec![4, 2], GgmlType::F32, data),
            ("q".to_string(), vec![32], GgmlType::Q8_0, vec![7u8; 34]),
        ];
        write_gguf(&p, &md, &tensors).unwrap();
        p
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample(dir.path());
        let g = GgufFile::open(&p).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.architecture(), Some("llama"));
        assert_eq!(g.get_u64("llama.block_count"), Some(2));
        assert_eq!(g.get_f64("llama.rope.freq_base"), Some(10000.0));
        assert_eq!(g.get_array("tokenizer.ggml.tokens").unwrap().len(), 2);
        assert_eq!(g.tensors.len(), 2);
        let w = g.tensor("w").unwrap();
        assert_eq!(w.shape(), vec![2, 4]);
        assert_eq!(g.tensor_data(w)[5], 5);
        let q = g.tensor("q").unwrap();
        assert_eq!(g.tensor_data(q), &[7u8; 34][..]);
    }

    #[test]
    fn errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = GgufFile::open(dir.path().join("missing.gguf")).unwrap_err();
        assert!(format!("{e:#}").contains("opening"), "{e:#}");
        let bad = dir.path().join("bad.gguf");
        std::fs::write(&bad, b"PK\x03\x04 not a gguf at all").unwrap();
        let e = GgufFile::open(&bad).unwrap_err();
        assert!(format!("{e:#}").contains("not a GGUF file"), "{e:#}");
        let p = sample(dir.path());
        let bytes = std::fs::read(&p).unwrap();
        for cut in [6, 30, 100, bytes.len() - 10] {
            let t = dir.path().join("trunc.gguf");
            std::fs::write(&t, &bytes[..cut]).unwrap();
            let e = GgufFile::open(&t).unwrap_err();
            assert!(format!("{e:#}").contains("truncated"), "cut {cut}: {e:#}");
        }
    }
}
