//! Every SQL example in README.md runs, on the mock sky.
//!
//! The README's ```sql blocks are read at test time, split into statements, and run in order
//! in one session where the tables and files they name exist (made from `small_sky`). The
//! README speaks of the user's own files (`/data/dp1/objects`, `'…/SED'`) and abbreviates
//! (`mag_u, …, mag_y`); [`SUBSTITUTIONS`] says what stands for each here. A statement that is
//! grammar rather than an example (`DROP MODEL [IF EXISTS] fzb`) is in [`INSTEAD`] with the
//! concrete statements that run in its place and why. So a new README example is run, or the
//! test fails saying what to add: nothing in a ```sql block goes unchecked, and an entry of
//! either list that no longer matches the README fails too.

use std::path::Path;

use pz_engine::PzContext;

/// (README text, what replaces it; `{sky}`, `{work}` and `{bpz_options}` are filled in).
const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("'/data/dp1/object_collection/objects'", "'{sky}/objects'"),
    ("'/data/dp1/objects'", "'{sky}/objects'"),
    ("'/tmp/bright'", "'{work}/bright'"),
    ("'train.parquet'", "'{work}/train.parquet'"),
    (
        "sed_dir '…/SED', filter_dir '…/FILTER'",
        // The mock sky's own templates and filters (README: the user's BPZ files).
        "{bpz_options}",
    ),
    (
        "magerr_u, …, magerr_y",
        "magerr_u, magerr_g, magerr_r, magerr_i, magerr_z, magerr_y",
    ),
    (
        "mag_u, …, mag_y",
        "mag_u, mag_g, mag_r, mag_i, mag_z, mag_y",
    ),
];

/// (README statement, the statements run instead, why).
const INSTEAD: &[(&str, &[&str], &str)] = &[
    (
        "DROP MODEL [IF EXISTS] fzb",
        &["DROP MODEL fzb", "DROP MODEL IF EXISTS fzb"],
        "grammar: [IF EXISTS] is optional; both forms run",
    ),
    (
        "CREATE OR REPLACE MODEL …",
        &["CREATE OR REPLACE MODEL knn USING knn AS SELECT mag_u, mag_g, mag_r, mag_i, mag_z, mag_y, magerr_u, magerr_g, magerr_r, magerr_i, magerr_z, magerr_y, redshift FROM training"],
        "grammar: the rest of the statement is the CREATE MODEL above",
    ),
];

/// The ```sql blocks of a Markdown text, with the line each starts on.
fn sql_blocks(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in md.lines().enumerate() {
        let t = line.trim();
        match &mut current {
            None if t == "```sql" => current = Some((i + 1, String::new())),
            Some(_) if t == "```" => out.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "README.md: a ```sql block is not closed");
    out
}

/// A block's statements: `--` comments dropped, split at `;` outside string literals, and
/// at blank lines (the README ends a statement without `;` before a blank line).
fn statements(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = block.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            '-' if !quoted && chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        cur.push('\n');
                        break;
                    }
                }
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            '\n' if !quoted && cur.ends_with('\n') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The session the README's examples assume besides what they create (`objects`): `specz`,
/// a `training` table and `train.parquet` (columns named as in the FlexZBoost example).
async fn session(sky: &Path, work: &Path) -> PzContext {
    let ctx = PzContext::ephemeral();
    let q = |p: &Path| p.display().to_string().replace('\'', "''");
    let mags = "mag_u, mag_g, mag_r, mag_i, mag_z, mag_y, magerr_u, magerr_g, magerr_r, magerr_i, magerr_z, magerr_y";
    let lsst: Vec<String> = ["u", "g", "r", "i", "z", "y"]
        .iter()
        .flat_map(|b| {
            [
                format!("mag_{b} AS mag_{b}_lsst"),
                format!("magerr_{b} AS mag_err_{b}_lsst"),
            ]
        })
        .collect();
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE specz STORED AS PARQUET LOCATION '{sky}/specz.parquet';
         CREATE EXTERNAL TABLE truth STORED AS PARQUET LOCATION '{sky}/truth.parquet';
         CREATE TABLE training AS SELECT o.\"objectId\", {mags}, t.redshift
           FROM hats('{sky}/objects') o JOIN truth t ON o.\"objectId\" = t.\"objectId\"
           WHERE o.mag_i < 24 AND seeded_uniform(7, o.\"objectId\") < 0.4;
         COPY (SELECT {lsst}, redshift FROM training) TO '{work}/train.parquet';",
        sky = q(sky),
        work = q(work),
        lsst = lsst.join(", ")
    ))
    .await
    .expect("the README's tables");
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sql_example_in_the_readme_runs() {
    let readme_path = pz_tests::workspace_root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let blocks = sql_blocks(&readme);
    assert!(!blocks.is_empty(), "README.md has no ```sql block");

    let (_dir, s) = pz_tests::small_sky(4_000, 11);
    let sky = s.objects_dir.parent().unwrap().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let ctx = session(&sky, work.path()).await;
    let bpz_options = pz_engine::simulate::bpz_files::bpz_options(&s.bpz_dir);
    let fill = |t: &str| {
        t.replace("{sky}", &sky.display().to_string())
            .replace("{work}", &work.path().display().to_string())
            .replace("{bpz_options}", &bpz_options)
    };

    let mut used_sub = vec![false; SUBSTITUTIONS.len()];
    let mut used_instead = vec![false; INSTEAD.len()];
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut dot_access_rows = None;
    for (line, block) in &blocks {
        let stmts = statements(block);
        assert!(
            !stmts.is_empty(),
            "README.md line {line}: a ```sql block with no statement"
        );
        for stmt in stmts {
            let runs: Vec<String> = match INSTEAD.iter().position(|(readme, _, _)| *readme == stmt)
            {
                Some(i) => {
                    used_instead[i] = true;
                    INSTEAD[i].1.iter().map(|s| s.to_string()).collect()
                }
                None => {
                    let mut sql = stmt.clone();
                    for (i, (from, to)) in SUBSTITUTIONS.iter().enumerate() {
                        if sql.contains(from) {
                            used_sub[i] = true;
                            sql = sql.replace(from, &fill(to));
                        }
                    }
                    vec![sql]
                }
            };
            for sql in runs {
                if sql.contains('…') {
                    failures.push(format!(
                        "README.md line {line}: `{stmt}` still has a '…' here: add what it stands for to SUBSTITUTIONS, or the statement to INSTEAD with why"
                    ));
                    continue;
                }
                match ctx.run_last(&sql).await {
                    Ok(out) => {
                        ran += 1;
                        if stmt.contains(").z_mode") {
                            let out = out.expect("a result");
                            let rows = pz_tests::rows(&out.batches);
                            let valued = rows.iter().filter(|r| r[1] != "NULL").count();
                            dot_access_rows = Some((rows.len(), valued));
                        }
                    }
                    Err(e) => failures.push(format!(
                        "README.md line {line}: `{stmt}`\n  ran as `{sql}`\n  failed: {}",
                        e.strip_backtrace()
                    )),
                }
            }
        }
    }
    for (i, used) in used_sub.iter().enumerate() {
        if !used {
            failures.push(format!(
                "SUBSTITUTIONS entry {:?} matches nothing in README.md any more: remove it",
                SUBSTITUTIONS[i].0
            ));
        }
    }
    for (i, used) in used_instead.iter().enumerate() {
        if !used {
            failures.push(format!(
                "INSTEAD entry {:?} ({}) matches no README.md statement any more: remove it",
                INSTEAD[i].0, INSTEAD[i].2
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 15, "only {ran} README statements ran");
    // The documented `photoz(…).z_mode` gives a value for the objects with photometry.
    let (rows, valued) = dot_access_rows.expect("the README shows photoz(…).z_mode");
    assert_eq!(rows, s.hats.rows as usize);
    assert!(valued * 10 > rows * 9, "{valued} of {rows} have a z_mode");
}

#[test]
fn statements_are_split_outside_quotes_and_comments() {
    assert_eq!(
        statements("SELECT 'a;b'; -- c; d\nSELECT 2 -- e\n;SELECT\n3\n\nSELECT '\n\n'"),
        vec!["SELECT 'a;b'", "SELECT 2", "SELECT 3", "SELECT ' '"]
    );
    let blocks = sql_blocks("x\n```sql\nSELECT 1;\n```\n```sh\nls\n```\n```sql\nSELECT 2\n```\n");
    assert_eq!(
        blocks,
        vec![
            (2, "SELECT 1;\n".to_string()),
            (8, "SELECT 2\n".to_string())
        ]
    );
}
