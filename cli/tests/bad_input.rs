//! Bad input through the `pz` binary: each case exits with an error that says what is wrong
//! (the flag, file, column or row), never a panic or an abort, and writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs pz with a data directory of its own under `w`.
fn pz(w: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pz"))
        .current_dir(w)
        .arg("--data-dir")
        .arg(w.join("data"))
        .args(args)
        .env_remove("PZ_DATA_DIR")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run pz")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "pz failed: {}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every entry under `dir` (the data directory aside), relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if rel == "data" || rel.starts_with("data/") {
                continue;
            }
            out.push(rel);
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// pz fails (exit code 1, or clap's 2 for a flag clap refuses) with every one of `words` in
/// its error, without a panic, an abort or a backtrace, and `w` is as it was.
#[track_caller]
fn refused(w: &Path, args: &[&str], code: i32, words: &[&str]) -> String {
    let before = tree(w);
    let o = pz(w, args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "pz {args:?}: {err}");
    for word in words {
        assert!(
            err.contains(word),
            "pz {args:?}: expected '{word}' in: {err}"
        );
    }
    for never in ["panicked", "memory allocation", "stack backtrace", "pz-tmp"] {
        assert!(!err.contains(never), "pz {args:?}: {err}");
    }
    assert_eq!(tree(w), before, "pz {args:?} left something behind");
    err
}

fn write(w: &Path, name: &str, text: &str) -> String {
    let p = w.join(name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn simulate_flags_outside_their_domain() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    let sim = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["simulate", "--out", "sky"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !extra.contains(&"--objects") {
            a.extend(["--objects".to_string(), "1000".to_string()]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for (extra, words) in [
        (vec!["--density=-1"], vec!["--density -1"]),
        (vec!["--density", "NaN"], vec!["--density NaN"]),
        (vec!["--density", "inf"], vec!["--density inf"]),
        (vec!["--density", "0"], vec!["--density 0"]),
        (
            vec!["--density", "1e-30"],
            vec!["--density", "more than the whole sky"],
        ),
        (vec!["--density", "1e30"], vec!["--density"]),
        (vec!["--ra-center", "NaN"], vec!["--ra-center NaN"]),
        (vec!["--dec-center", "91"], vec!["--dec-center 91"]),
        (vec!["--dec-center", "89.99"], vec!["--dec-center", "poles"]),
        (vec!["--pixel-threshold", "0"], vec!["--pixel-threshold"]),
        (vec!["--objects", "0"], vec!["--objects must be at least 1"]),
        // Once an abort: "memory allocation of 88000000000000 bytes failed".
        (
            vec!["--objects", "1000000000000"],
            vec!["--objects 1000000000000", "more than the whole sky"],
        ),
        (
            vec!["--objects", "100000000000", "--density", "1e7"],
            vec!["--objects 100000000000", "of memory"],
        ),
        (
            vec!["--specz", "1000000000000000"],
            vec!["--specz 1000000000000000", "of memory"],
        ),
    ] {
        let args = sim(&extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(w, &refs, 1, &words);
    }
    write(w, "afile", "");
    refused(
        w,
        &["simulate", "--objects", "100", "--out", "afile"],
        1,
        &["afile is a file"],
    );
}

/// The mock sky and the catalogs the tsm cases need, made once.
fn tsm_inputs(w: &Path) -> PathBuf {
    ok(&pz(
        w,
        &[
            "simulate",
            "--objects",
            "800",
            "--specz",
            "80",
            "--seed",
            "5",
            "--out",
            "sky",
        ],
    ));
    let sql = |q: &str| ok(&pz(w, &["sql", "-c", q]));
    sql(
        "COPY (SELECT id, CASE WHEN id = 7 THEN 'NaN'::double ELSE ra END AS ra, dec, z \
         FROM 'sky/specz.parquet' ORDER BY id) TO 'nanpos.parquet'",
    );
    sql("COPY (SELECT id, ra, dec, z, 1.5 AS pdf FROM 'sky/specz.parquet' WHERE id < 40) TO 'mixed/a.parquet';
         COPY (SELECT id, ra, dec, z, 'x' AS pdf FROM 'sky/specz.parquet' WHERE id >= 40) TO 'mixed/b.parquet'");
    sql("COPY (SELECT 'x' || CAST(id AS VARCHAR) AS id, ra, dec, z FROM 'sky/specz.parquet') TO 'strid.csv'");
    sql("COPY (SELECT \"objectId\", ra, dec, 0.1 AS ebv, mag_g, mag_r AS mag_best FROM hats('sky/objects')) \
         TO 'ebvcat' STORED AS HATS");
    sql("COPY (SELECT \"objectId\", ra, dec, named_struct('g', mag_g) AS st FROM hats('sky/objects')) \
         TO 'structcat' STORED AS HATS");
    w.join("sky")
}

#[test]
fn tsm_bad_input() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    tsm_inputs(w);
    let tsm = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["tsm".into()];
        if !extra.contains(&"--redshift") {
            a.extend(["--redshift".into(), "sky/specz.parquet".into()]);
        }
        if !extra.contains(&"--objects") {
            a.extend(["--objects".into(), "sky/objects".into()]);
        }
        if !extra.contains(&"--out") {
            a.extend(["--out".into(), "ts".into()]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str], words: &[&str]| {
        let args = tsm(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(w, &refs, 1, words)
    };
    // An empty file is not "a directory that is not empty".
    write(w, "emptyfile", "");
    let e = run(
        &["--out", "emptyfile"],
        &["--out emptyfile is a file, not a directory"],
    );
    assert!(!e.contains("not empty"), "{e}");
    run(
        &["--flux-to-mag"],
        &["--flux-to-mag", "no flux column", "mag_g"],
    );
    run(
        &["--columns", "objectId,mag_g", "--flux-to-mag"],
        &["--flux-to-mag", "--columns names no flux column"],
    );
    run(
        &[
            "--objects",
            "ebvcat",
            "--columns",
            "objectId,ebv",
            "--deredden",
            "sfd",
            "--ebv-column",
            "ebv",
        ],
        &["--deredden", "no magnitude column"],
    );
    // A magnitude with no band in its name cannot be dereddened: said, not skipped silently.
    let o = pz(
        w,
        &[
            "tsm",
            "--redshift",
            "sky/specz.parquet",
            "--objects",
            "ebvcat",
            "--deredden",
            "sfd",
            "--ebv-column",
            "ebv",
            "--out",
            "ts_dered",
        ],
    );
    ok(&o);
    assert!(
        stderr(&o).contains("warning: tsm: --deredden: 'mag_best' names no band"),
        "{}",
        stderr(&o)
    );
    // A NaN position: the file, the column and the row, in the user's words.
    let e = run(
        &["--redshift", "nanpos.parquet"],
        &["--redshift nanpos.parquet", "column 'ra' row 7", "NaN"],
    );
    assert!(!e.contains("tsm_redshift") && !e.contains("null ra"), "{e}");
    // Files of a directory that disagree: both named, and the column.
    run(
        &["--redshift", "mixed"],
        &["column 'pdf'", "mixed/a.parquet", "mixed/b.parquet"],
    );
    run(
        &["--z-err-column", "nope"],
        &["no column 'nope'", "--z-err-column"],
    );
    run(&["--radius-arcsec", "inf"], &["--radius-arcsec", "inf"]);
    run(
        &["--radius-arcsec", "100"],
        &["--radius-arcsec 100", "maximum"],
    );
    run(&["--n-neighbors", "0"], &["--n-neighbors", "got 0"]);
    run(&["--n-neighbors", "1001"], &["--n-neighbors", "got 1001"]);
    run(
        &["--columns", "mag_g,mag_g"],
        &["--columns names 'mag_g' twice"],
    );
    run(&["--train-fraction", "NaN"], &["--train-fraction"]);
    run(
        &["--objects", "sky/specz.parquet"],
        &["is not a HATS catalog"],
    );
    // A write error names the user's --out, not the temporary directory.
    run(
        &["--objects", "structcat", "--format", "csv"],
        &["ts/training_set.csv", "not supported in CSV"],
    );

    // Text ids (once "Cannot cast string 'x0' to value of Int64 type").
    let o = pz(
        w,
        &tsm(&["--redshift", "strid.csv", "--out", "ts_str"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(ok(&o).contains("training set:"));
    assert!(w.join("ts_str/training_set.parquet").is_file());
}

#[test]
fn tsm_working_tables_never_touch_the_users_registrations() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    tsm_inputs(w);
    // The user's own tables, named as tsm's working tables are.
    let mine = write(w, "mine.csv", "a\n1\n2\n3\n");
    for t in [
        "tsm_redshift",
        "tsm_objects",
        "tsm_result",
        "crc_input_0",
        "crc_result",
    ] {
        ok(&pz(
            w,
            &[
                "sql",
                "-c",
                &format!("CREATE EXTERNAL TABLE {t} STORED AS CSV LOCATION '{mine}' OPTIONS ('format.has_header' 'true')"),
            ],
        ));
    }
    let tables = |w: &Path| {
        ok(&pz(
            w,
            &[
                "sql",
                "-c",
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
                "--format",
                "csv",
            ],
        ))
    };
    let before = tables(w);
    assert!(
        before.contains("tsm_redshift") && before.contains("crc_result"),
        "{before}"
    );
    ok(&pz(
        w,
        &[
            "tsm",
            "--redshift",
            "sky/specz.parquet",
            "--objects",
            "sky/objects",
            "--out",
            "ts",
        ],
    ));
    let good = write(
        w,
        "good.csv",
        "id,ra,dec,z,z_flag,survey\na,10.0,0.0,0.5,4,VVDS\n",
    );
    ok(&pz(
        w,
        &[
            "combine-redshifts",
            "--input",
            &format!("vvds={good}"),
            "--out",
            "c",
        ],
    ));
    assert_eq!(tables(w), before);
    for t in [
        "tsm_redshift",
        "tsm_objects",
        "tsm_result",
        "crc_input_0",
        "crc_result",
    ] {
        let out = ok(&pz(
            w,
            &[
                "sql",
                "-c",
                &format!("SELECT sum(a) AS s FROM {t}"),
                "--format",
                "csv",
            ],
        ));
        assert_eq!(out, "s\n6\n", "{t}");
    }
}

#[test]
fn combine_redshifts_bad_input() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    // The input of every case but the first; "good" by its own rules.
    write(
        w,
        "good.csv",
        "id,ra,dec,z,z_flag,survey\na,10.0,0.0,0.5,4,VVDS\n",
    );
    let bad = write(
        w,
        "bad.csv",
        "id,RA,DEC,Z,ZF\na,10.0,0.0,0.5,4\nb,abc,0.0,0.5,4\n",
    );
    let run = |extra: &[&str], words: &[&str]| {
        let mut a = vec!["combine-redshifts"];
        if !extra.contains(&"--input") {
            a.extend(["--input", "vvds=good.csv"]);
        }
        a.extend(extra);
        a.extend(["--out", "c"]);
        refused(w, &a, 1, words)
    };
    // Once "Cast error: Cannot cast string 'abc' to value of Float64 type".
    run(
        &[
            "--input",
            &format!("vvds={bad}"),
            "--map",
            "vvds:ra=RA,dec=DEC,z=Z,z_flag=ZF",
        ],
        &[
            "bad.csv",
            "column 'RA' (ra)",
            "row 2",
            "line 3",
            "'abc' is not a number",
        ],
    );
    // A bad value after the rows the CSV reader infers types from.
    let mut late = String::from("id,ra,dec,z,z_flag,survey\n");
    for i in 0..3000 {
        if i == 2499 {
            late.push_str("rbad,abc,0.0,0.5,4,VVDS\n");
        } else {
            late.push_str(&format!(
                "r{i},{},0.0,0.5,4,VVDS\n",
                10.0 + i as f64 * 0.001
            ));
        }
    }
    let late = write(w, "late.csv", &late);
    run(
        &["--input", &format!("vvds={late}")],
        &["late.csv", "column 'ra' row 2500 (line 2501)", "'abc'"],
    );
    let t = write(
        w,
        "between.yaml",
        "surveys:\n  VVDS:\n    instrument_type: s\n    rules:\n      - {when: \"between 5 1\", value: 4}\n",
    );
    run(
        &["--translation", &t],
        &["between.yaml", "survey 'VVDS'", "between 5 1", "empty"],
    );
    let t = write(
        w,
        "dup.yaml",
        "surveys:\n  VVDS:\n    instrument_type: s\n    instrument_type: g\n",
    );
    let e = run(
        &["--translation", &t],
        &["dup.yaml", "line 4", "'instrument_type' is given twice"],
    );
    assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    let t = write(
        w,
        "typo.yaml",
        "surveys:\n  VVDS:\n    instrument_type: s\n    rule: []\n",
    );
    run(&["--translation", &t], &["typo.yaml", "rule"]);
    run(
        &["--extra-columns", "nope"],
        &["--extra-columns 'nope'", "no input has this column"],
    );
    run(&["--extra-columns", "ra"], &["--extra-columns 'ra'"]);
    run(
        &["--extra-columns", "mag,mag"],
        &["--extra-columns names 'mag' twice"],
    );
    run(
        &["--mode", "concatenate", "--ties", "draw_one"],
        &["--ties applies only to --mode concatenate_and_remove_duplicates"],
    );
    run(&["--map", "vvds:z=z,z=z"], &["--map", "mapped twice"]);
    run(
        &["--instrument-type", "vvds=s", "--instrument-type", "vvds=g"],
        &["--instrument-type", "twice"],
    );
    run(&["--input", "=good.csv"], &["--input '=good.csv'"]);
    run(&["--radius-arcsec", "inf"], &["--radius-arcsec", "inf"]);
    run(&["--radius-arcsec=-1"], &["--radius-arcsec", "-1"]);
    run(&["--max-neighbors", "0"], &["--max-neighbors", "got 0"]);
    run(&["--flag-cut", "5"], &["--flag-cut 5"]);
    std::fs::create_dir(w.join("mixed")).unwrap();
    write(
        w,
        "mixed/a.csv",
        "id,ra,dec,z,z_flag,survey\na,10.0,0.0,0.5,4,VVDS\n",
    );
    write(
        w,
        "mixed/b.csv",
        "id,ra,dec,z,z_flag,survey\nb,x,0.0,0.5,4,VVDS\n",
    );
    run(
        &["--input", "vvds=mixed"],
        &[
            "--input vvds=mixed",
            "column 'ra'",
            "mixed/a.csv",
            "mixed/b.csv",
        ],
    );
    // --seed without draw_one works, with a warning that says it is unused.
    let o = pz(
        w,
        &[
            "combine-redshifts",
            "--input",
            "vvds=good.csv",
            "--seed",
            "3",
            "--out",
            "c2",
        ],
    );
    ok(&o);
    assert!(stderr(&o).contains("warning: --seed is used only by --ties draw_one"));
}

#[test]
fn copy_to_an_unwritable_target_returns_at_once() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    for target in ["/proc/pzout.parquet", "/proc/pzout.csv", "/proc/pzdir/"] {
        let before = tree(w);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pz"))
            .current_dir(w)
            .arg("--data-dir")
            .arg(w.join("data"))
            .args(["sql", "-c", &format!("COPY (SELECT 1 AS a) TO '{target}'")])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("COPY to {target} did not return in 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("cannot write {}", target.trim_end_matches('/'))),
            "{err}"
        );
        assert_eq!(tree(w), before);
    }
}

#[test]
fn sql_writes_nothing_on_error() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    write(w, "s.csv", "s\n1\nx\n");
    for target in ["out.parquet", "out.csv", "new/sub/out.parquet", "outdir/"] {
        refused(
            w,
            &[
                "sql",
                "-c",
                &format!("COPY (SELECT CAST(s AS INT) AS i FROM 's.csv') TO '{target}' STORED AS PARQUET"),
            ],
            1,
            &["Cannot cast string 'x'", target.trim_end_matches('/')],
        );
    }
    refused(
        w,
        &[
            "sql",
            "-c",
            "SELECT 1",
            "--format",
            "parquet",
            "--output",
            "/proc/x.parquet",
        ],
        1,
        &["/proc/x.parquet"],
    );
    refused(
        w,
        &["sql", "-c", &format!("SELECT 1{}", " + 1".repeat(5_000))],
        1,
        &["nested more than 1000 levels"],
    );
}

#[test]
fn bench_flags_outside_their_domain() {
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    for (args, words) in [
        (
            vec!["bench", "scan", "cat", "--radius", "0"],
            vec!["--radius"],
        ),
        (
            vec!["bench", "scan", "cat", "--radius", "NaN"],
            vec!["--radius"],
        ),
        (
            vec!["bench", "scan", "cat", "--repeat", "0"],
            vec!["--repeat"],
        ),
        (vec!["bench", "scan", "cat", "--ra", "10"], vec!["--dec"]),
        (
            vec!["bench", "scan", "cat", "--ra", "10", "--dec", "95"],
            vec!["--dec"],
        ),
        (
            vec![
                "bench",
                "crossmatch",
                "--hats",
                "h",
                "--out",
                "o",
                "--n-neighbors",
                "0",
            ],
            vec!["--n-neighbors"],
        ),
        (
            vec![
                "bench",
                "crossmatch",
                "--hats",
                "h",
                "--out",
                "o",
                "--radius-arcsec=-1",
            ],
            vec!["--radius-arcsec"],
        ),
        (
            vec![
                "bench", "photoz", "--algo", "knn", "--train", "a", "--test", "b", "--out", "o",
                "--rows", "0",
            ],
            vec!["--rows"],
        ),
        (
            vec![
                "bench", "photoz", "--algo", "knn", "--train", "a", "--test", "b", "--out", "o",
                "--repeat", "0",
            ],
            vec!["--repeat"],
        ),
    ] {
        refused(w, &args, 2, &words);
    }
}
