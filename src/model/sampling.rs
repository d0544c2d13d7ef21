//! Token sampling over one position's logits: greedy, temperature, top-k,
//! top-p, min-p, repetition penalty, a seeded RNG; log-softmax and top-N
//! log-probabilities for `logprobs`.
//!
//! The order of the processors follows transformers' `generate`: repetition
//! penalty on the raw logits, then temperature, then top-k, top-p and min-p on
//! the resulting distribution, then one draw. Temperature 0 is greedy (argmax
//! after the repetition penalty), like `do_sample=False`.
//!
//! Everything here is a pure function of its inputs except [`Sampler`], which
//! owns the RNG: the same `seed` and the same logits give the same tokens.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Below this a temperature counts as 0 (greedy).
pub const GREEDY_EPSILON: f32 = 1e-5;

/// How one sequence picks its next token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy; otherwise logits are divided by it before the softmax.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass is >= `top_p`
    /// (1.0 = off).
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the most likely
    /// token's (0 = off).
    pub min_p: f32,
    /// transformers' `repetition_penalty`: over the tokens already seen,
    /// positive logits are divided by it and negative ones multiplied (1.0 = off).
    pub repetition_penalty: f32,
    /// Seed of the RNG; `None` draws one from the OS.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0, no filters).
    pub fn greedy() -> Self {
        SamplingParams::default()
    }

    /// True when the next token is the argmax (no randomness involved).
    pub fn is_greedy(&self) -> bool {
        self.temperature < GREEDY_EPSILON || self.top_k == 1
    }

    /// Check the ranges; the message names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(format!(
                "temperature must be >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return Err(format!(
                "repetition_penalty must be > 0, got {}",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}

/// The sampling people know from Ollama (and, but for its top-p 0.95, min-p
/// 0.05 and no repetition penalty, llama.cpp) when a model ships no
/// `generation_config.json`: temperature 0.8, top-k 40, top-p 0.9,
/// repetition penalty 1.1. Greedy decoding of a small model, the old
/// default, repeats one phrase until the context window is full.
pub const BUILTIN_DEFAULTS: SamplingParams = SamplingParams {
    temperature: 0.8,
    top_k: 40,
    top_p: 0.9,
    min_p: 0.0,
    repetition_penalty: 1.1,
    seed: None,
};

/// transformers' `GenerationConfig` defaults, for the fields a
/// `generation_config.json` with `do_sample: true` leaves out.
pub const TRANSFORMERS_DEFAULTS: SamplingParams = SamplingParams {
    temperature: 1.0,
    top_k: 50,
    top_p: 1.0,
    min_p: 0.0,
    repetition_penalty: 1.0,
    seed: None,
};

/// Sampling values one source sets (command-line flags, a request's fields,
/// a model's `generation_config.json`); `None` leaves the field to the next
/// source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingFields {
    /// Only `generation_config.json` has it: `true` asks for sampling with
    /// its values, `false` for greedy decoding.
    pub do_sample: Option<bool>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub seed: Option<u64>,
}

impl SamplingFields {
    /// These values where set, `lower`'s elsewhere.
    pub fn over(&self, lower: &SamplingFields) -> SamplingFields {
        SamplingFields {
            do_sample: self.do_sample.or(lower.do_sample),
            temperature: self.temperature.or(lower.temperature),
            top_k: self.top_k.or(lower.top_k),
            top_p: self.top_p.or(lower.top_p),
            min_p: self.min_p.or(lower.min_p),
            repetition_penalty: self.repetition_penalty.or(lower.repetition_penalty),
            seed: self.seed.or(lower.seed),
        }
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == SamplingFields::default()
    }

    /// A temperature above 0 or a filter or seed: the caller asks for
    /// sampling.
    fn asks_for_sampling(&self) -> bool {
        self.temperature.is_some_and(|t| t >= GREEDY_EPSILON)
            || self.top_k.is_some()
            || self.top_p.is_some()
            || self.min_p.is_some()
            || self.seed.is_some()
    }

    /// Every set field over `base`.
    fn apply(&self, base: &SamplingParams) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature.unwrap_or(base.temperature),
            top_k: self.top_k.unwrap_or(base.top_k),
            top_p: self.top_p.unwrap_or(base.top_p),
            min_p: self.min_p.unwrap_or(base.min_p),
            repetition_penalty: self.repetition_penalty.unwrap_or(base.repetition_penalty),
            seed: self.seed.or(base.seed),
        }
    }
}

/// Where the values in effect come from, for the user to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingBasis {
    /// The caller set the temperature to 0.
    AskedGreedy,
    /// The model's `generation_config.json` asks for sampling
    /// (`do_sample: true`).
    ModelSamples,
    /// The model's `generation_config.json` asks for greedy decoding
    /// (`do_sample: false`).
    ModelGreedy,
    /// [`BUILTIN_DEFAULTS`]; `with_model_values`: the model's
    /// `generation_config.json` sets some of the values (but not
    /// `do_sample`).
    BuiltIn { with_model_values: bool },
    /// Greedy because this use decodes greedily unless asked (one-shot
    /// prompts).
    GreedyByDefault,
}

impl SamplingBasis {
    /// A few words on why, e.g. `defaults: the model ships no generation_config`.
    pub fn describe(&self) -> &'static str {
        match self {
            SamplingBasis::AskedGreedy => "temperature 0 asked for",
            SamplingBasis::ModelSamples => "from the model's generation_config.json",
            SamplingBasis::ModelGreedy => "the model's generation_config.json sets do_sample false",
            SamplingBasis::BuiltIn {
                with_model_values: false,
            } => "defaults: the model ships no generation_config",
            SamplingBasis::BuiltIn {
                with_model_values: true,
            } => "defaults, with the values the model's generation_config.json sets",
            SamplingBasis::GreedyByDefault => "the default of one-shot prompts",
        }
    }
}

/// Decide the sampling in effect. `asked` holds what the user set (a
/// request's fields over the command line's), `model` the model's
/// `generation_config.json` (empty without one). `sample_by_default`: the
/// interactive chat and the server sample when nothing is asked; one-shot
/// prompts decode greedily.
///
/// Precedence, field by field: `asked`, then the model's values, then the
/// defaults of the case:
/// * a temperature of 0 asked for is plain greedy decoding: no built-in
///   default applies, the repetition penalty is the asked one, else the
///   model's, else off (so greedy output never changes with these defaults);
/// * `do_sample: true`: the model's values over [`TRANSFORMERS_DEFAULTS`];
/// * `do_sample: false`: greedy (with the model's repetition penalty)
///   unless `asked` asks for sampling, then as for `do_sample: true`;
/// * no `do_sample`: [`BUILTIN_DEFAULTS`] under the model's values when
///   sampling by default or asked for, else greedy (with the model's
///   repetition penalty).
pub fn resolve(
    asked: &SamplingFields,
    model: &SamplingFields,
    sample_by_default: bool,
) -> (SamplingParams, SamplingBasis) {
    let model_values = SamplingFields {
        do_sample: None,
        seed: None,
        ..model.clone()
    };
    let greedy = |basis| {
        let p = SamplingParams {
            temperature: 0.0,
            repetition_penalty: asked
                .repetition_penalty
                .or(model.repetition_penalty)
                .unwrap_or(1.0),
            seed: asked.seed,
            ..SamplingParams::greedy()
        };
        let filters = SamplingFields {
            temperature: None,
            repetition_penalty: None,
            ..asked.clone()
        };
        (filters.apply(&p), basis)
    };
    if asked.temperature.is_some_and(|t| t < GREEDY_EPSILON) {
        return greedy(SamplingBasis::AskedGreedy);
    }
    let (base, basis) = match model.do_sample {
        Some(true) => (TRANSFORMERS_DEFAULTS, SamplingBasis::ModelSamples),
        Some(false) if !asked.asks_for_sampling() => return greedy(SamplingBasis::ModelGreedy),
        Some(false) => (TRANSFORMERS_DEFAULTS, SamplingBasis::ModelSamples),
        None if sample_by_default || asked.asks_for_sampling() => (
            BUILTIN_DEFAULTS,
            SamplingBasis::BuiltIn {
                with_model_values: !model_values.is_empty(),
            },
        ),
        None => return greedy(SamplingBasis::GreedyByDefault),
    };
    (asked.apply(&model_values.apply(&base)), basis)
}

impl SamplingParams {
    /// The values in effect in words: `greedy`, or `temperature 0.8, top-k
    /// 40, top-p 0.9, repetition penalty 1.1` (filters that are off left
    /// out), with the seed when one is set.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.is_greedy() {
            parts.push("greedy".to_string());
        } else {
            parts.push(format!("temperature {}", self.temperature));
            if self.top_k > 0 {
                parts.push(format!("top-k {}", self.top_k));
            }
            if self.top_p < 1.0 {
                parts.push(format!("top-p {}", self.top_p));
            }
            if self.min_p > 0.0 {
                parts.push(format!("min-p {}", self.min_p));
            }
        }
        if self.repetition_penalty != 1.0 {
            parts.push(format!("repetition penalty {}", self.repetition_penalty));
        }
        if let Some(s) = self.seed.filter(|_| !self.is_greedy()) {
            parts.push(format!("seed {s}"));
        }
        parts.join(", ")
    }
}

/// Index of the largest logit (the first one on ties). NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: for every distinct token
/// in `seen`, a positive logit is divided by `penalty` and a negative one
/// multiplied by it. Tokens outside the vocabulary are ignored.
pub fn apply_repetition_penalty(logits: &mut [f32], seen: &[u32], penalty: f32) {
    if penalty == 1.0 || seen.is_empty() {
        return;
    }
    let mut done = vec![false; logits.len()];
    for &t in seen {
        let i = t as usize;
        if i >= logits.len() || done[i] {
            continue;
        }
        done[i] = true;
        let v = logits[i];
        logits[i] = if v > 0.0 { v / penalty } else { v * penalty };
    }
}

/// Divide every logit by `temperature` (> 0).
pub fn apply_temperature(logits: &mut [f32], temperature: f32) {
    if temperature == 1.0 {
        return;
    }
    let inv = 1.0 / temperature;
    for v in logits.iter_mut() {
        *v *= inv;
    }
}

/// Numerically stable log-softmax, computed in f64 for the normaliser.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![f32::NEG_INFINITY; logits.len()];
    }
    let sum: f64 = logits.iter().map(|&v| ((v - max) as f64).exp()).sum();
    let log_z = max as f64 + sum.ln();
    logits.iter().map(|&v| (v as f64 - log_z) as f32).collect()
}

/// Softmax (probabilities summing to 1).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = out.iter().sum();
    for p in out.iter_mut() {
        *p /= sum;
    }
    out
}

/// The `n` largest entries of `values` as (index, value), largest first; ties
/// by lower index. Works for logits and log-probabilities alike.
pub fn top_n(values: &[f32], n: usize) -> Vec<(u32, f32)> {
    let n = n.min(values.len());
    if n == 0 {
        return Vec::new();
    }
    let mut idx: Vec<u32> = (0..values.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| {
        let (va, vb) = (values[*a as usize], values[*b as usize]);
        vb.total_cmp(&va).then(a.cmp(b))
    };
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, cmp);
        idx.truncate(n);
    }
    idx.sort_unstable_by(cmp);
    idx.into_iter().map(|i| (i, values[i as usize])).collect()
}

/// The log-probability of `token` and the `n` most likely tokens with their
/// log-probabilities, from raw logits (what OpenAI's `logprobs` /
/// `top_logprobs` report).
pub fn token_logprobs(logits: &[f32], token: u32, n: usize) -> (f32, Vec<(u32, f32)>) {
    let lp = log_softmax(logits);
    let chosen = lp.get(token as usize).copied().unwrap_or(f32::NEG_INFINITY);
    (chosen, top_n(&lp, n))
}

/// Candidate tokens with probabilities, most likely first.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates(pub Vec<(u32, f32)>);

impl Candidates {
    /// All tokens with their softmax probabilities (of already processed
    /// logits), sorted by probability. With `top_k` > 0 only that many are kept
    /// (which avoids sorting the whole vocabulary).
    pub fn from_logits(logits: &[f32], top_k: usize) -> Self {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f64;
        let probs: Vec<f32> = logits
            .iter()
            .map(|&v| {
                let p = (v - max).exp();
                sum += p as f64;
                p
            })
            .collect();
        let inv = (1.0 / sum) as f32;
        let keep = if top_k == 0 {
            probs.len()
        } else {
            top_k.min(probs.len())
        };
        let top = top_n(&probs, keep);
        Candidates(top.into_iter().map(|(i, p)| (i, p * inv)).collect())
    }

    /// Keep the smallest prefix whose mass is >= `p` (at least one token).
    pub fn top_p(&mut self, p: f32) {
        if p >= 1.0 {
            return;
        }
        let total: f32 = self.0.iter().map(|c| c.1).sum();
        // A hair of tolerance so that a prefix summing to exactly p in real
        // arithmetic is not pushed past it by rounding.
        let target = p * total - 1e-6 * total;
        let mut acc = 0f32;
        let mut keep = self.0.len();
        for (i, c) in self.0.iter().enumerate() {
            acc += c.1;
            if acc >= target {
                keep = i + 1;
                break;
            }
        }
        self.0.truncate(keep.max(1));
    }

    /// Drop tokens whose probability is below `min_p` times the largest.
    pub fn min_p(&mut self, min_p: f32) {
        if min_p <= 0.0 || self.0.is_empty() {
            return;
        }
        let threshold = self.0[0].1 * min_p;
        let keep = self.0.iter().take_while(|c| c.1 >= threshold).count();
        self.0.truncate(keep.max(1));
    }

    /// The kept tokens renormalised to sum to 1.
    pub fn normalized(&self) -> Vec<(u32, f32)> {
        let total: f32 = self.0.iter().map(|c| c.1).sum();
        self.0.iter().map(|&(t, p)| (t, p / total)).collect()
    }

    /// Draw one token with `u` uniform in [0, 1).
    pub fn draw(&self, u: f32) -> u32 {
        let total: f32 = self.0.iter().map(|c| c.1).sum();
        let target = u * total;
        let mut acc = 0f32;
        for &(t, p) in &self.0 {
            acc += p;
            if target < acc {
                return t;
            }
        }
        self.0.last().map(|c| c.0).unwrap_or(0)
    }
}

/// The final distribution the sampler draws from, after every processor:
/// (token, probability) pairs, most likely first, summing to 1. Greedy
/// parameters give the single argmax with probability 1.
pub fn distribution(logits: &[f32], seen: &[u32], params: &SamplingParams) -> Vec<(u32, f32)> {
    let mut l = logits.to_vec();
    apply_repetition_penalty(&mut l, seen, params.repetition_penalty);
    if params.is_greedy() {
        return vec![(argmax(&l), 1.0)];
    }
    apply_temperature(&mut l, params.temperature);
    let mut c = if params.top_k == 0 && params.top_p < 1.0 {
        // Most of the mass usually sits in a few hundred tokens: sort those
        // only, falling back to the whole vocabulary when they do not reach p.
        let guess = Candidates::from_logits(&l, 512.min(l.len()));
        let mass: f32 = guess.0.iter().map(|c| c.1).sum();
        if mass >= params.top_p {
            guess
        } else {
            Candidates::from_logits(&l, 0)
        }
    } else {
        Candidates::from_logits(&l, params.top_k)
    };
    c.top_p(params.top_p);
    c.min_p(params.min_p);
    c.normalized()
}

/// Picks tokens for one sequence: the parameters and the sequence's own RNG.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = match params.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Sampler { params, rng }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The next token given this position's raw logits and the tokens seen so
    /// far (prompt and generated; used by the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], seen: &[u32]) -> u32 {
        if self.params.is_greedy() {
            if self.params.repetition_penalty == 1.0 {
                return argmax(logits);
            }
            let mut l = logits.to_vec();
            apply_repetition_penalty(&mut l, seen, self.params.repetition_penalty);
            return argmax(&l);
        }
        let dist = distribution(logits, seen, &self.params);
        let u: f32 = self.rng.gen();
        Candidates(dist).draw(u)
    }
}

/// Read the sampling values of `generation_config.json` beside a model (a
/// folder); none for a `.gguf` file or a folder without one.
pub fn read_generation_config(model: &std::path::Path) -> anyhow::Result<SamplingFields> {
    use anyhow::Context;
    let file = model.join("generation_config.json");
    if !model.is_dir() || !file.exists() {
        return Ok(SamplingFields::default());
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).map(|x| x as f32);
    Ok(SamplingFields {
        do_sample: v.get("do_sample").and_then(|x| x.as_bool()),
        temperature: f("temperature"),
        top_k: v.get("top_k").and_then(|x| x.as_u64()).map(|x| x as usize),
        top_p: f("top_p"),
        min_p: f("min_p"),
        repetition_penalty: f("repetition_penalty"),
        seed: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    /// Logits whose softmax is exactly `probs`.
    fn logits_of(probs: &[f32]) -> Vec<f32> {
        probs.iter().map(|p| p.ln()).collect()
    }

    #[test]
    fn argmax_first_on_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, -2.0]), 1);
    }

    #[test]
    fn repetition_penalty_like_transformers() {
        let mut l = vec![2.0, -2.0, 1.0, 4.0];
        // token 0 seen twice: penalised once.
        apply_repetition_penalty(&mut l, &[0, 1, 0, 9], 2.0);
        assert_eq!(l, vec![1.0, -4.0, 1.0, 4.0]);
    }

    #[test]
    fn repetition_penalty_can_change_greedy_choice() {
        let logits = vec![3.0, 2.0, 0.5];
        let p = SamplingParams {
            repetition_penalty: 2.0,
            ..SamplingParams::greedy()
        };
        let mut s = Sampler::new(p);
        assert_eq!(s.sample(&logits, &[]), 0);
        // 3.0 / 2 = 1.5 < 2.0
        assert_eq!(s.sample(&logits, &[0]), 1);
    }

    #[test]
    fn temperature_zero_is_greedy() {
        let logits = vec![0.1, 0.3, 5.0, 4.9];
        let mut s = Sampler::new(SamplingParams {
            seed: Some(1),
            ..SamplingParams::greedy()
        });
        for _ in 0..20 {
            assert_eq!(s.sample(&logits, &[]), 2);
        }
        assert_eq!(
            distribution(&logits, &[], &SamplingParams::greedy()),
            vec![(2, 1.0)]
        );
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        // probs of logits [ln 1, ln 3] are 0.25/0.75; at T=0.5 the logits
        // double: 1/(1+9), 9/(1+9).
        let logits = vec![0f32, 3f32.ln()];
        let p = SamplingParams {
            temperature: 0.5,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert_eq!(d[0].0, 1);
        assert!(close(d[0].1, 0.9) && close(d[1].1, 0.1), "{d:?}");
        let p = SamplingParams {
            temperature: 2.0,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        let r = 3f32.sqrt();
        assert!(close(d[0].1, r / (1.0 + r)), "{d:?}");
    }

    #[test]
    fn top_k_keeps_k_most_likely() {
        let logits = logits_of(&[0.1, 0.4, 0.2, 0.3]);
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 2,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].0, d[1].0), (1, 3));
        assert!(
            close(d[0].1, 0.4 / 0.7) && close(d[1].1, 0.3 / 0.7),
            "{d:?}"
        );
    }

    #[test]
    fn top_p_keeps_smallest_set_reaching_p() {
        let logits = logits_of(&[0.1, 0.4, 0.2, 0.3]);
        // 0.4 < 0.5 <= 0.4 + 0.3: two tokens.
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert_eq!(d.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 3]);
        // exactly reaching the mass: 0.4 + 0.3 = 0.7 keeps two.
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.7,
            ..Default::default()
        };
        assert_eq!(distribution(&logits, &[], &p).len(), 2);
        // 0.71 needs a third.
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.71,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert_eq!(d.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 3, 2]);
        assert!(close(d[2].1, 0.2 / 0.9));
        // a tiny p keeps the top token only.
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.01,
            ..Default::default()
        };
        assert_eq!(distribution(&logits, &[], &p), vec![(1, 1.0)]);
    }

    #[test]
    fn top_p_falls_back_to_full_sort_on_flat_distributions() {
        // 1000 equal tokens: the 512 guess holds 0.512 < 0.9.
        let logits = vec![0.0f32; 1000];
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.9,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert!((899..=901).contains(&d.len()), "{}", d.len());
    }

    #[test]
    fn min_p_is_relative_to_the_most_likely() {
        let logits = logits_of(&[0.5, 0.3, 0.15, 0.05]);
        // threshold 0.5 * 0.29 = 0.145: keeps 0.5, 0.3, 0.15.
        let p = SamplingParams {
            temperature: 1.0,
            min_p: 0.29,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert_eq!(d.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(close(d[0].1, 0.5 / 0.95));
        // threshold 0.155: 0.15 goes.
        let p = SamplingParams {
            temperature: 1.0,
            min_p: 0.31,
            ..Default::default()
        };
        assert_eq!(distribution(&logits, &[], &p).len(), 2);
        let p = SamplingParams {
            temperature: 1.0,
            min_p: 0.61,
            ..Default::default()
        };
        assert_eq!(distribution(&logits, &[], &p), vec![(0, 1.0)]);
    }

    #[test]
    fn filters_compose_in_order() {
        let logits = logits_of(&[0.05, 0.4, 0.25, 0.2, 0.1]);
        // top-k 4 -> {1,2,3,4} (mass .95); top-p .6 of that -> {1,2}
        // (.4+.25=.65 >= .57); min-p .7 -> .25 < .28: {1}.
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 4,
            top_p: 0.6,
            min_p: 0.0,
            ..Default::default()
        };
        let d = distribution(&logits, &[], &p);
        assert_eq!(d.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2]);
        let p = SamplingParams { min_p: 0.7, ..p };
        assert_eq!(distribution(&logits, &[], &p), vec![(1, 1.0)]);
    }

    #[test]
    fn draw_walks_the_cumulative_mass() {
        let c = Candidates(vec![(7, 0.5), (3, 0.3), (9, 0.2)]);
        assert_eq!(c.draw(0.0), 7);
        assert_eq!(c.draw(0.49), 7);
        assert_eq!(c.draw(0.5), 3);
        assert_eq!(c.draw(0.79), 3);
        assert_eq!(c.draw(0.81), 9);
        assert_eq!(c.draw(0.999_999), 9);
    }

    #[test]
    fn seed_reproduces_samples() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let p = SamplingParams {
            temperature: 1.0,
            seed: Some(42),
            ..Default::default()
        };
        let run = |p: &SamplingParams| {
            let mut s = Sampler::new(p.clone());
            (0..50).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        let a = run(&p);
        assert_eq!(a, run(&p));
        let b = run(&SamplingParams {
            seed: Some(43),
            ..p.clone()
        });
        assert_ne!(a, b);
        // Many different tokens were drawn: it really samples.
        let mut uniq = a.clone();
        uniq.sort();
        uniq.dedup();
        assert!(uniq.len() > 5, "{uniq:?}");
    }

    #[test]
    fn sampling_frequencies_follow_probabilities() {
        let logits = logits_of(&[0.7, 0.2, 0.1]);
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            seed: Some(7),
            ..Default::default()
        });
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[s.sample(&logits, &[]) as usize] += 1;
        }
        let f: Vec<f32> = counts.iter().map(|&c| c as f32 / 20_000.0).collect();
        assert!(
            (f[0] - 0.7).abs() < 0.02 && (f[1] - 0.2).abs() < 0.02,
            "{f:?}"
        );
    }

    #[test]
    fn log_softmax_and_top_logprobs() {
        let logits = logits_of(&[0.5, 0.25, 0.125, 0.125]);
        let lp = log_softmax(&logits);
        assert!(close(lp[0], 0.5f32.ln()) && close(lp[3], 0.125f32.ln()));
        let sum: f32 = softmax(&logits).iter().sum();
        assert!(close(sum, 1.0));
        // log-softmax is shift invariant and safe with huge logits.
        let shifted: Vec<f32> = logits.iter().map(|v| v + 100.0).collect();
        assert!((log_softmax(&shifted)[1] - 0.25f32.ln()).abs() < 1e-4);
        let huge = vec![1e30f32, 0.0];
        assert_eq!(log_softmax(&huge)[0], 0.0);
        let (chosen, top) = token_logprobs(&logits, 1, 3);
        assert!(close(chosen, 0.25f32.ln()));
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(top_n(&logits, 0).is_empty());
        assert_eq!(top_n(&logits, 10).len(), 4);
    }

    #[test]
    fn resolve_precedence_asked_then_model_then_defaults() {
        let asked = SamplingFields {
            top_k: Some(7),
            ..Default::default()
        };
        let model = SamplingFields {
            top_k: Some(20),
            top_p: Some(0.8),
            ..Default::default()
        };
        // No do_sample: built-in defaults under the model's values under
        // the asked ones.
        let (p, b) = resolve(&asked, &model, true);
        assert_eq!((p.temperature, p.top_k, p.top_p), (0.8, 7, 0.8));
        assert_eq!(p.repetition_penalty, 1.1);
        assert_eq!(
            b,
            SamplingBasis::BuiltIn {
                with_model_values: true
            }
        );
        // do_sample false, but the caller asks for sampling: the model's
        // values over transformers' defaults.
        let model = SamplingFields {
            do_sample: Some(false),
            top_p: Some(0.8),
            ..Default::default()
        };
        let (p, _) = resolve(&asked, &model, false);
        assert_eq!(
            (p.temperature, p.top_k, p.top_p, p.repetition_penalty),
            (1.0, 7, 0.8, 1.0)
        );
        // Greedy asked: nothing else of the defaults.
        let asked = SamplingFields {
            temperature: Some(0.0),
            seed: Some(3),
            ..Default::default()
        };
        let (p, b) = resolve(&asked, &SamplingFields::default(), true);
        assert_eq!(
            p,
            SamplingParams {
                seed: Some(3),
                ..SamplingParams::greedy()
            }
        );
        assert_eq!(b, SamplingBasis::AskedGreedy);
        assert_eq!(p.describe(), "greedy");
    }

    #[test]
    fn builtin_defaults_break_a_greedy_loop() {
        // Logits that greedy decoding follows round a cycle 0 -> 1 -> 2 -> 0
        // forever; the repetition penalty over the context makes the
        // fresh token 3 win once the cycle's tokens are all in it.
        let next = |last: u32| -> Vec<f32> {
            let mut l = vec![0.0f32; 5];
            l[((last + 1) % 3) as usize] = 2.0;
            l[3] = 1.9;
            l
        };
        let mut greedy = Sampler::new(SamplingParams::greedy());
        let mut seen = vec![0u32];
        for _ in 0..9 {
            let t = greedy.sample(&next(*seen.last().unwrap()), &seen);
            seen.push(t);
        }
        assert!(!seen.contains(&3), "{seen:?}");
        let p = SamplingParams {
            temperature: 0.0,
            ..BUILTIN_DEFAULTS
        };
        let mut penalised = Sampler::new(p);
        let seen = vec![0u32, 1, 2];
        // 2.0 / 1.1 = 1.82 < 1.9: the loop is left.
        assert_eq!(penalised.sample(&next(2), &seen), 3);
    }

    #[test]
    fn validate_names_the_bad_parameter() {
        assert!(SamplingParams::default().validate().is_ok());
        let e = SamplingParams {
            top_p: 0.0,
            ..Default::default()
        }
        .validate();
        assert!(e.unwrap_err().contains("top_p"));
        let e = SamplingParams {
            temperature: -1.0,
            ..Default::default()
        }
        .validate();
        assert!(e.unwrap_err().contains("temperature"));
        let e = SamplingParams {
            min_p: 2.0,
            ..Default::default()
        }
        .validate();
        assert!(e.unwrap_err().contains("min_p"));
        let e = SamplingParams {
            repetition_penalty: 0.0,
            ..Default::default()
        }
        .validate();
        assert!(e.unwrap_err().contains("repetition_penalty"));
    }
}
