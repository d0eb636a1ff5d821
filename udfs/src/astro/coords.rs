//! Coordinate conventions shared by the astro kernels.
//!
//! RA is wrapped into [0, 360); Dec outside [-90, 90] is an error that names the value;
//! NaN or infinite coordinates are "no position" and give a null result.

use datafusion::common::{exec_err, Result};

/// Wraps RA into [0, 360). Returns `None` for NaN or infinite input.
#[inline]
pub fn wrap_ra(ra_deg: f64) -> Option<f64> {
    if !ra_deg.is_finite() {
        return None;
    }
    let r = ra_deg.rem_euclid(360.0);
    // rem_euclid can round up to exactly 360 for tiny negative inputs.
    Some(if r >= 360.0 { 0.0 } else { r })
}

/// Checks Dec. `Ok(None)` for NaN (no position), an error naming the value when out of range.
#[inline]
pub fn check_dec(fname: &str, dec_deg: f64) -> Result<Option<f64>> {
    if dec_deg.is_nan() {
        return Ok(None);
    }
    if !(-90.0..=90.0).contains(&dec_deg) {
        return exec_err!("{fname}: declination {dec_deg} is outside [-90, 90] degrees");
    }
    Ok(Some(dec_deg))
}

/// A checked position in radians, or `None` when the position is unknown.
#[inline]
pub fn position(fname: &str, ra_deg: f64, dec_deg: f64) -> Result<Option<(f64, f64)>> {
    let Some(dec) = check_dec(fname, dec_deg)? else {
        return Ok(None);
    };
    let Some(ra) = wrap_ra(ra_deg) else {
        return Ok(None);
    };
    Ok(Some((ra.to_radians(), dec.to_radians())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ra_wraps() {
        assert_eq!(wrap_ra(-10.0), Some(350.0));
        assert_eq!(wrap_ra(370.0), Some(10.0));
        assert_eq!(wrap_ra(360.0), Some(0.0));
        assert_eq!(wrap_ra(-1e-300), Some(0.0));
        assert_eq!(wrap_ra(f64::NAN), None);
        assert_eq!(wrap_ra(f64::INFINITY), None);
    }

    #[test]
    fn dec_checked() {
        assert_eq!(check_dec("f", 90.0).unwrap(), Some(90.0));
        assert_eq!(check_dec("f", f64::NAN).unwrap(), None);
        let err = check_dec("f", 90.5).unwrap_err().to_string();
        assert!(err.contains("90.5"), "{err}");
        assert!(check_dec("f", f64::NEG_INFINITY).is_err());
    }
}
