//! TensorBoard event files: a writer of scalar summaries and a reader (for
//! tests and for tools that want the numbers back).
//!
//! Written here rather than through the `tensorboard-rs` crate: that crate
//! pulls in protobuf 2 (generated code for the whole TensorFlow proto set)
//! and an image stack, a long build on the shared 2-core machines, for what
//! is ~150 lines: the TFRecord framing (length, masked CRC-32C of the length,
//! payload, masked CRC-32C of the payload) around hand-encoded `Event`
//! protobufs (`wall_time` = 1, `step` = 2, `file_version` = 3, `summary` = 5;
//! `Summary.value` = 1; `Value.tag` = 1, `Value.simple_value` = 2). That is
//! the format TensorBoard, tensorboardX and wandb's TensorBoard sync read.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli), bitwise-reflected table form.
fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC.
fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_varint(out, ((field << 3) | 2) as u64);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn encode_event(wall_time: f64, step: i64, body: EventBody<'_>) -> Vec<u8> {
    let mut e = Vec::new();
    e.push((1 << 3) | 1); // wall_time: double
    e.extend_from_slice(&wall_time.to_le_bytes());
    e.push(2 << 3); // step: varint
    put_varint(&mut e, step as u64);
    match body {
        EventBody::FileVersion(v) => put_bytes(&mut e, 3, v.as_bytes()),
        EventBody::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, v) in values {
                let mut value = Vec::new();
                put_bytes(&mut value, 1, tag.as_bytes());
                value.push((2 << 3) | 5); // simple_value: float
                value.extend_from_slice(&v.to_le_bytes());
                put_bytes(&mut summary, 1, &value);
            }
            put_bytes(&mut e, 5, &summary);
        }
    }
    e
}

enum EventBody<'a> {
    FileVersion(&'a str),
    Scalars(&'a [(&'a str, f32)]),
}

/// Appends scalar events to `runs/events.out.tfevents.<time>.<host>`.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Create a new event file in `dir` (created if needed).
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let mut name = format!(
            "events.out.tfevents.{}.{}.{}",
            now.as_secs(),
            host,
            std::process::id()
        );
        let mut n = 0;
        while dir.join(&name).exists() {
            n += 1;
            name = format!(
                "events.out.tfevents.{}.{}.{}.{n}",
                now.as_secs(),
                host,
                std::process::id()
            );
        }
        let path = dir.join(name);
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = EventWriter {
            path,
            out: BufWriter::new(f),
        };
        w.record(&encode_event(
            now.as_secs_f64(),
            0,
            EventBody::FileVersion("brain.Event:2"),
        ))?;
        w.flush()?;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut buf = Vec::with_capacity(data.len() + 16);
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&masked_crc(&len).to_le_bytes());
        buf.extend_from_slice(data);
        buf.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.out
            .write_all(&buf)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// One event holding several scalars at `step`.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f32)]) -> Result<()> {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let ev = encode_event(t, step as i64, EventBody::Scalars(values));
        self.record(&ev)
    }

    /// Flush to disk (after each logged step, so a crash loses nothing).
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// One scalar read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: i64,
    pub value: f32,
    pub wall_time: f64,
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let Some(&byte) = self.b.get(self.i) else {
                bail!("truncated varint");
            };
            self.i += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                bail!("varint too long");
            }
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.i + n > self.b.len() {
            bail!("truncated field");
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }
    /// (field, wire type, payload for length-delimited / fixed).
    fn field(&mut self) -> Result<(u32, Field<'a>)> {
        let key = self.varint()?;
        let (f, wt) = ((key >> 3) as u32, key & 7);
        let v = match wt {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(self.take(8)?.try_into().unwrap()),
            2 => {
                let n = self.varint()? as usize;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(self.take(4)?.try_into().unwrap()),
            other => bail!("unsupported wire type {other}"),
        };
        Ok((f, v))
    }
}

enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

/// Read every scalar summary in an event file, checking both CRCs of every
/// record.
pub fn read_scalars(path: &Path) -> Result<Vec<Scalar>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if i + 12 > data.len() {
            bail!("{}: truncated record header at byte {i}", path.display());
        }
        let len_bytes = &data[i..i + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(data[i + 8..i + 12].try_into().unwrap());
        if crc != masked_crc(len_bytes) {
            bail!("{}: bad length CRC at byte {i}", path.display());
        }
        let start = i + 12;
        if start + len + 4 > data.len() {
            bail!("{}: truncated record at byte {i}", path.display());
        }
        let payload = &data[start..start + len];
        let crc = u32::from_le_bytes(data[start + len..start + len + 4].try_into().unwrap());
        if crc != masked_crc(payload) {
            bail!("{}: bad data CRC at byte {i}", path.display());
        }
        i = start + len + 4;
        let mut r = Reader { b: payload, i: 0 };
        let (mut wall, mut step) = (0f64, 0i64);
        let mut values: Vec<(String, f32)> = Vec::new();
        while !r.done() {
            match r.field()? {
                (1, Field::Fixed64(b)) => wall = f64::from_le_bytes(b),
                (2, Field::Varint(v)) => step = v as i64,
                (5, Field::Bytes(summary)) => {
                    let mut s = Reader { b: summary, i: 0 };
                    while !s.done() {
                        if let (1, Field::Bytes(value)) = s.field()? {
                            let mut v = Reader { b: value, i: 0 };
                            let (mut tag, mut x) = (String::new(), None);
                            while !v.done() {
                                match v.field()? {
                                    (1, Field::Bytes(t)) => {
                                        tag = String::from_utf8_lossy(t).into_owned()
                                    }
                                    (2, Field::Fixed32(b)) => x = Some(f32::from_le_bytes(b)),
                                    _ => {}
                                }
                            }
                            if let Some(x) = x {
                                values.push((tag, x));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for (tag, value) in values {
            out.push(Scalar {
                tag,
                step,
                value,
                wall_time: wall,
            });
        }
    }
    Ok(out)
}

/// The event files in a `runs/` folder, oldest first.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents."))
        })
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_value() {
        // The CRC-32C check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn scalars_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalars(1, &[("train/loss", 2.5), ("train/learning_rate", 1e-4)])
            .unwrap();
        w.scalars(2, &[("train/loss", 2.0)]).unwrap();
        w.flush().unwrap();
        let files = event_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        let s = read_scalars(&files[0]).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].tag, "train/loss");
        assert_eq!(s[0].step, 1);
        assert_eq!(s[0].value, 2.5);
        assert_eq!(s[2].step, 2);
        // A flipped byte is caught by the CRC.
        let mut bytes = std::fs::read(&files[0]).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        std::fs::write(&files[0], bytes).unwrap();
        assert!(read_scalars(&files[0]).is_err());
    }
}
