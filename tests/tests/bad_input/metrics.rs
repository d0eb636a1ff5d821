//! Bad input: metrics. Values that are present but cannot be used are errors that say what
//! is wrong (a NaN is not a missing value: SQL's NULL is, and is left out); `pz validate`
//! names the object and gives advice in its own options.

use std::path::Path;

use pz_engine::pipelines::validate::ValidateConfig;
use pz_engine::PzContext;

use crate::error_of;

fn assert_says(e: &str, words: &[&str]) {
    for w in words {
        assert!(e.contains(w), "'{w}' not in: {e}");
    }
}

#[tokio::test]
async fn pit_statistics_refuse_values_outside_0_1_and_nan() {
    for (f, v) in [
        ("pz_pit_ks", "1.5"),
        ("pz_pit_cvm", "-0.2"),
        ("pz_pit_ad", "CAST('NaN' AS DOUBLE)"),
        ("pz_pit_outlier_rate", "2.0"),
        ("pz_pit_ks", "CAST('inf' AS DOUBLE)"),
    ] {
        let e = error_of(&format!(
            "SELECT {f}(pit) FROM (VALUES (0.1), (0.4), (0.7), ({v})) AS t(pit)"
        ))
        .await;
        assert_says(
            &e,
            &[
                &format!("{f}: a PIT value is "),
                "PIT values are CDF values in [0, 1]",
            ],
        );
    }
    // A NULL PIT (a PDF pz_pit could not use) is left out, not an error.
    let ctx = PzContext::ephemeral();
    let out = ctx
        .run_last("SELECT pz_pit_ks(pit) FROM (VALUES (0.25), (NULL), (0.75)) AS t(pit)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pz_tests::rows(&out.batches), vec![vec!["0.25".to_string()]]);
}

#[tokio::test]
async fn point_metrics_refuse_nan_and_impossible_redshifts() {
    let nan = "CAST('NaN' AS DOUBLE)";
    let e = error_of(&format!(
        "SELECT pz_bias(zp, zt) FROM (VALUES (0.5, 0.5), (0.6, {nan})) AS t(zp, zt)"
    ))
    .await;
    assert_says(
        &e,
        &["pz_bias: a true redshift (ztrue) is NaN", "finite numbers"],
    );
    let e = error_of(
        "SELECT pz_sigma_nmad(zp, zt) FROM (VALUES (0.5, 0.5), (CAST('inf' AS DOUBLE), 0.6)) AS t(zp, zt)",
    )
    .await;
    assert_says(&e, &["pz_sigma_nmad: a photo-z (zphot) is inf"]);
    let e = error_of("SELECT pz_outlier_frac(zp, zt) FROM (VALUES (0.5, -1.0)) AS t(zp, zt)").await;
    assert_says(
        &e,
        &[
            "pz_outlier_frac: a true redshift (ztrue) is -1",
            "needs ztrue > -1",
        ],
    );
    let e = error_of(&format!(
        "SELECT pz_outlier_rate_rail(zp, zt) FROM (VALUES ({nan}, 0.5)) AS t(zp, zt)"
    ))
    .await;
    assert_says(&e, &["pz_outlier_rate_rail: a photo-z (zphot) is NaN"]);
}

#[tokio::test]
async fn pdf_metrics_refuse_nan_ztrue_and_name_the_row_of_a_short_pdf() {
    let nan = "CAST('NaN' AS DOUBLE)";
    for f in ["pz_cde_loss", "pz_crps", "pz_brier", "pz_pdf_excluded"] {
        let e = error_of(&format!(
            "SELECT {f}(p, z, 0.0, 1.0) FROM (VALUES ([1.0, 1.0, 1.0], {nan})) AS t(p, z)"
        ))
        .await;
        assert_says(&e, &[&format!("{f}: a true redshift (ztrue) is NaN")]);
    }
    let e = error_of(&format!("SELECT pz_pit([1.0, 1.0, 1.0], {nan}, 0.0, 1.0)")).await;
    assert_says(&e, &["pz_pit: a true redshift (ztrue) is NaN"]);
    // The third row's PDF is one sample short of the default grid: the error names it.
    let e = error_of(
        "SELECT pz_pit(p, z) FROM (VALUES (array_repeat(1.0, 301), 0.5), (array_repeat(1.0, 301), 0.6), \
         (array_repeat(1.0, 300), 0.7)) AS t(p, z)",
    )
    .await;
    assert_says(
        &e,
        &[
            "pz_pit: the PDF at row 3 of its batch of 3 (ztrue 0.7) has 300 values",
            "the default grid (z = 0..3) has 301 points",
            "pass zmin, zmax",
        ],
    );
    let e = error_of(
        "SELECT pz_nz(p) FROM (VALUES (array_repeat(1.0, 301)), (array_repeat(1.0, 30))) AS t(p)",
    )
    .await;
    assert_says(
        &e,
        &["pz_nz: the PDF at row 2 of its batch of 2 has 30 values"],
    );
    // With explicit limits every PDF is read on its own linspace; one group must still
    // share a grid to be stacked.
    let e =
        error_of("SELECT pz_nz(p, 0.0, 1.0) FROM (VALUES ([1.0, 1.0, 1.0]), ([1.0, 1.0])) AS t(p)")
            .await;
    assert_says(
        &e,
        &["pz_nz: PDFs of different lengths in one group (3 and 2)"],
    );
    // A FixedSizeList that cannot fit is refused before any row is read.
    let e = error_of(
        "SELECT pz_cde_loss(arrow_cast(p, 'FixedSizeList(3, Float64)'), 0.5) FROM (VALUES ([1.0, 1.0, 1.0])) AS t(p)",
    )
    .await;
    assert_says(
        &e,
        &[
            "pz_cde_loss: the pdf column",
            "holds 3 values per row but the default grid (z = 0..3) has 301 points",
        ],
    );
}

/// A validation that must fail; returns its error and checks nothing was written.
async fn validate_error(ctx: &PzContext, cfg: ValidateConfig, out: &Path) -> String {
    let e = cfg.run(ctx).await.unwrap_err().strip_backtrace();
    assert!(!out.exists(), "{} was written", out.display());
    e
}

#[tokio::test]
async fn validate_names_the_object_and_speaks_its_own_options() {
    let ctx = PzContext::ephemeral();
    ctx.run_script(
        "CREATE TABLE est (\"objectId\" BIGINT, z_mode DOUBLE, pdf DOUBLE[]) AS VALUES \
           (1, 0.5, [1.0, 1.0, 1.0]), (2, 0.6, array_repeat(1.0, 301));
         CREATE TABLE est_nan (\"objectId\" BIGINT, z_mode DOUBLE, pdf DOUBLE[]) AS VALUES \
           (1, 0.5, array_repeat(1.0, 301)), (2, CAST('NaN' AS DOUBLE), array_repeat(1.0, 301));
         CREATE TABLE est_mixed (\"objectId\" BIGINT, z_mode DOUBLE, pdf DOUBLE[]) AS VALUES \
           (1, 0.5, [1.0, 1.0, 1.0]), (2, 0.6, [1.0, 2.0, 1.0, 1.0]);
         CREATE TABLE ref (\"objectId\" BIGINT, redshift DOUBLE) AS VALUES (1, 0.5), (2, 0.6);
         CREATE TABLE ref_nan (\"objectId\" BIGINT, redshift DOUBLE) AS VALUES (1, 0.5), (2, CAST('NaN' AS DOUBLE))",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = |s: &str| dir.path().join(s);

    // Short PDFs: the advice is pz validate's own option, not SQL's arguments.
    let e = validate_error(
        &ctx,
        ValidateConfig::new("est", "ref", &out("a")),
        &out("a"),
    )
    .await;
    assert_says(
        &e,
        &[
            "validate: the PDF of objectId 1 (column 'pdf' of --pz 'est') has 3 values",
            "the default grid (z = 0..3) has 301 points",
            "--zmin and --zmax",
        ],
    );
    assert!(!e.contains("pass zmin, zmax"), "{e}");
    // With the grid given, PDFs of two lengths name both objects.
    let mut cfg = ValidateConfig::new("est_mixed", "ref", &out("b"));
    cfg.grid = Some((0.0, 1.0));
    let e = validate_error(&ctx, cfg, &out("b")).await;
    assert_says(
        &e,
        &[
            "validate: PDFs of different lengths in column 'pdf' of --pz 'est_mixed'",
            "objectId 1 has 3",
            "objectId 2 has 4",
        ],
    );
    let mut cfg = ValidateConfig::new("est", "ref", &out("c"));
    cfg.grid = Some((1.0, 0.5));
    let e = validate_error(&ctx, cfg, &out("c")).await;
    assert_says(
        &e,
        &["validate: --zmin 1 --zmax 0.5", "need 0 <= zmin < zmax"],
    );
    let mut cfg = ValidateConfig::new("est", "ref_nan", &out("d"));
    cfg.grid = Some((0.0, 1.0));
    let e = validate_error(&ctx, cfg, &out("d")).await;
    assert_says(
        &e,
        &[
            "validate: the true redshift of objectId 2 is NaN (column 'redshift' of --truth 'ref_nan')",
        ],
    );
    let e = validate_error(
        &ctx,
        ValidateConfig::new("est_nan", "ref", &out("e")),
        &out("e"),
    )
    .await;
    assert_says(
        &e,
        &["validate: the photo-z of objectId 2 is NaN (column 'z_mode' of --pz 'est_nan')"],
    );
}
