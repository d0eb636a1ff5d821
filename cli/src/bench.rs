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
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The HATS catalog directory.
    catalog: PathBuf,
    /// Cone centre RA (degrees); default: the centre of the catalog's middle partition.
    #[arg(long, allow_negative_numbers = true)]
    ra: Option<f64>,
    /// Cone centre Dec (degrees).
    #[arg(long, allow_negative_numbers = true)]
    dec: Option<f64>,
    /// Cone radius (degrees).
    #[arg(long, default_value_t = 1.0)]
    radius: f64,
    /// Timed repetitions (the best is reported, and the first).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// A Python with lsdb installed: run LSDB's cone search on the same catalog in the same
    /// run and report the ratios.
    #[arg(long, value_name = "PYTHON")]
    lsdb_python: Option<PathBuf>,
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
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        rows = count(&ctx, &full_sql).await?;
        full.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        cone_rows = count(&ctx, &cone_sql).await?;
        cone.push(t.elapsed().as_secs_f64());
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
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
        "process_wall_s": process_start.elapsed().as_secs_f64(),
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{pz}");
    let Some(python) = &a.lsdb_python else {
        return Ok(());
    };
    let script = std::env::temp_dir().join(format!("pz-lsdb-scan-{}.py", std::process::id()));
    std::fs::write(&script, LSDB_SCRIPT).map_err(CliError::io(&script))?;
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(["--catalog", &dir.display().to_string()])
        .args(["--ra", &ra.to_string(), "--dec", &dec.to_string()])
        .args([
            "--radius",
            &a.radius.to_string(),
            "--repeat",
            &a.repeat.to_string(),
        ])
        .output()
        .map_err(CliError::io(python))?;
    let _ = std::fs::remove_file(&script);
    if !out.status.success() {
        return Err(CliError::Usage(format!(
            "the LSDB reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("{}");
    println!("{line}");
    let lsdb: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| CliError::Usage(format!("the LSDB reference printed no JSON: {e}")))?;
    let ratio =
        |k_lsdb: &str, v_pz: f64| lsdb.get(k_lsdb).and_then(|v| v.as_f64()).map(|l| l / v_pz);
    println!(
        "{}",
        serde_json::json!({
            "ratio_lsdb_over_pz": {
                "full_scan_best": ratio("full_scan_best_s", best(&full)),
                "cone_best": ratio("cone_best_s", best(&cone)),
                "cone_first": ratio("cone_first_s", cone[0]),
                "process_wall": ratio("process_wall_s", process_start.elapsed().as_secs_f64()),
            },
            "same_rows": lsdb.get("rows").and_then(|v| v.as_u64()) == Some(rows as u64)
                && lsdb.get("cone_rows").and_then(|v| v.as_u64()) == Some(cone_rows as u64),
        })
    );
    Ok(())
}
