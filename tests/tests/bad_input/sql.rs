//! Bad input to pz's SQL front end and to COPY: one clear error naming the statement's path
//! or part, at once, and nothing left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use pz_engine::PzContext;

use crate::{error_in, error_of};

/// Every entry under `dir`, relative, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A COPY's error within `limit` (object_store's local store retried an unwritable target
/// forever).
async fn copy_error_within(sql: &str, limit: Duration) -> String {
    let t0 = Instant::now();
    let e = tokio::time::timeout(limit, error_of(sql))
        .await
        .unwrap_or_else(|_| panic!("{sql} did not return within {limit:?}"));
    assert!(t0.elapsed() < limit);
    e
}

#[tokio::test]
async fn copy_to_an_unwritable_target_fails_at_once_with_the_path() {
    for target in [
        "/proc/pzout.parquet",
        "/proc/pzout.csv",
        "/proc/pzdir/",
        "/proc/pzsub/x.json",
    ] {
        let e = copy_error_within(
            &format!("COPY (SELECT 1 AS a) TO '{target}'"),
            Duration::from_secs(20),
        )
        .await;
        let shown = target.trim_end_matches('/');
        assert!(
            e.contains(&format!("cannot write {shown}")),
            "{target}: {e}"
        );
        assert!(!e.contains("pz-tmp"), "{target}: {e}");
    }
}

#[tokio::test]
async fn a_copy_that_fails_at_run_time_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("s.csv"), "s\n1\nx\n").unwrap();
    let before = entries(dir.path());
    // The cast fails on the second row, while the file is being written.
    for (target, stored) in [
        ("out.parquet", ""),
        ("out.csv", ""),
        ("outdir/", " STORED AS PARQUET"),
        ("new/deeper/out.parquet", ""),
        ("parts", " STORED AS CSV PARTITIONED BY (i)"),
    ] {
        let e = error_of(&format!(
            "COPY (SELECT CAST(s AS INT) AS i, s FROM '{d}/s.csv') TO '{d}/{target}'{stored}"
        ))
        .await;
        assert!(e.contains("Cannot cast string 'x'"), "{target}: {e}");
        let shown = format!("{d}/{}", target.trim_end_matches('/'));
        assert!(
            e.contains(&shown),
            "{target}: the error names the target: {e}"
        );
        assert!(!e.contains("pz-tmp"), "{target}: {e}");
        assert_eq!(entries(dir.path()), before, "{target} left something");
    }
}

#[tokio::test]
async fn a_copy_replaces_or_adds_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let ctx = PzContext::ephemeral();
    for v in [1, 2] {
        ctx.run_last(&format!("COPY (SELECT {v} AS a) TO '{d}/new/x.csv'"))
            .await
            .unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("new/x.csv")).unwrap();
    assert_eq!(text, "a\n2\n");
    for b in [1, 2] {
        ctx.run_last(&format!(
            "COPY (SELECT 1 AS a, {b} AS b) TO '{d}/parts/' STORED AS PARQUET PARTITIONED BY (b)"
        ))
        .await
        .unwrap();
    }
    let all = entries(dir.path());
    assert!(all.iter().all(|e| !e.contains("pz-tmp")), "{all:?}");
    let rows = ctx
        .run_last(&format!("SELECT count(*) FROM '{d}/parts/'"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pz_tests::rows(&rows.batches), vec![vec!["2".to_string()]]);
}

#[tokio::test]
async fn copy_onto_the_wrong_kind_of_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::create_dir(dir.path().join("adir.parquet")).unwrap();
    std::fs::write(dir.path().join("afile"), "keep").unwrap();
    let e = error_of(&format!("COPY (SELECT 1 AS a) TO '{d}/adir.parquet'")).await;
    assert!(e.contains("adir.parquet is a directory"), "{e}");
    let e = error_of(&format!(
        "COPY (SELECT 1 AS a) TO '{d}/afile' STORED AS PARQUET"
    ))
    .await;
    assert!(e.contains("afile is a file"), "{e}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("afile")).unwrap(),
        "keep"
    );
    assert_eq!(entries(dir.path()), vec!["adir.parquet", "afile"]);
}

#[tokio::test]
async fn dot_access_works_on_any_struct_expression() {
    let ctx = PzContext::ephemeral();
    let out = ctx
        .run_last(
            "SELECT named_struct('z_mode', 1.5, 'Odds', 2).z_mode AS a, \
                    named_struct('z_mode', 1.5, 'Odds', 2).\"Odds\" AS b, \
                    (named_struct('s', named_struct('t', 3))).s.t AS c",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pz_tests::rows(&out.batches),
        vec![vec!["1.5".to_string(), "2".to_string(), "3".to_string()]]
    );
    let e = error_in(&ctx, "SELECT named_struct('a', 1).b").await;
    assert!(e.contains("Field b not found"), "{e}");
}

#[tokio::test]
async fn deep_or_broken_scripts_are_errors_not_crashes() {
    let ctx = PzContext::ephemeral();
    let deep = format!("SELECT 1{}", " + 1".repeat(20_000));
    let e = error_in(&ctx, &deep).await;
    assert!(e.contains("nested more than 1000 levels"), "{e}");
    let e = error_in(
        &ctx,
        &format!("SELECT {}1{}", "f(".repeat(5_000), ")".repeat(5_000)),
    )
    .await;
    assert!(e.contains("SQL syntax error"), "{e}");
    for bad in [
        "SELECT 'unclosed",
        "CREATE MODEL",
        "COPY (SELECT 1) TO",
        "\u{0}",
    ] {
        let e = error_in(&ctx, bad).await;
        assert!(!e.is_empty(), "{bad}");
    }
    // Still usable afterwards.
    assert!(ctx.run_last("SELECT 1").await.unwrap().is_some());
}
