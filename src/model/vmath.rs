//! Element-wise exponentials for the inference path, eight lanes at a time.
//!
//! A decode step of SmolLM2 takes ~46 000 exponentials for SiLU and as many
//! again for the attention softmax at a few hundred positions; libm's
//! scalar `expf` spent ~0.2 ms a token on them, on one thread, while the
//! other waited. The AVX2 path below is the classic Cephes single-precision
//! scheme (exact range reduction by ln 2 in two parts, a degree-6
//! polynomial, the power of two put into the exponent bits): within 2 ulp
//! of the correctly rounded result over the range used here (checked
//! against f64 in the tests), which is far inside the 1e-3 log-probability
//! bar the model is held to.

/// `g[i] <- silu(g[i]) * u[i]` (the gated MLP's activation).
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    assert_eq!(g.len(), u.len());
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if super::quant::has_avx2() {
        // SAFETY: AVX2/FMA present; `i + 8 <= len` on every access.
        unsafe { i = avx2::silu_mul(g, u) };
    }
    for (gv, uv) in g[i..].iter_mut().zip(&u[i..]) {
        *gv = *gv / (1.0 + (-*gv).exp()) * uv;
    }
}

/// `s[i] <- exp(s[i] - mx)`; returns the sum of the new values.
pub fn exp_sub_sum(s: &mut [f32], mx: f32) -> f32 {
    let mut i = 0;
    let mut sum = 0f32;
    #[cfg(target_arch = "x86_64")]
    if super::quant::has_avx2() {
        // SAFETY: as above.
        unsafe { (i, sum) = avx2::exp_sub_sum(s, mx) };
    }
    for x in &mut s[i..] {
        *x = (*x - mx).exp();
        sum += *x;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `e^x` in eight lanes (inputs clamped to [-87.3, 88.7]: below, the
    /// result is ~1e-38 rather than a subnormal or zero).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(x, _mm256_set1_ps(88.7));
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.3));
        // n = round(x / ln 2); r = x - n ln 2, with ln 2 split in an exact
        // high part and a small correction.
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_65,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let r2 = _mm256_mul_ps(r, r);
        let e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
        // Times 2^n: n added to the exponent field (n + 127 stays in 1..254
        // for n in -126..=127; x >= 88.7 gives n = 128, handled by halving).
        let ni = _mm256_cvtps_epi32(n);
        let half = _mm256_cmpgt_epi32(ni, _mm256_set1_epi32(127));
        let ni = _mm256_sub_epi32(ni, _mm256_and_si256(half, _mm256_set1_epi32(1)));
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            ni,
            _mm256_set1_epi32(127),
        )));
        let y = _mm256_mul_ps(e, pow2);
        _mm256_blendv_ps(y, _mm256_add_ps(y, y), _mm256_castsi256_ps(half))
    }

    /// The AVX2 body of [`super::silu_mul`]; returns how many were done.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn silu_mul(g: &mut [f32], u: &[f32]) -> usize {
        let n8 = g.len() / 8 * 8;
        let one = _mm256_set1_ps(1.0);
        let mut i = 0;
        while i < n8 {
            let gv = _mm256_loadu_ps(g.as_ptr().add(i));
            let uv = _mm256_loadu_ps(u.as_ptr().add(i));
            let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), gv));
            let s = _mm256_div_ps(gv, _mm256_add_ps(one, e));
            _mm256_storeu_ps(g.as_mut_ptr().add(i), _mm256_mul_ps(s, uv));
            i += 8;
        }
        n8
    }

    /// The AVX2 body of [`super::exp_sub_sum`]: (values done, their sum).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_sub_sum(s: &mut [f32], mx: f32) -> (usize, f32) {
        let n8 = s.len() / 8 * 8;
        let m = _mm256_set1_ps(mx);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n8 {
            let e = exp(_mm256_sub_ps(_mm256_loadu_ps(s.as_ptr().add(i)), m));
            _mm256_storeu_ps(s.as_mut_ptr().add(i), e);
            acc = _mm256_add_ps(acc, e);
            i += 8;
        }
        (n8, super::super::quant::avx2::hsum(acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        ((a as f64 - b) / (b32.next_up() as f64 - b32 as f64).abs()).abs()
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64() {
        // The range the softmax (x <= 0) and SiLU (|x| up to ~88) use.
        let xs: Vec<f32> = (0..200_001)
            .map(|i| -87.0 + 175.0 * i as f32 / 200_000.0)
            .collect();
        let mut s = xs.clone();
        exp_sub_sum(&mut s, 0.0);
        let mut worst = 0f64;
        for (x, e) in xs.iter().zip(&s) {
            worst = worst.max(ulps(*e, (*x as f64).exp()));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        // A softmax row: the shift by the maximum and the returned sum.
        let row: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.7).sin() * 12.0).collect();
        let mut e = row.clone();
        let sum = exp_sub_sum(&mut e, 12.0);
        let want: f64 = row.iter().map(|x| (*x as f64 - 12.0).exp()).sum();
        assert!(((sum as f64 - want) / want).abs() < 1e-6, "{sum} vs {want}");
        // Far outside: saturates instead of producing inf or NaN.
        let mut edge = vec![
            -1000.0f32, -100.0, 100.0, 1000.0, 0.0, 1.0, -1.0, 88.5, 88.7,
        ];
        exp_sub_sum(&mut edge, 0.0);
        assert!(edge.iter().all(|v| v.is_finite() && *v >= 0.0), "{edge:?}");
        assert!(edge[0] < 1e-37 && edge[4] == 1.0);
        assert!(ulps(edge[7], 88.5f64.exp()) <= 2.0);
    }

    #[test]
    fn silu_mul_matches_the_formula() {
        let g0: Vec<f32> = (0..1037).map(|i| (i as f32 * 0.37).sin() * 30.0).collect();
        let u: Vec<f32> = (0..1037).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut g = g0.clone();
        silu_mul(&mut g, &u);
        for ((got, x), uv) in g.iter().zip(&g0).zip(&u) {
            let x = *x as f64;
            let want = x / (1.0 + (-x).exp()) * *uv as f64;
            assert!(
                (*got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{x}: {got} vs {want}"
            );
        }
    }
}
