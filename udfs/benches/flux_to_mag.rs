use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};
use pz_udfs::astro::flux_to_mag::{flux_to_mag, FluxToMagFunc};

fn bench(c: &mut Criterion) {
    let n = 100_000;
    let flux: Vec<f64> = (0..n).map(|i| (i as f64 - 5_000.0) * 0.37).collect();
    let mut g = c.benchmark_group("flux_to_mag");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("kernel", |b| {
        b.iter(|| flux.iter().filter_map(|&f| flux_to_mag(f)).sum::<f64>())
    });
    let udf = FluxToMagFunc::new();
    let arr: ArrayRef = Arc::new(Float64Array::from(flux.clone()));
    g.bench_function("udf", |b| {
        b.iter(|| {
            udf.invoke_with_args(ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(arr.clone())],
                arg_fields: vec![Arc::new(Field::new("f", DataType::Float64, true))],
                number_rows: n,
                return_field: Arc::new(Field::new("m", DataType::Float64, true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .map(|v| matches!(v, ColumnarValue::Array(_)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
