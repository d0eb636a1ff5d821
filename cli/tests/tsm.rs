//! `pz tsm` end to end on the mock sky.

use std::path::Path;
use std::process::{Command, Output};

fn pz(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pz"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run pz")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "pz failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sql(data: &Path, q: &str) -> String {
    ok(&pz(&["sql", "-c", q, "--format", "csv"], data))
}

#[test]
fn training_set_maker() {
    let w = tempfile::tempdir().unwrap();
    let data = w.path().join("data");
    let sky = w.path().join("sky");
    ok(&pz(
        &[
            "simulate",
            "--objects",
            "20000",
            "--specz",
            "1000",
            "--seed",
            "3",
            "--out",
            sky.to_str().unwrap(),
        ],
        &data,
    ));
    let objects = sky.join("objects");
    let specz = sky.join("specz.parquet");

    let out = w.path().join("ts");
    let text = ok(&pz(
        &[
            "tsm",
            "--redshift",
            specz.to_str().unwrap(),
            "--objects",
            objects.to_str().unwrap(),
            "--radius-arcsec",
            "1.0",
            "--n-neighbors",
            "1",
            "--train-fraction",
            "0.7",
            "--seed",
            "9",
            "--columns",
            "objectId,mag_g,mag_r,mag_i,magerr_i",
            "--out",
            out.to_str().unwrap(),
        ],
        &data,
    ));
    assert!(text.contains("training set:"), "{text}");
    let ts = out.join("training_set.parquet");
    assert!(ts.is_file());

    // The same pairs as crossmatch in SQL, and the split is seeded_uniform(seed, id).
    let q = format!(
        "CREATE EXTERNAL TABLE o STORED AS HATS LOCATION '{}'; \
         CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION '{}'; \
         SELECT (SELECT count(*) FROM '{ts}') = (SELECT count(*) FROM crossmatch('s', 'o', 1.0)) AS same_count, \
                (SELECT count(*) FROM '{ts}' t WHERE t.is_training_set <> (seeded_uniform(9, t.id) < 0.7)) AS split_mismatch, \
                (SELECT count(*) FROM (SELECT id, \"objectId\" FROM '{ts}' EXCEPT SELECT id, \"objectId\" FROM crossmatch('s', 'o', 1.0))) AS extra",
        objects.display(),
        specz.display(),
        ts = ts.display()
    );
    let r = sql(&data, &q);
    assert_eq!(r, "same_count,split_mismatch,extra\ntrue,0,0\n");
    let cols = sql(&data, &format!("SELECT * FROM '{}' LIMIT 0", ts.display()));
    assert_eq!(
        cols.trim(),
        "id,ra,dec,z,z_err,z_flag,survey,objectId,mag_g,mag_r,mag_i,magerr_i,dist_arcsec,match_rank,is_training_set"
    );
    let frac = sql(&data, &format!("SELECT avg(CASE WHEN is_training_set THEN 1.0 ELSE 0.0 END) BETWEEN 0.6 AND 0.8 AS f FROM '{}'", ts.display()));
    assert_eq!(frac, "f\ntrue\n");

    // Provenance.
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(p["pipeline"], "tsm");
    assert!(p["pz_version"].is_string());
    assert_eq!(p["config"]["radius_arcsec"], 1.0);
    assert_eq!(p["inputs"][0]["rows"], 1000);
    assert_eq!(p["inputs"][1]["rows"], 20000);
    assert_eq!(p["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(p["output"]["rows"].as_u64().unwrap() > 700);
    assert!(p["seconds"].as_f64().unwrap() > 0.0);

    // A differently partitioned object catalog gives the same training set.
    let repart = w.path().join("objects_small_leaves");
    sql(
        &data,
        &format!(
        "COPY (SELECT * FROM hats('{}')) TO '{}' STORED AS HATS OPTIONS ('pixel_threshold' '700')",
        objects.display(),
        repart.display()
    ),
    );
    let out2 = w.path().join("ts2");
    ok(&pz(
        &[
            "tsm",
            "--redshift",
            specz.to_str().unwrap(),
            "--objects",
            repart.to_str().unwrap(),
            "--radius-arcsec",
            "1.0",
            "--train-fraction",
            "0.7",
            "--seed",
            "9",
            "--columns",
            "objectId,mag_g,mag_r,mag_i,magerr_i",
            "--out",
            out2.to_str().unwrap(),
        ],
        &data,
    ));
    let diff = sql(
        &data,
        &format!(
            "SELECT count(*) AS n FROM (SELECT * FROM '{a}' EXCEPT SELECT * FROM '{b}')",
            a = ts.display(),
            b = out2.join("training_set.parquet").display()
        ),
    );
    assert_eq!(diff, "n\n0\n");

    // CSV input with other column names, CSV output.
    let csv = w.path().join("spec.csv");
    sql(&data, &format!(
        "COPY (SELECT id AS \"SPEC_ID\", ra AS \"RA\", dec AS \"DEC\", z AS redshift FROM '{}') TO '{}' STORED AS CSV OPTIONS ('format.has_header' 'true')",
        specz.display(),
        csv.display()
    ));
    let out3 = w.path().join("ts3");
    ok(&pz(
        &[
            "tsm",
            "--redshift",
            csv.to_str().unwrap(),
            "--objects",
            objects.to_str().unwrap(),
            "--id-column",
            "SPEC_ID",
            "--ra-column",
            "RA",
            "--dec-column",
            "DEC",
            "--z-column",
            "redshift",
            "--out",
            out3.to_str().unwrap(),
            "--format",
            "csv",
        ],
        &data,
    ));
    let n = sql(
        &data,
        &format!(
            "SELECT count(*) AS n FROM '{}'",
            out3.join("training_set.csv").display()
        ),
    );
    assert_ne!(n, "n\n0\n");

    // Errors name the problem and leave nothing behind.
    let bad = w.path().join("bad");
    let o = pz(
        &[
            "tsm",
            "--redshift",
            csv.to_str().unwrap(),
            "--objects",
            objects.to_str().unwrap(),
            "--out",
            bad.to_str().unwrap(),
        ],
        &data,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no column 'id'") && err.contains("spec.csv"),
        "{err}"
    );
    assert!(!bad.exists());
    let o = pz(
        &[
            "tsm",
            "--redshift",
            specz.to_str().unwrap(),
            "--objects",
            objects.to_str().unwrap(),
            "--radius-arcsec",
            "0",
            "--out",
            bad.to_str().unwrap(),
        ],
        &data,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--radius-arcsec must be positive"));
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(w.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("pz-tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Flux columns become AB magnitudes (and their errors magnitude errors), dereddened with
/// the catalog's E(B−V).
#[test]
fn fluxes_become_dereddened_magnitudes() {
    let w = tempfile::tempdir().unwrap();
    let data = w.path().join("data");
    let sky = w.path().join("sky");
    ok(&pz(
        &[
            "simulate",
            "--objects",
            "5000",
            "--specz",
            "300",
            "--seed",
            "4",
            "--out",
            sky.to_str().unwrap(),
        ],
        &data,
    ));
    let fluxcat = w.path().join("fluxes");
    // An object catalog in fluxes (nJy), as Rubin's are, with E(B−V) per object.
    sql(&data, &format!(
        "COPY (SELECT \"objectId\", ra, dec, power(10.0, (31.4 - mag_g) / 2.5) AS \"g_cModelFlux\", \
                0.1 * power(10.0, (31.4 - mag_g) / 2.5) AS \"g_cModelFluxErr\", \
                power(10.0, (31.4 - mag_i) / 2.5) AS \"i_cModelFlux\", 0.05 AS ebv, mag_g AS orig_g, mag_i AS orig_i \
         FROM hats('{}') WHERE mag_g < 90 AND mag_i < 90) TO '{}' STORED AS HATS",
        sky.join("objects").display(),
        fluxcat.display()
    ));
    let out = w.path().join("ts");
    ok(&pz(
        &[
            "tsm",
            "--redshift",
            sky.join("specz.parquet").to_str().unwrap(),
            "--objects",
            fluxcat.to_str().unwrap(),
            "--flux-to-mag",
            "--deredden",
            "sfd",
            "--ebv-column",
            "ebv",
            "--out",
            out.to_str().unwrap(),
        ],
        &data,
    ));
    let f = out.join("training_set.parquet");
    let r = sql(
        &data,
        &format!(
            "SELECT count(*) > 100 AS some, \
                max(abs(\"g_cModelMag\" - (orig_g - 3.64 * 0.05))) < 1e-4 AS g_ok, \
                max(abs(\"i_cModelMag\" - (orig_i - 2.06 * 0.05))) < 1e-4 AS i_ok, \
                max(abs(\"g_cModelMagErr\" - 0.1085736)) < 1e-6 AS err_ok \
         FROM '{}'",
            f.display()
        ),
    );
    assert_eq!(r, "some,g_ok,i_ok,err_ok\ntrue,true,true,true\n");
}
