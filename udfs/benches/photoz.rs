//! The hot photo-z kernels, per object on one core: BPZ's χ² over the (z, template) grid,
//! FlexZBoost's tree traversal, k-NN's neighbour search; and the validation metrics' PIT.
//! Inputs are synthetic (galaxy-like colours that redden with redshift) so the bench needs
//! nothing from outside the repository.

use std::collections::BTreeMap;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pz_udfs::metrics::pit::pit;
use pz_udfs::photoz::photometry::Photometry;
use pz_udfs::photoz::{Algorithm, Model, ZGrid};

const BANDS: [&str; 6] = ["u", "g", "r", "i", "z", "y"];
const CENTRES: [f64; 6] = [3700.0, 4800.0, 6200.0, 7500.0, 8700.0, 9700.0];

/// A cheap deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
}

/// Magnitudes of a galaxy at redshift z: a 4000 Å break walking redward through the bands.
fn mags(z: f64, bright: f64, kind: f64, rng: &mut Lcg) -> ([f64; 6], [f64; 6]) {
    let mut m = [0.0; 6];
    let mut e = [0.0; 6];
    for b in 0..6 {
        let rest = CENTRES[b] / (1.0 + z);
        let red = if rest < 4000.0 { 1.2 + kind } else { 0.0 };
        let err = 0.02 + 0.05 * (bright - 20.0).max(0.0) / 5.0;
        m[b] = bright + red - 0.1 * b as f64 + err * (rng.next() - 0.5) * 2.0;
        e[b] = err;
    }
    (m, e)
}

fn columns(n: usize, seed: u64, with_z: bool) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut rng = Lcg(seed);
    let mut cols = vec![Vec::with_capacity(n); if with_z { 13 } else { 12 }];
    for _ in 0..n {
        let z = 0.05 + 2.5 * rng.next();
        let (m, e) = mags(z, 20.0 + 5.0 * rng.next(), rng.next(), &mut rng);
        for b in 0..6 {
            cols[b].push(m[b]);
            cols[6 + b].push(e[b]);
        }
        if with_z {
            cols[12].push(z);
        }
    }
    let mut names: Vec<String> = BANDS.iter().map(|b| format!("mag_{b}")).collect();
    names.extend(BANDS.iter().map(|b| format!("magerr_{b}")));
    if with_z {
        names.push("redshift".into());
    }
    (names, cols)
}

fn photometry(n: usize) -> Photometry {
    let (_, cols) = columns(n, 7, false);
    let mut p = Photometry::new(n, 6);
    for b in 0..6 {
        p.set_column(b, false, &cols[b]);
        p.set_column(b, true, &cols[6 + b]);
    }
    p
}

/// BPZ-format templates and filters in a temporary directory.
fn bpz_files(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut list = String::new();
    for (t, slope) in [0.5, 1.0, 1.5, 2.0].iter().enumerate() {
        let mut s = String::new();
        for k in 0..2400 {
            let wl = 500.0 + 10.0 * k as f64;
            let brk = if wl < 4000.0 {
                0.3 + 0.15 * t as f64
            } else {
                1.0
            };
            s += &format!("{wl} {}\n", brk * pz_udfs::math::pow(wl / 5000.0, -slope));
        }
        std::fs::write(dir.join(format!("T{t}.sed")), s).unwrap();
        list += &format!("T{t}.sed\n");
    }
    std::fs::write(dir.join("BENCH.list"), list).unwrap();
    for (b, c) in BANDS.iter().zip(CENTRES) {
        let mut s = String::new();
        for k in 0..800 {
            let wl = 3000.0 + 10.0 * k as f64;
            s += &format!(
                "{wl} {}\n",
                pz_udfs::math::exp(-0.5 * ((wl - c) / 400.0f64).powi(2))
            );
        }
        std::fs::write(dir.join(format!("BENCH_{b}.res")), s).unwrap();
    }
}

fn model(algo: Algorithm, options: BTreeMap<String, String>) -> Model {
    let (names, cols) = columns(5_000, 3, true);
    Model::inform("bench", algo, options, names, cols, "bench", None).unwrap()
}

fn bench(c: &mut Criterion) {
    let n = 2_000;
    let phot = photometry(n);
    let dir = std::env::temp_dir().join(format!("pz-bench-bpz-{}", std::process::id()));
    bpz_files(&dir);
    let d = dir.display().to_string();
    let bpz = model(
        Algorithm::Bpz,
        [
            ("sed_dir", d.as_str()),
            ("filter_dir", d.as_str()),
            ("template_list", "BENCH.list"),
            ("filters", "BENCH_u,BENCH_g,BENCH_r,BENCH_i,BENCH_z,BENCH_y"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let fzb = model(Algorithm::FlexZBoost, BTreeMap::new());
    let knn = model(Algorithm::Knn, BTreeMap::new());
    let mut g = c.benchmark_group("photoz_estimate");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("bpz_chi2_grid", |b| b.iter(|| bpz.estimate(&phot)));
    g.bench_function("flexzboost_tree_traversal", |b| {
        b.iter(|| fzb.estimate(&phot))
    });
    g.bench_function("knn_neighbour_search", |b| b.iter(|| knn.estimate(&phot)));
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);

    let grid = ZGrid::default();
    let pdfs: Vec<Vec<f64>> = (0..1000)
        .map(|i| {
            let mu = 0.1 + 2.5 * (i as f64 / 1000.0);
            grid.points()
                .iter()
                .map(|z| pz_udfs::math::exp(-0.5 * ((z - mu) / 0.05f64).powi(2)))
                .collect()
        })
        .collect();
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(pdfs.len() as u64));
    g.bench_function("pit", |b| {
        b.iter(|| {
            pdfs.iter()
                .enumerate()
                .map(|(i, p)| pit(p, &grid, 0.1 + 2.5 * i as f64 / 1000.0).unwrap_or(0.0))
                .sum::<f64>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
