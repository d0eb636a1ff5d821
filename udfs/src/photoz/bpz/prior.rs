//! The Benítez (2000) magnitude-dependent prior p(T|m) p(z|T,m), with its published HDFN
//! parameters or parameters informed from a training set.

use serde::{Deserialize, Serialize};

use crate::math::{exp, ln, log10, pow, sin};
use crate::photoz::grid::ZGrid;

/// Parameters per broad type (the last type's fraction is 1 − the others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorParams {
    pub m0: f64,
    /// f₀ and k_t of every broad type but the last.
    pub fo: Vec<f64>,
    pub kt: Vec<f64>,
    /// z₀, k_m and α of every broad type.
    pub zo: Vec<f64>,
    pub km: Vec<f64>,
    pub alpha: Vec<f64>,
    /// Templates per broad type, in template-list order.
    pub nt_array: Vec<usize>,
}

impl PriorParams {
    /// Benítez (2000) Table 1, HDFN (also `../shared/data/bpz/hdfn_prior.json`).
    pub fn hdfn(nt_array: Vec<usize>) -> Self {
        PriorParams {
            m0: 20.0,
            fo: vec![0.35, 0.5],
            kt: vec![0.45, 0.147],
            zo: vec![0.431, 0.39, 0.0626],
            km: vec![0.0913, 0.0636, 0.123],
            alpha: vec![2.465, 1.806, 0.906],
            nt_array,
        }
    }

    pub fn n_templates(&self) -> usize {
        self.nt_array.iter().sum()
    }

    /// Rows of the magnitude table [`PriorTable::new`] makes.
    pub fn table_rows(&self) -> usize {
        ((32.0 - self.m0) / PRIOR_TABLE_STEP).ceil() as usize + 1
    }

    /// What evaluating the prior for `nt` templates relies on: positive counts per broad
    /// type summing to `nt`, parameters for every type (fractions for all but the last),
    /// all finite, and m₀ low enough for a table of at least two rows.
    pub fn check(&self, nt: usize) -> Result<(), String> {
        let ntyp = self.nt_array.len();
        let sum =
            self.nt_array
                .iter()
                .try_fold(0usize, |a, &n| if n == 0 { None } else { a.checked_add(n) });
        if ntyp == 0 || sum != Some(nt) {
            return Err(format!(
                "bpz prior: templates per broad type {:?} do not add up to the model's {nt}",
                self.nt_array
            ));
        }
        // One type still reads fo[0] and kt[0] (`evaluate_with`).
        let fractions = (ntyp - 1).max(1);
        if self.fo.len() < fractions
            || self.kt.len() < fractions
            || self.zo.len() < ntyp
            || self.km.len() < ntyp
            || self.alpha.len() < ntyp
        {
            return Err(format!(
                "bpz prior: parameters for fewer than its {ntyp} broad types"
            ));
        }
        let params = [&self.fo, &self.kt, &self.zo, &self.km, &self.alpha];
        if params.iter().any(|p| p.iter().any(|v| !v.is_finite()))
            || self.alpha.iter().any(|a| *a < 0.0)
        {
            return Err("bpz prior: a parameter is not finite, or an alpha is negative".into());
        }
        if !(0.0..=30.0).contains(&self.m0) {
            return Err(format!("bpz prior: m0 {} is not in [0, 30]", self.m0));
        }
        Ok(())
    }

    /// Broad type of each template.
    pub fn type_of_template(&self) -> Vec<usize> {
        self.nt_array
            .iter()
            .enumerate()
            .flat_map(|(ty, &n)| std::iter::repeat_n(ty, n))
            .collect()
    }

    /// p(z, T | m) on the grid, `[z][t]` (BPZ's `prior_function`, interp = 0): per template a
    /// normalised z^α exp(−(z/z_m)^α) with values below 1 % of uniform cut, times the type
    /// fraction shared among the type's templates.
    pub fn evaluate(&self, grid: &ZGrid, m: f64, out: &mut [f64]) {
        self.evaluate_with(grid, &self.z_powers(grid), m, out)
    }

    /// z^α of every grid point for every type: the part of the prior that does not depend
    /// on the magnitude, computed once for a whole table.
    fn z_powers(&self, grid: &ZGrid) -> Vec<Vec<f64>> {
        self.alpha
            .iter()
            .map(|&a| (0..grid.nz).map(|iz| pow(grid.z(iz), a)).collect())
            .collect()
    }

    /// [`Self::evaluate`] with the z^α of [`Self::z_powers`]. The shape depends only on the
    /// type, so it is computed once for the templates that share one.
    fn evaluate_with(&self, grid: &ZGrid, z_pow: &[Vec<f64>], m: f64, out: &mut [f64]) {
        let m = if m.is_nan() {
            32.0
        } else {
            m.clamp(self.m0, 32.0)
        };
        let ntyp = self.nt_array.len();
        let nt = self.n_templates();
        let nz = grid.nz;
        let dm = m - self.m0;
        let types = self.type_of_template();
        let mut f_t = vec![0.0; nt];
        if ntyp == 1 {
            for v in f_t.iter_mut() {
                *v = self.fo[0] / self.nt_array[0] as f64 * exp(-self.kt[0] * dm);
            }
        } else {
            let mut used = 0.0;
            for t in 0..nt {
                let ty = types[t];
                if ty < ntyp - 1 {
                    f_t[t] = self.fo[ty] / self.nt_array[ty] as f64 * exp(-self.kt[ty] * dm);
                    used += f_t[t];
                }
            }
            for t in 0..nt {
                if types[t] == ntyp - 1 {
                    f_t[t] = (1.0 - used) / self.nt_array[ntyp - 1] as f64;
                }
            }
        }
        let cut = 1e-2 / nz as f64;
        let mut col = vec![0.0; nz];
        for ty in 0..ntyp {
            if !types.contains(&ty) {
                continue;
            }
            let a = self.alpha[ty];
            let zmt = (self.zo[ty] + self.km[ty] * dm).clamp(0.01, 15.0);
            let zmt_a = pow(zmt, a);
            let mut norm = 0.0;
            for (c, &za) in col.iter_mut().zip(&z_pow[ty]) {
                *c = za * exp(-(za / zmt_a).clamp(0.0, 700.0));
                norm += *c;
            }
            let mut norm2 = 0.0;
            for c in col.iter_mut() {
                *c = if *c / norm < cut { 0.0 } else { *c / norm };
                norm2 += *c;
            }
            for t in (0..nt).filter(|&t| types[t] == ty) {
                for (iz, c) in col.iter().enumerate() {
                    out[iz * nt + t] = if norm2 > 0.0 { c / norm2 * f_t[t] } else { 0.0 };
                }
            }
        }
    }
}

/// The prior tabulated in magnitude, interpolated linearly between rows (the prior is smooth
/// in m; this turns two `powf` and an `exp` per grid cell per object into a multiply-add).
#[derive(Debug, Clone)]
pub struct PriorTable {
    m0: f64,
    dm: f64,
    rows: usize,
    width: usize,
    values: Vec<f64>,
}

pub const PRIOR_TABLE_STEP: f64 = 0.02;

impl PriorTable {
    pub fn new(p: &PriorParams, grid: &ZGrid) -> Self {
        let width = grid.nz * p.n_templates();
        let rows = p.table_rows();
        let mut values = vec![0.0; rows * width];
        let z_pow = p.z_powers(grid);
        for r in 0..rows {
            let m = (p.m0 + r as f64 * PRIOR_TABLE_STEP).min(32.0);
            p.evaluate_with(grid, &z_pow, m, &mut values[r * width..(r + 1) * width]);
        }
        PriorTable {
            m0: p.m0,
            dm: PRIOR_TABLE_STEP,
            rows,
            width,
            values,
        }
    }

    /// The two tabulated rows around `m` and the interpolation weight of the second:
    /// p(z, T | m) = lo + t (hi − lo), `[z][t]`.
    #[inline]
    pub fn rows(&self, m: f64) -> (&[f64], &[f64], f64) {
        let x = if m.is_nan() {
            f64::INFINITY
        } else {
            (m - self.m0) / self.dm
        };
        let x = x.clamp(0.0, (self.rows - 1) as f64);
        let i = (x.floor() as usize).min(self.rows - 2);
        let t = x - i as f64;
        (
            &self.values[i * self.width..(i + 1) * self.width],
            &self.values[(i + 1) * self.width..(i + 2) * self.width],
            t,
        )
    }

    /// p(z, T | m), `[z][t]`, into `out`.
    pub fn at(&self, m: f64, out: &mut [f64]) {
        let (a, b, t) = self.rows(m);
        for k in 0..self.width {
            out[k] = a[k] + t * (b[k] - a[k]);
        }
    }
}

/// Γ(x) for x > 0 (Lanczos, g = 7), enough for the prior's normalisation.
pub fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return std::f64::consts::PI / (sin(std::f64::consts::PI * x) * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * pow(t, x + 0.5) * exp(-t) * a
}

/// Nelder–Mead minimisation with scipy's default start simplex and tolerances.
pub fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: &[f64]) -> Vec<f64> {
    let n = x0.len();
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] = if x[i] != 0.0 { 1.05 * x[i] } else { 0.00025 };
        simplex.push(x);
    }
    let mut fv: Vec<f64> = simplex.iter().map(|x| f(x)).collect();
    let max_iter = 200 * n;
    for _ in 0..max_iter {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| fv[a].total_cmp(&fv[b]));
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        fv = order.iter().map(|&i| fv[i]).collect();
        let spread_x = simplex[1..]
            .iter()
            .flat_map(|x| x.iter().zip(&simplex[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        let spread_f = fv[1..]
            .iter()
            .map(|v| (v - fv[0]).abs())
            .fold(0.0, f64::max);
        if spread_x <= 1e-4 && spread_f <= 1e-4 {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|x| x[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + t * (simplex[n][j] - centroid[j]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = f(&xr);
        if fr < fv[0] {
            let xe = along(-2.0);
            let fe = f(&xe);
            if fe < fr {
                simplex[n] = xe;
                fv[n] = fe;
            } else {
                simplex[n] = xr;
                fv[n] = fr;
            }
        } else if fr < fv[n - 1] {
            simplex[n] = xr;
            fv[n] = fr;
        } else {
            let (xc, fc) = if fr < fv[n] {
                let x = along(-0.5);
                let v = f(&x);
                (x, v)
            } else {
                let x = along(0.5);
                let v = f(&x);
                (x, v)
            };
            if fc < fv[n].min(fr) {
                simplex[n] = xc;
                fv[n] = fc;
            } else {
                for i in 1..=n {
                    let x: Vec<f64> = (0..n)
                        .map(|j| simplex[0][j] + 0.5 * (simplex[i][j] - simplex[0][j]))
                        .collect();
                    fv[i] = f(&x);
                    simplex[i] = x;
                }
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| fv[a].total_cmp(&fv[b]))
        .unwrap_or(0);
    simplex[best].clone()
}

/// Fits the prior's parameters to training galaxies with known broad type, magnitude and
/// redshift, maximising the same likelihoods as RAIL's BPZliteInformer. Types with no
/// galaxies keep the starting (HDFN) values.
pub fn fit_prior(start: &PriorParams, types: &[usize], mags: &[f64], z: &[f64]) -> PriorParams {
    let ntyp = start.nt_array.len();
    let mut p = start.clone();
    // p(T|m): f₀ exp(−k_t (m − m₀)) for all but the last type.
    if ntyp > 1 {
        let frac_like = |x: &[f64]| -> f64 {
            let (fo, kt) = x.split_at(ntyp - 1);
            let mut like = 0.0;
            for (&ty, &m) in types.iter().zip(mags) {
                let mut probs = vec![0.0; ntyp];
                for i in 0..ntyp - 1 {
                    probs[i] = fo[i] * exp(-kt[i] * (m - p.m0));
                }
                probs[ntyp - 1] = 1.0 - probs[..ntyp - 1].iter().sum::<f64>();
                if probs[ty] > 0.0 {
                    like += -2.0 * log10(probs[ty]);
                }
            }
            like
        };
        let mut x0 = vec![1.0 / ntyp as f64; ntyp - 1];
        x0.extend(std::iter::repeat_n(0.3, ntyp - 1));
        let x = nelder_mead(&frac_like, &x0);
        let mut fo = x[..ntyp - 1].to_vec();
        let s: f64 = fo.iter().sum();
        if s > 1.0 {
            fo.iter_mut().for_each(|v| *v /= s);
        }
        p.fo = fo;
        p.kt = x[ntyp - 1..].to_vec();
    }
    for ty in 0..ntyp {
        let sel: Vec<(f64, f64)> = types
            .iter()
            .zip(mags.iter().zip(z))
            .filter(|(t, (_, z))| **t == ty && **z > 0.0)
            .map(|(_, (m, z))| (*m, *z))
            .collect();
        if sel.len() < 3 {
            continue;
        }
        let m0 = p.m0;
        let dndz_like = |x: &[f64]| -> f64 {
            let (z0, alpha, km) = (x[0], x[1], x[2]);
            let mut ll = 0.0;
            for &(m, z) in &sel {
                let zm = z0 + km * (m - m0);
                let inorm = pow(zm, alpha + 1.0) * gamma(1.0 + 1.0 / alpha) / alpha;
                ll += alpha * ln(z) - pow(z / zm, alpha) - ln(inorm);
            }
            if ll.is_nan() {
                f64::INFINITY
            } else {
                -ll
            }
        };
        let x = nelder_mead(&dndz_like, &[0.4, 1.8, 0.1]);
        p.zo[ty] = x[0];
        p.alpha[ty] = x[1].abs();
        p.km[ty] = x[2];
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_sums_to_one_over_templates_and_z() {
        let p = PriorParams::hdfn(vec![1, 2, 5]);
        let g = ZGrid::default();
        let mut out = vec![0.0; 301 * 8];
        for m in [18.0, 22.5, 25.0, 31.0] {
            p.evaluate(&g, m, &mut out);
            let s: f64 = out.iter().sum();
            assert!((s - 1.0).abs() < 1e-9, "m {m}: {s}");
        }
        let t = PriorTable::new(&p, &g);
        let mut a = vec![0.0; 301 * 8];
        t.at(23.0, &mut a);
        p.evaluate(&g, 23.0, &mut out);
        let maxdiff = a
            .iter()
            .zip(&out)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(maxdiff < 1e-12, "{maxdiff}");
    }

    #[test]
    fn gamma_and_minimiser() {
        assert!((gamma(5.0) - 24.0).abs() < 1e-10);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-12);
        let x = nelder_mead(
            &|x: &[f64]| (x[0] - 1.0).powi(2) + 10.0 * (x[1] + 2.0).powi(2),
            &[0.3, 0.3],
        );
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] + 2.0).abs() < 1e-3,
            "{x:?}"
        );
    }
}
