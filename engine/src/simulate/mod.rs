//! `pz simulate`: a mock LSST sky — a HATS object catalog, its truth table, a reference
//! redshift catalog and which object each reference redshift came from — made from pz's own SEDs, filters and error model.
//!
//! Galaxy types, magnitudes and redshifts follow the functional forms of the Benítez (2000)
//! HDFN prior (type fractions falling with magnitude, p(z | T, m) ∝ z^α exp(−(z/z_m)^α)),
//! so the mock has the colour–redshift degeneracies and outliers photo-z codes meet on real
//! surveys. Everything is drawn from one seeded generator in a fixed order: the same
//! arguments give the same bytes.

pub mod bpz_files;
pub mod memory;
pub mod photometry;
pub mod rng;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int16Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pz_catalogs::{write_hats, HatsWriteOptions, HatsWriteSummary};

use crate::pipelines::output::StagedDir;

use photometry::{mag_error, ColourTable, BANDS};
use pz_udfs::math::{asin, cos, exp, exp10, log10, pow, sin};
use rng::Rng;

/// Everything that decides a mock sky.
#[derive(Debug, Clone)]
pub struct SimulateConfig {
    pub objects: usize,
    pub specz: usize,
    pub seed: u64,
    pub out: PathBuf,
    /// Patch centre (degrees); the default straddles RA = 0/360.
    pub ra_center: f64,
    pub dec_center: f64,
    /// Galaxies per square degree; sets the patch area.
    pub density_per_deg2: f64,
    /// Most rows per HATS leaf.
    pub pixel_threshold: u64,
    /// Fraction of reference redshifts that sit on a catalogued object.
    pub matched_fraction: f64,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        SimulateConfig {
            objects: 100_000,
            specz: 5_000,
            seed: 42,
            out: PathBuf::from("pz-sky"),
            ra_center: 0.0,
            dec_center: -30.0,
            density_per_deg2: 100_000.0,
            pixel_threshold: 20_000,
            matched_fraction: 0.85,
        }
    }
}

/// What was written.
#[derive(Debug)]
pub struct SimulateSummary {
    pub objects_dir: PathBuf,
    /// The SEDs and filters of the sky in BPZ's formats (`SED/`, `FILTER/`).
    pub bpz_dir: PathBuf,
    pub truth_path: PathBuf,
    pub specz_path: PathBuf,
    pub specz_truth_path: PathBuf,
    pub hats: HatsWriteSummary,
    pub specz_rows: usize,
    pub specz_matched: usize,
    pub area_deg2: f64,
}

/// HDFN-prior-shaped parameters per broad type: (f0, kt) for type fractions and
/// (z0, km, α) for p(z | T, m). Benítez (2000), Table 1.
const TYPE_F0_KT: [(f64, f64); 2] = [(0.35, 0.45), (0.50, 0.147)];
const TYPE_Z: [(f64, f64, f64); 3] = [
    (0.431, 0.0913, 2.465),
    (0.390, 0.0636, 1.806),
    (0.0626, 0.123, 0.906),
];
/// Ranges of the continuous type parameter t for E, spirals, irregular/starburst.
const TYPE_T: [(f64, f64); 3] = [(0.0, 0.15), (0.2, 0.6), (0.6, 1.0)];
const Z_MAX: f64 = 3.0;

struct Galaxy {
    ra: f64,
    dec: f64,
    z: f64,
    t: f64,
    ebv: f64,
    mag_true: [f64; 6],
}

fn type_name(t: f64) -> &'static str {
    match t {
        t if t < 0.15 => "E",
        t if t < 0.4 => "Sbc",
        t if t < 0.6 => "Scd",
        t if t < 0.8 => "Im",
        _ => "SB",
    }
}

/// The densest sky pz simulates: ten times the Hubble Ultra Deep Field's galaxy counts.
/// Denser, neighbours sit closer than the astrometric scatter and cross-matching is noise.
pub const MAX_DENSITY_PER_DEG2: f64 = 1e7;
const WHOLE_SKY_DEG2: f64 = 41_252.96;
/// The patch stays this far from the poles, where RA stretches without bound.
const POLAR_CAP_DEG: f64 = 0.1;
/// Peak bytes per object (galaxies, photometry, the Arrow batches and the HATS writer's
/// sorted copy; 1M objects measured 335 MiB) and per reference redshift, with a margin.
const BYTES_PER_OBJECT: f64 = 450.0;
const BYTES_PER_SPECZ: f64 = 150.0;

impl SimulateConfig {
    /// Every argument within its domain, the patch on the sky, the job in memory: checked
    /// before anything is drawn or written. Errors name the `pz simulate` flag.
    pub fn validate(&self) -> Result<()> {
        if self.objects == 0 {
            return plan_err!("simulate: --objects must be at least 1");
        }
        let d = self.density_per_deg2;
        if !d.is_finite() || d <= 0.0 || d > MAX_DENSITY_PER_DEG2 {
            return plan_err!(
                "simulate: --density {d} is not a galaxy density: it must be a number of galaxies per square degree above 0 and at most {MAX_DENSITY_PER_DEG2:e}"
            );
        }
        if !self.ra_center.is_finite() || self.ra_center.abs() > 360.0 {
            return plan_err!(
                "simulate: --ra-center {} is not an angle within [-360, 360] degrees",
                self.ra_center
            );
        }
        if !(-90.0..=90.0).contains(&self.dec_center) {
            return plan_err!(
                "simulate: --dec-center {} is outside [-90, 90]",
                self.dec_center
            );
        }
        if self.pixel_threshold == 0 {
            return plan_err!("simulate: --pixel-threshold must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.matched_fraction) {
            return plan_err!(
                "simulate: the matched fraction {} is outside [0, 1]",
                self.matched_fraction
            );
        }
        let (_, h, area) = patch(self);
        if area > WHOLE_SKY_DEG2 {
            return plan_err!(
                "simulate: --objects {} at --density {d} need {area:.4e} deg², more than the whole sky ({WHOLE_SKY_DEG2:.0} deg²); raise --density or lower --objects",
                self.objects
            );
        }
        let limit = 90.0 - POLAR_CAP_DEG;
        let (lo, hi) = (self.dec_center - h, self.dec_center + h);
        if lo < -limit || hi > limit {
            return plan_err!(
                "simulate: --objects {} at --density {d} need {area:.4} deg²: a patch from Dec {lo:.3} to {hi:.3} around --dec-center {}, which does not fit between the poles; raise --density, lower --objects or move --dec-center",
                self.objects,
                self.dec_center
            );
        }
        // A patch that fits between the poles also fits in RA: its RA width, 4h/cos(dec),
        // stays below 360° whenever |dec| + h < 90°.
        let bytes = self.objects as f64 * BYTES_PER_OBJECT + self.specz as f64 * BYTES_PER_SPECZ;
        memory::ensure_fits(
            bytes,
            &format!(
                "simulate: --objects {} --specz {}",
                self.objects, self.specz
            ),
        )
    }
}

/// Patch half-sizes (RA half-width on the sky, Dec half-height), degrees.
fn patch(cfg: &SimulateConfig) -> (f64, f64, f64) {
    let area = cfg.objects.max(1) as f64 / cfg.density_per_deg2;
    // A 2:1 patch, like a survey stripe.
    let h = (area / 2.0).sqrt() / 2.0;
    let w = 2.0 * h;
    (w, h, area)
}

fn draw_position(rng: &mut Rng, cfg: &SimulateConfig, w: f64, h: f64) -> (f64, f64) {
    let cosd = cos(cfg.dec_center.to_radians()).max(1e-3);
    let ra = (cfg.ra_center + (2.0 * rng.uniform() - 1.0) * w / cosd).rem_euclid(360.0);
    let (lo, hi) = (
        (cfg.dec_center - h).max(-89.9),
        (cfg.dec_center + h).min(89.9),
    );
    let (slo, shi) = (sin(lo.to_radians()), sin(hi.to_radians()));
    let dec = asin(slo + rng.uniform() * (shi - slo)).to_degrees();
    (if ra >= 360.0 { 0.0 } else { ra }, dec)
}

fn draw_galaxy(rng: &mut Rng, table: &ColourTable, cfg: &SimulateConfig, w: f64, h: f64) -> Galaxy {
    let (ra, dec) = draw_position(rng, cfg, w, h);
    // Number counts ∝ 10^(0.3 m) in i on [17, 26.5].
    let (a, b) = (exp10(0.3 * 17.0), exp10(0.3 * 26.5));
    let m_i = log10(a + rng.uniform() * (b - a)) / 0.3;
    let m = m_i.max(20.0);
    let f_e = TYPE_F0_KT[0].0 * exp(-TYPE_F0_KT[0].1 * (m - 20.0));
    let f_s = TYPE_F0_KT[1].0 * exp(-TYPE_F0_KT[1].1 * (m - 20.0));
    let u = rng.uniform();
    let k = if u < f_e {
        0
    } else if u < f_e + f_s {
        1
    } else {
        2
    };
    let (t_lo, t_hi) = TYPE_T[k];
    let t = t_lo + rng.uniform() * (t_hi - t_lo);
    let (z0, km, alpha) = TYPE_Z[k];
    let zm = (z0 + km * (m - 20.0)).clamp(0.01, 15.0);
    // If u = (z/zm)^α then u ~ Gamma((α+1)/α): exact draws, no rejection on a grid.
    let z = loop {
        let g = rng.gamma((alpha + 1.0) / alpha);
        let z = zm * pow(g, 1.0 / alpha);
        if z > 0.005 && z < Z_MAX {
            break z;
        }
    };
    let ebv = 0.3 * t * rng.uniform() * rng.uniform();
    let c = table.colours(t, ebv, z);
    let mut mag_true = [0.0; 6];
    for bnd in 0..6 {
        mag_true[bnd] = m_i + c[bnd];
    }
    Galaxy {
        ra,
        dec,
        z,
        t,
        ebv,
        mag_true,
    }
}

/// Observed (mag, magerr): noise added in flux; S/N < 1 becomes mag 99 with the 1σ limiting
/// magnitude in the error column (RAIL's DC2 convention).
fn observe(rng: &mut Rng, band: usize, m_true: f64) -> (f32, f32) {
    let flux = exp10(-0.4 * (m_true - 31.4));
    let sigma_mag = mag_error(band, m_true);
    let sigma_flux = flux * sigma_mag / 1.085_736_204_758_129_6;
    let obs = flux + rng.normal() * sigma_flux;
    if obs < sigma_flux {
        let limit = -2.5 * log10(sigma_flux) + 31.4;
        return (99.0, limit as f32);
    }
    let mag = -2.5 * log10(obs) + 31.4;
    let err = 1.085_736_204_758_129_6 * sigma_flux / obs;
    (mag as f32, err as f32)
}

fn parquet_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .build()
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let f = std::fs::File::create(path)
        .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", path.display()))?;
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(parquet_props()))?;
    w.write(batch)?;
    w.close()?;
    Ok(())
}

/// Writes a mock sky into `cfg.out`: `objects/` (HATS), `truth.parquet`, `specz.parquet`,
/// `specz_truth.parquet`, and `bpz/` (its SEDs and filters for BPZ). An existing `cfg.out`
/// keeps its other files; on error nothing is written.
pub fn simulate(cfg: &SimulateConfig) -> Result<SimulateSummary> {
    cfg.validate()?;
    let staged = StagedDir::create_merging(&cfg.out, "simulate")?;
    let tmp = staged.path().to_path_buf();
    let mut s = simulate_into(cfg, &tmp).map_err(|e| staged.user_error(e))?;
    staged.commit()?;
    let at = |p: &Path| match p.strip_prefix(&tmp) {
        Ok(rel) => cfg.out.join(rel),
        Err(_) => p.to_path_buf(),
    };
    s.objects_dir = at(&s.objects_dir);
    s.bpz_dir = at(&s.bpz_dir);
    s.truth_path = at(&s.truth_path);
    s.specz_path = at(&s.specz_path);
    s.specz_truth_path = at(&s.specz_truth_path);
    s.hats.root = at(&s.hats.root);
    Ok(s)
}

fn simulate_into(cfg: &SimulateConfig, out: &Path) -> Result<SimulateSummary> {
    let table = ColourTable::build();
    let mut rng = Rng::new(cfg.seed);
    let (w, h, area) = patch(cfg);
    let n = cfg.objects;

    let mut galaxies = memory::vec_with_capacity(n, "simulate: --objects")?;
    for _ in 0..n {
        galaxies.push(draw_galaxy(&mut rng, &table, cfg, w, h));
    }
    let bands = || -> Result<Vec<Vec<f32>>> {
        (0..6)
            .map(|_| memory::vec_with_capacity(n, "simulate: --objects"))
            .collect()
    };
    let (mut mags, mut errs) = (bands()?, bands()?);
    for g in &galaxies {
        for b in 0..6 {
            let (m, e) = observe(&mut rng, b, g.mag_true[b]);
            mags[b].push(m);
            errs[b].push(e);
        }
    }
    let object_ids: Vec<i64> = (0..n as i64).map(|i| 1_000_000_000 + i).collect();

    // Objects.
    let mut fields = vec![
        Field::new("objectId", DataType::Int64, false),
        Field::new("ra", DataType::Float64, false),
        Field::new("dec", DataType::Float64, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(object_ids.clone())),
        Arc::new(Float64Array::from_iter_values(
            galaxies.iter().map(|g| g.ra),
        )),
        Arc::new(Float64Array::from_iter_values(
            galaxies.iter().map(|g| g.dec),
        )),
    ];
    for (b, band) in BANDS.iter().enumerate() {
        fields.push(Field::new(format!("mag_{band}"), DataType::Float32, false));
        cols.push(Arc::new(Float32Array::from(mags[b].clone())));
    }
    for (b, band) in BANDS.iter().enumerate() {
        fields.push(Field::new(
            format!("magerr_{band}"),
            DataType::Float32,
            false,
        ));
        cols.push(Arc::new(Float32Array::from(errs[b].clone())));
    }
    let schema = Arc::new(Schema::new(fields));
    let objects = RecordBatch::try_new(schema.clone(), cols)?;

    let objects_dir = out.join("objects");
    let opts = HatsWriteOptions {
        catalog_name: Some("objects".into()),
        pixel_threshold: cfg.pixel_threshold,
        sort_columns: vec!["objectId".into()],
        // A fixed date keeps the catalog byte-identical for a given seed.
        creation_date: Some("2026-01-01T00:00UTC".into()),
        overwrite: true,
        ..Default::default()
    };
    let hats = write_hats(&[objects], schema, &objects_dir, &opts)?;

    // Truth.
    let truth = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("objectId", DataType::Int64, false),
            Field::new("redshift", DataType::Float64, false),
            Field::new("galaxy_type", DataType::Utf8, false),
            Field::new("sed_t", DataType::Float32, false),
            Field::new("ebv_internal", DataType::Float32, false),
            Field::new("mag_i_true", DataType::Float32, false),
        ])),
        vec![
            Arc::new(Int64Array::from(object_ids.clone())),
            Arc::new(Float64Array::from_iter_values(galaxies.iter().map(|g| g.z))),
            Arc::new(StringArray::from_iter_values(
                galaxies.iter().map(|g| type_name(g.t)),
            )),
            Arc::new(Float32Array::from_iter_values(
                galaxies.iter().map(|g| g.t as f32),
            )),
            Arc::new(Float32Array::from_iter_values(
                galaxies.iter().map(|g| g.ebv as f32),
            )),
            Arc::new(Float32Array::from_iter_values(
                galaxies.iter().map(|g| g.mag_true[3] as f32),
            )),
        ],
    )?;
    let truth_path = out.join("truth.parquet");
    write_parquet(&truth_path, &truth)?;

    // Reference redshifts: bright objects, moved by ~0.3″, plus unmatched sources.
    let n_matched = ((cfg.specz as f64 * cfg.matched_fraction).round() as usize).min(n);
    let mut used = vec![false; n];
    let mut chosen = memory::vec_with_capacity(n_matched, "simulate: --specz")?;
    let mut tries = 0usize;
    while chosen.len() < n_matched {
        let i = (rng.uniform() * n as f64) as usize % n;
        tries += 1;
        if used[i] {
            continue;
        }
        // Spectroscopic targets favour bright galaxies; relax if the sky runs short.
        let m = mags[3][i] as f64;
        let p = 1.0 / (1.0 + exp((m - 22.5) / 0.6));
        if rng.uniform() < p || tries > 50 * n_matched {
            used[i] = true;
            chosen.push(i);
        }
    }
    let total = cfg.specz.max(n_matched);
    let what = "simulate: --specz";
    let mut s_ra = memory::vec_with_capacity(total, what)?;
    let mut s_dec = memory::vec_with_capacity(total, what)?;
    let mut s_z = memory::vec_with_capacity(total, what)?;
    let mut s_zerr = memory::vec_with_capacity(total, what)?;
    let mut s_flag = memory::vec_with_capacity(total, what)?;
    let mut s_survey = memory::vec_with_capacity(total, what)?;
    let sigma_axis = 0.3 / std::f64::consts::SQRT_2 / 3600.0;
    for k in 0..total {
        let (ra, dec, z_true) = if k < chosen.len() {
            let g = &galaxies[chosen[k]];
            let cosd = cos(g.dec.to_radians()).max(1e-6);
            let ra = (g.ra + rng.normal() * sigma_axis / cosd).rem_euclid(360.0);
            let dec = (g.dec + rng.normal() * sigma_axis).clamp(-90.0, 90.0);
            (ra, dec, g.z)
        } else {
            let (ra, dec) = draw_position(&mut rng, cfg, w, h);
            (ra, dec, 0.05 + rng.uniform() * 1.5)
        };
        let u = rng.uniform();
        let (survey, zerr_scale) = if u < 0.6 {
            ("DESI", 0.0002)
        } else if u < 0.85 {
            ("VVDS", 0.0005)
        } else {
            ("PRIMUS", 0.005)
        };
        let f = rng.uniform();
        let flag: i16 = if f < 0.70 {
            4
        } else if f < 0.90 {
            3
        } else if f < 0.97 {
            2
        } else {
            1
        };
        let z_err = zerr_scale * (1.0 + z_true);
        // Low-confidence redshifts are sometimes simply wrong.
        let wrong = flag <= 2 && rng.uniform() < 0.3;
        let z = if wrong {
            0.02 + rng.uniform() * 2.0
        } else {
            (z_true + rng.normal() * z_err).max(0.0)
        };
        s_ra.push(if ra >= 360.0 { 0.0 } else { ra });
        s_dec.push(dec);
        s_z.push(z);
        s_zerr.push(z_err as f32);
        s_flag.push(flag);
        s_survey.push(survey);
    }
    // Shuffle so matched and unmatched rows are mixed (Fisher–Yates, same generator).
    let mut order: Vec<usize> = (0..total).collect();
    for i in (1..total).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize % (i + 1);
        order.swap(i, j);
    }
    let pick_f64 = |v: &Vec<f64>| Float64Array::from_iter_values(order.iter().map(|&i| v[i]));
    let specz = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ra", DataType::Float64, false),
            Field::new("dec", DataType::Float64, false),
            Field::new("z", DataType::Float64, false),
            Field::new("z_err", DataType::Float32, false),
            Field::new("z_flag", DataType::Int16, false),
            Field::new("survey", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(1..=total as i64)),
            Arc::new(pick_f64(&s_ra)),
            Arc::new(pick_f64(&s_dec)),
            Arc::new(pick_f64(&s_z)),
            Arc::new(Float32Array::from_iter_values(
                order.iter().map(|&i| s_zerr[i]),
            )),
            Arc::new(Int16Array::from_iter_values(
                order.iter().map(|&i| s_flag[i]),
            )),
            Arc::new(StringArray::from_iter_values(
                order.iter().map(|&i| s_survey[i]),
            )),
        ],
    )?;
    let specz_path = out.join("specz.parquet");
    write_parquet(&specz_path, &specz)?;

    // Which object each reference redshift was drawn from (−1: none), and how far it moved.
    let specz_truth = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("true_objectId", DataType::Int64, false),
            Field::new("true_sep_arcsec", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(1..=total as i64)),
            Arc::new(Int64Array::from_iter_values(order.iter().map(|&i| {
                if i < chosen.len() {
                    object_ids[chosen[i]]
                } else {
                    -1
                }
            }))),
            Arc::new(Float64Array::from_iter_values(order.iter().map(|&i| {
                if i < chosen.len() {
                    let g = &galaxies[chosen[i]];
                    pz_udfs::astro::ang_sep::ang_sep_arcsec(g.ra, g.dec, s_ra[i], s_dec[i])
                        .ok()
                        .flatten()
                        .unwrap_or(f64::NAN)
                } else {
                    f64::NAN
                }
            }))),
        ],
    )?;
    let specz_truth_path = out.join("specz_truth.parquet");
    write_parquet(&specz_truth_path, &specz_truth)?;

    let bpz_dir = out.join("bpz");
    bpz_files::write_bpz_inputs(&bpz_dir)?;

    Ok(SimulateSummary {
        objects_dir,
        bpz_dir,
        truth_path,
        specz_path,
        specz_truth_path,
        hats,
        specz_rows: total,
        specz_matched: chosen.len(),
        area_deg2: area,
    })
}
