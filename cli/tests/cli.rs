//! The `pz` binary as users drive it.

use std::path::Path;
use std::process::{Command, Output};

fn pz(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pz"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PZ_DATA_DIR")
        .output()
        .expect("run pz")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let o = pz(dir.path(), &["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for cmd in ["sql", "simulate", "demo", "bench", "serve", "--data-dir"] {
        assert!(text.contains(cmd), "pz --help lacks {cmd}:\n{text}");
    }
    for (cmd, flags) in [
        (
            vec!["sql"],
            vec!["--command", "--file", "--format", "--output"],
        ),
        (
            vec!["simulate"],
            vec!["--objects", "--specz", "--seed", "--out"],
        ),
        (vec!["demo"], vec!["--dir"]),
        (
            vec!["validate"],
            vec![
                "--pz",
                "--truth",
                "--id-column",
                "--zphot-column",
                "--pdf-column",
                "--tomo-edges",
                "--out",
            ],
        ),
        (vec!["bench", "scan"], vec!["--radius", "--lsdb-python"]),
        (vec!["serve"], vec!["--listen", "--allow-anonymous"]),
        (
            vec!["release", "add"],
            vec!["--display-name", "--public", "--group", "--as"],
        ),
        (
            vec!["product", "list"],
            vec!["--filter", "--order", "--limit", "--offset", "--as"],
        ),
        (
            vec!["product", "create"],
            vec!["--type", "--release", "--pz-code", "--official"],
        ),
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let o = pz(dir.path(), &args);
        assert!(o.status.success(), "{cmd:?} --help failed");
        for f in flags {
            assert!(stdout(&o).contains(f), "pz {cmd:?} --help lacks {f}");
        }
    }
}

#[test]
fn sql_runs_scripts_persists_tables_and_fails_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let sky = work.path().join("sky");
    let o = pz(
        &data,
        &[
            "simulate",
            "--objects",
            "3000",
            "--specz",
            "200",
            "--seed",
            "5",
            "--out",
            sky.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(sky.join("objects/hats.properties").is_file());

    // Several statements; the last one's result is printed.
    let create = format!(
        "CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{}'; SELECT count(*) AS n FROM objects",
        sky.join("objects").display()
    );
    let o = pz(&data, &["sql", "-c", &create, "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n3000\n");

    // The table survives into the next process, from any working directory.
    let o = Command::new(env!("CARGO_BIN_EXE_pz"))
        .current_dir(work.path())
        .env("PZ_DATA_DIR", &data)
        .args([
            "sql",
            "-c",
            "SELECT count(*) AS n FROM objects WHERE cone(ra, dec, 0.0, -30.0, 0.05)",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("{\"n\":"), "{}", stdout(&o));

    // -f and --output with Parquet.
    let script = work.path().join("q.sql");
    std::fs::write(
        &script,
        "SELECT \"objectId\", ra, dec FROM objects ORDER BY \"objectId\" LIMIT 7;",
    )
    .unwrap();
    let out = work.path().join("out.parquet");
    let o = pz(
        &data,
        &[
            "sql",
            "-f",
            script.to_str().unwrap(),
            "--format",
            "parquet",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pz(
        &data,
        &[
            "sql",
            "-c",
            &format!("SELECT count(*) AS n FROM '{}'", out.display()),
            "--format",
            "csv",
        ],
    );
    assert_eq!(stdout(&o), "n\n7\n", "{}", stderr(&o));

    // An error is one clear line and a non-zero exit.
    let o = pz(&data, &["sql", "-c", "SELECT * FROM no_such_table"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("no_such_table"),
        "{err}"
    );

    // DROP TABLE forgets it.
    let o = pz(&data, &["sql", "-c", "DROP TABLE objects"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pz(&data, &["sql", "-c", "SELECT count(*) FROM objects"]);
    assert!(!o.status.success());
}

#[test]
fn interactive_prompt_keeps_going_after_errors() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pz"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("sql")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT nonsense_fn(1);\nSELECT healpix(0,\n 0.0, 0.0) AS h;\n\\q\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("nonsense_fn"), "{}", stderr(&o));
    assert!(stdout(&o).contains("| 4 |"), "{}", stdout(&o));
}

#[test]
fn demo_runs_on_the_embedded_sky() {
    let dir = tempfile::tempdir().unwrap();
    let o = pz(
        dir.path(),
        &[
            "demo",
            "--dir",
            dir.path().join("demo").to_str().unwrap(),
            "--objects",
            "20000",
            "--specz",
            "500",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("cone search and brute force agree"), "{text}");
    assert!(text.contains("HatsScanExec"), "{text}");
    assert!(text.contains("on_true_object"), "{text}");
    // The photo-z chain: three models, a HATS photo-z table, one report per model.
    for m in ["knn", "bpz", "flexzboost"] {
        assert!(
            text.contains(&format!("CREATE MODEL {m} USING {m}")),
            "{text}"
        );
        let report = dir
            .path()
            .join("demo/validation")
            .join(m)
            .join("report.html");
        assert!(report.is_file(), "no {}", report.display());
    }
    assert!(text.contains("targets"), "{text}");
    let demo = dir.path().join("demo");
    // The same validation by hand, from the files the demo left: every object against its
    // true redshift.
    let out = dir.path().join("v");
    let o = pz(
        dir.path(),
        &[
            "validate",
            "--pz",
            demo.join("photoz").to_str().unwrap(),
            "--truth",
            demo.join("truth.parquet").to_str().unwrap(),
            "--zphot-column",
            "z_mode_knn",
            "--pdf-column",
            "pdf_knn",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("validated 20000 objects"),
        "{}",
        stdout(&o)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["n_matched"], 20000);
    // Refusing to overwrite a finished validation.
    let again = pz(
        dir.path(),
        &[
            "validate",
            "--pz",
            demo.join("photoz").to_str().unwrap(),
            "--truth",
            demo.join("truth.parquet").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists and is not empty"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn views_persist_after_the_tables_they_read() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let t = work.path().join("t.parquet");
    let sql = |q: &str| {
        let o = pz(&data, &["sql", "--format", "csv", "-c", q]);
        assert!(o.status.success(), "{q}: {}", stderr(&o));
        stdout(&o)
    };
    sql(&format!(
        "COPY (SELECT value AS id FROM generate_series(1, 10)) TO '{}'",
        t.display()
    ));
    // Named so that the views sort before the table, and one view reads the other.
    sql(&format!(
        "CREATE EXTERNAL TABLE zt STORED AS PARQUET LOCATION '{}';
         CREATE VIEW a_small AS SELECT id FROM zt WHERE id <= 4;
         CREATE VIEW a_smaller AS SELECT id FROM a_small WHERE id <= 2",
        t.display()
    ));
    assert_eq!(
        sql("SELECT (SELECT count(*) FROM a_small) AS s, (SELECT count(*) FROM a_smaller) AS ss"),
        "s,ss\n4,2\n"
    );
    sql("DROP VIEW a_smaller");
    let o = pz(&data, &["sql", "-c", "SELECT * FROM a_smaller"]);
    assert!(!o.status.success());
    assert!(
        !stderr(&o).contains("could not be restored"),
        "{}",
        stderr(&o)
    );
    assert_eq!(sql("SELECT count(*) AS n FROM a_small"), "n\n4\n");
}

#[test]
fn releases_and_products_are_seen_only_by_who_may_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let o = pz(d, args);
        assert!(o.status.success(), "pz {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(&["user", "add", "root", "--admin"]);
    ok(&["user", "add", "ana", "--group", "dp1"]);
    ok(&["user", "add", "bob"]);
    ok(&[
        "release",
        "add",
        "dp1",
        "--display-name",
        "Data Preview 1",
        "--group",
        "dp1",
        "--as",
        "root",
    ]);
    let made = ok(&[
        "product",
        "create",
        "DP1 objects",
        "--type",
        "object_catalog",
        "--release",
        "dp1",
        "--official",
        "--as",
        "root",
    ]);
    let id = made
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    assert!(
        made.contains(&format!(
            "{id}_dp1_objects,DP1 objects,object_catalog,dp1,true"
        )),
        "{made}"
    );
    ok(&[
        "product",
        "create",
        "My specz, v2",
        "--type",
        "redshift_catalog",
        "--as",
        "bob",
    ]);

    // ana shares the release's group; bob does not, and for him it does not exist.
    assert!(ok(&["release", "list", "--as", "ana"]).contains("dp1,Data Preview 1,false,dp1"));
    assert!(!ok(&["release", "list", "--as", "bob"]).contains("dp1"));
    let ana = ok(&["product", "list", "--as", "ana", "--order", "id"]);
    assert_eq!(ana.lines().count(), 3, "{ana}");
    assert!(ana.contains("\"My specz, v2\""), "{ana}");
    let newest_first = ok(&["product", "list", "--as", "ana", "--order", "-id"]);
    let ids: Vec<&str> = newest_first
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.first(), Some(&"2"), "{newest_first}");
    assert_eq!(ids.last(), Some(&id.as_str()), "{newest_first}");
    let bob = ok(&["product", "list", "--as", "bob"]);
    assert_eq!(bob.lines().count(), 2, "{bob}");
    let hidden = pz(d, &["product", "show", &id, "--as", "bob"]);
    let missing = pz(d, &["product", "show", "999", "--as", "bob"]);
    assert!(!hidden.status.success() && !missing.status.success());
    assert_eq!(
        stderr(&hidden).replace(&id, "N"),
        stderr(&missing).replace("999", "N"),
        "a hidden product reads as a missing one"
    );
    let only = ok(&[
        "product",
        "list",
        "--as",
        "root",
        "--filter",
        "product_type=object_catalog",
    ]);
    assert_eq!(only.lines().count(), 2, "{only}");

    // Refusals name what is wrong.
    let o = pz(
        d,
        &["product", "list", "--as", "ana", "--filter", "colour=red"],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("unknown product filter 'colour'"),
        "{}",
        stderr(&o)
    );
    let o = pz(
        d,
        &["product", "create", "x", "--type", "spectra", "--as", "ana"],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("spectra"),
        "{}",
        stderr(&o)
    );
    let o = pz(
        d,
        &[
            "release",
            "add",
            "dr1",
            "--display-name",
            "DR1",
            "--as",
            "ana",
        ],
    );
    assert!(!o.status.success(), "only admins add releases");
    let types = ok(&["product", "types"]);
    for t in [
        "redshift_catalog",
        "training_set",
        "validation_results",
        "photoz_estimates",
        "training_results",
        "object_catalog",
        "other",
    ] {
        assert!(types.contains(t), "{types}");
    }
}
