//! The validation aggregates give the same answer on one partition, on many, and on a
//! Ballista cluster; and they equal RAIL's own metric classes (rail_metrics.py) on PDFs pz
//! produces and on PDFs RAIL produces (when ../shared and its RAIL environment are here).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, Float64Array, Int64Array,
    RecordBatch,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::prelude::{SessionConfig, SessionContext};
use parquet::arrow::ArrowWriter;
use pz_engine::pipelines::validate::ValidateConfig;
use pz_engine::PzContext;
use pz_udfs::photoz::grid::ZGrid;

/// A deterministic sample: Gaussian PDFs of varied width around a scattered estimate, some
/// catastrophic, a few all-zero, some true redshifts off the grid.
fn sample_batch(seed: u64, n: usize) -> RecordBatch {
    let g = ZGrid::default();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let (mut ids, mut zp, mut zt, mut pdf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let z_true = if i % 97 == 5 {
            3.05
        } else {
            0.05 + 2.8 * uniform()
        };
        let width = 0.02 + 0.1 * uniform();
        let centre = if uniform() < 0.05 {
            3.0 * uniform()
        } else {
            z_true + width * (uniform() - 0.5) * 2.5
        };
        let zero = i % 211 == 7;
        let mut mode = (0.0, -1.0);
        for k in 0..g.nz {
            let z = g.z(k);
            let v = if zero {
                0.0
            } else {
                (-0.5 * ((z - centre) / width).powi(2)).exp() as f32
            };
            if v as f64 > mode.1 {
                mode = (z, v as f64);
            }
            pdf.push(v);
        }
        ids.push((seed * 1_000_000 + i as u64) as i64);
        zp.push(mode.0);
        zt.push(z_true);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let list = FixedSizeListArray::new(
        item.clone(),
        g.nz as i32,
        Arc::new(Float32Array::from(pdf)),
        None,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("z_mode", DataType::Float64, false),
        Field::new("z_true", DataType::Float64, false),
        Field::new("pdf", DataType::FixedSizeList(item, g.nz as i32), true)
            .with_metadata(g.metadata()),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(Float64Array::from(zp)),
        Arc::new(Float64Array::from(zt)),
        Arc::new(list),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

const ALL: &str = "count(*), pz_bias(z_mode, z_true), pz_sigma_nmad(z_mode, z_true), pz_sigma_iqr(z_mode, z_true), \
    pz_outlier_frac(z_mode, z_true), pz_outlier_rate_rail(z_mode, z_true), pz_pit_ks(pz_pit(pdf, z_true)), \
    pz_pit_cvm(pz_pit(pdf, z_true)), pz_pit_ad(pz_pit(pdf, z_true)), pz_pit_outlier_rate(pz_pit(pdf, z_true)), \
    pz_cde_loss(pdf, z_true), pz_crps(pdf, z_true), pz_brier(pdf, z_true), pz_pdf_excluded(pdf, z_true), pz_nz(pdf)";

/// Every value of every row, lists flattened, as f64.
fn numbers(batches: &[RecordBatch]) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let mut row = Vec::new();
            for c in b.columns() {
                let flat: ArrayRef = match c.data_type() {
                    DataType::FixedSizeList(..) => c.as_fixed_size_list().value(i),
                    DataType::List(_) => c.as_list::<i32>().value(i),
                    _ => c.slice(i, 1),
                };
                let f = cast(&flat, &DataType::Float64).unwrap();
                let f = f.as_primitive::<Float64Type>();
                row.extend((0..f.len()).map(|j| if f.is_null(j) { f64::NAN } else { f.value(j) }));
            }
            out.push(row);
        }
    }
    out
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: row counts");
    for (ra, rb) in a.iter().zip(b) {
        assert_eq!(ra.len(), rb.len(), "{what}: row widths");
        for (x, y) in ra.iter().zip(rb) {
            let same = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-12 * x.abs().max(1e-300);
            assert!(same, "{what}: {x} vs {y}\n{ra:?}\n{rb:?}");
        }
    }
}

async fn run(ctx: &SessionContext, sql: &str) -> Vec<Vec<f64>> {
    numbers(&ctx.sql(sql).await.unwrap().collect().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_merge_the_same_on_one_partition_many_and_ballista() {
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    let batches: Vec<RecordBatch> = (1..=6)
        .map(|s| sample_batch(s, 700 + 37 * s as usize))
        .collect();
    for (k, b) in batches.iter().enumerate() {
        write_parquet(
            &parts.join(format!("part-{k}.parquet")),
            std::slice::from_ref(b),
        );
    }
    let single = dir.path().join("single.parquet");
    write_parquet(&single, &batches);

    let overall = |t: &str| format!("SELECT {ALL} FROM {t}");
    let grouped = |t: &str| {
        format!(
            "SELECT pz_tomo_bin(z_mode, [0.0, 0.5, 1.0, 2.0, 3.0]) AS bin, {ALL} FROM {t} GROUP BY bin ORDER BY bin"
        )
    };

    let one = SessionContext::new_with_state(pz_engine::session_state(
        SessionConfig::new().with_target_partitions(1),
    ));
    one.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
        single.display()
    ))
    .await
    .unwrap();
    let expected_all = run(&one, &overall("t")).await;
    let expected_bins = run(&one, &grouped("t")).await;
    assert_eq!(
        expected_all[0][0] as usize,
        batches.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    assert_eq!(expected_bins.len(), 4);
    // Spot checks that the numbers mean something: a few percent outliers, PITs far from
    // uniform only in the tails, a negative CDE loss.
    let m = &expected_all[0];
    assert!(m[4] > 0.02 && m[4] < 0.2, "outlier fraction {}", m[4]);
    assert!(m[10] < 0.0, "CDE loss {}", m[10]);
    assert!(m[12] > 0.0 && m[12] < 2.0, "Brier {}", m[12]);
    // The all-zero PDFs are left out of the PDF metrics, and counted.
    let zero: usize = batches
        .iter()
        .map(|b| (0..b.num_rows()).filter(|i| i % 211 == 7).count())
        .sum();
    assert!(zero > 0);
    assert_eq!(m[13], zero as f64, "pz_pdf_excluded");

    let many = SessionContext::new_with_state(pz_engine::session_state(
        SessionConfig::new()
            .with_target_partitions(4)
            .with_batch_size(333),
    ));
    many.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/'",
        parts.display()
    ))
    .await
    .unwrap();
    assert_close(
        &run(&many, &overall("t")).await,
        &expected_all,
        "4 partitions",
    );
    assert_close(
        &run(&many, &grouped("t")).await,
        &expected_bins,
        "4 partitions, by bin",
    );

    let cluster = pz_engine::ballista::standalone_context(2).await.unwrap();
    cluster
        .sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/'",
            parts.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_close(
        &run(&cluster, &overall("t")).await,
        &expected_all,
        "Ballista",
    );
    assert_close(
        &run(&cluster, &grouped("t")).await,
        &expected_bins,
        "Ballista, by bin",
    );
}

/// The Python of RAIL's pinned environment (../shared/reference/setup.sh), if made.
fn rail_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PZ_RAIL_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let p = pz_tests::workspace_root().join(".venv-reference/rail/bin/python");
    p.is_file().then_some(p)
}

/// Starts `script args…` in RAIL's Python with its output and log in files under `tmp`.
fn spawn_rail(
    python: &Path,
    script: &Path,
    args: &[&std::ffi::OsStr],
    tmp: &Path,
    tag: &str,
) -> (std::process::Child, PathBuf, PathBuf) {
    let out = tmp.join(format!("{tag}.stdout"));
    let log = tmp.join(format!("{tag}.stderr"));
    let child = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, out, log)
}

/// Waits for a spawned script and returns the JSON of its last stdout line.
fn json_of(run: (std::process::Child, PathBuf, PathBuf), what: &str) -> serde_json::Value {
    let (mut child, out, log) = run;
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{what} failed:\n{log}");
    let text = std::fs::read_to_string(&out).unwrap();
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("{what} printed no JSON line:\n{text}\n{log}"));
    serde_json::from_str(line).unwrap()
}

fn rail_metrics(python: &Path, shared: &Path, file: &Path) -> serde_json::Value {
    let tmp = file.parent().unwrap();
    let tag = format!("metrics-{}", file.file_stem().unwrap().to_string_lossy());
    json_of(
        spawn_rail(
            python,
            &shared.join("reference/rail_metrics.py"),
            &[file.as_os_str()],
            tmp,
            &tag,
        ),
        &format!("rail_metrics.py {}", file.display()),
    )
}

/// Every metric rail_metrics.py reports that pz computes, pz's SQL for it, and (as
/// `n_pdf_excluded`) the count of PDFs each side leaves out.
const PARITY: [(&str, &str); 11] = [
    ("bias", "pz_bias(z_mode, z_true)"),
    ("sigma_nmad", "pz_sigma_nmad(z_mode, z_true)"),
    ("sigma_iqr", "pz_sigma_iqr(z_mode, z_true)"),
    ("outlier_frac_0p15", "pz_outlier_frac(z_mode, z_true)"),
    ("outlier_rate_rail", "pz_outlier_rate_rail(z_mode, z_true)"),
    ("pit_ks", "pz_pit_ks(pz_pit(pdf, z_true))"),
    ("pit_cvm", "pz_pit_cvm(pz_pit(pdf, z_true))"),
    ("pit_ad", "pz_pit_ad(pz_pit(pdf, z_true))"),
    (
        "pit_outlier_rate",
        "pz_pit_outlier_rate(pz_pit(pdf, z_true))",
    ),
    ("cde_loss", "pz_cde_loss(pdf, z_true)"),
    ("n_pdf_excluded", "pz_pdf_excluded(pdf, z_true)"),
];

/// Asserts pz's value of every metric equals RAIL's to 1e-4 relative; returns pz's values
/// by key.
async fn compare_with_rail(
    ctx: &PzContext,
    rail: &serde_json::Value,
    file: &Path,
    what: &str,
) -> std::collections::BTreeMap<&'static str, f64> {
    let cols: Vec<&str> = PARITY.iter().map(|(_, sql)| *sql).collect();
    let sql = format!("SELECT {} FROM '{}'", cols.join(", "), file.display());
    let got = numbers(&ctx.ctx.sql(&sql).await.unwrap().collect().await.unwrap());
    let mut out = std::collections::BTreeMap::new();
    for ((k, _), v) in PARITY.iter().zip(&got[0]) {
        let r = rail[*k]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: rail_metrics.py gave no {k}: {rail}"));
        println!("{what}: {k:<18} pz {v:<22} RAIL {r}");
        assert!(
            (v - r).abs() <= 1e-4 * r.abs().max(1e-6),
            "{what}: {k}: pz {v} vs RAIL {r}"
        );
        out.insert(*k, *v);
    }
    out
}

/// PDFs in a file with at least one negative sample (qp's round-off, for RAIL's PDFs).
async fn pdfs_with_negative_samples(ctx: &PzContext, file: &Path) -> usize {
    let rows = numbers(
        &ctx.ctx
            .sql(&format!("SELECT pdf FROM '{}'", file.display()))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap(),
    );
    rows.iter().filter(|r| r.iter().any(|v| *v < 0.0)).count()
}

/// The algorithms `rail_estimate.py` runs.
const RAIL_ALGOS: [&str; 6] = ["trainz", "knn", "flexzboost", "bpz", "tpz", "gpz"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_equal_rails_on_pz_and_rail_pdfs() {
    let Some(shared) =
        pz_tests::shared_dir().filter(|d| d.join("data/dc2/train.parquet").is_file())
    else {
        println!("SKIP metrics_equal_rails_on_pz_and_rail_pdfs: ../shared/data/dc2 is not beside the project");
        return;
    };
    let Some(python) = rail_python() else {
        println!(
            "SKIP metrics_equal_rails_on_pz_and_rail_pdfs: RAIL's environment from ../shared/reference/setup.sh \
             is not made (.venv-reference/rail, or PZ_RAIL_PYTHON)"
        );
        return;
    };
    let started = std::time::Instant::now();
    let dc2 = shared.join("data/dc2");
    let tmp = tempfile::tempdir().unwrap();
    let (train, valid) = (dc2.join("train.parquet"), dc2.join("valid.parquet"));
    // RAIL's six estimators on the DC2 files, all at once (each is one single-threaded
    // process; the longest, tpz's estimate and flexzboost's inform, set the wall time).
    let runs: Vec<_> = RAIL_ALGOS
        .iter()
        .map(|algo| {
            let out = tmp.path().join(format!("rail_{algo}.parquet"));
            let work = tmp.path().join(format!("work_{algo}"));
            let args: Vec<&std::ffi::OsStr> = vec![
                "--algo".as_ref(),
                algo.as_ref(),
                "--train".as_ref(),
                train.as_os_str(),
                "--test".as_ref(),
                valid.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
                "--workdir".as_ref(),
                work.as_os_str(),
            ];
            let run = spawn_rail(
                &python,
                &shared.join("reference/rail_estimate.py"),
                &args,
                tmp.path(),
                &format!("estimate-{algo}"),
            );
            (*algo, out, run)
        })
        .collect();

    let ctx = PzContext::ephemeral();
    // PDFs pz produces (k-NN on the DC2 files), written as RAIL's scripts read them.
    let pz_file = tmp.path().join("pz.parquet");
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE valid STORED AS PARQUET LOCATION '{valid}';
         CREATE MODEL knn USING knn OPTIONS (mag_template 'mag_{{band}}_lsst', magerr_template 'mag_err_{{band}}_lsst')
           AS SELECT * FROM '{train}';
         COPY (SELECT id, redshift AS z_true, z_mode, pdf FROM photoz_table('knn', 'valid')) TO '{out}' STORED AS PARQUET",
        valid = valid.display(),
        train = train.display(),
        out = pz_file.display()
    ))
    .await
    .unwrap();
    let rail = rail_metrics(&python, &shared, &pz_file);
    compare_with_rail(&ctx, &rail, &pz_file, "pz k-NN PDFs").await;

    // PDFs RAIL produces, every algorithm: rail_metrics.py on each file, in parallel.
    let estimated: Vec<(&str, PathBuf)> = runs
        .into_iter()
        .map(|(algo, out, run)| {
            let line = json_of(run, &format!("rail_estimate.py --algo {algo}"));
            println!("RAIL {algo}: {line}");
            (algo, out)
        })
        .collect();
    let metric_runs: Vec<_> = estimated
        .iter()
        .map(|(algo, file)| {
            spawn_rail(
                &python,
                &shared.join("reference/rail_metrics.py"),
                &[file.as_os_str()],
                tmp.path(),
                &format!("metrics-rail-{algo}"),
            )
        })
        .collect();
    let mut roundoff_seen = 0;
    for ((algo, file), run) in estimated.iter().zip(metric_runs) {
        let what = format!("RAIL {algo} PDFs");
        let rail = json_of(run, &format!("rail_metrics.py on {what}"));
        let pz = compare_with_rail(&ctx, &rail, file, &what).await;
        // qp writes round-off of about -4e-16 beside many PDFs' support (FlexZBoost, BPZ):
        // pz reads it as zero and uses those PDFs, as RAIL does.
        let negative = pdfs_with_negative_samples(&ctx, file).await;
        println!("{what}: {negative} PDFs hold negative round-off");
        assert_eq!(pz["n_pdf_excluded"], 0.0, "{what}");
        if negative > 0 {
            roundoff_seen += 1;
            // pz validate says so, and gives the same numbers.
            let out = tmp.path().join(format!("validate_{algo}"));
            let f = file.display().to_string();
            let mut cfg = ValidateConfig::new(&f, &f, &out);
            cfg.id_column = "id".into();
            let v = cfg.run(&ctx).await.unwrap();
            assert_eq!(v.n_pdf_excluded, 0, "{what}");
            assert_eq!(v.n_pdf_roundoff_zeroed, negative as u64, "{what}");
            assert_eq!(v.overall.n_pdf, v.n_matched, "{what}");
            for (k, got) in [
                ("cde_loss", v.overall.cde_loss),
                ("pit_ks", v.overall.pit_ks),
                ("pit_ad", v.overall.pit_ad),
            ] {
                let r = rail[k].as_f64().unwrap();
                let got = got.unwrap();
                assert!(
                    (got - r).abs() <= 1e-4 * r.abs(),
                    "pz validate on {what}: {k} {got} vs RAIL {r}"
                );
            }
        }
    }
    assert!(
        roundoff_seen > 0,
        "no RAIL output held qp's round-off; the case this test guards is not exercised"
    );
    println!(
        "metrics_equal_rails_on_pz_and_rail_pdfs: {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
