//! Reading dataset files into rows: JSON Lines, JSON arrays, CSV and Parquet.
//!
//! Every row is a JSON object (`serde_json::Map`) with the place it came
//! from ([`Loc`]), so that a malformed row can be named precisely:
//!
//! | format  | location                                   | example              |
//! |---------|--------------------------------------------|----------------------|
//! | JSONL   | line, 1-based                              | `train.jsonl line 3` |
//! | JSON    | array element, 0-based index               | `train.json [2]`     |
//! | CSV     | line of the record, 1-based (header = 1)   | `train.csv line 4`   |
//! | Parquet | row, 0-based index (as `df.iloc[i]`)       | `train.parquet row [5]` |
//!
//! CSV cells are strings; an empty cell is an empty string (and an empty
//! optional column counts as absent). Cells that hold lists (`messages`,
//! `conversations`, `history`) may be written as JSON text: the layouts
//! parse them.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

/// A file format we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Json,
    Csv,
    Parquet,
}

impl Format {
    /// The format of a file by its extension (`.jsonl`/`.ndjson`, `.json`,
    /// `.csv`, `.parquet`).
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "jsonl" | "ndjson" => Format::Jsonl,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "parquet" => Format::Parquet,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// Where a row is in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pos {
    /// A 1-based line (JSON Lines, CSV records).
    Line(usize),
    /// A 0-based index of a JSON array element.
    Element(usize),
    /// A 0-based Parquet row index.
    Row(usize),
}

/// A row's file and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: PathBuf,
    pub pos: Pos,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.pos {
            Pos::Line(n) => write!(f, "{file} line {n}"),
            Pos::Element(i) => write!(f, "{file} [{i}]"),
            Pos::Row(i) => write!(f, "{file} row [{i}]"),
        }
    }
}

/// One row of a dataset file.
#[derive(Clone, Debug)]
pub struct Row {
    pub loc: Loc,
    pub value: Map<String, Value>,
}

/// A row that could not be read at all (not JSON, not an object, a CSV
/// record of the wrong width).
#[derive(Clone, Debug)]
pub struct ReadError {
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// The rows of one file and the rows that could not be read. Errors that
/// make the whole file unreadable (missing file, not a Parquet file) are
/// returned as `Err`.
#[derive(Debug, Default)]
pub struct FileRows {
    pub rows: Vec<Row>,
    pub bad: Vec<ReadError>,
}

/// Read a file in the format its extension names.
pub fn read_file(path: &Path) -> Result<FileRows> {
    let Some(format) = Format::of(path) else {
        bail!(
            "{}: unknown dataset format (expected .jsonl, .json, .csv or .parquet)",
            path.display()
        );
    };
    read_as(path, format)
}

/// Read a file as `format`.
pub fn read_as(path: &Path, format: Format) -> Result<FileRows> {
    match format {
        Format::Jsonl => read_jsonl(path),
        Format::Json => read_json(path),
        Format::Csv => read_csv(path),
        Format::Parquet => read_parquet(path),
    }
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text: {e}", path.display()))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(s) => s.to_string(),
        None => text,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The JSON type of a value, for messages ("a number", "null", ...).
pub fn type_name(v: &Value) -> &'static str {
    kind(v)
}

fn push_value(out: &mut FileRows, loc: Loc, v: Value) {
    match v {
        Value::Object(m) => out.rows.push(Row { loc, value: m }),
        other => out.bad.push(ReadError {
            loc,
            message: format!("expected a JSON object, found {}", kind(&other)),
        }),
    }
}

fn jsonl_rows(path: &Path, text: &str) -> FileRows {
    let mut out = FileRows::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let loc = Loc {
            file: path.to_path_buf(),
            pos: Pos::Line(i + 1),
        };
        match serde_json::from_str::<Value>(line) {
            Ok(v) => push_value(&mut out, loc, v),
            Err(e) => out.bad.push(ReadError {
                loc,
                message: format!("not valid JSON: {e}"),
            }),
        }
    }
    out
}

fn read_jsonl(path: &Path) -> Result<FileRows> {
    let text = read_text(path)?;
    Ok(jsonl_rows(path, &text))
}

fn read_json(path: &Path) -> Result<FileRows> {
    let text = read_text(path)?;
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        // A `.json` file that is really JSON Lines (common on the hubs).
        Err(_) if text.trim_start().starts_with('{') && text.trim().lines().count() > 1 => {
            return Ok(jsonl_rows(path, &text));
        }
        Err(e) => bail!("{}: not valid JSON: {e}", path.display()),
    };
    let mut out = FileRows::default();
    match v {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let loc = Loc {
                    file: path.to_path_buf(),
                    pos: Pos::Element(i),
                };
                push_value(&mut out, loc, item);
            }
        }
        // A single object: one row.
        Value::Object(m) => out.rows.push(Row {
            loc: Loc {
                file: path.to_path_buf(),
                pos: Pos::Element(0),
            },
            value: m,
        }),
        other => bail!(
            "{}: expected a JSON array of objects, found {}",
            path.display(),
            kind(&other)
        ),
    }
    Ok(out)
}

fn read_csv(path: &Path) -> Result<FileRows> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut out = FileRows::default();
    let mut record = csv::StringRecord::new();
    // The line of the last good record, to place errors that carry none.
    let mut last_line = 1;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .map(|p| p.line() as usize)
                    .unwrap_or(last_line + 1);
                last_line = line;
                let mut m = Map::new();
                for (h, cell) in headers.iter().zip(record.iter()) {
                    m.insert(h.clone(), Value::String(cell.to_string()));
                }
                out.rows.push(Row {
                    loc: Loc {
                        file: path.to_path_buf(),
                        pos: Pos::Line(line),
                    },
                    value: m,
                });
            }
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| p.line() as usize)
                    .unwrap_or(last_line + 1);
                last_line = line;
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("the record has {len} fields, the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
                    csv::ErrorKind::Io(_) => {
                        return Err(e).with_context(|| format!("reading {}", path.display()))
                    }
                    _ => e.to_string(),
                };
                out.bad.push(ReadError {
                    loc: Loc {
                        file: path.to_path_buf(),
                        pos: Pos::Line(line),
                    },
                    message,
                });
            }
        }
    }
    Ok(out)
}

fn read_parquet(path: &Path) -> Result<FileRows> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let reader = SerializedFileReader::new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    let iter = reader
        .get_row_iter(None)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut out = FileRows::default();
    for (i, row) in iter.enumerate() {
        let loc = Loc {
            file: path.to_path_buf(),
            pos: Pos::Row(i),
        };
        match row {
            Ok(r) => push_value(&mut out, loc, r.to_json_value()),
            // A decoding failure (an unsupported codec, a corrupt page) spoils
            // the rest of the file: stop with the error.
            Err(e) => bail!("{loc}: cannot decode the Parquet data: {e}"),
        }
    }
    Ok(out)
}

/// The dataset files of a folder (recursively, sorted, hidden entries
/// skipped), by extension.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let p = e.path();
            let hidden = e.file_name().to_str().is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if Format::of(&p).is_some() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Which split a file name suggests: `train`, `validation` or none.
pub fn split_of(path: &Path) -> Option<&'static str> {
    let s = path.to_string_lossy().to_ascii_lowercase();
    let words: Vec<&str> = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| *w == "train" || *w == "training") {
        Some("train")
    } else if words
        .iter()
        .any(|w| matches!(*w, "validation" | "valid" | "val" | "dev" | "test" | "eval"))
    {
        Some("validation")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/b.JSONL")), Some(Format::Jsonl));
        assert_eq!(Format::of(Path::new("a.json")), Some(Format::Json));
        assert_eq!(Format::of(Path::new("a.csv")), Some(Format::Csv));
        assert_eq!(Format::of(Path::new("a.parquet")), Some(Format::Parquet));
        assert_eq!(Format::of(Path::new("README.md")), None);
    }

    #[test]
    fn jsonl_lines_are_one_based_and_blank_lines_skipped() {
        let r = jsonl_rows(Path::new("x.jsonl"), "{\"a\":1}\n\n[1]\n{bad\n{\"b\":2}\n");
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].loc.to_string(), "x.jsonl line 5");
        assert_eq!(r.bad.len(), 2);
        assert_eq!(r.bad[0].loc.pos, Pos::Line(3));
        assert!(r.bad[0].message.contains("a list"), "{}", r.bad[0]);
        assert!(r.bad[1]
            .to_string()
            .starts_with("x.jsonl line 4: not valid JSON"));
    }

    #[test]
    fn json_array_and_json_lines_in_a_json_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(&p, "[{\"a\":1}, 2, {\"b\":3}]").unwrap();
        let r = read_file(&p).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.bad[0].loc.pos, Pos::Element(1));
        assert_eq!(r.rows[1].loc.pos, Pos::Element(2));
        std::fs::write(&p, "{\"a\":1}\n{\"b\":3}\n").unwrap();
        assert_eq!(read_file(&p).unwrap().rows.len(), 2);
        std::fs::write(&p, "[{\"a\":1}").unwrap();
        assert!(read_file(&p).is_err());
    }

    #[test]
    fn csv_records_carry_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "q,r\n1,2\n\"multi\nline\",x\n3\n4,5\n").unwrap();
        let r = read_file(&p).unwrap();
        assert_eq!(r.rows.len(), 3);
        assert_eq!(r.rows[1].loc.pos, Pos::Line(3));
        assert_eq!(r.rows[1].value["q"], "multi\nline");
        assert_eq!(r.rows[2].loc.pos, Pos::Line(6));
        assert_eq!(r.bad.len(), 1);
        assert_eq!(r.bad[0].loc.pos, Pos::Line(5));
        assert!(r.bad[0].message.contains("1 fields"), "{}", r.bad[0]);
    }

    #[test]
    fn split_names() {
        assert_eq!(
            split_of(Path::new("data/train-00000-of-00001.parquet")),
            Some("train")
        );
        assert_eq!(split_of(Path::new("data/test.jsonl")), Some("validation"));
        assert_eq!(split_of(Path::new("alpaca_data.json")), None);
    }
}
