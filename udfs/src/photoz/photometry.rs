//! Photometry as RAIL takes it: magnitudes and errors in bands u…y, non-detections replaced by
//! per-band limits, a reference band.

use datafusion::common::{plan_err, Result};
use serde::{Deserialize, Serialize};

use super::options::{Domain, OptionReader};

/// LSST 1σ limits RAIL uses for non-detections (`lsst_def_maglims`).
pub const LSST_BANDS: [&str; 6] = ["u", "g", "r", "i", "z", "y"];
pub const LSST_MAG_LIMITS: [f64; 6] = [27.79, 29.04, 29.06, 28.62, 27.98, 27.05];

/// Most bands a model may have.
pub const MAX_BANDS: usize = 32;
/// Limiting magnitudes pz accepts.
pub const MAG_LIMIT_DOMAIN: Domain = Domain::above_to(0.0, 50.0);

/// How a model reads photometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotometryConfig {
    pub bands: Vec<String>,
    /// 1σ limiting magnitude per band, used for non-detections.
    pub mag_limits: Vec<f64>,
    /// Index into `bands` of the reference band (i by default).
    pub ref_band: usize,
    /// Magnitude value that marks a non-detection (NaN and null always do).
    pub nondetect_val: f64,
    /// Magnitude value that marks a band not observed at all (flat likelihood in BPZ).
    pub unobserved_val: f64,
    pub mag_template: String,
    pub magerr_template: String,
    pub redshift_column: String,
}

impl PhotometryConfig {
    /// Reads the photometry keys every algorithm shares.
    pub fn from_options(o: &OptionReader) -> Result<Self> {
        let bands: Vec<String> = o
            .string("bands", &LSST_BANDS.join(","))
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if !(2..=MAX_BANDS).contains(&bands.len()) {
            return plan_err!("option bands needs 2 to {MAX_BANDS} bands, got {bands:?}");
        }
        if let Some(b) = bands
            .iter()
            .enumerate()
            .find_map(|(i, b)| bands[..i].contains(b).then_some(b))
        {
            return plan_err!("option bands lists '{b}' twice: {bands:?}");
        }
        let mag_limits = match o.raw("mag_limits") {
            None => {
                let mut l = Vec::new();
                for b in &bands {
                    match LSST_BANDS.iter().position(|x| x == b) {
                        Some(i) => l.push(LSST_MAG_LIMITS[i]),
                        None => {
                            return plan_err!(
                            "band '{b}' has no default limiting magnitude; give mag_limits '{}'",
                            bands
                                .iter()
                                .map(|b| format!("{b}:<mag>"))
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                        }
                    }
                }
                l
            }
            Some(v) => parse_limits(v, &bands)?,
        };
        let ref_name = o.string("ref_band", "i");
        let Some(ref_band) = bands.iter().position(|b| *b == ref_name) else {
            return plan_err!("ref_band '{ref_name}' is not one of the bands {bands:?}");
        };
        let cfg = PhotometryConfig {
            bands,
            mag_limits,
            ref_band,
            nondetect_val: o.f64_in("nondetect_val", 99.0, Domain::finite())?,
            unobserved_val: o.f64_in("unobserved_val", -99.0, Domain::finite())?,
            mag_template: o.string("mag_template", "mag_{band}"),
            magerr_template: o.string("magerr_template", "magerr_{band}"),
            redshift_column: o.string("redshift_column", "redshift"),
        };
        if let Err(e) = cfg.check() {
            return plan_err!("{e}");
        }
        Ok(cfg)
    }

    /// What reading photometry relies on: 2 to [`MAX_BANDS`] bands, a finite limit for each,
    /// a reference band among them, finite markers that cannot be mistaken for each other,
    /// and column templates that name the band.
    pub fn check(&self) -> std::result::Result<(), String> {
        let nb = self.bands.len();
        if !(2..=MAX_BANDS).contains(&nb) {
            return Err(format!("{nb} bands (2 to {MAX_BANDS} are possible)"));
        }
        if self.mag_limits.len() != nb {
            return Err(format!(
                "{} limiting magnitudes for {nb} bands",
                self.mag_limits.len()
            ));
        }
        if let Some(i) = self
            .mag_limits
            .iter()
            .position(|m| !MAG_LIMIT_DOMAIN.contains(*m))
        {
            return Err(format!(
                "mag_limits: the limit of band '{}' ({}) must be {MAG_LIMIT_DOMAIN}",
                self.bands[i], self.mag_limits[i]
            ));
        }
        if self.ref_band >= nb {
            return Err(format!("reference band {} of {nb} bands", self.ref_band));
        }
        let (nd, un) = (self.nondetect_val, self.unobserved_val);
        // Each marker matches values within 0.01 of it: two closer than 0.02 overlap.
        if !(nd.is_finite() && un.is_finite()) || (nd - un).abs() <= 0.02 {
            return Err(format!(
                "nondetect_val {nd} and unobserved_val {un} must be finite and differ by more than 0.02"
            ));
        }
        for t in [&self.mag_template, &self.magerr_template] {
            if !t.contains("{band}") {
                return Err(format!("column template '{t}' must contain {{band}}"));
            }
        }
        if self.mag_template == self.magerr_template {
            return Err(format!(
                "mag_template and magerr_template are both '{}'",
                self.mag_template
            ));
        }
        Ok(())
    }

    /// What a training column is to this configuration (a band's magnitude or error, or the
    /// redshift), if anything.
    pub fn role_of(&self, column: &str) -> Option<String> {
        if column == self.redshift_column {
            return Some("the redshift".into());
        }
        self.bands.iter().find_map(|band| {
            if column == self.mag_template.replace("{band}", band) {
                Some(format!("the magnitude of band {band}"))
            } else if column == self.magerr_template.replace("{band}", band) {
                Some(format!("the magnitude error of band {band}"))
            } else {
                None
            }
        })
    }

    pub fn nbands(&self) -> usize {
        self.bands.len()
    }

    /// A non-detection: NaN (null arrives as NaN) or the non-detection value.
    #[inline]
    pub fn is_nondetect(&self, mag: f64) -> bool {
        mag.is_nan() || (mag - self.nondetect_val).abs() <= 0.01
    }

    #[inline]
    pub fn is_unobserved(&self, mag: f64) -> bool {
        (mag - self.unobserved_val).abs() <= 0.01
    }

    /// Magnitudes with non-detections (and non-observations) at the band limits: what the
    /// machine-learning estimators see.
    #[inline]
    pub fn limited_mags(&self, mags: &[f64], out: &mut [f64]) {
        for b in 0..mags.len() {
            let m = mags[b];
            out[b] = if self.is_nondetect(m) || self.is_unobserved(m) || !m.is_finite() {
                self.mag_limits[b]
            } else {
                m
            };
        }
    }

    /// True when at least one band holds a detection.
    #[inline]
    pub fn usable(&self, mags: &[f64]) -> bool {
        mags.iter()
            .any(|&m| m.is_finite() && !self.is_nondetect(m) && !self.is_unobserved(m))
    }

    /// Maps the columns of a training SELECT to bands: returns the feature list (columns
    /// in SELECT order that are a band's magnitude or error).
    pub fn features_from_columns(&self, columns: &[String]) -> Result<Vec<Feature>> {
        let mut features = Vec::new();
        for c in columns {
            for (b, band) in self.bands.iter().enumerate() {
                if *c == self.mag_template.replace("{band}", band) {
                    features.push(Feature {
                        column: c.clone(),
                        band: b,
                        is_error: false,
                    });
                } else if *c == self.magerr_template.replace("{band}", band) {
                    features.push(Feature {
                        column: c.clone(),
                        band: b,
                        is_error: true,
                    });
                }
            }
        }
        for (b, band) in self.bands.iter().enumerate() {
            for is_error in [false, true] {
                if !features
                    .iter()
                    .any(|f| f.band == b && f.is_error == is_error)
                {
                    let want = if is_error {
                        &self.magerr_template
                    } else {
                        &self.mag_template
                    };
                    return plan_err!(
                        "the training SELECT has no column '{}' (band {band}); it has: {}. \
                         Rename it in the SELECT or set OPTIONS (mag_template '…{{band}}…', magerr_template '…')",
                        want.replace("{band}", band),
                        columns.join(", ")
                    );
                }
            }
        }
        Ok(features)
    }
}

fn parse_limits(v: &str, bands: &[String]) -> Result<Vec<f64>> {
    let parts: Vec<&str> = v.split(',').map(|s| s.trim()).collect();
    let mut out: Vec<Option<f64>> = vec![None; bands.len()];
    if parts.iter().all(|p| p.contains(':')) {
        for p in parts {
            let (b, m) = p.split_once(':').unwrap_or((p, ""));
            let Some(i) = bands.iter().position(|x| x == b.trim()) else {
                return plan_err!("mag_limits: '{b}' is not one of the bands {bands:?}");
            };
            out[i] = Some(m.trim().parse().map_err(|_| {
                datafusion::common::plan_datafusion_err!("mag_limits: '{m}' is not a number")
            })?);
        }
    } else if parts.len() == bands.len() {
        for (i, p) in parts.iter().enumerate() {
            out[i] = Some(p.parse().map_err(|_| {
                datafusion::common::plan_datafusion_err!("mag_limits: '{p}' is not a number")
            })?);
        }
    } else {
        return plan_err!(
            "mag_limits: give 'band:mag,…' or one number per band ({} bands)",
            bands.len()
        );
    }
    if let Some(i) = out.iter().position(|x| x.is_none()) {
        return plan_err!("mag_limits: no limit for band '{}'", bands[i]);
    }
    // The values' domain is checked with the rest of the configuration.
    Ok(out.into_iter().flatten().collect())
}

/// One model input: the column it came from, its band, magnitude or error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    pub column: String,
    pub band: usize,
    pub is_error: bool,
}

/// A batch of photometry, row-major: `mag[i * nbands + b]`. Nulls are NaN.
#[derive(Debug, Clone, Default)]
pub struct Photometry {
    pub n: usize,
    pub nbands: usize,
    pub mag: Vec<f64>,
    pub err: Vec<f64>,
}

impl Photometry {
    pub fn new(n: usize, nbands: usize) -> Self {
        Photometry {
            n,
            nbands,
            mag: vec![f64::NAN; n * nbands],
            err: vec![f64::NAN; n * nbands],
        }
    }

    #[inline]
    pub fn mags(&self, i: usize) -> &[f64] {
        &self.mag[i * self.nbands..(i + 1) * self.nbands]
    }

    #[inline]
    pub fn errs(&self, i: usize) -> &[f64] {
        &self.err[i * self.nbands..(i + 1) * self.nbands]
    }

    /// Fills one band's magnitudes or errors from a column.
    pub fn set_column(&mut self, band: usize, is_error: bool, values: &[f64]) {
        let dst = if is_error {
            &mut self.err
        } else {
            &mut self.mag
        };
        for (i, v) in values.iter().enumerate().take(self.n) {
            dst[i * self.nbands + band] = *v;
        }
    }
}

/// The reference magnitude plus the adjacent colours (u−g, g−r, …): the feature vector of
/// RAIL's k-NN and FlexZBoost. With `only_colors`, the magnitude is left out.
#[inline]
pub fn mag_and_colours(limited: &[f64], ref_band: usize, only_colors: bool, out: &mut Vec<f64>) {
    out.clear();
    if !only_colors {
        out.push(limited[ref_band]);
    }
    for b in 0..limited.len() - 1 {
        out.push(limited[b] - limited[b + 1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn defaults_and_features() {
        let opts = BTreeMap::new();
        let o = OptionReader::new("knn", &opts);
        let c = PhotometryConfig::from_options(&o).unwrap();
        assert_eq!(c.ref_band, 3);
        assert_eq!(c.mag_limits[0], 27.79);
        let cols: Vec<String> = [
            "id", "mag_u", "magerr_u", "mag_g", "magerr_g", "mag_r", "magerr_r", "mag_i",
            "magerr_i", "mag_z", "magerr_z", "mag_y", "magerr_y", "redshift",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = c.features_from_columns(&cols).unwrap();
        assert_eq!(f.len(), 12);
        assert_eq!(
            f[1],
            Feature {
                column: "magerr_u".into(),
                band: 0,
                is_error: true
            }
        );
        let err = c.features_from_columns(&cols[..5]).unwrap_err().to_string();
        assert!(err.contains("'mag_r'"), "{err}");
        let mut lim = [0.0; 6];
        c.limited_mags(&[99.0, f64::NAN, 24.0, 23.0, 22.0, -99.0], &mut lim);
        assert_eq!(lim, [27.79, 29.04, 24.0, 23.0, 22.0, 27.05]);
        assert!(!c.usable(&[99.0, f64::NAN, 99.0, 99.0, -99.0, 99.0]));
        assert!(c.usable(&[99.0, f64::NAN, 99.0, 25.0, -99.0, 99.0]));
    }

    #[test]
    fn limits_option() {
        let mut opts = BTreeMap::new();
        opts.insert(
            "mag_limits".to_string(),
            "u:26,g:27,r:27,i:27,z:26,y:25".to_string(),
        );
        let o = OptionReader::new("knn", &opts);
        let c = PhotometryConfig::from_options(&o).unwrap();
        assert_eq!(c.mag_limits, vec![26.0, 27.0, 27.0, 27.0, 26.0, 25.0]);
        opts.insert("colour".to_string(), "x".to_string());
        let o = OptionReader::new("knn", &opts);
        PhotometryConfig::from_options(&o).unwrap();
        let e = o.finish().unwrap_err().to_string();
        assert!(e.contains("unknown OPTIONS key 'colour'"), "{e}");
    }
}
