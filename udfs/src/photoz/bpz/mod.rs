//! BPZ (Benítez 2000), as RAIL's BPZliteEstimator: template fluxes integrated through the
//! filters on the redshift grid once; per object χ² with the analytic best amplitude for
//! every (z, template); likelihood × the magnitude-dependent prior; summed over templates;
//! values below `p_min` × peak cut.

pub mod prior;
pub mod templates;

use std::path::PathBuf;
use std::sync::OnceLock;

use datafusion::common::{plan_err, Result};
use serde::{Deserialize, Serialize};

use super::fastexp::exp_nonpositive;
use super::grid::ZGrid;
use super::model::{EstimateEnv, Estimator, RowExtra, TrainingSet};
use super::options::{Domain, OptionReader};
use super::photometry::{Photometry, PhotometryConfig};
use crate::math::exp10;
use prior::{fit_prior, PriorParams, PriorTable};

/// Errors above this (in flux units) mark a band that was not observed: it adds nothing.
const UNOBSERVED_ERR: f64 = 1e108;
/// Beyond this Δχ² the likelihood (< e⁻¹⁰⁰) cannot survive the `p_min` cut.
const MAX_DELTA_CHI2: f64 = 200.0;

/// `fluxes` clamps detected errors into [mag_err_min, 20].
const MAG_ERR_MIN_DOMAIN: Domain = Domain::closed(0.0, 20.0);
const P_MIN_DOMAIN: Domain = Domain::from_below(0.0, 1.0);
const ZP_ERROR_DOMAIN: Domain = Domain::closed(0.0, 5.0);
const NONDETECT_MAX_DOMAIN: Domain = Domain::above_to(0.0, 100.0);
/// Most values the prior table may hold (8 bytes each): it has a row per 0.02 mag from m₀
/// to 32, each `nz × templates` wide.
const MAX_PRIOR_TABLE: usize = 1 << 27;

#[derive(Debug, Serialize, Deserialize)]
pub struct BpzModel {
    pub templates: Vec<String>,
    pub filters: Vec<String>,
    pub madau: bool,
    pub template_list: String,
    /// Model fluxes `[filter][z][template]`.
    pub flux: Vec<f64>,
    pub prior_kind: String,
    pub prior: PriorParams,
    /// Zero-point errors as flux fractions (10^(0.4 zp) − 1) per band.
    pub zp_frac: Vec<f64>,
    pub p_min: f64,
    pub mag_err_min: f64,
    pub nondetect_err_max_mag: f64,
    /// The prior tabulated on the grid it was first asked for.
    #[serde(skip)]
    prior_table: OnceLock<(ZGrid, PriorTable)>,
    #[serde(skip)]
    flux_sq: OnceLock<Vec<f64>>,
}

impl Clone for BpzModel {
    fn clone(&self) -> Self {
        BpzModel {
            templates: self.templates.clone(),
            filters: self.filters.clone(),
            madau: self.madau,
            template_list: self.template_list.clone(),
            flux: self.flux.clone(),
            prior_kind: self.prior_kind.clone(),
            prior: self.prior.clone(),
            zp_frac: self.zp_frac.clone(),
            p_min: self.p_min,
            mag_err_min: self.mag_err_min,
            nondetect_err_max_mag: self.nondetect_err_max_mag,
            prior_table: OnceLock::new(),
            flux_sq: OnceLock::new(),
        }
    }
}

impl PartialEq for BpzModel {
    fn eq(&self, o: &Self) -> bool {
        self.templates == o.templates
            && self.filters == o.filters
            && self.madau == o.madau
            && self.flux == o.flux
            && self.prior == o.prior
            && self.zp_frac == o.zp_frac
            && self.p_min == o.p_min
            && self.mag_err_min == o.mag_err_min
    }
}

/// The first template whose every flux (`[filter][z][template]`, `nt` templates) is zero.
fn dark_template(flux: &[f64], nt: usize) -> Option<usize> {
    (0..nt).find(|&t| flux.iter().skip(t).step_by(nt).all(|v| *v == 0.0))
}

/// Fluxes and errors of one object as BPZ prepares them from magnitudes.
#[inline]
#[allow(clippy::too_many_arguments)]
fn fluxes(
    cfg: &PhotometryConfig,
    zp_frac: &[f64],
    err_min: f64,
    nondetect_err_max_mag: f64,
    mags: &[f64],
    errs: &[f64],
    f: &mut [f64],
    ef: &mut [f64],
) {
    for b in 0..mags.len() {
        let m = mags[b];
        let e = errs[b];
        if cfg.is_unobserved(m) || (!cfg.is_nondetect(m) && !e.is_finite()) {
            // Not observed (or a detection with no error): a flat likelihood in this band.
            f[b] = 0.0;
            ef[b] = UNOBSERVED_ERR;
        } else if cfg.is_nondetect(m) || !m.is_finite() {
            // Zero flux with the 1σ limit as error, and half of it in the zero-point term.
            // BPZ-lite clips magnitude errors at 20 before it reads the limit from them, so
            // its limits act as 20th-magnitude ones; `nondetect_err_max_mag` keeps that rule
            // (20) or lifts it (e.g. 99 for the true limits).
            let lim = exp10(-0.4 * cfg.mag_limits[b].abs().min(nondetect_err_max_mag));
            f[b] = 0.0;
            ef[b] = (lim * lim + (zp_frac[b] * 0.5 * lim).powi(2)).sqrt();
        } else {
            let e = e.clamp(err_min, 20.0);
            let fl = exp10(-0.4 * m);
            let er = fl * (exp10(0.4 * e) - 1.0);
            f[b] = fl;
            ef[b] = (er * er + (zp_frac[b] * fl).powi(2)).sqrt();
        }
    }
}

#[derive(Default)]
pub struct BpzScratch {
    f: Vec<f64>,
    ef: Vec<f64>,
    fot: Vec<f64>,
    ftt: Vec<f64>,
}

impl BpzModel {
    fn nt(&self) -> usize {
        self.templates.len()
    }

    fn flux_sq(&self) -> &[f64] {
        self.flux_sq
            .get_or_init(|| self.flux.iter().map(|v| v * v).collect())
    }

    /// The prior on `grid`: cached for the first grid asked for (the model's), computed
    /// afresh for any other.
    fn prior_table(&self, grid: &ZGrid) -> std::borrow::Cow<'_, PriorTable> {
        let (cached, table) = self
            .prior_table
            .get_or_init(|| (*grid, PriorTable::new(&self.prior, grid)));
        if cached == grid {
            std::borrow::Cow::Borrowed(table)
        } else {
            std::borrow::Cow::Owned(PriorTable::new(&self.prior, grid))
        }
    }

    /// Everything estimation relies on, for a model decoded from bytes or just informed:
    /// a flux table of `nbands` filters × the grid × the templates, finite and non-negative,
    /// with every template seen somewhere; per-band zero points; the constants `fluxes`
    /// clamps with in their domains; a prior whose parameters cover its broad types and
    /// whose table fits in memory.
    pub fn check(&self, nbands: usize, grid: &ZGrid) -> std::result::Result<(), String> {
        let nt = self.nt();
        if nt == 0 {
            return Err("bpz: the model has no templates".into());
        }
        if self.filters.len() != nbands || self.zp_frac.len() != nbands {
            return Err(format!(
                "bpz: {} filters and {} zero points for {nbands} bands",
                self.filters.len(),
                self.zp_frac.len()
            ));
        }
        let want = nbands.saturating_mul(grid.nz).saturating_mul(nt);
        if self.flux.len() != want {
            return Err(format!(
                "bpz: the flux table holds {} values; {nbands} filters × {} redshifts × {nt} templates need {want}",
                self.flux.len(),
                grid.nz
            ));
        }
        if self.flux.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err("bpz: the flux table has a negative or non-finite value".into());
        }
        if let Some(t) = dark_template(&self.flux, nt) {
            return Err(format!(
                "bpz: template '{}' has zero flux in every filter at every redshift of the grid \
                 (its fluxes are all zero, or its wavelengths miss the filters)",
                self.templates[t]
            ));
        }
        let zp_max = crate::math::exp10(0.4 * 5.0) - 1.0;
        if self
            .zp_frac
            .iter()
            .any(|v| !(v.is_finite() && (0.0..=zp_max).contains(v)))
        {
            return Err(format!(
                "bpz: zero-point fractions {:?} are out of range",
                self.zp_frac
            ));
        }
        for (what, v, d) in [
            ("p_min", self.p_min, P_MIN_DOMAIN),
            ("mag_err_min", self.mag_err_min, MAG_ERR_MIN_DOMAIN),
            (
                "nondetect_err_max_mag",
                self.nondetect_err_max_mag,
                NONDETECT_MAX_DOMAIN,
            ),
        ] {
            if !d.contains(v) {
                return Err(format!("bpz: {what} {v} is not {d}"));
            }
        }
        self.prior.check(nt)?;
        let cells = self.prior.table_rows().saturating_mul(grid.nz * nt);
        if cells > MAX_PRIOR_TABLE {
            return Err(format!(
                "bpz: the prior table would hold {cells} values ({} magnitudes × {} redshifts × {nt} templates; at most {MAX_PRIOR_TABLE}): use fewer grid points (nz) or templates",
                self.prior.table_rows(),
                grid.nz
            ));
        }
        Ok(())
    }

    /// χ²(z, t) with the best amplitude, into `fot` (`[z][t]`); returns its minimum.
    #[inline(always)]
    fn chi2(
        &self,
        nz: usize,
        f: &[f64],
        ef: &[f64],
        fot: &mut Vec<f64>,
        ftt: &mut Vec<f64>,
    ) -> f64 {
        let nt = self.nt();
        let w = nz * nt;
        fot.clear();
        fot.resize(w, 0.0);
        ftt.clear();
        ftt.resize(w, 0.0);
        let mut obs_chi2 = 0.0;
        let sq = self.flux_sq();
        for b in 0..f.len() {
            let r = f[b] / ef[b];
            if r >= 1e-4 {
                obs_chi2 += r * r;
            }
            if ef[b] > 1.0 {
                continue;
            }
            let inv = 1.0 / (ef[b] * ef[b]);
            let wf = f[b] * inv;
            let ft = &self.flux[b * w..(b + 1) * w];
            let ft2 = &sq[b * w..(b + 1) * w];
            for k in 0..w {
                fot[k] += wf * ft[k];
                ftt[k] += inv * ft2[k];
            }
        }
        for k in 0..w {
            let best = obs_chi2 - fot[k] * fot[k] / ftt[k];
            fot[k] = if ftt[k] == 0.0 { obs_chi2 } else { best };
        }
        // The minimum in four independent lanes, so the loop vectorises (min is exact in any
        // order).
        let mut lanes = [f64::INFINITY; 4];
        let chunks = fot.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..4 {
                lanes[j] = if c[j] < lanes[j] { c[j] } else { lanes[j] };
            }
        }
        let mut min = lanes.iter().copied().fold(f64::INFINITY, f64::min);
        for &c in rest {
            min = min.min(c);
        }
        min
    }

    pub fn describe(&self) -> Vec<(String, String)> {
        let p = &self.prior;
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        vec![
            ("templates".into(), self.templates.join(",")),
            ("filters".into(), self.filters.join(",")),
            ("madau".into(), self.madau.to_string()),
            ("prior".into(), self.prior_kind.clone()),
            ("prior_m0".into(), p.m0.to_string()),
            ("prior_fo".into(), list(&p.fo)),
            ("prior_kt".into(), list(&p.kt)),
            ("prior_zo".into(), list(&p.zo)),
            ("prior_km".into(), list(&p.km)),
            ("prior_alpha".into(), list(&p.alpha)),
            (
                "nt_array".into(),
                p.nt_array
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("p_min".into(), self.p_min.to_string()),
            (
                "nondetect_err_max_mag".into(),
                self.nondetect_err_max_mag.to_string(),
            ),
        ]
    }
}

impl Estimator for BpzModel {
    type Scratch = BpzScratch;

    fn inform(training: &TrainingSet, env: &EstimateEnv, o: &OptionReader) -> Result<Self> {
        let cfg = env.photometry;
        let Some(sed_dir) = o.raw("sed_dir") else {
            return plan_err!(
                "bpz: OPTIONS needs sed_dir (a directory of .sed templates and the .list file)"
            );
        };
        let sed_dir = PathBuf::from(sed_dir);
        let template_list = o.string("template_list", "CWWSB4.list");
        let filter_dir = match o.raw("filter_dir") {
            Some(d) => PathBuf::from(d),
            None => sed_dir
                .parent()
                .map(|p| p.join("FILTER"))
                .unwrap_or_else(|| PathBuf::from("FILTER")),
        };
        let default_filters = cfg
            .bands
            .iter()
            .map(|b| format!("DC2LSST_{b}"))
            .collect::<Vec<_>>()
            .join(",");
        let filters: Vec<String> = o
            .string("filters", &default_filters)
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        if filters.len() != cfg.nbands() {
            return plan_err!(
                "bpz: {} filters given for {} bands ({:?})",
                filters.len(),
                cfg.nbands(),
                cfg.bands
            );
        }
        let prior_kind = o.string("prior", "hdfn").to_ascii_lowercase();
        if !["hdfn", "informed"].contains(&prior_kind.as_str()) {
            return plan_err!("bpz: prior must be 'hdfn' or 'informed', got '{prior_kind}'");
        }
        let madau = o.bool("madau", false)?;
        let zp = match o.f64_list_in("zp_error", ZP_ERROR_DOMAIN, cfg.nbands())? {
            None => vec![0.1; cfg.nbands()],
            Some(v) if v.len() == 1 => vec![v[0]; cfg.nbands()],
            Some(v) if v.len() == cfg.nbands() => v,
            Some(v) => {
                return plan_err!(
                    "bpz: zp_error needs 1 or {} values, got {}",
                    cfg.nbands(),
                    v.len()
                )
            }
        };
        let p_min = o.f64_in("p_min", 0.005, P_MIN_DOMAIN)?;
        let mag_err_min = o.f64_in("mag_err_min", 0.005, MAG_ERR_MIN_DOMAIN)?;
        let nondetect_err_max_mag =
            o.f64_in("nondetect_err_max_mag", 20.0, NONDETECT_MAX_DOMAIN)?;
        let (mmin, mmax) = (
            o.f64_in("mmin", 18.0, Domain::finite())?,
            o.f64_in("mmax", 29.0, Domain::finite())?,
        );
        if mmin >= mmax {
            return plan_err!("bpz: need mmin < mmax, got mmin {mmin} and mmax {mmax}");
        }
        let table = templates::flux_table(
            &sed_dir,
            &template_list,
            &filter_dir,
            &filters,
            env.grid,
            madau,
        )?;
        let nt = table.templates.len();
        // Before the prior is fitted: a template that is dark everywhere is a bad file.
        if let Some(t) = dark_template(&table.flux, nt) {
            return plan_err!(
                "bpz: template '{}' of {template_list} has zero flux in every filter at every redshift of the grid \
                 (its fluxes are all zero, or its wavelengths miss the filters)",
                table.templates[t]
            );
        }
        let nt_array: Vec<usize> = match o.raw("nt_array") {
            Some(v) => {
                let parsed: std::result::Result<Vec<usize>, _> =
                    v.split(',').map(|s| s.trim().parse::<usize>()).collect();
                match parsed {
                    Ok(a) if !a.is_empty() && a.iter().all(|&x| (1..=nt).contains(&x)) => a,
                    _ => {
                        return plan_err!(
                            "bpz: nt_array must be comma-separated positive counts, got '{v}'"
                        )
                    }
                }
            }
            // Benítez's three broad types: one elliptical, two spirals, the rest irregular /
            // starburst (CWW+SB's 1, 2, 5).
            None if nt >= 4 => vec![1, 2, nt - 3],
            None => {
                return plan_err!("bpz: {nt} templates; give nt_array (templates per broad type)")
            }
        };
        if nt_array.iter().sum::<usize>() != nt {
            return plan_err!(
                "bpz: nt_array {:?} sums to {} but {template_list} lists {nt} templates",
                nt_array,
                nt_array.iter().sum::<usize>()
            );
        }
        let hdfn = PriorParams::hdfn(nt_array.clone());
        if nt_array.len() != 3 && prior_kind == "hdfn" {
            return plan_err!(
                "bpz: the HDFN prior has 3 broad types; nt_array {:?} has {}",
                nt_array,
                nt_array.len()
            );
        }
        // The informed prior starts from HDFN's parameters, which exist for 3 types.
        if nt_array.len() > 3 {
            return plan_err!(
                "bpz: prior 'informed' fits at most 3 broad types (it starts from HDFN's); nt_array {:?} has {}",
                nt_array,
                nt_array.len()
            );
        }
        let mut model = BpzModel {
            templates: table.templates,
            filters,
            madau,
            template_list,
            flux: table.flux,
            prior_kind: prior_kind.clone(),
            prior: hdfn.clone(),
            zp_frac: zp.iter().map(|z| exp10(0.4 * z) - 1.0).collect(),
            p_min,
            mag_err_min,
            nondetect_err_max_mag,
            prior_table: OnceLock::new(),
            flux_sq: OnceLock::new(),
        };
        if prior_kind == "informed" {
            // Each training galaxy's broad type: the best-fitting template at its
            // spectroscopic redshift.
            let types_of = model.prior.type_of_template();
            let nz = env.grid.nz;
            let (mut f, mut ef) = (vec![0.0; cfg.nbands()], vec![0.0; cfg.nbands()]);
            let (mut fot, mut ftt) = (Vec::new(), Vec::new());
            let (mut types, mut mags, mut zs) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..training.photometry.n {
                let m = training.photometry.mags(i);
                let mref = m[cfg.ref_band];
                let z = training.redshift[i];
                if !cfg.usable(m)
                    || cfg.is_nondetect(mref)
                    || !(mmin..=mmax).contains(&mref)
                    || z < env.grid.zmin
                    || z > env.grid.zmax
                {
                    continue;
                }
                fluxes(
                    cfg,
                    &model.zp_frac,
                    mag_err_min,
                    nondetect_err_max_mag,
                    m,
                    training.photometry.errs(i),
                    &mut f,
                    &mut ef,
                );
                model.chi2(nz, &f, &ef, &mut fot, &mut ftt);
                let iz = env.grid.nearest(z);
                let row = &fot[iz * nt..(iz + 1) * nt];
                let best = (0..nt)
                    .min_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                types.push(types_of[best]);
                mags.push(mref.max(model.prior.m0));
                zs.push(z);
            }
            if types.is_empty() {
                return plan_err!("bpz: prior 'informed' found no training galaxy with a detected {} magnitude in [{mmin}, {mmax}]", cfg.bands[cfg.ref_band]);
            }
            model.prior = fit_prior(&hdfn, &types, &mags, &zs);
        }
        Ok(model)
    }

    /// By reference magnitude: the prior table holds a row per 0.02 mag, and objects in
    /// magnitude order read the same two rows while they are still in cache.
    fn row_order(&self, env: &EstimateEnv, phot: &Photometry) -> Option<Vec<u32>> {
        let r = env.photometry.ref_band;
        let mut order: Vec<u32> = (0..phot.n as u32).collect();
        order.sort_by(|&a, &b| phot.mags(a as usize)[r].total_cmp(&phot.mags(b as usize)[r]));
        Some(order)
    }

    fn estimate_row(
        &self,
        env: &EstimateEnv,
        _row: usize,
        mags: &[f64],
        errs: &[f64],
        pdf: &mut [f64],
        s: &mut BpzScratch,
        extra: &mut RowExtra,
    ) -> bool {
        bpz_row(self, env, mags, errs, pdf, s, extra)
    }
}

#[inline(always)]
fn bpz_row_impl(
    model: &BpzModel,
    env: &EstimateEnv,
    mags: &[f64],
    errs: &[f64],
    pdf: &mut [f64],
    s: &mut BpzScratch,
    extra: &mut RowExtra,
) -> bool {
    let cfg = env.photometry;
    let nb = mags.len();
    let nz = env.grid.nz;
    let nt = model.nt();
    s.f.resize(nb, 0.0);
    s.ef.resize(nb, 0.0);
    fluxes(
        cfg,
        &model.zp_frac,
        model.mag_err_min,
        model.nondetect_err_max_mag,
        mags,
        errs,
        &mut s.f,
        &mut s.ef,
    );
    let min = model.chi2(nz, &s.f, &s.ef, &mut s.fot, &mut s.ftt);
    if !min.is_finite() {
        return false;
    }
    let mref = mags[cfg.ref_band];
    let mref = if cfg.is_nondetect(mref) || cfg.is_unobserved(mref) {
        99.0
    } else {
        mref
    };
    let table = model.prior_table(env.grid);
    let (lo, hi, t) = table.rows(mref);
    // Posterior p(z, t) in place of χ²; the prior is interpolated only where the
    // likelihood survives.
    let post = &mut s.fot;
    for k in 0..nz * nt {
        let d = post[k] - min;
        let p = exp_nonpositive(-0.5 * d.min(MAX_DELTA_CHI2)) * (lo[k] + t * (hi[k] - lo[k]));
        post[k] = if d > MAX_DELTA_CHI2 { 0.0 } else { p };
    }
    let mut zbest = 0;
    for (iz, p) in pdf.iter_mut().enumerate() {
        *p = post[iz * nt..(iz + 1) * nt].iter().sum();
    }
    for iz in 1..nz {
        // The first maximum, as numpy's argmax.
        if pdf[iz] > pdf[zbest] {
            zbest = iz;
        }
    }
    let pmax = pdf[zbest];
    if pmax.is_nan() || pmax <= 0.0 {
        return false;
    }
    let cut = pmax * model.p_min;
    for p in pdf.iter_mut() {
        if *p < cut {
            *p = 0.0;
        }
    }
    let row = &post[zbest * nt..(zbest + 1) * nt];
    extra.best_template = (0..nt)
        .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
        .map(|t| t as u32);
    true
}

crate::avx2_dispatch!(
    fn bpz_row(model: &BpzModel, env: &EstimateEnv, mags: &[f64], errs: &[f64], pdf: &mut [f64], s: &mut BpzScratch, extra: &mut RowExtra) -> bool => bpz_row_impl
);
