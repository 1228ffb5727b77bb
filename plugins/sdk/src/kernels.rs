//! Vetted tensor kernels: pure functions over slices that give the same bits natively and in
//! wasm.
//!
//! Determinism: each kernel is written with f32/f64 `+ - * /` and comparisons only, in a
//! fixed order. Rust never contracts `a * b + c` into a fused multiply-add and never
//! reassociates float arithmetic, so x86-64 (SSE2) and wasm32 (simd128) compute the same IEEE
//! operations and hence the same bits. There is no `f32::min`/`max`/`clamp` (their NaN and
//! signed-zero behaviour is easy to get wrong across targets): clamps are explicit
//! comparisons, and every kernel documents what NaN and ±inf do. No kernel returns a NaN
//! whose payload depends on the target: NaN outputs are the canonical `f32::NAN`.
//!
//! Speed: straight loops over `zip`/`chunks_exact` with no indexing, so LLVM drops bounds
//! checks and vectorises them for SSE2 and simd128 (`target-feature=+simd128` in
//! `plugins/.cargo/config.toml`). Each kernel is one pass over its data, except
//! `min_max_normalize` and `mean_std`, which need their statistics first.
//!
//! Kernels never panic: bad arguments are a [`KernelError`].

use crate::error::KernelError;

/// Elements per block of the streaming kernels: a fixed-length inner loop that LLVM unrolls
/// into four 128-bit operations. LLVM does not unroll vectorised loops for wasm by itself, and
/// every wasm loop iteration pays the sandbox's interruption check, so one iteration per 16
/// elements instead of per 4 is what brings the plugin to native speed.
const BLOCK: usize = 16;

/// Lanes of the manual reductions (min/max, sums): enough to fill two SSE/simd128 registers.
const LANES: usize = 8;

/// CT windowing fused with scaling to [0, 1]: `out[i] = clamp((input[i] - lo) / width, 0, 1)`
/// with `lo = center - width * 0.5`, computed in f32 exactly in that order.
///
/// `center` must be finite and `width` finite and > 0 (in Hounsfield units for CT: a
/// soft-tissue window is center 40, width 400). NaN maps to 0.0, −inf to 0.0, +inf to 1.0;
/// a result is never −0.0. `out` must be as long as `input`.
pub fn window_level(
    input: &[f32],
    out: &mut [f32],
    center: f32,
    width: f32,
) -> Result<(), KernelError> {
    check_len(input.len(), out.len())?;
    let lo = window_lo(center, width)?;
    let mut out_blocks = out.chunks_exact_mut(BLOCK);
    let mut in_blocks = input.chunks_exact(BLOCK);
    for (out_block, in_block) in (&mut out_blocks).zip(&mut in_blocks) {
        for (y, &x) in out_block.iter_mut().zip(in_block) {
            *y = unit_clamp((x - lo) / width);
        }
    }
    for (y, &x) in out_blocks
        .into_remainder()
        .iter_mut()
        .zip(in_blocks.remainder())
    {
        *y = unit_clamp((x - lo) / width);
    }
    Ok(())
}

/// [`window_level`] in place.
pub fn window_level_in_place(data: &mut [f32], center: f32, width: f32) -> Result<(), KernelError> {
    let lo = window_lo(center, width)?;
    let mut blocks = data.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for x in block.iter_mut() {
            *x = unit_clamp((*x - lo) / width);
        }
    }
    for x in blocks.into_remainder() {
        *x = unit_clamp((*x - lo) / width);
    }
    Ok(())
}

/// Scales `data` in place to [0, 1] by its finite minimum and maximum:
/// `x -> clamp((x - min) / (max - min), 0, 1)` in f32 (in f64 when `max - min` overflows
/// f32), NaN and −inf to 0.0, +inf to 1.0.
///
/// Returns the finite `(min, max)` used, or `None` when there is no finite element or all
/// finite elements are equal; then every element becomes 0.0 (+inf 1.0).
pub fn min_max_normalize(data: &mut [f32]) -> Option<(f32, f32)> {
    let range = finite_min_max(data);
    match range {
        Some((min, max)) if max > min => {
            let width = max - min;
            if width.is_finite() {
                for x in data.iter_mut() {
                    *x = unit_clamp((*x - min) / width);
                }
            } else {
                let (min, width) = (f64::from(min), f64::from(max) - f64::from(min));
                for x in data.iter_mut() {
                    *x = unit_clamp(((f64::from(*x) - min) / width) as f32);
                }
            }
            range
        }
        _ => {
            for x in data.iter_mut() {
                *x = if *x == f32::INFINITY { 1.0 } else { 0.0 };
            }
            None
        }
    }
}

/// The minimum and maximum of the finite elements (NaN and ±inf are skipped), or `None`
/// when there is none. Of −0.0 and +0.0 the result keeps whichever the fixed lane order
/// meets first, on every target.
pub fn finite_min_max(data: &[f32]) -> Option<(f32, f32)> {
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let chunks = data.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(chunk) {
            // NaN and ±inf never compare below +inf / above −inf after this substitution.
            let finite = x.is_finite();
            *l = if finite && x < *l { x } else { *l };
            *h = if finite && x > *h { x } else { *h };
        }
    }
    for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(tail) {
        let finite = x.is_finite();
        *l = if finite && x < *l { x } else { *l };
        *h = if finite && x > *h { x } else { *h };
    }
    let min = lo
        .iter()
        .fold(f32::INFINITY, |m, &x| if x < m { x } else { m });
    let max = hi
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    (min <= max).then_some((min, max))
}

/// Standardises `data` in place: `x -> (x - mean) / std` in f32. `mean` must be finite and
/// `std` finite and > 0. ±inf stay ±inf; NaN becomes the canonical `f32::NAN`.
pub fn z_score_normalize(data: &mut [f32], mean: f32, std: f32) -> Result<(), KernelError> {
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(KernelError::InvalidScale { mean, std });
    }
    for x in data.iter_mut() {
        let y = (*x - mean) / std;
        *x = if y.is_nan() { f32::NAN } else { y };
    }
    Ok(())
}

/// Mean and population standard deviation of the finite elements (NaN and ±inf skipped),
/// accumulated in f64 in a fixed order (two passes: mean, then squared deviations), or
/// `None` when there is no finite element.
pub fn mean_std(data: &[f32]) -> Option<(f64, f64)> {
    let (sum, count) = lane_sum(data, f64::from);
    if count == 0 {
        return None;
    }
    let n = count as f64;
    let mean = sum / n;
    let (squares, _) = lane_sum(data, |x| {
        let d = f64::from(x) - mean;
        d * d
    });
    Some((mean, (squares / n).sqrt()))
}

/// Sums `f(x)` over the finite elements in `LANES` interleaved f64 accumulators (a fixed
/// order, so the same bits everywhere), and counts them.
fn lane_sum(data: &[f32], f: impl Fn(f32) -> f64) -> (f64, usize) {
    let mut sums = [0.0f64; LANES];
    let mut count = 0usize;
    let chunks = data.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (s, &x) in sums.iter_mut().zip(chunk) {
            let finite = x.is_finite();
            *s += if finite { f(x) } else { 0.0 };
            count += usize::from(finite);
        }
    }
    for (s, &x) in sums.iter_mut().zip(tail) {
        let finite = x.is_finite();
        *s += if finite { f(x) } else { 0.0 };
        count += usize::from(finite);
    }
    (sums.iter().sum(), count)
}

/// `out[i] = 1` if `input[i] > t`, else 0 (NaN → 0). `t` must not be NaN; `out` must be as
/// long as `input`.
pub fn threshold(input: &[f32], out: &mut [u8], t: f32) -> Result<(), KernelError> {
    check_len(input.len(), out.len())?;
    if t.is_nan() {
        return Err(KernelError::InvalidThreshold { threshold: t });
    }
    compare_greater(input, out, t);
    Ok(())
}

/// `out[i] = 1` if `sigmoid(input[i]) > t` in exact arithmetic, else 0, without an `exp`
/// per element: it compares `input[i] > logit(t)`, where `logit(t) = ln(t / (1 - t))` is
/// computed once in f64 by a pure-arithmetic series (no libm, so the same bits everywhere)
/// and rounded down to f32.
///
/// `t <= 0` passes every element but −inf and NaN; `t >= 1` passes none; NaN → 0. `t` must
/// not be NaN. Exact except when `logit(t)` lies within about 1e-15 (relative) of an f32
/// value, where the f64 rounding may pick the neighbour.
pub fn sigmoid_threshold(input: &[f32], out: &mut [u8], t: f32) -> Result<(), KernelError> {
    check_len(input.len(), out.len())?;
    compare_greater(input, out, logit_floor(t)?);
    Ok(())
}

/// The f32 threshold `sigmoid_threshold` compares against: the largest f32 ≤ logit(t).
pub fn logit_floor(t: f32) -> Result<f32, KernelError> {
    if t.is_nan() {
        return Err(KernelError::InvalidThreshold { threshold: t });
    }
    if t <= 0.0 {
        return Ok(f32::NEG_INFINITY);
    }
    if t >= 1.0 {
        return Ok(f32::INFINITY);
    }
    let t = f64::from(t);
    let logit = ln(t / (1.0 - t));
    Ok(f32_floor(logit))
}

/// Labels each position of a `[channels, plane]` tensor with the channel of its largest
/// value: `out[p] = argmax_c input[c * plane + p]`. Ties go to the lowest channel, NaN never
/// wins (an all-NaN position gets 0), 1 ≤ `channels` ≤ 256, and `input.len()` must be
/// `channels * plane` and `out.len()` `plane`.
pub fn argmax_channels(
    input: &[f32],
    channels: usize,
    plane: usize,
    out: &mut [u8],
) -> Result<(), KernelError> {
    if !(1..=256).contains(&channels) {
        return Err(KernelError::InvalidChannels { channels });
    }
    let expected = channels
        .checked_mul(plane)
        .ok_or(KernelError::LengthMismatch {
            expected: usize::MAX,
            actual: input.len(),
        })?;
    check_len(expected, input.len())?;
    check_len(plane, out.len())?;
    if plane == 0 {
        return Ok(());
    }
    let mut planes = input.chunks_exact(plane);
    let mut best: Vec<f32> = planes.next().map(<[f32]>::to_vec).unwrap_or_default();
    out.fill(0);
    for (label, values) in (1u8..=255).zip(planes) {
        for ((b, o), &v) in best.iter_mut().zip(out.iter_mut()).zip(values) {
            // Wins if strictly greater, or if the best so far is NaN and `v` is not.
            let wins = (v > *b) | (b.is_nan() & !v.is_nan());
            *b = if wins { v } else { *b };
            *o = if wins { label } else { *o };
        }
    }
    Ok(())
}

fn compare_greater(input: &[f32], out: &mut [u8], t: f32) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = u8::from(x > t);
    }
}

fn check_len(expected: usize, actual: usize) -> Result<(), KernelError> {
    if expected == actual {
        Ok(())
    } else {
        Err(KernelError::LengthMismatch { expected, actual })
    }
}

fn window_lo(center: f32, width: f32) -> Result<f32, KernelError> {
    let lo = center - width * 0.5;
    if center.is_finite() && width.is_finite() && width > 0.0 && lo.is_finite() {
        Ok(lo)
    } else {
        Err(KernelError::InvalidWindow { center, width })
    }
}

/// Clamps to [0, 1] with NaN → 0.0 and −0.0 → 0.0, by comparisons only.
#[inline(always)]
fn unit_clamp(y: f32) -> f32 {
    let y = if y > 0.0 { y } else { 0.0 };
    if y < 1.0 {
        y
    } else {
        1.0
    }
}

/// The largest f32 ≤ `x` (finite `x`; saturates to ±inf beyond f32's range).
fn f32_floor(x: f64) -> f32 {
    let nearest = x as f32;
    if f64::from(nearest) <= x {
        nearest
    } else {
        next_down(nearest)
    }
}

/// The next f32 toward −inf.
fn next_down(x: f32) -> f32 {
    if x.is_nan() || x == f32::NEG_INFINITY {
        return x;
    }
    if x == 0.0 {
        return -f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits - 1 } else { bits + 1 })
}

/// Natural log of a finite positive f64 by pure arithmetic (about 1 ulp), so it gives the
/// same bits on every target, unlike the platform libm.
fn ln(x: f64) -> f64 {
    const LN_2: f64 = std::f64::consts::LN_2;
    const SQRT_2: f64 = std::f64::consts::SQRT_2;
    // x = m * 2^e with m in [1, 2): read the exponent from the bits (normalising subnormals).
    let (x, bias) = if x < f64::MIN_POSITIVE {
        (x * 2f64.powi(64), -64)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023 + bias;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.172: the series converges fast.
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut term = z;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 40.0 {
        sum += term / k;
        term *= z2;
        k += 2.0;
    }
    2.0 * sum + e as f64 * LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f32 = f32::NAN;
    const INF: f32 = f32::INFINITY;

    fn window(input: &[f32], center: f32, width: f32) -> Vec<f32> {
        let mut out = vec![-1.0; input.len()];
        window_level(input, &mut out, center, width).unwrap();
        let mut in_place = input.to_vec();
        window_level_in_place(&mut in_place, center, width).unwrap();
        assert_eq!(bits(&out), bits(&in_place));
        out
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn window_maps_the_window_to_unit_range() {
        // Soft tissue: lo = -160, hi = 240.
        let out = window(&[-1000.0, -160.0, 40.0, 240.0, 1000.0, -60.0], 40.0, 400.0);
        assert_eq!(out, [0.0, 0.0, 0.5, 1.0, 1.0, 0.25]);
    }

    #[test]
    fn window_handles_nan_inf_and_signed_zero() {
        let out = window(&[NAN, -NAN, INF, -INF, -0.0, 0.0], 0.0, 2.0);
        assert_eq!(bits(&out), bits(&[0.0, 0.0, 1.0, 0.0, 0.5, 0.5]));
        // x == lo gives (+0 or -0) / width; the result is always +0.0.
        let out = window(&[-1.0, -5.0], 0.0, 2.0);
        assert_eq!(bits(&out), bits(&[0.0, 0.0]));
    }

    #[test]
    fn window_matches_its_definition_on_many_values() {
        let input: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5000.0) * 0.37).collect();
        let out = window(&input, 40.0, 400.0);
        for (&x, &y) in input.iter().zip(&out) {
            let expected = ((x - (40.0 - 200.0)) / 400.0).clamp(0.0, 1.0);
            assert_eq!(y.to_bits(), expected.to_bits(), "{x}");
        }
    }

    #[test]
    fn window_refuses_bad_arguments_and_lengths() {
        let mut out = [0.0; 2];
        for (c, w) in [
            (0.0, 0.0),
            (0.0, -1.0),
            (0.0, NAN),
            (NAN, 1.0),
            (INF, 1.0),
            (0.0, INF),
        ] {
            assert!(
                matches!(
                    window_level(&[1.0, 2.0], &mut out, c, w),
                    Err(KernelError::InvalidWindow { .. })
                ),
                "{c} {w}"
            );
            assert!(window_level_in_place(&mut out, c, w).is_err());
        }
        // lo overflows.
        assert!(window_level_in_place(&mut out, -3e38, 3e38).is_err());
        assert_eq!(
            window_level(&[1.0], &mut out, 0.0, 1.0),
            Err(KernelError::LengthMismatch {
                expected: 1,
                actual: 2
            })
        );
        assert_eq!(window_level(&[], &mut [], 0.0, 1.0), Ok(()));
        assert_eq!(window_level_in_place(&mut [], 0.0, 1.0), Ok(()));
    }

    #[test]
    fn min_max_normalize_uses_finite_extremes() {
        let mut data = vec![2.0, 4.0, NAN, 6.0, INF, -INF, 3.0, 5.0, 4.0, 2.0];
        assert_eq!(min_max_normalize(&mut data), Some((2.0, 6.0)));
        assert_eq!(data, [0.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.25, 0.75, 0.5, 0.0]);
    }

    #[test]
    fn min_max_normalize_degenerate_and_overflowing_ranges() {
        let mut constant = vec![3.0, 3.0, INF, NAN];
        assert_eq!(min_max_normalize(&mut constant), None);
        assert_eq!(constant, [0.0, 0.0, 1.0, 0.0]);
        let mut empty: Vec<f32> = vec![];
        assert_eq!(min_max_normalize(&mut empty), None);
        let mut no_finite = vec![NAN, -INF];
        assert_eq!(min_max_normalize(&mut no_finite), None);
        assert_eq!(no_finite, [0.0, 0.0]);
        let mut huge = vec![-3e38, 0.0, 3e38];
        assert_eq!(min_max_normalize(&mut huge), Some((-3e38, 3e38)));
        assert_eq!(huge, [0.0, 0.5, 1.0]);
    }

    #[test]
    fn finite_min_max_over_lanes_and_tail() {
        let data: Vec<f32> = (0..37).map(|i| ((i * 17) % 37) as f32 - 10.0).collect();
        assert_eq!(finite_min_max(&data), Some((-10.0, 26.0)));
        assert_eq!(finite_min_max(&[]), None);
        assert_eq!(finite_min_max(&[NAN, INF, -INF]), None);
        assert_eq!(
            finite_min_max(&[f32::MAX, f32::MIN]),
            Some((f32::MIN, f32::MAX))
        );
    }

    #[test]
    fn z_score_and_mean_std() {
        let data: Vec<f32> = vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, NAN, INF];
        let (mean, std) = mean_std(&data).unwrap();
        assert_eq!((mean, std), (5.0, 2.0));
        let mut z = data.clone();
        z_score_normalize(&mut z, mean as f32, std as f32).unwrap();
        assert_eq!(&z[..8], &[-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]);
        assert_eq!(z[8].to_bits(), f32::NAN.to_bits());
        assert_eq!(z[9], INF);
        let mut negative_nan = vec![-NAN];
        z_score_normalize(&mut negative_nan, 0.0, 1.0).unwrap();
        assert_eq!(negative_nan[0].to_bits(), f32::NAN.to_bits());
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[NAN]), None);
        for (m, s) in [(0.0, 0.0), (0.0, -1.0), (NAN, 1.0), (0.0, INF)] {
            assert!(z_score_normalize(&mut z, m, s).is_err());
        }
        assert_eq!(z_score_normalize(&mut [], 0.0, 1.0), Ok(()));
    }

    #[test]
    fn threshold_is_strictly_greater_and_nan_is_zero() {
        let input = [0.4, 0.5, 0.6, NAN, INF, -INF, -0.0];
        let mut out = [9u8; 7];
        threshold(&input, &mut out, 0.5).unwrap();
        assert_eq!(out, [0, 0, 1, 0, 1, 0, 0]);
        threshold(&input, &mut out, -0.0).unwrap();
        assert_eq!(out, [1, 1, 1, 0, 1, 0, 0]);
        assert!(threshold(&input, &mut out, NAN).is_err());
        assert!(threshold(&input, &mut out[..3], 0.5).is_err());
        assert_eq!(threshold(&[], &mut [], 0.5), Ok(()));
    }

    #[test]
    fn sigmoid_threshold_matches_exact_sigmoid() {
        let input: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.0125).collect();
        for t in [0.01f32, 0.1, 0.25, 0.5, 0.7, 0.9, 0.99] {
            let mut out = vec![9u8; input.len()];
            sigmoid_threshold(&input, &mut out, t).unwrap();
            for (&x, &o) in input.iter().zip(&out) {
                // sigmoid(x) > t, evaluated in f64 away from the boundary.
                let s = 1.0 / (1.0 + (-f64::from(x)).exp());
                if (s - f64::from(t)).abs() > 1e-9 {
                    assert_eq!(o, u8::from(s > f64::from(t)), "x={x} t={t}");
                }
            }
        }
        assert_eq!(logit_floor(0.5), Ok(0.0));
        let mut out = [9u8; 5];
        let input = [NAN, -INF, INF, -1e30, 1e30];
        sigmoid_threshold(&input, &mut out, 0.0).unwrap();
        assert_eq!(out, [0, 0, 1, 1, 1]);
        sigmoid_threshold(&input, &mut out, 1.0).unwrap();
        assert_eq!(out, [0, 0, 0, 0, 0]);
        sigmoid_threshold(&input, &mut out, -3.0).unwrap();
        assert_eq!(out, [0, 0, 1, 1, 1]);
        assert!(sigmoid_threshold(&input, &mut out, NAN).is_err());
        assert!(sigmoid_threshold(&input, &mut out[..1], 0.5).is_err());
    }

    #[test]
    fn logit_is_accurate_and_a_floor() {
        for t in [
            1e-30f32, 1e-6, 0.001, 0.2, 0.3, 0.5, 0.75, 0.999, 0.99999994,
        ] {
            let exact = (f64::from(t) / (1.0 - f64::from(t))).ln();
            let floor = logit_floor(t).unwrap();
            assert!(f64::from(floor) <= exact + exact.abs() * 1e-15, "t={t}");
            assert!(
                f64::from(floor) > exact - exact.abs() * 1e-6 - 1e-30,
                "t={t}"
            );
            assert!(
                f64::from(next_up(floor)) > exact - exact.abs() * 1e-15,
                "t={t}"
            );
        }
        for x in [1e-300, 1e-310, 0.5, 1.0, 2.0, 10.0, 1e300] {
            let rel = (ln(x) - x.ln()).abs() / x.ln().abs().max(1.0);
            assert!(rel < 1e-15, "{x}: {} vs {}", ln(x), x.ln());
        }
        assert_eq!(next_down(0.0), -f32::from_bits(1));
        assert_eq!(next_down(1.0), f32::from_bits(1.0f32.to_bits() - 1));
        assert_eq!(next_down(-1.0), f32::from_bits((-1.0f32).to_bits() + 1));
    }

    fn next_up(x: f32) -> f32 {
        -next_down(-x)
    }

    #[test]
    fn argmax_ties_nan_and_shapes() {
        // 3 channels, 6 positions.
        let input = [
            1.0, 5.0, NAN, NAN, 2.0, -INF, //
            1.0, 7.0, 3.0, NAN, 2.0, -INF, //
            0.0, 7.0, NAN, NAN, 9.0, -INF,
        ];
        let mut out = [9u8; 6];
        argmax_channels(&input, 3, 6, &mut out).unwrap();
        assert_eq!(out, [0, 1, 1, 0, 2, 0]);
        // A NaN in channel 0 loses to -inf in channel 1.
        let mut out = [9u8; 1];
        argmax_channels(&[NAN, -INF], 2, 1, &mut out).unwrap();
        assert_eq!(out, [1]);
        argmax_channels(&[4.0], 1, 1, &mut out).unwrap();
        assert_eq!(out, [0]);
    }

    #[test]
    fn argmax_reaches_channel_255_and_checks_arguments() {
        let mut input = vec![0.0f32; 256 * 2];
        input[255 * 2] = 1.0;
        input[254 * 2 + 1] = 1.0;
        let mut out = [0u8; 2];
        argmax_channels(&input, 256, 2, &mut out).unwrap();
        assert_eq!(out, [255, 254]);
        assert_eq!(
            argmax_channels(&input, 257, 2, &mut out),
            Err(KernelError::InvalidChannels { channels: 257 })
        );
        assert!(argmax_channels(&input, 0, 2, &mut out).is_err());
        assert!(argmax_channels(&input, 256, 3, &mut out).is_err());
        assert!(argmax_channels(&input[..4], 2, 2, &mut out[..1]).is_err());
        assert!(argmax_channels(&[], 2, usize::MAX, &mut []).is_err());
        assert_eq!(argmax_channels(&[], 3, 0, &mut []), Ok(()));
    }
}
