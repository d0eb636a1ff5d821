//! `pz validate` writes metrics.json and a report that a real browser renders: headless
//! Chromium (Debian's package, installed by .ci/run) lays out every plot and takes a
//! screenshot of the page.

use std::path::{Path, PathBuf};
use std::process::Command;

use pz_engine::pipelines::validate::ValidateConfig;
use pz_engine::{DataDir, PzContext};

fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(c).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("no chromium on PATH: .ci/run installs Debian's chromium package (apt-get install chromium)");
}

fn headless(browser: &Path, page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_every_plot_in_chromium() {
    let (_d, sky) = pz_tests::small_sky(6_000, 21);
    let root = sky.objects_dir.parent().unwrap().canonicalize().unwrap();
    let ctx = PzContext::ephemeral();
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{}';
         CREATE EXTERNAL TABLE truth STORED AS PARQUET LOCATION '{}';
         CREATE MODEL knn USING knn AS SELECT o.*, t.redshift FROM objects o JOIN truth t USING (\"objectId\") WHERE o.\"objectId\" % 2 = 0;
         CREATE TABLE estimates AS SELECT * FROM photoz_table('knn', 'objects') WHERE \"objectId\" % 2 = 1;
         CREATE TABLE reference AS SELECT t.\"objectId\", t.redshift, o.mag_i FROM truth t JOIN objects o USING (\"objectId\")",
        root.join("objects").display(),
        root.join("truth.parquet").display()
    ))
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("validation");
    let mut cfg = ValidateConfig::new("estimates", "reference", &dir);
    cfg.tomo_edges = vec![0.0, 0.5, 1.0, 3.0];
    let v = cfg.run(&ctx).await.unwrap();
    assert_eq!(v.n_matched, 3_000);
    // Half the reference redshifts have no estimate: said, not fatal.
    assert!(
        v.warnings
            .iter()
            .any(|w| w.contains("3000 of 6000 reference redshifts have no photo-z")),
        "{:?}",
        v.warnings
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(json["n_matched"], 3000);
    assert_eq!(json["tomo"].as_array().unwrap().len(), 3);
    assert!(json["overall"]["sigma_nmad"].as_f64().unwrap() < 0.2);

    // 1 density + PIT histogram + QQ + N(z) overall + 3 bins + 2 trends.
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let expected = 9;
    assert_eq!(html.matches("<svg class=\"pz-plot\"").count(), expected);
    for label in [
        "true redshift z_true",
        "PIT = CDF(z_true)",
        "i magnitude [AB mag]",
        "N(z), normalised",
    ] {
        assert!(html.contains(label), "axis label {label} missing");
    }
    assert!(html.contains("PASS") || html.contains("FAIL"));

    let browser = chromium();
    let dom = headless(&browser, &page, &["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains(&format!("data-plots=\"{expected}\"")),
        "the page script did not run"
    );
    assert!(
        dom.contains(&format!("data-plots-rendered=\"{expected}\"")),
        "not every plot was laid out with content: {}",
        dom.lines().find(|l| l.contains("data-plots")).unwrap_or("")
    );
    let shot = out.path().join("report.png");
    let r = headless(
        &browser,
        &page,
        &[
            "--window-size=1400,2600",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // A blank page compresses to a few kB; plots, text and tables do not.
    assert!(png.len() > 50_000, "screenshot is only {} bytes", png.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_names_bad_input() {
    let ctx = PzContext::ephemeral();
    ctx.run_script(
        "CREATE TABLE est (\"objectId\" BIGINT, z_mode DOUBLE, pdf DOUBLE[]) AS VALUES \
           (1, 0.5, [1.0, 1.0, 1.0]), (2, 0.6, [1.0, 2.0, 1.0]), (2, 0.7, [1.0, 2.0, 1.0]);
         CREATE TABLE est_short (\"objectId\" BIGINT, z_mode DOUBLE, pdf DOUBLE[]) AS VALUES (1, 0.5, [1.0, 1.0, 1.0]);
         CREATE TABLE ref (\"objectId\" BIGINT, redshift DOUBLE) AS VALUES (1, 0.5), (3, 0.6);
         CREATE TABLE other (\"objectId\" BIGINT, redshift DOUBLE) AS VALUES (9, 0.5);
         CREATE TABLE noz (\"objectId\" BIGINT, zz DOUBLE) AS VALUES (1, 0.5)",
    )
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = |pz: &str, truth: &str, sub: &str| {
        let cfg = ValidateConfig::new(pz, truth, &out.path().join(sub));
        let ctx = &ctx;
        async move { cfg.run(ctx).await.unwrap_err().to_string() }
    };
    let e = run("est", "ref", "a").await;
    assert!(e.contains("--pz has id 2 2 times"), "{e}");
    let e = run("est_short", "other", "b").await;
    assert!(
        e.contains("no objectId of --pz 'est_short' (1 rows) is in --truth 'other' (1 rows)"),
        "{e}"
    );
    let e = run("est_short", "noz", "c").await;
    assert!(
        e.contains("has none of the columns redshift, z_true, ztrue, z, specz"),
        "{e}"
    );
    // A 3-point PDF with no grid metadata does not fit the default 301-point grid; the
    // error names the object and pz validate's own options.
    let e = run("est_short", "ref", "d").await;
    assert!(
        e.contains("the PDF of objectId 1 (column 'pdf' of --pz 'est_short') has 3 values but the default grid (z = 0..3) has 301 points")
            && e.contains("--zmin and --zmax"),
        "{e}"
    );
    let e = run("/nonexistent/x.parquet", "ref", "e").await;
    assert!(
        e.contains("is neither a table of this session nor an existing file"),
        "{e}"
    );
    // Nothing was written for any of them.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// Rows of a one-column count query.
async fn count(ctx: &PzContext, sql: &str) -> String {
    let out = ctx.run_last(sql).await.unwrap().unwrap();
    pz_tests::rows(&out.batches)[0][0].clone()
}

async fn table_names(ctx: &PzContext) -> Vec<String> {
    let out = ctx
        .run_last(
            "SELECT table_catalog || '.' || table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1",
        )
        .await
        .unwrap()
        .unwrap();
    pz_tests::rows(&out.batches)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_never_touches_the_users_registrations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let f = |n: &str| dir.path().join(n).display().to_string();
    let scratch = PzContext::ephemeral();
    scratch
        .run_script(&format!(
            "COPY (SELECT value AS \"objectId\", 0.01 * value AS z_mode, array_repeat(1.0, 301) AS pdf FROM generate_series(1, 40))
               TO '{est}' STORED AS PARQUET;
             COPY (SELECT value AS \"objectId\", 0.01 * value + 0.001 AS redshift FROM generate_series(1, 40))
               TO '{truth}' STORED AS PARQUET;
             COPY (SELECT value AS mine FROM generate_series(1, 3)) TO '{mine}' STORED AS PARQUET",
            est = f("est.parquet"),
            truth = f("truth.parquet"),
            mine = f("mine.parquet")
        ))
        .await
        .unwrap();
    // The user's own tables under the names pz validate once used for its working tables.
    let ctx = PzContext::open(DataDir::new(&data)).await.unwrap();
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE pz_validate_truth STORED AS PARQUET LOCATION '{mine}';
         CREATE EXTERNAL TABLE pz_validate_estimates STORED AS PARQUET LOCATION '{mine}';
         CREATE VIEW pz_validate_pairs AS SELECT mine * 10 AS mine FROM pz_validate_truth",
        mine = f("mine.parquet")
    ))
    .await
    .unwrap();
    let kept = DataDir::new(&data).tables().unwrap();
    assert_eq!(kept.len(), 2);
    let names = table_names(&ctx).await;

    let out = dir.path().join("v");
    let v = ValidateConfig::new(&f("est.parquet"), &f("truth.parquet"), &out)
        .run(&ctx)
        .await
        .unwrap();
    assert_eq!(v.n_matched, 40);
    // Twice in one session (as pz demo does): nothing left behind by the first.
    ValidateConfig::new(
        &f("est.parquet"),
        &f("truth.parquet"),
        &dir.path().join("v2"),
    )
    .run(&ctx)
    .await
    .unwrap();

    assert_eq!(DataDir::new(&data).tables().unwrap(), kept);
    assert_eq!(table_names(&ctx).await, names);
    assert_eq!(
        count(&ctx, "SELECT sum(mine) FROM pz_validate_truth").await,
        "6"
    );
    assert_eq!(
        count(&ctx, "SELECT sum(mine) FROM pz_validate_pairs").await,
        "60"
    );
    let again = PzContext::open(DataDir::new(&data)).await.unwrap();
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(
        count(&again, "SELECT sum(mine) FROM pz_validate_estimates").await,
        "6"
    );
    assert_eq!(
        count(&again, "SELECT sum(mine) FROM pz_validate_truth").await,
        "6"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_counts_and_reports_every_pdf_it_leaves_out() {
    let ctx = PzContext::ephemeral();
    // 200 objects on the default grid: every 10th PDF with qp's -4e-16 round-off at z = 0
    // (used), four all zero, one null, one with a real negative dip, one with a NaN; one
    // object without a true redshift.
    ctx.run_script(
        "CREATE TABLE est AS SELECT value AS \"objectId\", 0.012 * value + 0.1 AS z_mode,
           CASE WHEN value IN (7, 57, 107, 157) THEN array_repeat(0.0, 301)
                WHEN value = 13 THEN NULL
                WHEN value = 17 THEN array_prepend(-0.5, array_repeat(1.0, 300))
                WHEN value = 19 THEN array_prepend(CAST('NaN' AS DOUBLE), array_repeat(1.0, 300))
                WHEN value % 10 = 0 THEN array_prepend(-4e-16, array_repeat(1.0 + value % 7, 300))
                ELSE array_repeat(1.0 + value % 7, 301) END AS pdf
         FROM generate_series(1, 200);
         CREATE TABLE ref AS SELECT value AS \"objectId\",
           CASE WHEN value = 23 THEN NULL ELSE 0.012 * value + 0.1 + 0.001 * (value % 5) END AS redshift
         FROM generate_series(1, 200)",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let v = ValidateConfig::new("est", "ref", &out)
        .run(&ctx)
        .await
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(json["n_matched"], 200);
    assert_eq!(json["n_ztrue_null"], 1);
    assert_eq!(json["n_pdf_excluded"], 7);
    assert_eq!(
        json["pdf_excluded"],
        serde_json::json!({"null": 1, "not_finite": 1, "negative": 1, "all_zero": 4})
    );
    assert_eq!(json["n_pdf_roundoff_zeroed"], 20);
    assert_eq!(json["overall"]["n"], 200);
    assert_eq!(json["overall"]["n_point"], 199);
    assert_eq!(json["overall"]["n_pdf"], 192);
    assert_eq!(json["grid_source"], "the default (z = 0..3, 301 points)");
    // The tomographic bins account for their own objects the same way.
    let bins = json["tomo"].as_array().unwrap();
    let n_pdf: u64 = bins
        .iter()
        .map(|b| b["metrics"]["n_pdf"].as_u64().unwrap())
        .sum();
    let n: u64 = bins
        .iter()
        .map(|b| b["metrics"]["n"].as_u64().unwrap())
        .sum();
    assert_eq!((n, n_pdf), (200, 192));
    // The numbers are those of SQL on the usable objects.
    let direct = count(
        &ctx,
        "SELECT pz_cde_loss(e.pdf, r.redshift) FROM est e JOIN ref r USING (\"objectId\")",
    )
    .await;
    let got = v.overall.cde_loss.unwrap();
    assert!(
        (got - direct.parse::<f64>().unwrap()).abs() < 1e-12 * got.abs(),
        "{got} vs {direct}"
    );
    for w in [
        "7 PDFs cannot be normalised and are left out of the PDF metrics",
        "1 with no PDF (null) (e.g. objectId 13)",
        "4 with every sample zero (e.g. objectId ",
        "1 with a sample negative beyond round-off (1e-6 of the peak) (e.g. objectId 17)",
        "1 with a NaN or infinite sample (e.g. objectId 19)",
        "20 PDFs hold negative round-off",
        "1 matched objects have a null true redshift (e.g. objectId 23)",
    ] {
        assert!(
            v.warnings.iter().any(|x| x.contains(w)),
            "no warning with '{w}': {:?}",
            v.warnings
        );
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for w in [
        "Point metrics use <b>199</b> of 200 matched objects; PDF metrics use <b>192</b>",
        "<b>7 PDFs left out</b>: 1 with no PDF (null), 1 with a NaN or infinite sample, 1 with a sample negative beyond round-off (1e-6 of the peak), 4 with every sample zero",
        "20 PDFs had negative round-off read as zero",
        "<th>n PDF</th>",
    ] {
        assert!(html.contains(w), "report.html lacks '{w}'");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reads_short_pdfs_on_the_grid_given_by_zmin_zmax() {
    let ctx = PzContext::ephemeral();
    ctx.run_script(
        "CREATE TABLE est AS SELECT value AS \"objectId\", 0.01 * value AS z_mode,
           [1.0, 1.0 + value % 3, 1.0, 0.5, 0.0] AS pdf FROM generate_series(1, 80);
         CREATE TABLE ref AS SELECT value AS \"objectId\", 0.011 * value AS redshift FROM generate_series(1, 80)",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let mut cfg = ValidateConfig::new("est", "ref", &out);
    cfg.grid = Some((0.0, 1.0));
    cfg.tomo_edges = vec![0.0, 0.3, 0.6, 0.9, 1.5];
    let v = cfg.run(&ctx).await.unwrap();
    assert_eq!((v.grid.zmin, v.grid.zmax, v.grid.nz), (0.0, 1.0, 5));
    assert_eq!(v.grid_source, "--zmin/--zmax");
    assert_eq!(v.overall.n_pdf, 80);
    let direct = count(
        &ctx,
        "SELECT pz_pit_ks(pz_pit(e.pdf, r.redshift, 0.0, 1.0)) FROM est e JOIN ref r USING (\"objectId\")",
    )
    .await;
    assert_eq!(v.overall.pit_ks.unwrap().to_string(), direct);
    // An empty tomographic bin is listed, not dropped.
    assert_eq!(v.tomo.len(), 4);
    assert_eq!(v.tomo[3].metrics.n, 0);
    assert!(
        v.warnings
            .iter()
            .any(|w| w.contains("no object falls in tomographic bin 4")),
        "{:?}",
        v.warnings
    );
}
