//! `pz bench photoz`: inform and estimate on one core, RAIL's estimator on the same files in
//! the same run, accuracy of both by RAIL's own metrics script.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, RecordBatchReader, StructArray,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use pz_udfs::photoz::photoz_udf::estimate_columns;
use pz_udfs::photoz::{Algorithm, Model};

use crate::error::CliError;

#[derive(clap::Args, Debug)]
pub struct PhotozArgs {
    /// trainz, knn, bpz or flexzboost.
    #[arg(long)]
    algo: String,
    /// Training Parquet (magnitudes, errors, redshift).
    #[arg(long, value_name = "FILE")]
    train: PathBuf,
    /// Test Parquet.
    #[arg(long, value_name = "FILE")]
    test: PathBuf,
    /// Where pz's (and RAIL's) PDFs are written as Parquet (id, z_true, z_mode, pdf).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Model OPTIONS as key=value (repeatable), e.g. --option sed_dir=../shared/data/bpz/SED.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// Column names: `{band}` is replaced by u, g, r, i, z, y.
    #[arg(long, default_value = "mag_{band}_lsst")]
    bands_template: String,
    #[arg(long, default_value = "mag_err_{band}_lsst")]
    errs_template: String,
    #[arg(long, default_value = "redshift")]
    redshift_col: String,
    #[arg(long, default_value = "id")]
    id_col: String,
    /// Estimate on this many rows: the test set repeated (or cut) to length, e.g. 150000 for
    /// the memory comparison on one partition.
    #[arg(long, value_parser = crate::args::at_least_one)]
    rows: Option<usize>,
    /// A Python with RAIL: run ../shared/reference/rail_estimate.py on the same files.
    #[arg(long, value_name = "PYTHON")]
    rail_python: Option<PathBuf>,
    /// Directory of the reference scripts (default ../shared/reference).
    #[arg(long, value_name = "DIR", default_value = "../shared/reference")]
    reference_dir: PathBuf,
    /// RAIL stage settings for the reference (KEY=JSON, repeatable), e.g. bpz_ref_data_path.
    #[arg(long = "rail-set", value_name = "KEY=JSON")]
    rail_set: Vec<String>,
    /// Time pz's estimate this many times over the whole test set, each from a fresh copy of
    /// the model, and report the median (the first pass writes the output). Short runs on a
    /// shared machine are noisy; RAIL's run, a minute long, is not repeated.
    #[arg(long, default_value_t = 3, value_parser = crate::args::at_least_one)]
    repeat: usize,
}

const BATCH: usize = 8192;

fn read_parquet(path: &Path) -> Result<RecordBatch, CliError> {
    let f = std::fs::File::open(path).map_err(CliError::io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)?
        .with_batch_size(65536)
        .build()?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    Ok(concat_batches(&schema, &batches)?)
}

fn column_f64(b: &RecordBatch, name: &str, path: &Path) -> Result<Vec<f64>, CliError> {
    let Some(c) = b.column_by_name(name) else {
        return Err(CliError::Usage(format!(
            "{}: no column '{name}'",
            path.display()
        )));
    };
    let c = cast(c, &DataType::Float64)?;
    let a = c.as_any().downcast_ref::<Float64Array>().ok_or_else(|| {
        CliError::Usage(format!(
            "{}: column '{name}' is not numeric",
            path.display()
        ))
    })?;
    Ok((0..a.len())
        .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) })
        .collect())
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Repeats (or cuts) a batch to `n` rows.
fn to_rows(b: &RecordBatch, n: usize) -> Result<RecordBatch, CliError> {
    if n == b.num_rows() || b.num_rows() == 0 {
        return Ok(b.clone());
    }
    let mut parts = Vec::new();
    let mut left = n;
    while left > 0 {
        let take = left.min(b.num_rows());
        parts.push(b.slice(0, take));
        left -= take;
    }
    Ok(concat_batches(&b.schema(), &parts)?)
}

pub async fn photoz(a: &PhotozArgs) -> Result<(), CliError> {
    let algorithm = Algorithm::parse(&a.algo)?;
    std::fs::create_dir_all(&a.out).map_err(CliError::io(&a.out))?;
    let bands = ["u", "g", "r", "i", "z", "y"];
    let mags: Vec<String> = bands
        .iter()
        .map(|b| a.bands_template.replace("{band}", b))
        .collect();
    let errs: Vec<String> = bands
        .iter()
        .map(|b| a.errs_template.replace("{band}", b))
        .collect();

    let train = read_parquet(&a.train)?;
    let mut test = read_parquet(&a.test)?;
    if let Some(n) = a.rows {
        // The repeated test set is built in memory: --rows sizes it.
        let per_row = test.get_array_memory_size() as f64 / test.num_rows().max(1) as f64;
        pz_engine::simulate::memory::ensure_fits(
            per_row * n as f64 * 2.0,
            &format!("bench photoz: --rows {n}"),
        )?;
        test = to_rows(&test, n)?;
    }
    let test_path = if a.rows.is_some() {
        let p = a.out.join("test_rows.parquet");
        let f = std::fs::File::create(&p).map_err(CliError::io(&p))?;
        let mut w = ArrowWriter::try_new(f, test.schema(), None)?;
        w.write(&test)?;
        w.close()?;
        p
    } else {
        a.test.clone()
    };

    let mut columns: Vec<String> = mags.iter().chain(&errs).cloned().collect();
    columns.push(a.redshift_col.clone());
    let mut values = Vec::new();
    for c in &columns {
        values.push(column_f64(&train, c, &a.train)?);
    }
    let mut options: BTreeMap<String, String> = BTreeMap::new();
    options.insert("mag_template".into(), a.bands_template.clone());
    options.insert("magerr_template".into(), a.errs_template.clone());
    options.insert("redshift_column".into(), a.redshift_col.clone());
    for kv in &a.options {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--option needs KEY=VALUE, got '{kv}'"
            )));
        };
        options.insert(k.trim().to_lowercase(), v.to_string());
    }
    let n_train = train.num_rows();
    drop(train);

    // Inform, on this thread.
    let t0 = Instant::now();
    let model = Model::inform(
        &a.algo,
        algorithm,
        options,
        columns,
        values,
        pz_engine::PZ_VERSION,
        None,
    )?;
    let inform_s = t0.elapsed().as_secs_f64();

    // Estimate in batches, streaming to Parquet.
    let feats: Vec<Vec<f64>> = model
        .features
        .iter()
        .map(|f| column_f64(&test, &f.column, &a.test))
        .collect::<Result<_, _>>()?;
    let n = test.num_rows();
    let ids: Vec<i64> = match test.column_by_name(&a.id_col) {
        Some(c) => {
            let c = cast(c, &DataType::Int64)?;
            let c = c
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|x| x.values().to_vec());
            c.unwrap_or_else(|| (0..n as i64).collect())
        }
        None => (0..n as i64).collect(),
    };
    let z_true = column_f64(&test, &a.redshift_col, &a.test).unwrap_or_else(|_| vec![f64::NAN; n]);
    drop(test);
    let out_path = a.out.join(format!("pz_{}.parquet", a.algo));
    let pdf_field = pz_udfs::photoz::photoz_udf::output_field(&model);
    let DataType::Struct(fields) = pdf_field.data_type() else {
        return Err(CliError::Usage("photoz output is not a struct".into()));
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("z_true", DataType::Float64, true),
        Field::new("z_mode", DataType::Float64, true),
        fields[6].as_ref().clone(),
    ]));
    let f = std::fs::File::create(&out_path).map_err(CliError::io(&out_path))?;
    let mut writer = ArrowWriter::try_new(f, schema.clone(), None)?;
    let mut n_null = 0usize;
    let mut first = true;
    let mut runs = Vec::new();
    for _ in 0..a.repeat {
        // A fresh copy each pass, so every pass pays the model's one-time set-up (the k-d
        // tree, the compiled forest, the prior table).
        let model = model.clone();
        let mut total = 0.0;
        let mut start = 0;
        while start < n {
            let end = (start + BATCH).min(n);
            let cols: Vec<Vec<f64>> = feats.iter().map(|c| c[start..end].to_vec()).collect();
            let t = Instant::now();
            let s: StructArray = estimate_columns(&model, &cols, end - start)?;
            total += t.elapsed().as_secs_f64();
            if first {
                n_null += s.null_count();
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(ids[start..end].to_vec())) as ArrayRef,
                        Arc::new(Float64Array::from(z_true[start..end].to_vec())),
                        Arc::clone(s.column(0)),
                        Arc::clone(s.column(6)),
                    ],
                )?;
                writer.write(&batch)?;
            }
            start = end;
        }
        first = false;
        runs.push(total);
    }
    writer.close()?;
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let estimate_s = sorted[sorted.len() / 2];
    let pz_rec = serde_json::json!({
        "engine": "pz", "algo": a.algo, "n": n, "n_train": n_train, "threads": 1,
        "inform_s": inform_s, "estimate_s": estimate_s, "estimate_s_runs": runs,
        "obj_per_s": n as f64 / estimate_s,
        "n_null": n_null, "peak_rss_mib": peak_rss_mib(), "output": out_path.display().to_string(),
        "fitted": model.fitted_parameters().into_iter().collect::<BTreeMap<_, _>>(),
    });
    println!("{pz_rec}");

    let Some(py) = &a.rail_python else {
        return Ok(());
    };
    let script = a.reference_dir.join("rail_estimate.py");
    let rail_out = a.out.join(format!("rail_{}.parquet", a.algo));
    let mut cmd = std::process::Command::new(py);
    cmd.arg(&script)
        .arg("--algo")
        .arg(&a.algo)
        .arg("--train")
        .arg(&a.train)
        .arg("--test")
        .arg(&test_path)
        .arg("--out")
        .arg(&rail_out)
        .arg("--bands-template")
        .arg(&a.bands_template)
        .arg("--errs-template")
        .arg(&a.errs_template)
        .arg("--redshift-col")
        .arg(&a.redshift_col)
        .arg("--id-col")
        .arg(&a.id_col);
    for s in &a.rail_set {
        cmd.arg("--set").arg(s);
    }
    let rail = crate::bench::run_reference(&mut cmd, py)?;
    let g = |k: &str| rail.get(k).and_then(|v| v.as_f64());
    let metrics = |file: &Path| -> Result<serde_json::Value, CliError> {
        let mut cmd = std::process::Command::new(py);
        cmd.arg(a.reference_dir.join("rail_metrics.py")).arg(file);
        crate::bench::run_reference(&mut cmd, py)
    };
    let pm = metrics(&out_path)?;
    let rm = metrics(&rail_out)?;
    let pick = |m: &serde_json::Value| {
        serde_json::json!({
            "sigma_nmad": m.get("sigma_nmad"), "outlier_frac_0p15": m.get("outlier_frac_0p15"),
            "cde_loss": m.get("cde_loss"), "bias": m.get("bias"),
        })
    };
    let summary = serde_json::json!({
        "algo": a.algo, "n": n,
        "estimate_speedup_per_core": g("estimate_s").map(|r| r / estimate_s),
        "inform_speedup": g("inform_s").map(|r| r / inform_s),
        "peak_rss_ratio_pz_over_rail": g("peak_rss_mib").zip(peak_rss_mib()).map(|(r, p)| p / r),
        "pz": pick(&pm), "rail": pick(&rm),
    });
    println!("{summary}");
    Ok(())
}
