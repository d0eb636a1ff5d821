//! A catalog written by `COPY … STORED AS HATS` opens in LSDB 0.11 (from PyPI) and reads back
//! the same rows. Needs the test environment `.ci/run` makes (`.venv-test`, or
//! `PZ_TEST_PYTHON`); it is a real client, so it does not skip.

use std::path::PathBuf;
use std::process::Command;

use pz_engine::PzContext;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PZ_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    pz_tests::workspace_root().join(".venv-test/bin/python")
}

#[tokio::test]
async fn lsdb_reads_what_pz_writes() {
    let py = python();
    assert!(
        py.exists(),
        "{} not found: run .ci/run (or set PZ_TEST_PYTHON to a Python with lsdb 0.11)",
        py.display()
    );
    let (_d, sky) = pz_tests::small_sky(20_000, 21);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("written");
    let ctx = PzContext::ephemeral();
    let src = sky
        .objects_dir
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{src}';
         COPY (SELECT \"objectId\", ra, dec, mag_g, mag_r, mag_i FROM objects) TO '{}' STORED AS HATS
           OPTIONS ('pixel_threshold' '3000', 'sort_columns' 'objectId');",
        out.display()
    ))
    .await
    .unwrap();
    let expect = ctx
        .run_last(&format!(
            "SELECT count(*), sum(\"objectId\"), round(sum(ra), 6), round(sum(CAST(mag_i AS DOUBLE)), 3), \
             count(DISTINCT _healpix_29) FROM hats('{}')",
            out.display()
        ))
        .await
        .unwrap()
        .unwrap();
    let expect = &pz_tests::rows(&expect.batches)[0];

    let script = pz_tests::workspace_root().join("tests/python/lsdb_read_check.py");
    let res = Command::new(&py).arg(&script).arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "LSDB failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&res.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["rows"].as_i64().unwrap().to_string(), expect[0]);
    assert_eq!(v["sum_object_id"].as_i64().unwrap().to_string(), expect[1]);
    let close = |a: f64, b: &str, tol: f64| (a - b.parse::<f64>().unwrap()).abs() <= tol;
    assert!(
        close(v["sum_ra"].as_f64().unwrap(), &expect[2], 1e-4),
        "{v} vs {expect:?}"
    );
    assert!(
        close(v["sum_mag_i"].as_f64().unwrap(), &expect[3], 1e-2),
        "{v} vs {expect:?}"
    );
    assert_eq!(v["healpix_ok"], serde_json::Value::Bool(true), "{v}");
    assert!(v["partitions"].as_i64().unwrap() > 1, "{v}");
    assert_eq!(v["columns"][0], "_healpix_29", "{v}");
}
