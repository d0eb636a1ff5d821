use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pz_udfs::astro::ang_sep::ang_sep_arcsec;
use pz_udfs::astro::cone::Cone;

fn bench(c: &mut Criterion) {
    let n = 100_000;
    let pts: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let f = i as f64 / n as f64;
            (359.0 + 2.0 * f, -31.0 + 2.0 * ((f * 977.0) % 1.0))
        })
        .collect();
    let mut g = c.benchmark_group("ang_sep");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("pairs", |b| {
        b.iter(|| {
            pts.iter()
                .map(|&(ra, dec)| {
                    ang_sep_arcsec(ra, dec, 0.0, -30.0)
                        .ok()
                        .flatten()
                        .unwrap_or(0.0)
                })
                .sum::<f64>()
        })
    });
    let cone = Cone::new(0.0, -30.0, 0.5)
        .ok()
        .flatten()
        .expect("valid cone");
    g.bench_function("cone_contains", |b| {
        b.iter(|| {
            pts.iter()
                .filter(|&&(ra, dec)| cone.contains(ra, dec).ok().flatten().unwrap_or(false))
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
