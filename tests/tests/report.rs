//! `pz validate` writes metrics.json and a report that a real browser renders: headless
//! Chromium (Debian's package, installed by .ci/run) lays out every plot and takes a
//! screenshot of the page.

use std::path::{Path, PathBuf};
use std::process::Command;

use pz_engine::pipelines::validate::ValidateConfig;
use pz_engine::PzContext;

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
    // A 3-point PDF with no grid metadata does not fit the default 301-point grid.
    let e = run("est_short", "ref", "d").await;
    assert!(e.contains("a PDF has 3 values but the default grid"), "{e}");
    let e = run("/nonexistent/x.parquet", "ref", "e").await;
    assert!(
        e.contains("is neither a table of this session nor an existing file"),
        "{e}"
    );
    // Nothing was written for any of them.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}
