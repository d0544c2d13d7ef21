//! Loss curves as PNG images (`images/train_loss.png`, `images/eval_loss.png`),
//! as ms-swift draws them after a run.
//!
//! Drawn by hand instead of through plotters: plotters' bitmap backend
//! brings the `image` stack (a long build on the shared 2-core machines) and
//! its text needs system fonts, which CI images and servers often lack. So
//! the plot has no text: a white canvas, light grid lines at 5 divisions,
//! axes, the raw curve in light blue and its exponential moving average
//! (0.9, as TensorBoard's smoothing) in dark blue. The numbers are in
//! `logging.jsonl` and TensorBoard. The PNG is 8-bit indexed, with zlib
//! "stored" blocks (no compression library needed).

use anyhow::{Context, Result};
use std::path::Path;

const W: usize = 800;
const H: usize = 480;
const MARGIN: usize = 40;

/// Palette indices.
const WHITE: u8 = 0;
const GRID: u8 = 1;
const AXIS: u8 = 2;
const RAW: u8 = 3;
const SMOOTH: u8 = 4;
const PALETTE: [[u8; 3]; 5] = [
    [255, 255, 255],
    [225, 225, 225],
    [60, 60, 60],
    [150, 190, 235],
    [25, 80, 170],
];

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas {
            px: vec![WHITE; W * H],
        }
    }
    fn set(&mut self, x: i64, y: i64, c: u8) {
        if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
            self.px[y as usize * W + x as usize] = c;
        }
    }
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: u8, thick: bool) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let x = (x0 + (x1 - x0) * t).round() as i64;
            let y = (y0 + (y1 - y0) * t).round() as i64;
            self.set(x, y, c);
            if thick {
                self.set(x, y + 1, c);
                self.set(x + 1, y, c);
            }
        }
    }
}

/// Draw `points` (x = step, y = value) and write the PNG to `path` (through
/// a temporary name). Nothing is written for fewer than one point.
pub fn write_curve(path: &Path, points: &[(f64, f64)]) -> Result<()> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        return Ok(());
    }
    let mut c = Canvas::new();
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if y1 - y0 < 1e-9 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let xr = (x1 - x0).max(1e-9);
    let (pw, ph) = ((W - 2 * MARGIN) as f64, (H - 2 * MARGIN) as f64);
    let map = |(x, y): (f64, f64)| -> (f64, f64) {
        let fx = if pts.len() == 1 { 0.5 } else { (x - x0) / xr };
        (
            MARGIN as f64 + fx * pw,
            MARGIN as f64 + (1.0 - (y - y0) / (y1 - y0)) * ph,
        )
    };
    for i in 0..=5 {
        let gx = MARGIN as f64 + pw * i as f64 / 5.0;
        let gy = MARGIN as f64 + ph * i as f64 / 5.0;
        c.line((gx, MARGIN as f64), (gx, (H - MARGIN) as f64), GRID, false);
        c.line((MARGIN as f64, gy), ((W - MARGIN) as f64, gy), GRID, false);
    }
    let (l, b, r) = (MARGIN as f64, (H - MARGIN) as f64, (W - MARGIN) as f64);
    c.line((l, MARGIN as f64), (l, b), AXIS, false);
    c.line((l, b), (r, b), AXIS, false);
    let raw: Vec<(f64, f64)> = pts.iter().map(|&p| map(p)).collect();
    let mut ema = pts[0].1;
    let smooth: Vec<(f64, f64)> = pts
        .iter()
        .map(|&(x, y)| {
            ema = 0.9 * ema + 0.1 * y;
            map((x, ema))
        })
        .collect();
    for (series, colour, thick) in [(&raw, RAW, false), (&smooth, SMOOTH, true)] {
        if series.len() == 1 {
            let (x, y) = series[0];
            for dx in -2..=2 {
                for dy in -2..=2 {
                    c.set(x as i64 + dx, y as i64 + dy, colour);
                }
            }
        }
        for w in series.windows(2) {
            c.line(w[0], w[1], colour, thick);
        }
    }
    let png = encode_png(&c.px);
    crate::train::checkpoint::write_atomic(path, &png)
        .with_context(|| format!("writing {}", path.display()))
}

fn crc32(data: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for d in data {
        for &b in *d {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

fn encode_png(px: &[u8]) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(W as u32).to_be_bytes());
    ihdr.extend_from_slice(&(H as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]); // 8-bit, indexed
    chunk(&mut out, b"IHDR", &ihdr);
    let plte: Vec<u8> = PALETTE.iter().flatten().copied().collect();
    chunk(&mut out, b"PLTE", &plte);
    // Raw scanlines with filter byte 0.
    let mut raw = Vec::with_capacity(H * (W + 1));
    for row in px.chunks_exact(W) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    // zlib: header, stored blocks, Adler-32.
    let mut z = vec![0x78, 0x01];
    let mut blocks = raw.chunks(65_535).peekable();
    while let Some(blk) = blocks.next() {
        z.push(u8::from(blocks.peek().is_none()));
        let n = blk.len() as u16;
        z.extend_from_slice(&n.to_le_bytes());
        z.extend_from_slice(&(!n).to_le_bytes());
        z.extend_from_slice(blk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss.png");
        let pts: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, 3.0 / (1.0 + i as f64)))
            .collect();
        write_curve(&p, &pts).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
            W as u32
        );
        // The known CRC-32 check value.
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert!(bytes.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }
}
