//! Elementary functions that give the same bits on every CPU.
//!
//! glibc picks its `exp`, `pow`, `log`, `sin`, `cos`, `atan2`, … at load time: on a CPU with
//! FMA it runs builds that round differently in the last bit from the ones an older CPU runs,
//! and `f64::exp` and friends call those. A cluster that mixes CPU generations would then give
//! two answers for one object (a `p_min` cut or an argmax tie can flip, a resumed run need not
//! reproduce the first). Every estimate, cross-match, metric and simulation path calls these
//! instead: the `libm` crate, compiled into pz, with no run-time dispatch. `sqrt` and the
//! basic operations are correctly rounded by IEEE 754, so they need no replacement. Clippy's
//! `disallowed-methods` (each crate's `clippy.toml`) keeps std's versions out.

/// eˣ.
#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// Natural logarithm.
#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// Base-10 logarithm.
#[inline]
pub fn log10(x: f64) -> f64 {
    libm::log10(x)
}

/// xʸ.
#[inline]
pub fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// 10ˣ, the magnitude–flux conversions' power.
#[inline]
pub fn exp10(x: f64) -> f64 {
    libm::pow(10.0, x)
}

/// sin x (radians).
#[inline]
pub fn sin(x: f64) -> f64 {
    libm::sin(x)
}

/// cos x (radians).
#[inline]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

/// (sin x, cos x).
#[inline]
pub fn sin_cos(x: f64) -> (f64, f64) {
    libm::sincos(x)
}

/// atan2(y, x) in (−π, π].
#[inline]
pub fn atan2(y: f64, x: f64) -> f64 {
    libm::atan2(y, x)
}

/// asin x.
#[inline]
pub fn asin(x: f64) -> f64 {
    libm::asin(x)
}

/// Hyperbolic tangent.
#[inline]
pub fn tanh(x: f64) -> f64 {
    libm::tanh(x)
}

/// √(x² + y²) without overflow.
#[inline]
pub fn hypot(x: f64, y: f64) -> f64 {
    libm::hypot(x, y)
}

/// Single-precision eˣ.
#[inline]
pub fn expf(x: f32) -> f32 {
    libm::expf(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    // These pin values, not implementations: libm is within an ulp of the true value, so a
    // wrong wrapper (sin for cos, log for log10) fails here.
    #[test]
    fn values() {
        let close = |a: f64, b: f64| (a - b).abs() <= 2.0 * f64::EPSILON * b.abs().max(1.0);
        assert!(close(exp(1.0), std::f64::consts::E));
        assert!(close(ln(std::f64::consts::E), 1.0));
        assert!(close(log10(1e-7), -7.0));
        assert!(close(pow(2.0, 10.0), 1024.0));
        assert!(close(exp10(-0.4 * 5.0), 0.01));
        assert!(close(sin(std::f64::consts::FRAC_PI_6), 0.5));
        assert!(close(cos(std::f64::consts::FRAC_PI_3), 0.5));
        let (s, c) = sin_cos(0.3);
        assert_eq!((s, c), (sin(0.3), cos(0.3)));
        assert!(close(atan2(1.0, -1.0), 0.75 * std::f64::consts::PI));
        assert!(close(asin(1.0), std::f64::consts::FRAC_PI_2));
        assert!(close(hypot(3e300, 4e300), 5e300));
        assert!((expf(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
    }
}
