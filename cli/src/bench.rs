//! `pz bench …`: whole-job timings, side by side with the Python reference when asked.

use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use pz_catalogs::HatsCatalog;

use crate::error::CliError;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Time a full scan and a cone query of a HATS catalog.
    Scan(ScanArgs),
    /// Cross-match a redshift catalog with an object catalog, pz and LSDB side by side.
    Crossmatch(CrossmatchArgs),
    /// Inform and estimate photo-zs on one core, RAIL side by side.
    Photoz(crate::bench_photoz::PhotozArgs),
    /// Time `pz serve` on loopback: DoGet beside pyarrow.flight, ADBC latency, concurrent clients.
    Serve(crate::bench_serve::ServeBenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct CrossmatchArgs {
    /// Directory holding the HATS catalogs (left, right and its margin), as
    /// ../shared/reference/import_hats.py writes them.
    #[arg(long, value_name = "DIR")]
    hats: PathBuf,
    /// Left catalog (under --hats).
    #[arg(long, default_value = "specz")]
    left: String,
    /// Right catalog (under --hats).
    #[arg(long, default_value = "objects")]
    right: String,
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::positive)]
    radius_arcsec: f64,
    #[arg(long, default_value_t = 1, value_parser = crate::args::neighbors)]
    n_neighbors: usize,
    /// Warm repetitions in the same process, after the first run.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Where the pairs go (pz's and LSDB's).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A Python with lsdb: run ../shared/reference/lsdb_crossmatch.py in the same run.
    #[arg(long, value_name = "PYTHON")]
    lsdb_python: Option<PathBuf>,
    /// LSDB's script (default: ../shared/reference/lsdb_crossmatch.py).
    #[arg(long, value_name = "FILE")]
    lsdb_script: Option<PathBuf>,
    /// Ids of the two sides.
    #[arg(long, default_value = "id")]
    left_id: String,
    #[arg(long, default_value = "objectId")]
    right_id: String,
}

fn pairs_of(
    path: &std::path::Path,
    left: &str,
    right: &str,
) -> Result<Vec<(i64, i64, f64)>, CliError> {
    use datafusion::arrow::array::{Float64Array, Int64Array};
    let f = std::fs::File::open(path).map_err(CliError::io(path))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)?.build()?;
    let mut out = Vec::new();
    for b in reader {
        let b = b?;
        let get = |n: &str| {
            b.column_by_name(n)
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("{}: no column {n}", path.display())))
        };
        let l = datafusion::arrow::compute::cast(
            &get(left)?,
            &datafusion::arrow::datatypes::DataType::Int64,
        )?;
        let r = datafusion::arrow::compute::cast(
            &get(right)?,
            &datafusion::arrow::datatypes::DataType::Int64,
        )?;
        let d = datafusion::arrow::compute::cast(
            &get("dist_arcsec")?,
            &datafusion::arrow::datatypes::DataType::Float64,
        )?;
        let (l, r, d) = (
            l.as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .unwrap_or_else(|| Int64Array::from(Vec::<i64>::new())),
            r.as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .unwrap_or_else(|| Int64Array::from(Vec::<i64>::new())),
            d.as_any()
                .downcast_ref::<Float64Array>()
                .cloned()
                .unwrap_or_else(|| Float64Array::from(Vec::<f64>::new())),
        );
        for i in 0..l.len() {
            out.push((l.value(i), r.value(i), d.value(i)));
        }
    }
    out.sort_by_key(|p| (p.0, p.1));
    Ok(out)
}

async fn crossmatch(a: &CrossmatchArgs) -> Result<(), CliError> {
    let start = Instant::now();
    std::fs::create_dir_all(&a.out).map_err(CliError::io(&a.out))?;
    let left =
        std::fs::canonicalize(a.hats.join(&a.left)).map_err(CliError::io(a.hats.join(&a.left)))?;
    let right = std::fs::canonicalize(a.hats.join(&a.right))
        .map_err(CliError::io(a.hats.join(&a.right)))?;
    let pz_out = a.out.join("pz_pairs.parquet");
    let _ = std::fs::remove_file(&pz_out);
    let ctx = pz_engine::session_context();
    let q = |l: &std::path::Path, r: &std::path::Path| {
        format!(
            "SELECT \"{}\", \"{}\", dist_arcsec FROM crossmatch('{}', '{}', {}, {}) ORDER BY 1, 3",
            a.left_id,
            a.right_id,
            l.display(),
            r.display(),
            a.radius_arcsec,
            a.n_neighbors
        )
    };
    let sql = q(&left, &right);
    ctx.sql(&format!(
        "COPY ({sql}) TO '{}' STORED AS PARQUET",
        pz_out.display()
    ))
    .await?
    .collect()
    .await?;
    let cold = start.elapsed().as_secs_f64();
    let cold_rss = peak_rss_mib();
    let mut warm = Vec::new();
    let mut rows = 0;
    for _ in 0..a.repeat {
        let t = Instant::now();
        rows = count(&ctx, &sql).await?;
        warm.push(t.elapsed().as_secs_f64());
    }
    let best = warm.iter().cloned().fold(f64::INFINITY, f64::min);
    let pz = serde_json::json!({
        "tool": "pz", "rows": rows, "process_wall_s": cold, "warm_best_s": if warm.is_empty() { None } else { Some(best) },
        "peak_rss_mib": cold_rss, "radius_arcsec": a.radius_arcsec, "n_neighbors": a.n_neighbors,
    });
    println!("{pz}");
    let Some(python) = &a.lsdb_python else {
        return Ok(());
    };
    let script = a
        .lsdb_script
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/reference/lsdb_crossmatch.py"));
    let lsdb_out = a.out.join("lsdb_pairs.parquet");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .args([
            "--hats",
            &a.hats.display().to_string(),
            "--left",
            &a.left,
            "--right",
            &a.right,
        ])
        .args([
            "--radius-arcsec",
            &a.radius_arcsec.to_string(),
            "--n-neighbors",
            &a.n_neighbors.to_string(),
        ])
        .args([
            "--out",
            &lsdb_out.display().to_string(),
            "--repeat",
            &a.repeat.to_string(),
        ]);
    let lsdb = run_reference(&mut cmd, python)?;
    let ours = pairs_of(&pz_out, &a.left_id, &a.right_id)?;
    let theirs = pairs_of(&lsdb_out, &a.left_id, &a.right_id)?;
    let same = ours.len() == theirs.len()
        && ours
            .iter()
            .zip(&theirs)
            .all(|(x, y)| x.0 == y.0 && x.1 == y.1);
    let max_dist_diff = ours
        .iter()
        .zip(&theirs)
        .map(|(x, y)| (x.2 - y.2).abs())
        .fold(0.0, f64::max);
    let g = |k: &str| lsdb.get(k).and_then(|v| v.as_f64());
    // LSDB reports its warm repeats as a list: take the best.
    let lsdb_warm = lsdb
        .get("warm_s")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().filter_map(|x| x.as_f64()).reduce(f64::min));
    println!(
        "{}",
        serde_json::json!({
            "identical_pairs": same, "pz_pairs": ours.len(), "lsdb_pairs": theirs.len(),
            "max_dist_diff_arcsec": max_dist_diff,
            "speedup_cold_process": g("process_wall_s").map(|l| l / cold),
            "speedup_warm": lsdb_warm.filter(|_| best.is_finite()).map(|l| l / best),
            "lsdb_warm_best_s": lsdb_warm,
            "peak_rss_ratio_pz_over_lsdb": g("peak_rss_mib").zip(cold_rss).map(|(l, p)| p / l),
        })
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The HATS catalog directory.
    catalog: PathBuf,
    /// Cone centre RA (degrees); default: the centre of the catalog's middle partition.
    #[arg(long, allow_negative_numbers = true, requires = "dec", value_parser = crate::args::ra_deg)]
    ra: Option<f64>,
    /// Cone centre Dec (degrees).
    #[arg(long, allow_negative_numbers = true, requires = "ra", value_parser = crate::args::dec_deg)]
    dec: Option<f64>,
    /// Cone radius (degrees).
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::radius_deg)]
    radius: f64,
    /// Timed repetitions (the best is reported, and the first).
    #[arg(long, default_value_t = 3, value_parser = crate::args::at_least_one)]
    repeat: usize,
    /// A Python with lsdb installed: run LSDB's cone search on the same catalog in the same
    /// run and report the ratios.
    #[arg(long, value_name = "PYTHON")]
    lsdb_python: Option<PathBuf>,
}

/// Runs a Python reference, echoes and parses the JSON line it ends with.
pub(crate) fn run_reference(
    cmd: &mut std::process::Command,
    python: &std::path::Path,
) -> Result<serde_json::Value, CliError> {
    let out = cmd.output().map_err(CliError::io(python))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::Usage(format!(
            "the Python reference failed: {}",
            err.lines().last().unwrap_or("")
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("{}");
    println!("{line}");
    serde_json::from_str(line)
        .map_err(|e| CliError::Usage(format!("the Python reference printed no JSON: {e}")))
}

const LSDB_SCRIPT: &str = include_str!("../../tests/python/lsdb_scan_bench.py");

async fn count(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Result<usize, CliError> {
    let df = ctx.sql(sql).await?;
    let mut stream = df.execute_stream().await?;
    let mut n = 0;
    while let Some(b) = stream.next().await {
        n += b?.num_rows();
    }
    Ok(n)
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn run(cmd: &BenchCommand) -> Result<(), CliError> {
    match cmd {
        BenchCommand::Scan(a) => scan(a).await,
        BenchCommand::Crossmatch(a) => crossmatch(a).await,
        BenchCommand::Photoz(a) => crate::bench_photoz::photoz(a).await,
        BenchCommand::Serve(a) => crate::bench_serve::serve(a),
    }
}

async fn scan(a: &ScanArgs) -> Result<(), CliError> {
    let process_start = Instant::now();
    let dir = std::fs::canonicalize(&a.catalog).map_err(CliError::io(&a.catalog))?;
    let cat = HatsCatalog::open(&dir.display().to_string())?;
    let (ra, dec) = match (a.ra, a.dec) {
        (Some(r), Some(d)) => (r, d),
        _ => cat
            .partitions
            .get(cat.partitions.len() / 2)
            .map(|p| p.pixel.center_deg())
            .unwrap_or((0.0, 0.0)),
    };
    let ctx = pz_engine::session_context();
    let loc = dir.display().to_string().replace('\'', "''");
    let full_sql = format!("SELECT * FROM hats('{loc}')");
    let cone_sql = format!(
        "SELECT * FROM hats('{loc}') WHERE cone(ra, dec, {ra}, {dec}, {})",
        a.radius
    );
    let mut full = Vec::new();
    let mut cone = Vec::new();
    let (mut rows, mut cone_rows) = (0, 0);
    for _ in 0..a.repeat {
        let t = Instant::now();
        rows = count(&ctx, &full_sql).await?;
        full.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        cone_rows = count(&ctx, &cone_sql).await?;
        cone.push(t.elapsed().as_secs_f64());
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let pz_process_wall = process_start.elapsed().as_secs_f64();
    let pz = serde_json::json!({
        "tool": "pz",
        "catalog": dir.display().to_string(),
        "rows": rows,
        "full_scan_first_s": full[0],
        "full_scan_best_s": best(&full),
        "cone": {"ra": ra, "dec": dec, "radius_deg": a.radius},
        "cone_rows": cone_rows,
        "cone_first_s": cone[0],
        "cone_best_s": best(&cone),
        "process_wall_s": pz_process_wall,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{pz}");
    let Some(python) = &a.lsdb_python else {
        return Ok(());
    };
    let script = std::env::temp_dir().join(format!("pz-lsdb-scan-{}.py", std::process::id()));
    std::fs::write(&script, LSDB_SCRIPT).map_err(CliError::io(&script))?;
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .args(["--catalog", &dir.display().to_string()])
        .args(["--ra", &ra.to_string(), "--dec", &dec.to_string()])
        .args([
            "--radius",
            &a.radius.to_string(),
            "--repeat",
            &a.repeat.to_string(),
        ]);
    let lsdb = run_reference(&mut cmd, python);
    let _ = std::fs::remove_file(&script);
    let lsdb = lsdb?;
    let ratio =
        |k_lsdb: &str, v_pz: f64| lsdb.get(k_lsdb).and_then(|v| v.as_f64()).map(|l| l / v_pz);
    println!(
        "{}",
        serde_json::json!({
            "ratio_lsdb_over_pz": {
                "full_scan_best": ratio("full_scan_best_s", best(&full)),
                "cone_best": ratio("cone_best_s", best(&cone)),
                "cone_first": ratio("cone_first_s", cone[0]),
                "process_wall": ratio("process_wall_s", pz_process_wall),
            },
            "same_rows": lsdb.get("rows").and_then(|v| v.as_u64()) == Some(rows as u64)
                && lsdb.get("cone_rows").and_then(|v| v.as_u64()) == Some(cone_rows as u64),
        })
    );
    Ok(())
}
