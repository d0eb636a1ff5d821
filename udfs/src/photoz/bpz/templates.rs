//! BPZ-format inputs (`.sed` spectra, `.res` filter curves, `.list` template lists) and the
//! model fluxes of every template through every filter on the redshift grid, in BPZ's AB
//! convention (f_ν per unit flux, photon-counting detector).

use std::path::{Path, PathBuf};

use datafusion::common::{plan_err, Result};

use crate::math::{exp, pow};
use crate::photoz::grid::ZGrid;

/// Speed of light in Å/s.
const C_ANGSTROM_HZ: f64 = 2.997_924_58e18;

/// A two-column table: wavelength (Å, ascending) and value.
#[derive(Debug, Clone)]
pub struct Curve {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// Reads a whitespace-separated two-column file; `#` starts a comment.
pub fn read_curve(path: &Path) -> Result<Curve> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return plan_err!("bpz: cannot read {}: {e}", path.display()),
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        let (a, b) = (it.next(), it.next());
        match (
            a.and_then(|s| s.parse::<f64>().ok()),
            b.and_then(|s| s.parse::<f64>().ok()),
        ) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => {
                if let Some(&last) = x.last() {
                    if a <= last {
                        return plan_err!(
                            "bpz: {} line {}: wavelengths must increase ({a} follows {last})",
                            path.display(),
                            ln + 1
                        );
                    }
                }
                x.push(a);
                y.push(b);
            }
            _ => {
                return plan_err!(
                    "bpz: {} line {}: expected two numbers (wavelength, value), got '{line}'",
                    path.display(),
                    ln + 1
                )
            }
        }
    }
    if x.len() < 2 {
        return plan_err!(
            "bpz: {} holds {} rows; a curve needs at least 2",
            path.display(),
            x.len()
        );
    }
    Ok(Curve { x, y })
}

/// Template file names of a `.list` file (first word of each line).
pub fn read_list(path: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return plan_err!("bpz: cannot read template list {}: {e}", path.display()),
    };
    let names: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(|s| s.to_string()))
        .collect();
    if names.is_empty() {
        return plan_err!("bpz: template list {} names no templates", path.display());
    }
    Ok(names)
}

/// Linear interpolation, extrapolating with the end segments (BPZ's `match_resol`).
#[inline]
fn interp(x: &[f64], y: &[f64], at: f64) -> f64 {
    let n = x.len();
    let i = x.partition_point(|&v| v < at).saturating_sub(1).min(n - 2);
    let slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i]);
    y[i] + slope * (at - x[i])
}

fn trapz(y: &[f64], x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() {
        s += 0.5 * (x[i] - x[i - 1]) * (y[i] + y[i - 1]);
    }
    s
}

/// Madau (1995) IGM transmission at observed wavelengths `wl` for a source at `z`, with the
/// usual fix that keeps the optical depth flat blueward of its maximum.
pub fn madau_transmission(wl: &[f64], z: f64) -> Vec<f64> {
    const LYMAN: [f64; 4] = [1216.0, 1026.0, 973.0, 950.0];
    const COEF: [f64; 4] = [3.6e-3, 1.7e-3, 1.2e-3, 9.3e-4];
    const LIMIT: f64 = 912.0;
    let xe = 1.0 + z;
    let mut tau: Vec<f64> = wl
        .iter()
        .map(|&w| {
            let mut t = 0.0;
            for (l, c) in LYMAN.iter().zip(COEF) {
                if w <= l * xe {
                    t += c * pow(w / l, 3.46);
                }
            }
            if w <= LIMIT * xe {
                let xc = w / LIMIT;
                let xc3 = xc * xc * xc;
                t += 0.25 * xc3 * (pow(xe, 0.46) - pow(xc, 0.46))
                    + 9.4 * pow(xc, 1.5) * (pow(xe, 0.18) - pow(xc, 0.18))
                    - 0.7 * xc3 * (pow(xc, -1.32) - pow(xe, -1.32))
                    - 0.023 * (pow(xe, 1.68) - pow(xc, 1.68));
            }
            if t.is_nan() {
                0.0
            } else {
                t
            }
        })
        .collect();
    if let Some((imax, &tmax)) = tau.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
        let wmax = wl[imax];
        for (t, &w) in tau.iter_mut().zip(wl) {
            if w < wmax {
                *t = tmax;
            }
        }
    }
    tau.iter()
        .map(|&t| if t > 700.0 { 0.0 } else { exp(-t) })
        .collect()
}

/// Model flux of `sed` seen through `filter` at redshift `z`, in BPZ's AB units.
pub struct FilterIntegrator {
    x_r: Vec<f64>,
    /// Transmission × λ (photon counting).
    r: Vec<f64>,
    norm: f64,
}

impl FilterIntegrator {
    /// Resamples the filter onto the SED's wavelength step when the filter is coarser.
    pub fn new(filter: &Curve, sed_step: f64) -> Self {
        let res_step = (filter.x[filter.x.len() - 1] - filter.x[0]) / filter.x.len() as f64;
        let (x_r, r): (Vec<f64>, Vec<f64>) = if res_step > sed_step {
            let mut xs = Vec::new();
            let last = filter.x[filter.x.len() - 1] + sed_step;
            let mut k = 0usize;
            loop {
                let w = filter.x[0] + k as f64 * sed_step;
                if w >= last {
                    break;
                }
                xs.push(w);
                k += 1;
            }
            let r = xs
                .iter()
                .map(|&w| interp(&filter.x, &filter.y, w).max(0.0))
                .collect();
            (xs, r)
        } else {
            (filter.x.clone(), filter.y.clone())
        };
        let r: Vec<f64> = r.iter().zip(&x_r).map(|(t, w)| t * w).collect();
        let inv_l2: Vec<f64> = r.iter().zip(&x_r).map(|(t, w)| t / (w * w)).collect();
        let norm = 1.0 / (trapz(&inv_l2, &x_r) * C_ANGSTROM_HZ);
        FilterIntegrator { x_r, r, norm }
    }

    pub fn flux(&self, sed: &Curve, z: f64, madau: bool) -> f64 {
        let inv = 1.0 / (1.0 + z);
        let (lo, hi) = (self.x_r[0] * inv, self.x_r[self.x_r.len() - 1] * inv);
        if hi < sed.x[0] || lo > sed.x[sed.x.len() - 1] {
            return 0.0;
        }
        let tau = if madau {
            Some(madau_transmission(&self.x_r, z))
        } else {
            None
        };
        // The rest-frame wavelengths increase with the filter's, so one forward scan finds
        // every interpolation segment.
        let n = sed.x.len();
        let mut seg = 0usize;
        let mut prev = 0.0;
        let mut total = 0.0;
        for (i, (&w, &r)) in self.x_r.iter().zip(&self.r).enumerate() {
            let at = w * inv;
            while seg + 2 < n && sed.x[seg + 1] < at {
                seg += 1;
            }
            let slope = (sed.y[seg + 1] - sed.y[seg]) / (sed.x[seg + 1] - sed.x[seg]);
            let mut y = sed.y[seg] + slope * (at - sed.x[seg]);
            if let Some(t) = &tau {
                y *= t[i];
            }
            let v = y * r;
            if i > 0 {
                total += 0.5 * (w - self.x_r[i - 1]) * (v + prev);
            }
            prev = v;
        }
        total * self.norm
    }
}

/// Template fluxes `[filter][z][template]` on `grid`, plus the template names.
pub struct FluxTable {
    pub templates: Vec<String>,
    pub flux: Vec<f64>,
}

pub fn flux_table(
    sed_dir: &Path,
    template_list: &str,
    filter_dir: &Path,
    filters: &[String],
    grid: &ZGrid,
    madau: bool,
) -> Result<FluxTable> {
    let list_path = sed_dir.join(template_list);
    let names = read_list(&list_path)?;
    let mut seds = Vec::with_capacity(names.len());
    for n in &names {
        let p: PathBuf = sed_dir.join(n);
        let c = read_curve(&p)?;
        if c.y.iter().any(|v| *v < 0.0) {
            return plan_err!("bpz: {} has negative flux values", p.display());
        }
        seds.push(c);
    }
    let mut curves = Vec::with_capacity(filters.len());
    for f in filters {
        let file = if f.ends_with(".res") {
            f.clone()
        } else {
            format!("{f}.res")
        };
        let c = read_curve(&filter_dir.join(&file))?;
        if c.y.iter().all(|v| *v <= 0.0) {
            return plan_err!(
                "bpz: filter {} has no positive transmission",
                filter_dir.join(&file).display()
            );
        }
        curves.push(c);
    }
    let nt = seds.len();
    let nz = grid.nz;
    let mut flux = vec![0.0; filters.len() * nz * nt];
    for (t, sed) in seds.iter().enumerate() {
        let sed_step = (sed.x[sed.x.len() - 1] - sed.x[0]) / sed.x.len() as f64;
        for (b, filt) in curves.iter().enumerate() {
            let integ = FilterIntegrator::new(filt, sed_step);
            for iz in 0..nz {
                flux[(b * nz + iz) * nt + t] = integ.flux(sed, grid.z(iz), madau);
            }
        }
    }
    Ok(FluxTable {
        templates: names,
        flux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_fnu_spectrum_has_unit_ab_flux() {
        // f_ν constant ⇔ f_λ ∝ λ⁻²: the AB flux is the same in every filter at every z.
        let x: Vec<f64> = (0..4000).map(|i| 500.0 + i as f64 * 5.0).collect();
        let sed = Curve {
            y: x.iter().map(|w| 1.0 / (w * w)).collect(),
            x,
        };
        let filter = Curve {
            x: vec![6000.0, 6500.0, 7000.0],
            y: vec![0.0, 1.0, 0.0],
        };
        let integ = FilterIntegrator::new(&filter, 5.0);
        let f0 = integ.flux(&sed, 0.0, false);
        let f1 = integ.flux(&sed, 1.0, false);
        assert!(f0 > 0.0);
        // Redshifting a flat f_ν by (1+z) in λ scales f_λ(λ/(1+z)) by (1+z)².
        assert!((f1 / f0 - 4.0).abs() < 1e-3, "{f0} {f1}");
        assert!(
            (f0 * C_ANGSTROM_HZ - 1.0).abs() < 1e-3,
            "{}",
            f0 * C_ANGSTROM_HZ
        );
    }

    #[test]
    fn madau_is_transparent_redward_of_lyman_alpha() {
        let wl = vec![3000.0, 5000.0, 8000.0];
        let t = madau_transmission(&wl, 3.0);
        assert_eq!(t[1], 1.0);
        assert_eq!(t[2], 1.0);
        assert!(t[0] < 1.0);
    }
}
