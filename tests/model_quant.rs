//! Dequantization of every supported GGUF block type against vectors written
//! by gguf-py (an independent implementation): fixtures/quant/make_vectors.py.

use swift::model::gguf::GgmlType;
use swift::model::quant::{dequantize, matvec, quantize, QWeight};

/// Our quantizers write the same bytes as gguf-py's (bit-exact with ggml's
/// reference quantizers): fixtures/quant/make_quantize_vectors.py.
#[test]
fn quantize_matches_gguf_py() {
    use GgmlType::*;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/quant");
    for (name, t) in [("Q4_0", Q4_0), ("Q4_1", Q4_1), ("Q8_0", Q8_0)] {
        let bytes = std::fs::read(dir.join(format!("quantize_{name}.bin"))).unwrap();
        let n = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        let x: Vec<f32> = bytes[4..4 + 4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let want = &bytes[4 + 4 * n..];
        let got = quantize(t, &x).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
        assert!(bad.is_empty(), "{name}: bytes differ at {bad:?}");
        // And the round trip stays within half a quantization step.
        let back = dequantize(t, &got).unwrap();
        let max_err = x
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max_err <= amax / 7.0, "{name}: round-trip error {max_err}");
    }
    assert!(quantize(Q4_0, &[0.0; 31]).is_err());
}

#[test]
fn dequantize_matches_gguf_py() {
    use GgmlType::*;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/quant");
    for (name, t) in [
        ("Q4_0", Q4_0),
        ("Q4_1", Q4_1),
        ("Q5_0", Q5_0),
        ("Q5_1", Q5_1),
        ("Q8_0", Q8_0),
        ("Q2_K", Q2_K),
        ("Q3_K", Q3_K),
        ("Q4_K", Q4_K),
        ("Q5_K", Q5_K),
        ("Q6_K", Q6_K),
    ] {
        let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
        let n = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        let raw = &bytes[4..4 + n * t.type_size()];
        let want: Vec<f32> = bytes[4 + n * t.type_size()..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(want.len(), n * t.block_size());
        let got = dequantize(t, raw).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
                "{name} element {i}: {g} vs {w}"
            );
        }
        // The matrix-vector kernel agrees with the dequantized weights.
        let cols = t.block_size() * n;
        let w = QWeight::owned(raw.to_vec(), t, 1, cols).unwrap();
        let x: Vec<f32> = (0..cols).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
        let mut y = [0f32];
        matvec(&w, &x, &mut y);
        let exact: f64 = want
            .iter()
            .zip(&x)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        assert!(
            (y[0] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()),
            "{name}"
        );
    }
}
