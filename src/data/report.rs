//! The data report as text: a table of the sources, then the totals and the
//! token-length distribution against `--max-length`.

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Modify, Style};

use super::DataReport;

/// Nearest-rank percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[usize], q: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl DataReport {
    /// The report as a table and a few lines, for the command to print
    /// before training.
    pub fn render(&self) -> String {
        let mut b = Builder::default();
        b.push_record([
            "source",
            "split",
            "format",
            "layout",
            "rows",
            "kept",
            "malformed",
            "empty answer",
            "over length",
            "truncated",
            "duplicates",
        ]);
        for s in &self.sources {
            b.push_record([
                s.path.clone(),
                s.split.clone(),
                s.format.clone(),
                s.layout.clone(),
                s.rows.to_string(),
                s.kept.to_string(),
                s.malformed.to_string(),
                s.empty_answer.to_string(),
                s.over_length.to_string(),
                s.truncated.to_string(),
                s.duplicates.to_string(),
            ]);
        }
        let mut table = b.build();
        table
            .with(Style::sharp())
            .with(Modify::new(Columns::new(4..)).with(Alignment::right()));
        let mut out = table.to_string();
        out.push('\n');
        let packed = if self.packing {
            format!(
                " (packed into {} + {} sequences of at most {} tokens)",
                self.train_sequences, self.val_sequences, self.max_length
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "rows: {} train, {} validation{packed}\n",
            self.train_rows, self.val_rows
        ));
        if self.duplicates > 0 {
            out.push_str(&format!(
                "exact duplicates: {} ({})\n",
                self.duplicates,
                if self.duplicates_removed {
                    "removed"
                } else {
                    "kept; --dedup removes them"
                }
            ));
        } else {
            out.push_str("exact duplicates: none\n");
        }
        out.push_str(&format!(
            "tokens per row: min {} / median {} / p95 {} / max {} (max length {})\n",
            self.length_min, self.length_median, self.length_p95, self.length_max, self.max_length
        ));
        if !self.template.is_empty() {
            out.push_str(&format!("chat template: {}\n", self.template));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SourceReport;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<usize> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.95), 95);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn render_names_sources_and_lengths() {
        let r = DataReport {
            sources: vec![SourceReport {
                path: "train.jsonl".into(),
                split: "train".into(),
                format: "jsonl".into(),
                layout: "messages".into(),
                rows: 10,
                kept: 8,
                malformed: 1,
                empty_answer: 1,
                ..Default::default()
            }],
            duplicates: 2,
            train_rows: 7,
            val_rows: 1,
            max_length: 512,
            length_min: 3,
            length_median: 40,
            length_p95: 90,
            length_max: 100,
            ..Default::default()
        };
        let s = r.render();
        assert!(s.contains("train.jsonl"), "{s}");
        assert!(s.contains("rows: 7 train, 1 validation"), "{s}");
        assert!(s.contains("--dedup"), "{s}");
        assert!(
            s.contains("min 3 / median 40 / p95 90 / max 100 (max length 512)"),
            "{s}"
        );
    }
}
