//! Value parsers for flags whose domain is narrower than their type: clap refuses a value
//! outside it with the flag's name, before any work starts.

/// A number > 0 and finite.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a positive finite number")),
        Err(e) => Err(e.to_string()),
    }
}

/// A cone radius in degrees: in (0, 180].
pub fn radius_deg(s: &str) -> Result<f64, String> {
    let v = positive(s)?;
    if v > 180.0 {
        return Err(format!("{v} is more than 180 degrees"));
    }
    Ok(v)
}

/// A right ascension in degrees: finite, within [−360, 360] (wrapped into [0, 360)).
pub fn ra_deg(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= 360.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not an angle within [-360, 360] degrees")),
        Err(e) => Err(e.to_string()),
    }
}

/// A declination in degrees: within [−90, 90].
pub fn dec_deg(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (-90.0..=90.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside [-90, 90]")),
        Err(e) => Err(e.to_string()),
    }
}

/// A whole number ≥ 1.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// A neighbour count: 1 to 1000, as crossmatch takes.
pub fn neighbors(s: &str) -> Result<usize, String> {
    let v = at_least_one(s)?;
    if v > 1000 {
        return Err(format!("{v} is more than 1000"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        for bad in ["0", "-1", "NaN", "inf", "x"] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert_eq!(positive("1e-3"), Ok(1e-3));
        assert!(radius_deg("181").is_err() && radius_deg("180").is_ok());
        assert!(ra_deg("-10").is_ok() && ra_deg("400").is_err() && ra_deg("NaN").is_err());
        assert!(dec_deg("-90").is_ok() && dec_deg("91").is_err() && dec_deg("NaN").is_err());
        assert!(at_least_one("0").is_err() && at_least_one("3") == Ok(3));
        assert!(neighbors("1001").is_err() && neighbors("1000") == Ok(1000));
    }
}
