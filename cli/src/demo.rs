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
    photoz_chain(&ctx, &s, &args.dir).await?;
    println!(
        "\ndone in {:.2} s; the sky and every output are in {}",
        t0.elapsed().as_secs_f64(),
        args.dir.display()
    );
    Ok(())
}

/// A long step: says what starts, then how long it took.
async fn step<T, F: std::future::Future<Output = Result<T, CliError>>>(
    what: &str,
    f: F,
) -> Result<T, CliError> {
    println!("   … {what}");
    let t = Instant::now();
    let out = f.await?;
    println!("     done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(out)
}

const MODELS: [&str; 3] = ["knn", "bpz", "flexzboost"];
const FEATURES: &str = "mag_u, mag_g, mag_r, mag_i, mag_z, mag_y, magerr_u, magerr_g, magerr_r, magerr_i, magerr_z, magerr_y";

/// Training set → three models → photo-zs of every object as a HATS table → validation of
/// each model on the held-out reference redshifts.
async fn photoz_chain(
    ctx: &PzContext,
    s: &pz_engine::simulate::SimulateSummary,
    dir: &std::path::Path,
) -> Result<(), CliError> {
    println!("\n3. photo-z: training set, models, estimates for every object, validation");
    ctx.run_script(&format!(
        "CREATE TABLE training_set AS SELECT x.\"objectId\", {FEATURES}, x.z AS redshift, \
           seeded_uniform(42, x.id) < 0.7 AS is_training_set \
         FROM crossmatch('specz', 'objects', 1.0, 1, true) x WHERE x.z_flag >= 3"
    ))
    .await?;
    let counts = show(
        ctx,
        "the training set: unique cross-match within 1\", secure redshifts (z_flag ≥ 3), 70 % to train",
        "SELECT is_training_set, count(*) AS n, round(min(redshift), 3) AS z_min, round(max(redshift), 3) AS z_max FROM training_set GROUP BY 1 ORDER BY 1",
    )
    .await?;
    if counts.iter().map(|b| b.num_rows()).sum::<usize>() < 2 {
        return Err(CliError::Usage(
            "the demo's training set needs both a training and a held-out part".into(),
        ));
    }
    let bpz_dir = std::fs::canonicalize(&s.bpz_dir).map_err(CliError::io(&s.bpz_dir))?;
    for m in MODELS {
        let options = match m {
            "bpz" => format!(
                " OPTIONS (sed_dir '{}', filter_dir '{}', template_list 'PZSIM.list', \
                 filters 'PZSIM_u,PZSIM_g,PZSIM_r,PZSIM_i,PZSIM_z,PZSIM_y', madau 'true')",
                quote(&bpz_dir.join("SED")),
                quote(&bpz_dir.join("FILTER"))
            ),
            _ => String::new(),
        };
        step(&format!("CREATE MODEL {m} USING {m}{options} AS SELECT … FROM training_set WHERE is_training_set"), async {
            ctx.run_last(&format!(
                "CREATE MODEL {m} USING {m}{options} AS SELECT {FEATURES}, redshift FROM training_set WHERE is_training_set"
            ))
            .await?;
            Ok(())
        })
        .await?;
    }
    let photoz_dir = dir.join("photoz");
    if photoz_dir.exists() {
        std::fs::remove_dir_all(&photoz_dir).map_err(CliError::io(&photoz_dir))?;
    }
    let mut cols = vec![
        "\"objectId\"".to_string(),
        "ra".into(),
        "dec".into(),
        "mag_i".into(),
    ];
    let mut calls = Vec::new();
    for m in MODELS {
        calls.push(format!("photoz('{m}', {FEATURES}) AS p_{m}"));
        for f in [
            "z_mode", "z_mean", "z_median", "z_lo68", "z_hi68", "odds", "pdf",
        ] {
            cols.push(format!("p_{m}.{f} AS {f}_{m}"));
        }
    }
    step(
        &format!("photoz() of the three models for all {} objects, written as a HATS table {}", s.hats.rows, photoz_dir.display()),
        async {
            ctx.run_last(&format!(
                "COPY (SELECT {} FROM (SELECT \"objectId\", ra, dec, mag_i, {} FROM objects)) TO '{}' STORED AS HATS",
                cols.join(", "),
                calls.join(", "),
                quote(&photoz_dir)
            ))
            .await?;
            Ok(())
        },
    )
    .await?;
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE photoz STORED AS HATS LOCATION '{}';
         CREATE VIEW heldout AS SELECT \"objectId\", redshift, mag_i FROM training_set WHERE NOT is_training_set",
        quote(&std::fs::canonicalize(&photoz_dir).map_err(CliError::io(&photoz_dir))?)
    ))
    .await?;
    let validation = dir.join("validation");
    if validation.exists() {
        std::fs::remove_dir_all(&validation).map_err(CliError::io(&validation))?;
    }
    let mut results = Vec::new();
    for m in MODELS {
        let mut cfg = pz_engine::pipelines::validate::ValidateConfig::new(
            "photoz",
            "heldout",
            &validation.join(m),
        );
        cfg.zphot_column = format!("z_mode_{m}");
        cfg.pdf_column = format!("pdf_{m}");
        cfg.title = format!("pz demo: {m} on the held-out reference redshifts");
        let v = step(&format!("pz validate --pz photoz --truth heldout --zphot-column z_mode_{m} --pdf-column pdf_{m}"), async {
            Ok(cfg.run(ctx).await?)
        })
        .await?;
        results.push((m, v));
    }
    let f = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
    println!(
        "\n   model        n   bias     σ_NMAD   |dz|>0.15  PIT KS   CDE loss  CRPS     targets"
    );
    for (m, v) in &results {
        let o = &v.overall;
        let passed = v.targets.iter().filter(|t| t.pass).count();
        println!(
            "   {m:<10} {:>5}  {:>7}  {:>7}  {:>8}  {:>7}  {:>8}  {:>7}  {passed}/{} pass",
            v.n_matched,
            f(o.bias),
            f(o.sigma_nmad),
            f(o.outlier_frac_0p15),
            f(o.pit_ks),
            f(o.cde_loss),
            f(o.crps),
            v.targets.len()
        );
    }
    println!("\n   reports:");
    for (m, _) in &results {
        println!(
            "   {m:<10} {}",
            validation.join(m).join("report.html").display()
        );
    }
    Ok(())
}
