//! GGUF block formats: dequantization to f32 and the exact CPU kernels.
//!
//! The kernels keep the weights in their quantized blocks and the activations
//! in f32: a block is expanded in registers and multiplied against f32
//! activations (AVX2 + FMA when the CPU has them, detected at run time; a
//! scalar path otherwise), so the result equals a float32 matmul with the
//! dequantized weights up to summation order. Nothing rounds activations.
//!
//! [`QWeight`] is one weight matrix (`rows` x `cols`, row-major, each row a
//! whole number of blocks), backed by the GGUF memory map or by owned bytes.

use super::gguf::GgmlType;
use anyhow::{bail, Result};
use half::{bf16, f16};
use memmap2::Mmap;
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

/// Types this module can dequantize and multiply.
pub fn is_supported(t: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        t,
        F32 | F16
            | BF16
            | Q4_0
            | Q4_1
            | Q5_0
            | Q5_1
            | Q8_0
            | Q2_K
            | Q3_K
            | Q4_K
            | Q5_K
            | Q6_K
            | Q8_K
            | NF4
    )
}

/// The 16 NormalFloat-4 code values, as bitsandbytes defines them (the
/// quantiles of a standard normal, rescaled to [-1, 1], with an exact zero).
pub const NF4_CODES: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// The NF4 code nearest to `x` (already divided by the block's absmax). A
/// value exactly at a midpoint takes the lower code, as bitsandbytes'
/// decision tree (strict `>` against the midpoints) does.
pub fn nf4_code(x: f32) -> u8 {
    let mut code = 0u8;
    for i in 1..16 {
        let mid = 0.5 * (NF4_CODES[i - 1] + NF4_CODES[i]);
        if x > mid {
            code = i as u8;
        }
    }
    code
}

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Types [`quantize`] can write.
pub fn can_quantize(t: GgmlType) -> bool {
    use GgmlType::*;
    matches!(t, F32 | F16 | BF16 | Q4_0 | Q4_1 | Q8_0 | NF4)
}

/// Quantize `x` (a whole number of blocks) into `t`'s block format, bit for
/// bit as ggml's reference `quantize_row_*_ref` does (round half away from
/// zero for Q8_0, `trunc(v + 0.5)` for the 4-bit types).
pub fn quantize(t: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    use GgmlType::*;
    let bs = t.block_size();
    if x.len() % bs != 0 {
        bail!(
            "{} values are not a whole number of {t:?} blocks of {bs}",
            x.len()
        );
    }
    let mut out = Vec::with_capacity(x.len() / bs * t.type_size());
    match t {
        F32 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        F16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        BF16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        Q8_0 => {
            for b in x.chunks_exact(32) {
                let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        Q4_0 => {
            for b in x.chunks_exact(32) {
                // The value of largest magnitude, sign kept.
                let mut max = 0f32;
                for &v in b {
                    if v.abs() > max.abs() {
                        max = v;
                    }
                }
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
                for j in 0..16 {
                    out.push(q(b[j]) | (q(b[j + 16]) << 4));
                }
            }
        }
        Q4_1 => {
            for b in x.chunks_exact(32) {
                let min = b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                let max = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as i32).clamp(0, 15) as u8;
                for j in 0..16 {
                    out.push(q(b[j]) | (q(b[j + 16]) << 4));
                }
            }
        }
        NF4 => {
            // bitsandbytes' blockwise NF4: absmax per 64 values, two codes per
            // byte, the first in the high nibble.
            for b in x.chunks_exact(64) {
                let absmax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let inv = if absmax > 0.0 { 1.0 / absmax } else { 0.0 };
                out.extend_from_slice(&absmax.to_le_bytes());
                for pair in b.chunks_exact(2) {
                    out.push((nf4_code(pair[0] * inv) << 4) | nf4_code(pair[1] * inv));
                }
            }
        }
        other => {
            bail!("writing {other:?} is not supported (q4_0, q4_1, q8_0, f16, bf16, f32, nf4)")
        }
    }
    Ok(out)
}

/// Dequantize one block (`t.type_size()` bytes) into `y` (`t.block_size()` values).
pub fn dequantize_block(t: GgmlType, b: &[u8], y: &mut [f32]) {
    use GgmlType::*;
    match t {
        F32 => y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        F16 => y[0] = f16_at(b, 0),
        BF16 => y[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
        Q4_0 => {
            let d = f16_at(b, 0);
            for j in 0..16 {
                let q = b[2 + j];
                y[j] = ((q & 0xF) as i32 - 8) as f32 * d;
                y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
            }
        }
        Q4_1 => {
            let d = f16_at(b, 0);
            let m = f16_at(b, 2);
            for j in 0..16 {
                let q = b[4 + j];
                y[j] = (q & 0xF) as f32 * d + m;
                y[j + 16] = (q >> 4) as f32 * d + m;
            }
        }
        Q5_0 => {
            let d = f16_at(b, 0);
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            for j in 0..16 {
                let q = b[6 + j];
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                y[j] = (((q & 0xF) as u32 | h0) as i32 - 16) as f32 * d;
                y[j + 16] = (((q >> 4) as u32 | h1) as i32 - 16) as f32 * d;
            }
        }
        Q5_1 => {
            let d = f16_at(b, 0);
            let m = f16_at(b, 2);
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            for j in 0..16 {
                let q = b[8 + j];
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                y[j] = ((q & 0xF) as u32 | h0) as f32 * d + m;
                y[j + 16] = ((q >> 4) as u32 | h1) as f32 * d + m;
            }
        }
        Q8_0 => {
            let d = f16_at(b, 0);
            for j in 0..32 {
                y[j] = b[2 + j] as i8 as f32 * d;
            }
        }
        Q8_1 => {
            let d = f16_at(b, 0);
            for j in 0..32 {
                y[j] = b[4 + j] as i8 as f32 * d;
            }
        }
        Q2_K => {
            let scales = &b[0..16];
            let qs = &b[16..80];
            let d = f16_at(b, 80);
            let dmin = f16_at(b, 82);
            let mut is = 0;
            let mut yi = 0;
            for n in 0..2 {
                let q = &qs[n * 32..n * 32 + 32];
                let mut shift = 0;
                for _ in 0..4 {
                    for half in 0..2 {
                        let sc = scales[is];
                        is += 1;
                        let dl = d * (sc & 0xF) as f32;
                        let ml = dmin * (sc >> 4) as f32;
                        for l in 0..16 {
                            y[yi] = dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml;
                            yi += 1;
                        }
                    }
                    shift += 2;
                }
            }
        }
        Q3_K => {
            let hm = &b[0..32];
            let qs = &b[32..96];
            let sc = &b[96..108];
            let d = f16_at(b, 108);
            let mut aux = [0u32; 4];
            for (i, a) in aux.iter_mut().take(3).enumerate() {
                *a = u32::from_le_bytes([sc[4 * i], sc[4 * i + 1], sc[4 * i + 2], sc[4 * i + 3]]);
            }
            let (km1, km2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
            let tmp = aux[2];
            aux[2] = ((aux[0] >> 4) & km2) | (((tmp >> 4) & km1) << 4);
            aux[3] = ((aux[1] >> 4) & km2) | (((tmp >> 6) & km1) << 4);
            aux[0] = (aux[0] & km2) | ((tmp & km1) << 4);
            aux[1] = (aux[1] & km2) | (((tmp >> 2) & km1) << 4);
            let mut scales = [0i8; 16];
            for i in 0..16 {
                scales[i] = aux[i / 4].to_le_bytes()[i % 4] as i8;
            }
            let mut m = 1u8;
            let mut is = 0;
            let mut yi = 0;
            for n in 0..2 {
                let q = &qs[n * 32..n * 32 + 32];
                let mut shift = 0;
                for _ in 0..4 {
                    for half in 0..2 {
                        let dl = d * (scales[is] as i32 - 32) as f32;
                        is += 1;
                        for l in 0..16 {
                            let li = l + 16 * half;
                            let v =
                                ((q[li] >> shift) & 3) as i32 - if hm[li] & m != 0 { 0 } else { 4 };
                            y[yi] = dl * v as f32;
                            yi += 1;
                        }
                    }
                    shift += 2;
                    m <<= 1;
                }
            }
        }
        Q4_K => {
            let d = f16_at(b, 0);
            let dmin = f16_at(b, 2);
            let sc = &b[4..16];
            let qs = &b[16..144];
            for j in 0..4 {
                let (s1, m1) = scale_min_k4(2 * j, sc);
                let (s2, m2) = scale_min_k4(2 * j + 1, sc);
                let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
                let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
                let q = &qs[32 * j..32 * j + 32];
                for l in 0..32 {
                    y[64 * j + l] = d1 * (q[l] & 0xF) as f32 - m1;
                    y[64 * j + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
                }
            }
        }
        Q5_K => {
            let d = f16_at(b, 0);
            let dmin = f16_at(b, 2);
            let sc = &b[4..16];
            let qh = &b[16..48];
            let qs = &b[48..176];
            let (mut u1, mut u2) = (1u8, 2u8);
            for j in 0..4 {
                let (s1, m1) = scale_min_k4(2 * j, sc);
                let (s2, m2) = scale_min_k4(2 * j + 1, sc);
                let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
                let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
                let q = &qs[32 * j..32 * j + 32];
                for l in 0..32 {
                    let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                    let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                    y[64 * j + l] = d1 * ((q[l] & 0xF) + h1) as f32 - m1;
                    y[64 * j + 32 + l] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
                }
                u1 <<= 2;
                u2 <<= 2;
            }
        }
        Q6_K => {
            let ql = &b[0..128];
            let qh = &b[128..192];
            let sc = &b[192..208];
            let d = f16_at(b, 208);
            for n in 0..2 {
                let ql = &ql[64 * n..];
                let qh = &qh[32 * n..];
                let sc = &sc[8 * n..];
                let y = &mut y[128 * n..];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                    let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                    y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                    y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                    y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                    y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
                }
            }
        }
        Q8_K => {
            let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for j in 0..256 {
                y[j] = b[4 + j] as i8 as f32 * d;
            }
        }
        NF4 => {
            let absmax = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for j in 0..32 {
                let q = b[4 + j];
                y[2 * j] = NF4_CODES[(q >> 4) as usize] * absmax;
                y[2 * j + 1] = NF4_CODES[(q & 0xF) as usize] * absmax;
            }
        }
        other => panic!("dequantize_block: unsupported type {other}"),
    }
}

/// Dequantize `bytes` (a whole number of blocks of type `t`) into `out`.
pub fn dequantize_into(t: GgmlType, bytes: &[u8], out: &mut [f32]) {
    let (bs, ts) = (t.block_size(), t.type_size());
    debug_assert_eq!(bytes.len() / ts * bs, out.len());
    match t {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        _ => {
            for (y, b) in out.chunks_exact_mut(bs).zip(bytes.chunks_exact(ts)) {
                dequantize_block(t, b, y);
            }
        }
    }
}

/// Dequantize `bytes` (a whole number of blocks of type `t`) to a new vector.
pub fn dequantize(t: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    if !is_supported(t) {
        bail!("dequantizing {t} is not supported");
    }
    if bytes.len() % t.type_size() != 0 {
        bail!(
            "{} bytes is not a whole number of {t} blocks of {} bytes",
            bytes.len(),
            t.type_size()
        );
    }
    let n = bytes.len() / t.type_size() * t.block_size();
    let mut out = vec![0f32; n];
    dequantize_into(t, bytes, &mut out);
    Ok(out)
}

/// Where the bytes of a [`QWeight`] live.
#[derive(Clone)]
enum QData {
    Mapped {
        mmap: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
    Owned(Arc<Vec<u8>>),
}

/// One weight matrix kept in its GGUF block format.
#[derive(Clone)]
pub struct QWeight {
    data: QData,
    pub dtype: GgmlType,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
}

impl std::fmt::Debug for QWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QWeight({} {}x{})", self.dtype, self.rows, self.cols)
    }
}

impl QWeight {
    fn check(dtype: GgmlType, rows: usize, cols: usize, len: usize) -> Result<()> {
        if !is_supported(dtype) {
            bail!("ggml type {dtype} is not supported");
        }
        if cols % dtype.block_size() != 0 {
            bail!(
                "row length {cols} is not a multiple of the {dtype} block size {}",
                dtype.block_size()
            );
        }
        if len != rows * cols / dtype.block_size() * dtype.type_size() {
            bail!("{len} bytes do not hold a {rows}x{cols} {dtype} matrix");
        }
        Ok(())
    }

    /// A weight backed by a region of a memory map.
    pub fn mapped(
        mmap: Arc<Mmap>,
        offset: usize,
        dtype: GgmlType,
        rows: usize,
        cols: usize,
    ) -> Result<QWeight> {
        let len = rows * cols / dtype.block_size() * dtype.type_size();
        Self::check(dtype, rows, cols, len)?;
        if offset + len > mmap.len() {
            bail!("weight extends past the end of the file");
        }
        Ok(QWeight {
            data: QData::Mapped { mmap, offset, len },
            dtype,
            rows,
            cols,
        })
    }

    /// A weight from owned bytes.
    pub fn owned(bytes: Vec<u8>, dtype: GgmlType, rows: usize, cols: usize) -> Result<QWeight> {
        Self::check(dtype, rows, cols, bytes.len())?;
        Ok(QWeight {
            data: QData::Owned(Arc::new(bytes)),
            dtype,
            rows,
            cols,
        })
    }

    /// The raw block bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            QData::Mapped { mmap, offset, len } => &mmap[*offset..*offset + *len],
            QData::Owned(v) => v,
        }
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.dtype.block_size() * self.dtype.type_size()
    }

    /// The raw bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.bytes()[r * rb..(r + 1) * rb]
    }

    /// A copy with the rows reordered: new row `i` is old row `perm[i]`.
    pub fn permute_rows(&self, perm: &[usize]) -> Result<QWeight> {
        if perm.len() != self.rows {
            bail!(
                "row permutation of length {} for {} rows",
                perm.len(),
                self.rows
            );
        }
        let rb = self.row_bytes();
        let mut out = Vec::with_capacity(self.rows * rb);
        for &p in perm {
            out.extend_from_slice(self.row(p));
        }
        QWeight::owned(out, self.dtype, self.rows, self.cols)
    }

    /// Dequantize row `r` into `out` (`cols` values).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        dequantize_into(self.dtype, self.row(r), out);
    }

    /// The whole matrix as f32, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        out.par_chunks_mut(self.cols)
            .enumerate()
            .for_each(|(r, o)| self.dequantize_row(r, o));
        out
    }

    /// Size in bytes.
    pub fn n_bytes(&self) -> usize {
        self.rows * self.row_bytes()
    }
}

// ---------------------------------------------------------------------------
// Kernels

pub(crate) fn has_avx2() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Per-32-block sums of `x` (used by the Q4_0 / Q4_1 kernels for the offset term).
fn block_sums(x: &[f32]) -> Vec<f32> {
    x.chunks_exact(32).map(|c| c.iter().sum()).collect()
}

/// f32 dot product.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { avx2::dot_f32(a, b) };
    }
    let mut s = [0f32; 8];
    let n8 = a.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        for k in 0..8 {
            s[k] += a[i + k] * b[i + k];
        }
    }
    let mut t: f32 = s.iter().sum();
    for i in n8..a.len() {
        t += a[i] * b[i];
    }
    t
}

/// Dot products of rows `r0..r0 + y.len()` of `w` with `x` into `y`.
/// `xs` are the 32-block sums of `x`.
fn dot_rows(w: &QWeight, x: &[f32], xs: &[f32], y: &mut [f32], r0: usize) {
    let rb = w.row_bytes();
    let bytes = &w.bytes()[r0 * rb..(r0 + y.len()) * rb];
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2/FMA/F16C present; slices are sized by construction.
        unsafe {
            match w.dtype {
                GgmlType::Q4_1 => {
                    avx2::rows_q4_1(bytes, x, xs, y);
                    return;
                }
                GgmlType::Q4_0 => {
                    avx2::rows_q4_0(bytes, x, xs, y);
                    return;
                }
                GgmlType::Q8_0 => {
                    avx2::rows_q8_0(bytes, x, y);
                    return;
                }
                _ => {}
            }
        }
    }
    match w.dtype {
        GgmlType::Q4_1 => {
            for (o, row) in y.iter_mut().zip(bytes.chunks_exact(rb)) {
                let mut acc = 0f32;
                for (b, blk) in row.chunks_exact(20).enumerate() {
                    let d = f16_at(blk, 0);
                    let m = f16_at(blk, 2);
                    let xb = &x[b * 32..b * 32 + 32];
                    let mut s = 0f32;
                    for j in 0..16 {
                        let q = blk[4 + j];
                        s += (q & 0xF) as f32 * xb[j] + (q >> 4) as f32 * xb[j + 16];
                    }
                    acc += d * s + m * xs[b];
                }
                *o = acc;
            }
        }
        t => {
            // Generic: expand one block at a time and dot in f32.
            let (bs, ts) = (t.block_size(), t.type_size());
            let mut buf = [0f32; 256];
            for (o, row) in y.iter_mut().zip(bytes.chunks_exact(rb)) {
                let mut acc = 0f32;
                for (b, blk) in row.chunks_exact(ts).enumerate() {
                    dequantize_block(t, blk, &mut buf[..bs]);
                    acc += dot_f32(&buf[..bs], &x[b * bs..(b + 1) * bs]);
                }
                *o = acc;
            }
        }
    }
}

/// Rows per parallel task for a matrix-vector product.
fn chunk_rows(rows: usize, row_bytes: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    // At least ~16 KiB of weights per task, at most 4 tasks per thread.
    let min_rows = (16384 / row_bytes.max(1)).max(4);
    (rows.div_ceil(threads * 4)).max(min_rows).min(rows.max(1))
}

/// Rows per task on the decode pool: a few tasks per thread (a preempted
/// thread's share is picked up by the others), rounded to even rows (the
/// kernels walk rows in pairs) and at least ~32 KiB of weights.
fn pool_chunk_rows(rows: usize, row_bytes: usize) -> usize {
    let threads = super::pool::threads();
    if threads == 1 {
        return rows.max(1);
    }
    let min_rows = (32768 / row_bytes.max(1)).max(4);
    let ch = rows.div_ceil(threads * 3).max(min_rows);
    (ch + (ch & 1)).min(rows.max(1))
}

/// `y = W x` for one activation vector (`x.len() == cols`, `y.len() == rows`).
pub fn matvec(w: &QWeight, x: &[f32], y: &mut [f32]) {
    matvec_many(&[w], x, &mut [y]);
}

/// Several matrix-vector products sharing one input, in one parallel region
/// (e.g. the q, k, v projections), on the spinning decode pool.
pub fn matvec_many(ws: &[&QWeight], x: &[f32], ys: &mut [&mut [f32]]) {
    use super::pool::{self, SyncPtr};
    let xs = block_sums(x);
    let mut jobs: Vec<(&QWeight, usize, SyncPtr<f32>, usize)> = Vec::new();
    for (w, y) in ws.iter().zip(ys.iter_mut()) {
        assert_eq!(x.len(), w.cols);
        assert_eq!(y.len(), w.rows);
        let ch = pool_chunk_rows(w.rows, w.row_bytes());
        let p = SyncPtr(y.as_mut_ptr());
        let mut r0 = 0;
        while r0 < w.rows {
            let nr = ch.min(w.rows - r0);
            jobs.push((w, r0, p, nr));
            r0 += nr;
        }
    }
    pool::run(jobs.len(), |j| {
        let (w, r0, p, nr) = jobs[j];
        // SAFETY: the jobs of one output cover disjoint row ranges of it.
        let yc = unsafe { p.slice(r0, nr) };
        dot_rows(w, x, &xs, yc, r0);
    });
}

/// `Y = X W^T` for `t` activation rows: `x` is `[t, cols]`, `y` is `[t, rows]`.
/// Rows of W are expanded to f32 once per tile and reused for all `t` inputs.
pub fn matmul(w: &QWeight, x: &[f32], t: usize, y: &mut [f32]) {
    assert_eq!(x.len(), t * w.cols);
    assert_eq!(y.len(), t * w.rows);
    if t == 1 {
        return matvec(w, x, y);
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() && matches!(w.dtype, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0) {
        // Each block decoded once for up to four rows; bit-identical to the
        // tiles below (see `batched::qmatmul`).
        return super::batched::qmatmul(w, x, t, y);
    }
    const TILE: usize = 8;
    let (rows, cols) = (w.rows, w.cols);
    let n_tiles = rows.div_ceil(TILE);
    // Each tile writes a column block of y; collect per tile, then scatter.
    let tiles: Vec<(usize, Vec<f32>)> = (0..n_tiles)
        .into_par_iter()
        .map(|ti| {
            let r0 = ti * TILE;
            let nr = TILE.min(rows - r0);
            let mut wbuf = vec![0f32; nr * cols];
            for r in 0..nr {
                w.dequantize_row(r0 + r, &mut wbuf[r * cols..(r + 1) * cols]);
            }
            let mut out = vec![0f32; t * nr];
            for ti in 0..t {
                let xr = &x[ti * cols..(ti + 1) * cols];
                for r in 0..nr {
                    out[ti * nr + r] = dot_f32(&wbuf[r * cols..(r + 1) * cols], xr);
                }
            }
            (r0, out)
        })
        .collect();
    for (r0, out) in tiles {
        let nr = out.len() / t;
        for ti in 0..t {
            y[ti * rows + r0..ti * rows + r0 + nr].copy_from_slice(&out[ti * nr..(ti + 1) * nr]);
        }
    }
}

/// `Y = X W^T` for a dense f32 weight `w` (`[rows, cols]` row-major).
pub fn matmul_f32(w: &[f32], rows: usize, cols: usize, x: &[f32], t: usize, y: &mut [f32]) {
    assert_eq!(w.len(), rows * cols);
    assert_eq!(x.len(), t * cols);
    assert_eq!(y.len(), t * rows);
    let ch = chunk_rows(rows, cols * 4);
    // Parallel over rows; each task handles all t inputs for its rows.
    let mut out_t = vec![0f32; t * rows];
    out_t
        .par_chunks_mut(ch * t)
        .enumerate()
        .for_each(|(ci, oc)| {
            let r0 = ci * ch;
            let nr = oc.len() / t;
            for r in 0..nr {
                let wr = &w[(r0 + r) * cols..(r0 + r + 1) * cols];
                for ti in 0..t {
                    oc[r * t + ti] = dot_f32(wr, &x[ti * cols..(ti + 1) * cols]);
                }
            }
        });
    for r in 0..rows {
        for ti in 0..t {
            y[ti * rows + r] = out_t[r * t + ti];
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// How far ahead (bytes) the kernels prefetch weight rows. Measured on
    /// the 66 MB of SmolLM2's Q4_1 layers, one thread: 640 bytes per row
    /// stream 14.4 ms, one sequential stream 2048 bytes ahead 10.6 ms,
    /// 4096 ahead 10.7 ms (a plain read of the bytes: 6.8 ms).
    const PREFETCH: usize = 3072;

    /// The sum of the eight lanes (the order every AVX2 kernel here uses).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// The f16 at `p` (unaligned) as f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn h2f(p: *const u8) -> f32 {
        let bits = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8 * k)),
                    _mm256_loadu_ps(pb.add(i + 8 * k)),
                    *a,
                );
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i)),
                _mm256_loadu_ps(pb.add(i)),
                acc[0],
            );
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut t = hsum(s);
        while i < n {
            t += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        t
    }

    /// Sum over one 32-block of nibbles q (16 bytes at `p`) times x (32 floats at `xb`).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn nib_dot(p: *const u8, xb: *const f32) -> __m256 {
        let mask = _mm256_set1_epi32(0xF);
        let b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i));
        let b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8) as *const __m128i));
        let lo0 = _mm256_cvtepi32_ps(_mm256_and_si256(b0, mask));
        let hi0 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4));
        let lo1 = _mm256_cvtepi32_ps(_mm256_and_si256(b1, mask));
        let hi1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4));
        let s = _mm256_mul_ps(lo0, _mm256_loadu_ps(xb));
        let s = _mm256_fmadd_ps(lo1, _mm256_loadu_ps(xb.add(8)), s);
        let s = _mm256_fmadd_ps(hi0, _mm256_loadu_ps(xb.add(16)), s);
        _mm256_fmadd_ps(hi1, _mm256_loadu_ps(xb.add(24)), s)
    }

    /// Ask for the first [`PREFETCH`] bytes of a task's weights (the
    /// running prefetch below starts that far ahead).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn prefetch_head(bytes: &[u8]) {
        let mut i = 0;
        while i < PREFETCH.min(bytes.len()) {
            _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(i) as *const i8);
            i += 64;
        }
    }

    /// One running prefetch `PREFETCH` bytes ahead of the point reached in
    /// the (contiguous) rows of a task; nothing past its end.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn prefetch_at(pf: usize, end: usize) {
        if pf < end {
            _mm_prefetch::<_MM_HINT_T0>(pf as *const i8);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn rows_q4_1(bytes: &[u8], x: &[f32], xs: &[f32], y: &mut [f32]) {
        let nb = x.len() / 32;
        let rb = nb * 20;
        let nrows = y.len();
        prefetch_head(bytes);
        let end = bytes.as_ptr() as usize + bytes.len();
        let mut pf = bytes.as_ptr() as usize + PREFETCH;
        let mut r = 0;
        // Two rows at a time: independent chains for the out-of-order core.
        let lane2 = _mm256_set1_epi32(2);
        while r + 2 <= nrows {
            let p0 = bytes.as_ptr().add(r * rb);
            let p1 = p0.add(rb);
            let mut a0 = _mm256_setzero_ps();
            let mut a1 = _mm256_setzero_ps();
            // Lanes: d0 m0 d1 m1 products; the m lanes sum m * block sum.
            let mut macc = _mm_setzero_ps();
            for b in 0..nb {
                let xb = x.as_ptr().add(b * 32);
                let q0 = p0.add(b * 20);
                let q1 = p1.add(b * 20);
                // The pair of rows is one contiguous region: one line
                // requested per 40 bytes read.
                prefetch_at(pf, end);
                pf += 40;
                // Both rows' (d, m) halves converted in one instruction.
                let dm = _mm_cvtph_ps(_mm_insert_epi32::<1>(
                    _mm_cvtsi32_si128((q0 as *const i32).read_unaligned()),
                    (q1 as *const i32).read_unaligned(),
                ));
                let s0 = nib_dot(q0.add(4), xb);
                let s1 = nib_dot(q1.add(4), xb);
                a0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), s0, a0);
                a1 = _mm256_fmadd_ps(
                    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dm), lane2),
                    s1,
                    a1,
                );
                macc = _mm_fmadd_ps(dm, _mm_set1_ps(*xs.get_unchecked(b)), macc);
            }
            let mut m = [0f32; 4];
            _mm_storeu_ps(m.as_mut_ptr(), macc);
            y[r] = hsum(a0) + m[1];
            y[r + 1] = hsum(a1) + m[3];
            r += 2;
        }
        while r < nrows {
            let p0 = bytes.as_ptr().add(r * rb);
            let mut a0 = _mm256_setzero_ps();
            let mut m0 = 0f32;
            for b in 0..nb {
                let q0 = p0.add(b * 20);
                let s0 = nib_dot(q0.add(4), x.as_ptr().add(b * 32));
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(q0)), s0, a0);
                m0 += h2f(q0.add(2)) * *xs.get_unchecked(b);
            }
            y[r] = hsum(a0) + m0;
            r += 1;
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn rows_q4_0(bytes: &[u8], x: &[f32], xs: &[f32], y: &mut [f32]) {
        let nb = x.len() / 32;
        let rb = nb * 18;
        for (r, o) in y.iter_mut().enumerate() {
            let p0 = bytes.as_ptr().add(r * rb);
            let mut a0 = _mm256_setzero_ps();
            let mut m0 = 0f32;
            for b in 0..nb {
                let q0 = p0.add(b * 18);
                let d = h2f(q0);
                let s0 = nib_dot(q0.add(2), x.as_ptr().add(b * 32));
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(d), s0, a0);
                m0 -= 8.0 * d * *xs.get_unchecked(b);
            }
            *o = hsum(a0) + m0;
        }
    }

    /// 32 int8 weights at `qs` times 32 floats at `xb` (before the scale).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_dot(qs: *const u8, xb: *const f32) -> __m256 {
        let v0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(qs as *const __m128i)));
        let v1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
            qs.add(8) as *const __m128i
        )));
        let v2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
            qs.add(16) as *const __m128i
        )));
        let v3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
            qs.add(24) as *const __m128i
        )));
        let s = _mm256_mul_ps(v0, _mm256_loadu_ps(xb));
        let s = _mm256_fmadd_ps(v1, _mm256_loadu_ps(xb.add(8)), s);
        let s = _mm256_fmadd_ps(v2, _mm256_loadu_ps(xb.add(16)), s);
        _mm256_fmadd_ps(v3, _mm256_loadu_ps(xb.add(24)), s)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn rows_q8_0(bytes: &[u8], x: &[f32], y: &mut [f32]) {
        let nb = x.len() / 32;
        let rb = nb * 34;
        let nrows = y.len();
        prefetch_head(bytes);
        let end = bytes.as_ptr() as usize + bytes.len();
        let mut pf = bytes.as_ptr() as usize + PREFETCH;
        let mut r = 0;
        // Two rows at a time (one contiguous region); each row keeps two
        // accumulators, even and odd blocks.
        while r + 2 <= nrows {
            let p0 = bytes.as_ptr().add(r * rb);
            let p1 = p0.add(rb);
            let mut a = [_mm256_setzero_ps(); 4];
            for b in 0..nb {
                prefetch_at(pf, end);
                pf += 68;
                let xb = x.as_ptr().add(b * 32);
                let q0 = p0.add(b * 34);
                let q1 = p1.add(b * 34);
                let s0 = q8_dot(q0.add(2), xb);
                let s1 = q8_dot(q1.add(2), xb);
                let k = b % 2;
                a[k] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(q0)), s0, a[k]);
                a[2 + k] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(q1)), s1, a[2 + k]);
            }
            y[r] = hsum(_mm256_add_ps(a[0], a[1]));
            y[r + 1] = hsum(_mm256_add_ps(a[2], a[3]));
            r += 2;
        }
        while r < nrows {
            let p0 = bytes.as_ptr().add(r * rb);
            let mut a = [_mm256_setzero_ps(); 2];
            for b in 0..nb {
                let q = p0.add(b * 34);
                let s = q8_dot(q.add(2), x.as_ptr().add(b * 32));
                a[b % 2] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(q)), s, a[b % 2]);
            }
            y[r] = hsum(_mm256_add_ps(a[0], a[1]));
            r += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: f32) -> [u8; 2] {
        f16::from_f32(v).to_bits().to_le_bytes()
    }

    #[test]
    fn q4_0_and_q4_1_blocks() {
        let mut b = Vec::new();
        b.extend_from_slice(&h(0.5));
        for j in 0..16u8 {
            b.push(j | ((15 - j) << 4));
        }
        let y = dequantize(GgmlType::Q4_0, &b).unwrap();
        assert_eq!(y[0], -4.0);
        assert_eq!(y[15], 3.5);
        assert_eq!(y[16], 3.5);
        assert_eq!(y[31], -4.0);
        let mut b = Vec::new();
        b.extend_from_slice(&h(2.0));
        b.extend_from_slice(&h(-1.0));
        for j in 0..16u8 {
            b.push(j | (3 << 4));
        }
        let y = dequantize(GgmlType::Q4_1, &b).unwrap();
        assert_eq!(y[0], -1.0);
        assert_eq!(y[5], 9.0);
        assert_eq!(y[20], 5.0);
    }

    #[test]
    fn q8_0_and_q5_blocks() {
        let mut b = Vec::new();
        b.extend_from_slice(&h(0.25));
        for j in 0..32i8 {
            b.push((j - 16) as u8);
        }
        let y = dequantize(GgmlType::Q8_0, &b).unwrap();
        assert_eq!(y[0], -4.0);
        assert_eq!(y[31], 3.75);
        // Q5_0: high bit of element 0 and of element 16 set.
        let mut b = Vec::new();
        b.extend_from_slice(&h(1.0));
        b.extend_from_slice(&(1u32 | (1 << 16)).to_le_bytes());
        b.extend_from_slice(&[0x21; 16]);
        let y = dequantize(GgmlType::Q5_0, &b).unwrap();
        assert_eq!(y[0], (1 + 16 - 16) as f32);
        assert_eq!(y[1], (1 - 16) as f32);
        assert_eq!(y[16], (2 + 16 - 16) as f32);
        assert_eq!(y[17], (2 - 16) as f32);
    }

    #[test]
    fn q4_k_block() {
        // d = 1, dmin = 0.5; sub-block 0 scale 2 min 3; sub-block 1 scale 4 min 1.
        let mut b = Vec::new();
        b.extend_from_slice(&h(1.0));
        b.extend_from_slice(&h(0.5));
        let mut sc = [0u8; 12];
        sc[0] = 2;
        sc[1] = 4;
        sc[4] = 3;
        sc[5] = 1;
        b.extend_from_slice(&sc);
        let mut qs = [0u8; 128];
        qs[0] = 0x5A; // low nibble 10 (sub-block 0), high nibble 5 (sub-block 1)
        b.extend_from_slice(&qs);
        let y = dequantize(GgmlType::Q4_K, &b).unwrap();
        assert_eq!(y[0], 2.0 * 10.0 - 1.5);
        assert_eq!(y[32], 4.0 * 5.0 - 0.5);
        assert_eq!(y[1], -1.5);
        assert_eq!(y[64], 0.0);
    }

    #[test]
    fn q6_k_block() {
        let mut b = vec![0u8; 210];
        b[0] = 0x03; // ql[0] low nibble 3 -> element 0
        b[128] = 0x02; // qh[0] bits 0-1 = 2 -> element 0 gets +32
        b[192] = 5u8; // scale 0
        b[208..210].copy_from_slice(&h(0.5));
        let y = dequantize(GgmlType::Q6_K, &b).unwrap();
        assert_eq!(y[0], 0.5 * 5.0 * ((3 | (2 << 4)) - 32) as f32);
        assert_eq!(y[1], 0.5 * 5.0 * -32.0);
        assert_eq!(y[16], 0.0); // scale 1 is 0
    }

    fn rand_blocks(t: GgmlType, n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        let mut out = Vec::new();
        for _ in 0..n {
            let mut blk: Vec<u8> = (0..t.type_size())
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (s >> 33) as u8
                })
                .collect();
            // Sane f16 scales.
            let (d_off, m_off) = match t {
                GgmlType::Q4_0 | GgmlType::Q8_0 | GgmlType::Q5_0 => (0, None),
                GgmlType::Q4_1 | GgmlType::Q5_1 => (0, Some(2)),
                GgmlType::Q4_K | GgmlType::Q5_K => (0, Some(2)),
                GgmlType::Q6_K => (208, None),
                GgmlType::Q3_K => (108, None),
                GgmlType::Q2_K => (80, Some(82)),
                _ => (usize::MAX, None),
            };
            if d_off != usize::MAX {
                let v = h(0.01 + (blk[d_off] as f32) / 5000.0);
                blk[d_off..d_off + 2].copy_from_slice(&v);
            }
            if let Some(m) = m_off {
                let v = h(-0.02 + (blk[m] as f32) / 9000.0);
                blk[m..m + 2].copy_from_slice(&v);
            }
            out.extend_from_slice(&blk);
        }
        out
    }

    #[test]
    fn kernels_match_dequantized_dot() {
        use GgmlType::*;
        for t in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K] {
            let (rows, cols) = (13, 512);
            let bytes = rand_blocks(t, rows * cols / t.block_size(), 7);
            let w = QWeight::owned(bytes, t, rows, cols).unwrap();
            let wf = w.dequantize();
            let x: Vec<f32> = (0..3 * cols)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
                .collect();
            let mut y = vec![0f32; rows];
            matvec(&w, &x[..cols], &mut y);
            let mut y3 = vec![0f32; 3 * rows];
            matmul(&w, &x, 3, &mut y3);
            let mut yf = vec![0f32; 3 * rows];
            matmul_f32(&wf, rows, cols, &x, 3, &mut yf);
            for r in 0..rows {
                let want: f64 = (0..cols)
                    .map(|c| wf[r * cols + c] as f64 * x[c] as f64)
                    .sum();
                let tol = 1e-4 * (1.0 + want.abs());
                assert!(
                    (y[r] as f64 - want).abs() < tol,
                    "{t} row {r}: {} vs {want}",
                    y[r]
                );
                assert!((y3[r] as f64 - want).abs() < tol, "{t} matmul row {r}");
                assert!((yf[r] as f64 - want).abs() < tol, "{t} f32 row {r}");
            }
            for i in 0..3 * rows {
                assert!(
                    (y3[i] - yf[i]).abs() < 1e-3 * (1.0 + yf[i].abs()),
                    "{t} {i}"
                );
            }
        }
    }

    #[test]
    fn nf4_matches_the_bitsandbytes_table() {
        // Every code value times the absmax comes back exactly.
        let absmax = 2.5f32;
        let mut x: Vec<f32> = NF4_CODES.iter().map(|c| c * absmax).collect();
        x.extend(NF4_CODES.iter().rev().map(|c| c * absmax));
        x.extend(std::iter::repeat_n(0.0, 32));
        let q = quantize(GgmlType::NF4, &x).unwrap();
        assert_eq!(q.len(), 36);
        assert_eq!(f32::from_le_bytes(q[..4].try_into().unwrap()), absmax);
        // Codes 0,1 in the first byte: high nibble first, as bitsandbytes packs.
        assert_eq!(q[4], 0x01);
        assert_eq!(q[11], 0xEF);
        assert_eq!(q[12], 0xFE);
        assert_eq!(q[20], 0x77, "zero is code 7");
        let back = dequantize(GgmlType::NF4, &q).unwrap();
        assert_eq!(back, x);
        // Midpoints (bitsandbytes' thresholds): just above goes up, at or below stays.
        assert_eq!(nf4_code(0.039_790_15 + 1e-6), 8);
        assert_eq!(nf4_code(0.039_790_15 - 1e-6), 7);
        assert_eq!(nf4_code(-0.848_096_4 - 1e-6), 0);
        assert_eq!(nf4_code(-0.848_096_4 + 1e-6), 1);
        assert_eq!(nf4_code(0.861_478_4 + 1e-6), 15);
        assert_eq!(nf4_code(0.861_478_4 - 1e-6), 14);
        // Random data: the error is at most half the widest code gap.
        let mut g = 12345u64;
        let x: Vec<f32> = (0..640)
            .map(|_| {
                g = g.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((g >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        let back = dequantize(GgmlType::NF4, &quantize(GgmlType::NF4, &x).unwrap()).unwrap();
        for (blk, bb) in x.chunks(64).zip(back.chunks(64)) {
            let am = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in blk.iter().zip(bb) {
                assert!((a - b).abs() <= 0.5 * 0.304 * am + 1e-6, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn permute_rows_reorders() {
        let bytes = rand_blocks(GgmlType::Q8_0, 4, 3);
        let w = QWeight::owned(bytes, GgmlType::Q8_0, 4, 32).unwrap();
        let p = w.permute_rows(&[2, 0, 3, 1]).unwrap();
        assert_eq!(p.row(0), w.row(2));
        assert_eq!(p.row(3), w.row(1));
    }
}
