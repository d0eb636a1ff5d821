//! pz's own galaxy SEDs, LSST filter curves and error model, for the mock sky.
//!
//! * SEDs: a one-parameter family from elliptical (t = 0) to starburst (t = 1): a power-law
//!   continuum in f_ν whose slope follows t, a 4000 Å break whose depth falls with t, a UV
//!   turn-down for old populations, nebular emission lines (Lyα, [OII], Hβ, [OIII], Hα)
//!   whose equivalent widths grow with t, Calzetti-like dust, no flux below 912 Å.
//! * IGM: Madau (1995) Lyman-series forest and Lyman-continuum absorption.
//! * Filters: ugrizy as smooth top-hats on the LSST band edges.
//! * Errors: Ivezić et al. (2019) random error with LSST 10-year coadd depths.

use pz_udfs::math::{exp, exp10, log10, pow, tanh};

/// LSST band names in wavelength order.
pub const BANDS: [&str; 6] = ["u", "g", "r", "i", "z", "y"];
/// Band edges in Å (LSST filter half-power points, rounded).
pub const BAND_EDGES: [(f64, f64); 6] = [
    (3200.0, 4000.0),
    (4000.0, 5520.0),
    (5520.0, 6910.0),
    (6910.0, 8180.0),
    (8180.0, 9220.0),
    (9220.0, 10600.0),
];
/// 10-year coadd 5σ point-source depths (Ivezić et al. 2019, Table 1 style).
pub const DEPTH_5SIGMA: [f64; 6] = [25.9, 27.1, 27.2, 26.6, 25.9, 24.7];
/// Ivezić et al. (2019) γ per band.
pub const GAMMA: [f64; 6] = [0.038, 0.039, 0.039, 0.039, 0.039, 0.039];
/// Systematic error floor (mag).
pub const SIGMA_SYS: f64 = 0.005;

/// Filter transmission at observed wavelength `lam` (Å): a top hat with tanh edges.
pub fn filter_transmission(band: usize, lam: f64) -> f64 {
    let (lo, hi) = BAND_EDGES[band];
    let w = 60.0;
    0.25 * (1.0 + tanh((lam - lo) / w)) * (1.0 + tanh((hi - lam) / w))
}

/// Madau (1995) mean IGM transmission at observed wavelength `lam_obs` for a source at z.
pub fn igm_transmission(lam_obs: f64, z: f64) -> f64 {
    let series = [
        (1215.67, 0.0036),
        (1025.72, 0.0017),
        (972.54, 0.0011846),
        (949.74, 0.0009410),
    ];
    let mut tau = 0.0;
    for (lam_l, a) in series {
        if lam_obs < lam_l * (1.0 + z) {
            tau += a * pow(lam_obs / lam_l, 3.46);
        }
    }
    if lam_obs < 911.75 * (1.0 + z) {
        // Lyman continuum: effectively opaque.
        return 0.0;
    }
    exp(-tau)
}

/// Calzetti-like attenuation curve k(λ) for λ in Å.
fn dust_k(lam: f64) -> f64 {
    let mu = lam / 10_000.0;
    if mu < 0.63 {
        let mu = mu.max(0.12);
        2.659 * (-2.156 + 1.509 / mu - 0.198 / (mu * mu) + 0.011 / (mu * mu * mu)) + 4.05
    } else {
        (2.659 * (-1.857 + 1.040 / mu) + 4.05).max(0.0)
    }
}

/// Rest-frame SED as f_ν (arbitrary units) at rest wavelength `lam` (Å) for type t ∈ [0, 1]
/// and dust E(B−V).
pub fn sed_fnu(t: f64, ebv: f64, lam: f64) -> f64 {
    if lam < 911.75 {
        return 0.0;
    }
    // Continuum slope in f_ν: red for ellipticals, flat for starbursts.
    let gamma = 2.2 - 2.6 * t;
    let mut f = pow(lam / 5500.0, gamma);
    // 4000 Å break, deeper in old populations.
    let depth_mag = 1.0 * (1.0 - t) + 0.15;
    let step = 0.5 * (1.0 + tanh((lam - 4000.0) / 120.0));
    f *= exp10(-0.4 * depth_mag * (1.0 - step));
    // UV turn-down of old stars.
    if lam < 2800.0 {
        f *= pow(lam / 2800.0, 3.0 * (1.0 - t).powi(2));
    }
    // Emission lines (rest EW in Å at t = 1), Gaussian with σ = 8 Å; EW is relative to f_λ,
    // so for f_ν the line adds EW/(√(2π)σ) times the continuum at its centre.
    let lines = [
        (1215.67, 60.0),
        (3727.0, 60.0),
        (4861.0, 25.0),
        (5007.0, 80.0),
        (6563.0, 150.0),
    ];
    let sigma = 8.0;
    let mut add = 0.0;
    for (l0, ew) in lines {
        let d = (lam - l0) / sigma;
        if d.abs() < 5.0 {
            let cont = pow(l0 / 5500.0, gamma);
            add += cont * ew * t.powi(2) * exp(-0.5 * d * d) / (2.5066 * sigma);
        }
    }
    f += add;
    f * exp10(-0.4 * ebv * dust_k(lam))
}

/// AB magnitudes (up to a common constant) of a galaxy of type t, dust `ebv` at redshift z.
pub fn ab_colours(t: f64, ebv: f64, z: f64) -> [f64; 6] {
    let mut out = [0.0; 6];
    for (b, o) in out.iter_mut().enumerate() {
        let (lo, hi) = BAND_EDGES[b];
        let (a, e) = (lo - 300.0, hi + 300.0);
        let n = 120;
        let dl = (e - a) / n as f64;
        let (mut num, mut den) = (0.0, 0.0);
        for k in 0..=n {
            let lam = a + k as f64 * dl;
            let w = if k == 0 || k == n { 0.5 } else { 1.0 };
            let tr = filter_transmission(b, lam) * w / lam;
            num += sed_fnu(t, ebv, lam / (1.0 + z)) * igm_transmission(lam, z) * tr;
            den += tr;
        }
        *o = -2.5 * log10((num / den).max(1e-30));
    }
    out
}

/// Ivezić et al. (2019) random magnitude error in band `b` for true magnitude `m`.
pub fn mag_error(b: usize, m: f64) -> f64 {
    let x = exp10(0.4 * (m - DEPTH_5SIGMA[b]));
    let rand2 = (0.04 - GAMMA[b]) * x + GAMMA[b] * x * x;
    (rand2 + SIGMA_SYS * SIGMA_SYS).sqrt()
}

/// Interpolation table of colours m_b − m_i over (type, dust, redshift).
pub struct ColourTable {
    pub types: Vec<f64>,
    pub dusts: Vec<f64>,
    pub zs: Vec<f64>,
    /// [type][dust][z][band] = m_b − m_i
    colours: Vec<[f64; 6]>,
}

impl ColourTable {
    pub fn build() -> Self {
        let types: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
        let dusts = vec![0.0, 0.15, 0.3];
        let zs: Vec<f64> = (0..=310).map(|i| i as f64 * 0.01).collect();
        let mut colours = Vec::with_capacity(types.len() * dusts.len() * zs.len());
        for &t in &types {
            for &d in &dusts {
                for &z in &zs {
                    let m = ab_colours(t, d, z);
                    let mut c = [0.0; 6];
                    for b in 0..6 {
                        c[b] = m[b] - m[3];
                    }
                    colours.push(c);
                }
            }
        }
        ColourTable {
            types,
            dusts,
            zs,
            colours,
        }
    }

    fn at(&self, it: usize, id: usize, iz: usize) -> &[f64; 6] {
        &self.colours[(it * self.dusts.len() + id) * self.zs.len() + iz]
    }

    /// Trilinear interpolation of m_b − m_i.
    pub fn colours(&self, t: f64, ebv: f64, z: f64) -> [f64; 6] {
        let locate = |grid: &[f64], v: f64| -> (usize, f64) {
            let n = grid.len();
            let step = grid[1] - grid[0];
            let x = ((v - grid[0]) / step).clamp(0.0, (n - 1) as f64 - 1e-9);
            let i = x.floor() as usize;
            (i.min(n - 2), x - i.min(n - 2) as f64)
        };
        let (it, ft) = locate(&self.types, t);
        let (id, fd) = locate(&self.dusts, ebv);
        let (iz, fz) = locate(&self.zs, z);
        let mut out = [0.0; 6];
        for (dt, wt) in [(0, 1.0 - ft), (1, ft)] {
            for (dd, wd) in [(0, 1.0 - fd), (1, fd)] {
                for (dz, wz) in [(0, 1.0 - fz), (1, fz)] {
                    let w = wt * wd * wz;
                    let c = self.at(it + dt, id + dd, iz + dz);
                    for b in 0..6 {
                        out[b] += w * c[b];
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipticals_are_red_and_redden_with_z() {
        let e0 = ab_colours(0.0, 0.0, 0.1);
        let sb0 = ab_colours(1.0, 0.0, 0.1);
        // g − r redder for ellipticals.
        assert!(e0[1] - e0[2] > sb0[1] - sb0[2] + 0.3);
        // The 4000 Å break moves from g−r (z≈0.3) to r−i (z≈0.7).
        let e3 = ab_colours(0.0, 0.0, 0.35);
        let e7 = ab_colours(0.0, 0.0, 0.75);
        assert!(e3[1] - e3[2] > e0[1] - e0[2]);
        assert!(e7[2] - e7[3] > e3[2] - e3[3]);
    }

    #[test]
    fn lyman_break_drops_u_at_high_z() {
        // At z = 2 the Lyman limit (2735 Å observed) is blueward of u; at z = 3 (3647 Å) it
        // blanks half the band and the forest absorbs the rest: a u-dropout.
        let c2 = ab_colours(1.0, 0.0, 2.0);
        let c3 = ab_colours(1.0, 0.0, 3.0);
        let (ug2, ug3) = (c2[0] - c2[1], c3[0] - c3[1]);
        assert!(
            ug3 > 1.0 && ug3 - ug2 > 0.8,
            "u−g {ug2} at z=2, {ug3} at z=3"
        );
    }

    #[test]
    fn igm_and_errors() {
        assert_eq!(igm_transmission(3000.0, 3.0), 0.0);
        assert!(igm_transmission(6000.0, 3.0) == 1.0);
        assert!(igm_transmission(4500.0, 3.0) < 0.8);
        // S/N 5 at the 5σ depth.
        for (b, depth) in DEPTH_5SIGMA.iter().enumerate() {
            let e = mag_error(b, *depth);
            assert!((e - 0.2).abs() < 0.01, "band {b}: {e}");
        }
    }

    #[test]
    fn table_interpolates_the_integrals() {
        let table = ColourTable::build();
        let direct = ab_colours(0.35, 0.1, 0.873);
        let interp = table.colours(0.35, 0.1, 0.873);
        for b in 0..6 {
            assert!((direct[b] - direct[3] - interp[b]).abs() < 0.08, "band {b}");
        }
    }
}
