//! PNG encoding of an RGB canvas: 8-bit truecolour, no interlace, one IDAT
//! compressed by flate2 (already built for parquet, so it costs no build
//! time), and, for tests, the matching decoder.

use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;

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

/// Encode `w` x `h` pixels, row-major RGB.
pub fn encode(w: usize, h: usize, px: &[[u8; 3]]) -> Vec<u8> {
    assert_eq!(px.len(), w * h);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, truecolour
    chunk(&mut out, b"IHDR", &ihdr);
    // Scanlines with filter 0 (none): the picture is mostly runs of one
    // colour, which deflate handles without a filter's help.
    let mut raw = Vec::with_capacity(h * (3 * w + 1));
    for row in px.chunks_exact(w) {
        raw.push(0);
        raw.extend(row.iter().flatten());
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&raw)
        .expect("deflating into memory cannot fail");
    let z = z.finish().expect("deflating into memory cannot fail");
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Decode a PNG written by [`encode`] (8-bit RGB, filter 0 on every row):
/// width, height and pixels. Checks signature, chunk CRCs and the layout.
#[cfg(test)]
pub fn decode(bytes: &[u8]) -> Result<(usize, usize, Vec<[u8; 3]>), String> {
    use std::io::Read;
    if bytes.len() < 8 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" {
        return Err("not a PNG signature".into());
    }
    let (mut w, mut h) = (0usize, 0usize);
    let mut idat = Vec::new();
    let mut pos = 8;
    let mut ended = false;
    while pos + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = bytes[pos + 4..pos + 8].try_into().unwrap();
        let data = bytes
            .get(pos + 8..pos + 8 + len)
            .ok_or("chunk runs past the end")?;
        let crc = u32::from_be_bytes(
            bytes
                .get(pos + 8 + len..pos + 12 + len)
                .ok_or("chunk CRC missing")?
                .try_into()
                .unwrap(),
        );
        if crc != crc32(&[&kind, data]) {
            return Err(format!("bad CRC in {}", String::from_utf8_lossy(&kind)));
        }
        match &kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                if data[8..13] != [8, 2, 0, 0, 0] {
                    return Err(format!("unsupported IHDR {:?}", &data[8..13]));
                }
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => {
                ended = true;
                break;
            }
            _ => {}
        }
        pos += 12 + len;
    }
    if !ended {
        return Err("no IEND".into());
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| format!("inflate: {e}"))?;
    let stride = 3 * w;
    if raw.len() != h * (stride + 1) {
        return Err(format!("{} bytes of scanlines for {w}x{h}", raw.len()));
    }
    let mut img = Vec::with_capacity(h * stride);
    for (y, line) in raw.chunks_exact(stride + 1).enumerate() {
        if line[0] != 0 {
            return Err(format!("filter {} on row {y} (only 0 is written)", line[0]));
        }
        img.extend_from_slice(&line[1..]);
    }
    let px = img.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    Ok((w, h, px))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_crc() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        let (w, h) = (7, 3);
        let px: Vec<[u8; 3]> = (0..w * h).map(|i| [i as u8, 2 * i as u8, 255]).collect();
        let png = encode(w, h, &px);
        assert_eq!(&png[12..16], b"IHDR");
        assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
        assert_eq!(decode(&png).unwrap(), (w, h, px));
        let mut bad = png.clone();
        let n = bad.len();
        bad[n - 20] ^= 1; // inside IDAT
        assert!(decode(&bad).is_err());
    }
}
