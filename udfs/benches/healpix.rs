use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pz_udfs::astro::healpix::healpix_nested;

fn positions(n: usize) -> Vec<(f64, f64)> {
    // A deterministic spread over the sky, including RA wrap and high latitudes.
    (0..n)
        .map(|i| {
            let f = i as f64 / n as f64;
            (
                (f * 7919.0 * 360.0) % 360.0 - 1.0,
                (f * 180.0 - 90.0).clamp(-90.0, 90.0),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pos = positions(100_000);
    let mut g = c.benchmark_group("healpix");
    g.throughput(Throughput::Elements(pos.len() as u64));
    for order in [10u8, 29] {
        g.bench_with_input(BenchmarkId::from_parameter(order), &order, |b, &order| {
            b.iter(|| {
                let mut acc = 0u64;
                for &(ra, dec) in &pos {
                    acc ^= healpix_nested(order, ra, dec).ok().flatten().unwrap_or(0);
                }
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
