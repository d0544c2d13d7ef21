//! Metrics as lm-evaluation-harness computes them: `acc` / `acc_norm` of a
//! multiple-choice item, the mean and its standard error, perplexities, and
//! answer extraction for exact match.

use anyhow::{Context, Result};
use regex::Regex;

/// The index of the first largest value (numpy's `argmax`).
pub fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// The outcome of one multiple-choice item.
#[derive(Debug, Clone, PartialEq)]
pub struct McOutcome {
    /// Argmax of the log-likelihoods.
    pub pred: usize,
    /// Argmax of the log-likelihoods divided by the length of each choice.
    pub pred_norm: usize,
    pub acc: f64,
    pub acc_norm: f64,
}

/// `acc` and `acc_norm` of one item, as lm-evaluation-harness's
/// `process_results` for `multiple_choice`: `acc_norm` divides each
/// log-likelihood by the length of the choice text (Python `len`, i.e.
/// characters, without the target delimiter; for ASCII text this is its
/// byte length).
pub fn mc_outcome(lls: &[f64], choices: &[String], gold: usize) -> McOutcome {
    let pred = argmax(lls);
    let normed: Vec<f64> = lls
        .iter()
        .zip(choices)
        .map(|(ll, c)| ll / c.chars().count() as f64)
        .collect();
    let pred_norm = argmax(&normed);
    McOutcome {
        pred,
        pred_norm,
        acc: f64::from(u8::from(pred == gold)),
        acc_norm: f64::from(u8::from(pred_norm == gold)),
    }
}

/// The arithmetic mean (NaN for no values).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation (n - 1 in the denominator).
pub fn sample_stddev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// lm-evaluation-harness's `mean_stderr`: the sample standard deviation over
/// the square root of the count. `None` for fewer than two values.
pub fn mean_stderr(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    Some(sample_stddev(xs) / (xs.len() as f64).sqrt())
}

/// Words as lm-evaluation-harness counts them: `len(re.split(r"\s+", doc))`
/// (leading or trailing whitespace counts an empty piece, as in Python).
pub fn count_words(doc: &str) -> usize {
    let mut pieces = 1;
    let mut in_space = false;
    for c in doc.chars() {
        if c.is_whitespace() {
            if !in_space {
                pieces += 1;
                in_space = true;
            }
        } else {
            in_space = false;
        }
    }
    pieces
}

/// Sums over the documents of a perplexity task.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PplTotals {
    pub loglikelihood: f64,
    pub tokens: usize,
    pub words: usize,
    pub bytes: usize,
}

impl PplTotals {
    /// Token-weighted perplexity: `exp(-sum ll / scored tokens)`.
    pub fn perplexity(&self) -> f64 {
        (-self.loglikelihood / self.tokens as f64).exp()
    }
    pub fn word_perplexity(&self) -> f64 {
        (-self.loglikelihood / self.words as f64).exp()
    }
    pub fn byte_perplexity(&self) -> f64 {
        (-self.loglikelihood / self.bytes as f64).exp()
    }
    pub fn bits_per_byte(&self) -> f64 {
        -self.loglikelihood / self.bytes as f64 / std::f64::consts::LN_2
    }
}

/// The fallback lm-evaluation-harness writes when no answer is found.
pub const INVALID: &str = "[invalid]";

/// The number-finding pattern of lm-evaluation-harness's GSM8K
/// `flexible-extract` (the last match is the answer).
const LAST_NUMBER: &str = r"(-?[$0-9.,]{2,})|(-?[0-9]+)";

/// How a prediction is pulled out of generated text.
#[derive(Debug, Clone)]
pub enum Extractor {
    /// The first match of a regex; its first capture group if it has one.
    Regex(Regex),
    /// The last number in the text.
    LastNumber(Regex),
}

impl Extractor {
    pub fn new(pattern: Option<&str>) -> Result<Extractor> {
        Ok(match pattern {
            Some(p) => Extractor::Regex(
                Regex::new(p).with_context(|| format!("--answer-regex {p:?} is not a regex"))?,
            ),
            None => Extractor::LastNumber(Regex::new(LAST_NUMBER).expect("static regex")),
        })
    }

    /// The answer in `text`, or [`INVALID`].
    pub fn extract(&self, text: &str) -> String {
        let found = match self {
            Extractor::Regex(re) => re.captures(text).map(|c| {
                c.get(1)
                    .or_else(|| c.get(0))
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default()
            }),
            Extractor::LastNumber(re) => re.captures_iter(text).last().map(|c| {
                c.get(1)
                    .or_else(|| c.get(2))
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default()
            }),
        };
        found
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| INVALID.to_string())
    }
}

/// The target of a GSM8K-style answer: the text after the last `####`,
/// else the whole answer.
pub fn target_of(answer: &str) -> String {
    match answer.rfind("####") {
        Some(i) => answer[i + 4..].trim().to_string(),
        None => answer.trim().to_string(),
    }
}

/// Normalise an answer before comparing, as the GSM8K task's `exact_match`
/// does (`regexes_to_ignore: [",", "\$", "(?s).*#### ", "\.$"]`,
/// `ignore_case`): drop commas and dollar signs, a trailing full stop, and
/// lower-case.
pub fn normalize_answer(s: &str) -> String {
    let s = match s.rfind("#### ") {
        Some(i) => &s[i + 5..],
        None => s,
    };
    let mut t: String = s
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != '$')
        .collect();
    if t.ends_with('.') {
        t.pop();
    }
    t.to_lowercase()
}

/// Exact match after normalisation (1.0 or 0.0).
pub fn exact_match(prediction: &str, target: &str) -> f64 {
    f64::from(u8::from(
        normalize_answer(prediction) == normalize_answer(target),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn acc_norm_divides_by_choice_length() {
        // Hand-computed: raw lls pick choice 0 (-4.0 is the largest), but
        // per character choice 1 wins: -4/2 = -2.0, -6/10 = -0.6, -5/5 = -1.
        let choices = strs(&["ab", "abcdefghij", "abcde"]);
        let o = mc_outcome(&[-4.0, -6.0, -5.0], &choices, 1);
        assert_eq!((o.pred, o.pred_norm), (0, 1));
        assert_eq!((o.acc, o.acc_norm), (0.0, 1.0));
        // Ties go to the first (numpy argmax).
        let o = mc_outcome(&[-1.0, -1.0], &strs(&["x", "y"]), 0);
        assert_eq!((o.pred, o.pred_norm, o.acc), (0, 0, 1.0));
        // Characters, not bytes: "é" is one character.
        let o = mc_outcome(&[-2.0, -3.0], &strs(&["éé", "abc"]), 1);
        // -2/2 = -1.0 vs -3/3 = -1.0: a tie, the first wins.
        assert_eq!(o.pred_norm, 0);
    }

    #[test]
    fn stderr_is_sample_std_over_sqrt_n() {
        // [1, 0, 1, 1]: mean 0.75, sample variance = (3 * 0.0625 + 0.5625) / 3
        // = 0.25, std 0.5, stderr 0.5 / 2 = 0.25.
        let xs = [1.0, 0.0, 1.0, 1.0];
        assert!((mean(&xs) - 0.75).abs() < 1e-12);
        assert!((mean_stderr(&xs).unwrap() - 0.25).abs() < 1e-12);
        // [2, 4, 4, 4, 5, 5, 7, 9]: sample std = sqrt(32 / 7).
        let ys = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let want = (32.0f64 / 7.0).sqrt() / 8f64.sqrt();
        assert!((mean_stderr(&ys).unwrap() - want).abs() < 1e-12);
        assert_eq!(mean_stderr(&[1.0]), None);
        assert!(mean(&[]).is_nan());
    }

    #[test]
    fn words_split_like_python() {
        assert_eq!(count_words("a b  c"), 3);
        assert_eq!(count_words(" a b "), 4);
        assert_eq!(count_words("one"), 1);
        assert_eq!(count_words("x\n\ny"), 2);
    }

    #[test]
    fn perplexities() {
        let t = PplTotals {
            loglikelihood: -20.0,
            tokens: 10,
            words: 5,
            bytes: 40,
        };
        assert!((t.perplexity() - 2f64.exp()).abs() < 1e-12);
        assert!((t.word_perplexity() - 4f64.exp()).abs() < 1e-12);
        assert!((t.byte_perplexity() - 0.5f64.exp()).abs() < 1e-12);
        assert!((t.bits_per_byte() - 0.5 / std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn answers_extracted_and_normalised() {
        let last = Extractor::new(None).unwrap();
        assert_eq!(last.extract("3 apples and 4 pears make 7."), "7.");
        assert_eq!(last.extract("It costs $1,250 in total"), "$1,250");
        assert_eq!(last.extract("no numbers here"), INVALID);
        let strict = Extractor::new(Some(r"#### (\-?[0-9\.\,]+)")).unwrap();
        assert_eq!(strict.extract("so 5 + 3 = 8\n#### 8\n#### 9"), "8");
        assert_eq!(strict.extract("8"), INVALID);
        assert!(Extractor::new(Some("(")).is_err());
        assert_eq!(target_of("Half of 10 is 5.\n#### 1,005"), "1,005");
        assert_eq!(exact_match("$1,005.", "1,005"), 1.0);
        assert_eq!(exact_match("7.", "#### 7"), 1.0);
        assert_eq!(exact_match("7.5", "7"), 0.0);
        assert_eq!(exact_match("Paris", "paris"), 1.0);
    }
}
