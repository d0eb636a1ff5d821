//! Bad input: models. Corrupt model files in a data directory, options outside their
//! domains, training sets a model cannot learn from, templates without flux; each gives an
//! error (or a warning) that names what is wrong, and a corrupt model stays visible and
//! droppable.

use std::path::Path;

use pz_engine::simulate::bpz_files::bpz_options;
use pz_engine::{DataDir, PzContext};
use pz_udfs::photoz::model::ModelBody;
use pz_udfs::photoz::Model;

use crate::{copy_dir, error_in};

const FEATURES: &str = "mag_u, mag_g, mag_r, mag_i, mag_z, mag_y, \
                        magerr_u, magerr_g, magerr_r, magerr_i, magerr_z, magerr_y";

/// Registers (unless a data directory restored them) the mock sky's objects and truth, and `train`: every third object with its
/// true redshift.
async fn with_sky(ctx: &PzContext, root: &Path) {
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS objects STORED AS HATS LOCATION '{}'; \
         CREATE EXTERNAL TABLE IF NOT EXISTS truth STORED AS PARQUET LOCATION '{}'; \
         CREATE OR REPLACE VIEW train AS SELECT o.*, t.redshift FROM objects o JOIN truth t \
           ON o.\"objectId\" = t.\"objectId\" WHERE o.\"objectId\" % 3 = 0",
        root.join("objects").display(),
        root.join("truth.parquet").display()
    ))
    .await
    .unwrap();
}

fn sky_root(sky: &pz_engine::simulate::SimulateSummary) -> std::path::PathBuf {
    sky.objects_dir.parent().unwrap().canonicalize().unwrap()
}

/// Rows of SHOW MODELS: (model, status).
async fn shown(ctx: &PzContext) -> Vec<(String, String)> {
    let out = ctx.run_last("SHOW MODELS").await.unwrap().unwrap();
    pz_tests::rows(&out.batches)
        .into_iter()
        .map(|r| (r[0].clone(), r[r.len() - 1].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_file_changed_in_place_is_reported_listed_and_droppable() {
    let (_d, sky) = pz_tests::small_sky(2_000, 21);
    let root = sky_root(&sky);
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("models/k.pzmodel");
    let query = format!("SELECT sum(photoz('k', {FEATURES}).z_mode) FROM objects");
    {
        let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
        with_sky(&ctx, &root).await;
        ctx.run_last("CREATE MODEL k USING knn OPTIONS (nneigh_max '5') AS SELECT * FROM train")
            .await
            .unwrap();
    }
    // One byte in the middle of the file changed, in place.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();

    let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
    assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
    let w = &ctx.warnings[0];
    assert!(
        w.contains("model 'k'")
            && w.contains("k.pzmodel")
            && w.contains("does not match its SHA-256 checksum")
            && w.contains("DROP MODEL k removes it"),
        "{w}"
    );
    assert_eq!(shown(&ctx).await.len(), 1);
    let (name, status) = &shown(&ctx).await[0];
    assert_eq!(name, "k");
    assert!(
        status.starts_with("unusable: ") && status.contains("checksum"),
        "{status}"
    );
    // Not used: the estimate is refused, not changed.
    with_sky(&ctx, &root).await;
    let e = error_in(&ctx, &query).await;
    assert!(
        e.contains("model 'k' cannot be used") && e.contains("checksum"),
        "{e}"
    );
    // DROP MODEL removes it, file and all, by the name it is listed under.
    ctx.run_last("DROP MODEL k").await.unwrap();
    assert!(!file.exists());
    assert!(shown(&ctx).await.is_empty());
    let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
    assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
    // And the name can be used again.
    with_sky(&ctx, &root).await;
    ctx.run_last("CREATE MODEL k USING knn OPTIONS (nneigh_max '5') AS SELECT * FROM train")
        .await
        .unwrap();
    let again = pz_tests::rows(&ctx.run_last(&query).await.unwrap().unwrap().batches);
    assert!(again[0][0].parse::<f64>().unwrap() > 0.0, "{again:?}");
}

/// Whoever wrote the bytes can compute a checksum: a structurally impossible model with a
/// valid one (the AVX2 tree walk's out-of-bounds case) is refused when the file is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_with_a_valid_checksum_but_impossible_trees_is_refused() {
    let (_d, sky) = pz_tests::small_sky(2_000, 22);
    let root = sky_root(&sky);
    let data = tempfile::tempdir().unwrap();
    {
        let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
        with_sky(&ctx, &root).await;
        ctx.run_last(
            "CREATE MODEL f USING flexzboost OPTIONS (n_trees '5', max_basis '7', nbump '2', nsharp '2') \
             AS SELECT * FROM train",
        )
        .await
        .unwrap();
    }
    let file = data.path().join("models/f.pzmodel");
    let mut m = Model::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
    let ModelBody::FlexZBoost(f) = &mut m.body else {
        panic!("not a FlexZBoost model")
    };
    let g = &mut f.gbdt[0];
    let root_node = g.roots[0] as usize;
    g.nodes[root_node].feature = 40_000;
    g.nodes[root_node].threshold = f64::INFINITY;
    std::fs::write(&file, m.to_bytes().unwrap()).unwrap();

    let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
    assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
    assert!(
        ctx.warnings[0].contains("corrupt pz model 'f'")
            && ctx.warnings[0].contains("booster 0: tree 0: node")
            && ctx.warnings[0].contains("splits on feature 40000 of 6"),
        "{:?}",
        ctx.warnings
    );
    ctx.run_last("DROP MODEL F").await.unwrap();
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_files_are_listed_under_their_file_names() {
    let (_d, sky) = pz_tests::small_sky(2_000, 23);
    let root = sky_root(&sky);
    let data = tempfile::tempdir().unwrap();
    {
        let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
        with_sky(&ctx, &root).await;
        // Two names the old file naming sent to one file (a_b.pzmodel).
        ctx.run_script(
            "CREATE MODEL \"a b\" USING trainz AS SELECT * FROM train; \
             CREATE MODEL a_b USING trainz AS SELECT * FROM train WHERE redshift < 1",
        )
        .await
        .unwrap();
    }
    // A copy under another name.
    let models = data.path().join("models");
    std::fs::copy(models.join("a_b.pzmodel"), models.join("copy.pzmodel")).unwrap();
    std::fs::write(models.join("old.pzmodel"), b"PZMODEL\0\x01\0\0\0old layout").unwrap();

    let ctx = PzContext::open(DataDir::new(data.path())).await.unwrap();
    assert_eq!(ctx.warnings.len(), 2, "{:?}", ctx.warnings);
    assert!(
        ctx.warnings
            .iter()
            .any(|w| w.contains("copy.pzmodel holds model 'a_b'; it is listed as 'copy'")),
        "{:?}",
        ctx.warnings
    );
    assert!(
        ctx.warnings
            .iter()
            .any(|w| w.contains("model 'old'") && w.contains("model format version 1")),
        "{:?}",
        ctx.warnings
    );
    let names: Vec<String> = shown(&ctx).await.into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["a b", "a_b", "copy", "old"]);
    // Each is dropped by its listed name and takes its own file with it.
    for (name, file) in [
        ("copy", "copy.pzmodel"),
        ("\"a b\"", "a%20b.pzmodel"),
        ("old", "old.pzmodel"),
    ] {
        assert!(models.join(file).exists(), "{file}");
        ctx.run_last(&format!("DROP MODEL {name}")).await.unwrap();
        assert!(!models.join(file).exists(), "{file}");
    }
    assert!(models.join("a_b.pzmodel").exists());
    let e = error_in(&ctx, "DROP MODEL old").await;
    assert!(e.contains("unknown model 'old'"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_outside_their_domains_fail_at_create_model() {
    let (_d, sky) = pz_tests::small_sky(2_000, 24);
    let root = sky_root(&sky);
    let ctx = PzContext::ephemeral();
    with_sky(&ctx, &root).await;
    let bpz = bpz_options(&sky.bpz_dir);
    let cases: &[(&str, &str, &str)] = &[
        // BPZ: above 20 every photoz() row panicked in clamp.
        ("bpz", "mag_err_min '25'", "bpz: option mag_err_min must be a number in [0, 20], got '25'"),
        ("bpz", "mag_err_min 'NaN'", "option mag_err_min must be a number in [0, 20], got 'NaN'"),
        ("bpz", "p_min '1'", "option p_min must be a number in [0, 1), got '1'"),
        ("bpz", "zp_error '-0.1'", "option zp_error must be 1 to 6 comma-separated numbers, each a number in [0, 5]"),
        ("bpz", "nondetect_err_max_mag '0'", "option nondetect_err_max_mag must be a number in (0, 100]"),
        ("bpz", "mmin '30'", "bpz: need mmin < mmax, got mmin 30 and mmax 29"),
        ("bpz", "prior 'flat'", "bpz: prior must be 'hdfn' or 'informed', got 'flat'"),
        ("bpz", "nt_array '1,1,1,3'", "the HDFN prior has 3 broad types"),
        ("bpz", "nt_array '18446744073709551615,1'", "nt_array must be comma-separated positive counts"),
        // FlexZBoost: depth 25 ran out of memory, 64 overflowed a shift, lambda <= -1 gave
        // infinite leaves.
        ("flexzboost", "max_depth '25'", "flexzboost: option max_depth must be a whole number from 1 to 20, got '25'"),
        ("flexzboost", "max_depth '64'", "option max_depth must be a whole number from 1 to 20, got '64'"),
        ("flexzboost", "max_depth '18'", "would take"),
        ("flexzboost", "lambda '-1'", "option lambda must be a number in [0, 1000000000000], got '-1'"),
        ("flexzboost", "lambda 'inf'", "option lambda must be a number in [0, 1000000000000], got 'inf'"),
        ("flexzboost", "learning_rate '0'", "option learning_rate must be a number in (0, 1], got '0'"),
        ("flexzboost", "n_trees '0'", "option n_trees must be a whole number from 1 to 10000, got '0'"),
        ("flexzboost", "n_trees '99999999999999999999'", "option n_trees must be a whole number from 1 to 10000"),
        ("flexzboost", "max_bins '1'", "option max_bins must be a whole number from 2 to 256"),
        ("flexzboost", "min_child_rows '0'", "option min_child_rows must be a whole number from 1 to"),
        ("flexzboost", "basis_per_booster '0'", "option basis_per_booster must be a whole number from 1 to 35"),
        ("flexzboost", "max_basis '201'", "option max_basis must be a whole number from 1 to 200"),
        ("flexzboost", "trainfrac '0'", "option trainfrac must be a number in (0, 1), got '0'"),
        ("flexzboost", "bumpmin '-1'", "option bumpmin must be a number in [0, 1]"),
        ("flexzboost", "bumpmin '0.5', bumpmax '0.1'", "need bumpmin <= bumpmax"),
        ("flexzboost", "nbump '0'", "option nbump must be a whole number from 1 to 1000"),
        ("flexzboost", "sharpmax '1e9'", "option sharpmax must be a number in (0, 10]"),
        ("flexzboost", "nsharp '-3'", "option nsharp must be a whole number from 1 to 1000"),
        ("flexzboost", "seed '-1'", "option seed must be a whole number >= 0"),
        // k-NN.
        ("knn", "nneigh_max '5000'", "knn: option nneigh_max must be a whole number from 1 to 1000, got '5000'"),
        ("knn", "nneigh_min '0'", "option nneigh_min must be a whole number from 1 to 1000"),
        ("knn", "sigma_grid_min '0'", "option sigma_grid_min must be a number in (0, 10]"),
        ("knn", "sigma_grid_max 'inf'", "option sigma_grid_max must be a number in (0, 10]"),
        ("knn", "ngrid_sigma '0'", "option ngrid_sigma must be a whole number from 1 to 1000"),
        ("knn", "train_frac '-0.5'", "option train_frac must be a number in (0, 1)"),
        ("knn", "mag_weights 'NaN'", "option mag_weights must be 1 to 100 comma-separated numbers, each a number in [0, 1000000]"),
        // Every algorithm: the grid and the photometry.
        ("trainz", "nz '0'", "trainz: option nz must be a whole number from 2 to 10001, got '0'"),
        ("trainz", "nz '100000000'", "option nz must be a whole number from 2 to 10001"),
        ("trainz", "zmin '-1'", "option zmin must be a number in [0, 100), got '-1'"),
        ("trainz", "zmax 'inf'", "option zmax must be a number in (0, 100], got 'inf'"),
        ("trainz", "zmin '2', zmax '1'", "redshift grid: need 0 <= zmin < zmax"),
        ("knn", "mag_limits '-1,27,27,27,26,25'", "the limit of band 'u' (-1) must be a number in (0, 50]"),
        ("knn", "bands 'u,g,r,i,z,y,u'", "option bands lists 'u' twice"),
        ("knn", "nondetect_val '-99'", "nondetect_val -99 and unobserved_val -99 must be finite and differ by more than 0.02"),
        ("knn", "nondetect_val 'inf'", "option nondetect_val must be a finite number, got 'inf'"),
        ("knn", "magerr_template 'mag_{band}'", "mag_template and magerr_template are both 'mag_{band}'"),
    ];
    for (algo, options, words) in cases {
        let extra = if *algo == "bpz" {
            format!("{bpz}, ")
        } else {
            String::new()
        };
        let sql = format!(
            "CREATE MODEL m USING {algo} OPTIONS ({extra}{options}) AS SELECT * FROM train"
        );
        let e = error_in(&ctx, &sql).await;
        assert!(e.contains(words), "{algo} {options}: {e}");
    }
    assert!(ctx.models().list().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_sets_a_model_cannot_learn_from() {
    let (_d, sky) = pz_tests::small_sky(2_000, 25);
    let root = sky_root(&sky);
    let ctx = PzContext::ephemeral();
    with_sky(&ctx, &root).await;
    // Every magnitude a non-detection: the model would predict one constant.
    let e = error_in(
        &ctx,
        "CREATE MODEL m USING knn AS SELECT 99.0 AS mag_u, 99.0 AS mag_g, 99.0 AS mag_r, \
         99.0 AS mag_i, 99.0 AS mag_z, 99.0 AS mag_y, magerr_u, magerr_g, magerr_r, magerr_i, \
         magerr_z, magerr_y, redshift FROM train",
    )
    .await;
    assert!(
        e.contains("knn: every one of the") && e.contains("training rows has only non-detections"),
        "{e}"
    );
    // A string column where a magnitude should be: the wrong type, not a missing column.
    let e = error_in(
        &ctx,
        "CREATE MODEL m USING knn AS SELECT CAST(mag_u AS VARCHAR) AS mag_u, mag_g, mag_r, \
         mag_i, mag_z, mag_y, magerr_u, magerr_g, magerr_r, magerr_i, magerr_z, magerr_y, \
         redshift FROM train",
    )
    .await;
    assert!(
        e.contains("knn: column 'mag_u' (the magnitude of band u) has type Utf8")
            && e.contains("CAST it in the SELECT"),
        "{e}"
    );
    let e = error_in(
        &ctx,
        "CREATE MODEL m USING trainz AS SELECT * EXCLUDE (redshift), CAST(redshift AS VARCHAR) AS redshift FROM train",
    )
    .await;
    assert!(
        e.contains("column 'redshift' (the redshift) has type Utf8"),
        "{e}"
    );
    // Every training redshift off the grid: an error; some: a warning the result carries.
    let e = error_in(
        &ctx,
        "CREATE MODEL m USING knn OPTIONS (zmax '0.1') AS SELECT * FROM train WHERE redshift > 0.5",
    )
    .await;
    assert!(
        e.contains("training redshifts lie off the grid [0, 0.1]")
            && e.contains("set zmin and zmax to cover them"),
        "{e}"
    );
    let out = ctx
        .run_last("CREATE MODEL m USING knn OPTIONS (zmax '1') AS SELECT * FROM train")
        .await
        .unwrap()
        .unwrap();
    let row = &pz_tests::rows(&out.batches)[0];
    assert!(
        row[4].contains("training redshifts lie off the grid [0, 1]"),
        "{row:?}"
    );
    let described = pz_tests::rows(
        &ctx.run_last("DESCRIBE MODEL m")
            .await
            .unwrap()
            .unwrap()
            .batches,
    );
    assert!(
        described
            .iter()
            .any(|r| r[0] == "warning.1" && r[1].contains("off the grid")),
        "{described:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bpz_template_whose_fluxes_are_all_zero() {
    let (_d, sky) = pz_tests::small_sky(2_000, 26);
    let root = sky_root(&sky);
    let ctx = PzContext::ephemeral();
    with_sky(&ctx, &root).await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&sky.bpz_dir, copy.path());
    let victim = std::fs::read_dir(copy.path().join("SED"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sed"))
        .min()
        .unwrap();
    let zeros: String = std::fs::read_to_string(&victim)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("{} 0\n", l.split_whitespace().next().unwrap()))
        .collect();
    std::fs::write(&victim, zeros).unwrap();
    let e = error_in(
        &ctx,
        &format!(
            "CREATE MODEL b USING bpz OPTIONS ({}) AS SELECT * FROM train",
            bpz_options(copy.path())
        ),
    )
    .await;
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        e.contains(&format!("bpz: template '{name}'"))
            && e.contains("has zero flux in every filter at every redshift"),
        "{e}"
    );
}
