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
