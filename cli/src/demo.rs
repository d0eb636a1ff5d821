//! `pz demo`: the main job on the embedded default sky.

use std::path::PathBuf;
use std::time::Instant;

use datafusion::arrow::util::pretty::pretty_format_batches;
use pz_engine::simulate::{simulate, SimulateConfig};
use pz_engine::PzContext;

use crate::error::CliError;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo sky and its outputs.
    #[arg(long, default_value = "./pz-demo", value_name = "DIR")]
    dir: PathBuf,
    /// Galaxies to simulate.
    #[arg(long, default_value_t = 200_000)]
    objects: usize,
    /// Reference redshifts to simulate.
    #[arg(long, default_value_t = 10_000)]
    specz: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn quote(p: &std::path::Path) -> String {
    p.display().to_string().replace('\'', "''")
}

async fn show(
    ctx: &PzContext,
    title: &str,
    sql: &str,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>, CliError> {
    println!("\n-- {title}\n{sql};");
    let t0 = Instant::now();
    let out = ctx
        .run_last(sql)
        .await?
        .map(|o| o.batches)
        .unwrap_or_default();
    println!("{}", pretty_format_batches(&out)?);
    println!("({:.3} s)", t0.elapsed().as_secs_f64());
    Ok(out)
}

fn first_i64(batches: &[datafusion::arrow::array::RecordBatch]) -> Option<i64> {
    let b = batches.first()?;
    let a = b
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()?;
    (!a.is_empty()).then(|| a.value(0))
}

pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    println!("pz demo: a mock LSST sky, queried with SQL\n");
    let cfg = SimulateConfig {
        objects: args.objects,
        specz: args.specz,
        seed: args.seed,
        out: args.dir.clone(),
        ..Default::default()
    };
    let t0 = Instant::now();
    let s = simulate(&cfg)?;
    println!(
        "1. simulated {} galaxies over {:.2} deg² around (RA 0, Dec −30) in {:.2} s",
        s.hats.rows,
        s.area_deg2,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "   HATS catalog {} with {} partitions; {} reference redshifts ({} on objects)",
        s.objects_dir.display(),
        s.hats.partitions.len(),
        s.specz_rows,
        s.specz_matched
    );

    let ctx = PzContext::ephemeral();
    let objects = std::fs::canonicalize(&s.objects_dir).map_err(CliError::io(&s.objects_dir))?;
    let truth = std::fs::canonicalize(&s.truth_path).map_err(CliError::io(&s.truth_path))?;
    let specz = std::fs::canonicalize(&s.specz_path).map_err(CliError::io(&s.specz_path))?;
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{}';
         CREATE EXTERNAL TABLE truth STORED AS PARQUET LOCATION '{}';
         CREATE EXTERNAL TABLE specz STORED AS PARQUET LOCATION '{}';",
        quote(&objects),
        quote(&truth),
        quote(&specz)
    ))
    .await?;
    println!("\n2. registered tables objects (HATS), truth and specz (Parquet)");

    show(&ctx, "the catalog", "SELECT count(*) AS n, min(ra) AS ra_min, max(ra) AS ra_max, min(dec) AS dec_min, max(dec) AS dec_max FROM objects").await?;

    let radius = 0.2;
    let cone_sql =
        format!("SELECT count(*) AS n FROM objects WHERE cone(ra, dec, 0.0, -30.0, {radius})");
    let cone = show(
        &ctx,
        "a cone search (only overlapping partitions are read)",
        &cone_sql,
    )
    .await?;
    let plan = ctx
        .run_last(&format!("EXPLAIN {cone_sql}"))
        .await?
        .map(|o| o.batches)
        .unwrap_or_default();
    let text = pretty_format_batches(&plan)?.to_string();
    if let Some(line) = text.lines().find(|l| l.contains("HatsScanExec")) {
        println!("   plan: {}", line.trim_matches(|c| c == '|' || c == ' '));
    }
    let brute = show(
        &ctx,
        "the same count by brute force over every row",
        &format!(
            "SELECT count(*) AS n FROM objects WHERE ang_sep(ra, dec, 0.0, -30.0) <= {}",
            radius * 3600.0
        ),
    )
    .await?;
    if first_i64(&cone) != first_i64(&brute) {
        return Err(CliError::Usage(
            "cone search and brute force disagree".into(),
        ));
    }
    println!("   cone search and brute force agree");

    show(
        &ctx,
        "HEALPix order-8 pixels in the cone",
        &format!("SELECT healpix(8, ra, dec) AS pixel, count(*) AS n FROM objects WHERE cone(ra, dec, 0.0, -30.0, {radius}) GROUP BY 1 ORDER BY n DESC LIMIT 5"),
    )
    .await?;
    show(
        &ctx,
        "colours against true redshift (i < 24): the 4000 Å break walks through g−r then r−i",
        "SELECT round(t.redshift * 5) / 5 AS z, count(*) AS n, \
         round(avg(o.mag_g - o.mag_r), 3) AS g_r, round(avg(o.mag_r - o.mag_i), 3) AS r_i, \
         round(avg(o.mag_i - o.mag_z), 3) AS i_z \
         FROM objects o JOIN truth t ON o.\"objectId\" = t.\"objectId\" \
         WHERE o.mag_i < 24 GROUP BY 1 ORDER BY 1",
    )
    .await?;
    show(
        &ctx,
        "reference redshifts by survey and quality flag",
        "SELECT survey, z_flag, count(*) AS n, round(median(z), 3) AS z_median FROM specz GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await?;
    let specz_truth =
        std::fs::canonicalize(&s.specz_truth_path).map_err(CliError::io(&s.specz_truth_path))?;
    ctx.run_last(&format!(
        "CREATE EXTERNAL TABLE specz_truth STORED AS PARQUET LOCATION '{}'",
        quote(&specz_truth)
    ))
    .await?;
    show(
        &ctx,
        "a training set: reference redshifts cross-matched to the objects within 1\" (nearest), \
         checked against the objects they were drawn from",
        "SELECT count(*) AS pairs, \
         sum(CASE WHEN x.\"objectId\" = t.\"true_objectId\" THEN 1 ELSE 0 END) AS on_true_object, \
         sum(CASE WHEN t.\"true_objectId\" = -1 THEN 1 ELSE 0 END) AS chance_matches, \
         round(median(dist_arcsec), 3) AS median_sep_arcsec, \
         sum(CASE WHEN seeded_uniform(42, x.id) < 0.7 THEN 1 ELSE 0 END) AS training \
         FROM crossmatch('specz', 'objects', 1.0) x JOIN specz_truth t ON x.id = t.id",
    )
    .await?;
    println!(
        "\ndone in {:.2} s; the sky is in {}",
        t0.elapsed().as_secs_f64(),
        args.dir.display()
    );
    Ok(())
}
