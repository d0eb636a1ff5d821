//! The mock sky: reproducible to the byte, and shaped like a survey.

use std::collections::BTreeMap;
use std::path::Path;

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes() {
    let (a_dir, a) = pz_tests::small_sky(5_000, 99);
    let (b_dir, b) = pz_tests::small_sky(5_000, 99);
    let (c_dir, c) = pz_tests::small_sky(5_000, 100);
    let root =
        |s: &pz_engine::simulate::SimulateSummary| s.objects_dir.parent().unwrap().to_path_buf();
    let (fa, fb, fc) = (files(&root(&a)), files(&root(&b)), files(&root(&c)));
    assert!(fa.len() > 5);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(
            fb[k] == *v,
            "{k} differs between two runs with the same seed"
        );
    }
    assert!(
        fa["truth.parquet"] != fc["truth.parquet"],
        "a different seed gave the same sky"
    );
    drop((a_dir, b_dir, c_dir));
}

#[tokio::test]
async fn survey_like_sky() {
    let (_d, s) = pz_tests::small_sky(20_000, 5);
    let ctx = pz_engine::PzContext::ephemeral();
    let root = s.objects_dir.parent().unwrap().display().to_string();
    let q = |sql: String| {
        let ctx = &ctx;
        async move { pz_tests::rows(&ctx.run_last(&sql).await.unwrap().unwrap().batches) }
    };
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE o STORED AS HATS LOCATION '{root}/objects';
         CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{root}/truth.parquet';
         CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION '{root}/specz.parquet';
         CREATE EXTERNAL TABLE st STORED AS PARQUET LOCATION '{root}/specz_truth.parquet';"
    ))
    .await
    .unwrap();
    // Non-detections follow RAIL's convention: mag 99 with the limit (a faint magnitude) in
    // the error column; u drops out more than r.
    let r = q("SELECT sum(CASE WHEN mag_u = 99 THEN 1 ELSE 0 END), sum(CASE WHEN mag_r = 99 THEN 1 ELSE 0 END), \
               min(CASE WHEN mag_u = 99 THEN magerr_u END) FROM o".into())
    .await;
    let (u99, r99): (i64, i64) = (r[0][0].parse().unwrap(), r[0][1].parse().unwrap());
    let lim: f64 = r[0][2].parse().unwrap();
    assert!(u99 > r99 && u99 > 100, "u non-detections {u99}, r {r99}");
    assert!(lim > 25.0, "limit {lim}");
    // Redshifts span 0–3 with a median near 0.8 at these depths; colours track redshift.
    let r = q("SELECT min(redshift), max(redshift), median(redshift) FROM t".into()).await;
    let (zmin, zmax, zmed): (f64, f64, f64) = (
        r[0][0].parse().unwrap(),
        r[0][1].parse().unwrap(),
        r[0][2].parse().unwrap(),
    );
    assert!(
        zmin < 0.05 && zmax > 2.5 && zmax <= 3.0 && (0.4..1.3).contains(&zmed),
        "{zmin} {zmax} {zmed}"
    );
    let r = q("SELECT corr(o.mag_r - o.mag_i, t.redshift) FROM o JOIN t ON o.\"objectId\" = t.\"objectId\" \
               WHERE o.mag_i < 23 AND t.redshift < 0.9".into())
    .await;
    let corr: f64 = r[0][0].parse().unwrap();
    assert!(
        corr > 0.3,
        "r−i should redden with z below 0.9: corr {corr}"
    );
    // Reference redshifts: mostly on catalogued objects within ~1″, brighter than average.
    let r = q(
        "SELECT count(*), sum(CASE WHEN \"true_objectId\" >= 0 THEN 1 ELSE 0 END) FROM st".into(),
    )
    .await;
    assert_eq!(r[0][0], "1000");
    assert_eq!(r[0][1], "850");
    let r = q("SELECT max(ang_sep(s.ra, s.dec, o.ra, o.dec)), avg(o.mag_i) < (SELECT avg(mag_i) FROM o), \
               max(abs(ang_sep(s.ra, s.dec, o.ra, o.dec) - st.true_sep_arcsec)) \
               FROM s JOIN st ON s.id = st.id JOIN o ON st.\"true_objectId\" = o.\"objectId\"".into())
    .await;
    let max_sep: f64 = r[0][0].parse().unwrap();
    assert!(max_sep < 2.0 && max_sep > 0.3, "max offset {max_sep}\"");
    assert_eq!(r[0][1], "true");
    let recorded: f64 = r[0][2].parse().unwrap();
    assert!(recorded < 1e-9, "true_sep_arcsec off by {recorded}");
}

fn config(out: &Path) -> pz_engine::simulate::SimulateConfig {
    pz_engine::simulate::SimulateConfig {
        objects: 500,
        specz: 20,
        out: out.to_path_buf(),
        ..Default::default()
    }
}

/// Arguments outside their domain are errors naming the flag, before anything is written.
#[test]
fn out_of_domain_arguments_are_refused_and_write_nothing() {
    let w = tempfile::tempdir().unwrap();
    let out = w.path().join("sky");
    type Edit = fn(&mut pz_engine::simulate::SimulateConfig);
    let cases: Vec<(Edit, &str)> = vec![
        (|c| c.density_per_deg2 = -1.0, "--density -1"),
        (|c| c.density_per_deg2 = f64::NAN, "--density NaN"),
        (|c| c.density_per_deg2 = f64::INFINITY, "--density inf"),
        (|c| c.density_per_deg2 = 0.0, "--density 0"),
        // The whole sky, many times over.
        (|c| c.density_per_deg2 = 1e-30, "more than the whole sky"),
        // Once silently squeezed into a 0.007° strip.
        (
            |c| c.density_per_deg2 = 1e30,
            "--density 1000000000000000000000000000000",
        ),
        (|c| c.ra_center = f64::NAN, "--ra-center NaN"),
        (|c| c.dec_center = 95.0, "--dec-center 95 is outside"),
        (|c| c.dec_center = 89.99, "does not fit between the poles"),
        (
            |c| {
                c.objects = 1_000_000;
                c.dec_center = -89.0
            },
            "does not fit between the poles",
        ),
        (
            |c| c.pixel_threshold = 0,
            "--pixel-threshold must be at least 1",
        ),
        (|c| c.objects = 0, "--objects must be at least 1"),
        // Once an abort: "memory allocation of 88000000000000 bytes failed".
        (
            |c| {
                c.objects = 100_000_000_000;
                c.density_per_deg2 = 1e7
            },
            "needs about 40.9 TiB of memory",
        ),
        (
            |c| c.specz = usize::MAX / 2,
            "--specz 9223372036854775807 needs about",
        ),
    ];
    for (edit, words) in cases {
        let mut cfg = config(&out);
        edit(&mut cfg);
        let e = match pz_engine::simulate::simulate(&cfg) {
            Ok(_) => panic!("{words}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(words), "expected '{words}' in: {e}");
        assert!(!out.exists(), "{words}: {} was written", out.display());
        assert_eq!(std::fs::read_dir(w.path()).unwrap().count(), 0, "{words}");
    }
}

/// An existing directory keeps its other files; the summary names the final paths.
#[test]
fn simulate_into_an_existing_directory() {
    let w = tempfile::tempdir().unwrap();
    let out = w.path().join("sky");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let s = pz_engine::simulate::simulate(&config(&out)).unwrap();
    assert_eq!(s.objects_dir, out.join("objects"));
    assert_eq!(s.hats.root, out.join("objects"));
    assert!(s.truth_path.is_file() && s.specz_path.is_file() && s.bpz_dir.is_dir());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    let names: Vec<String> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["sky"]);
    // Again, over the first: replaced, not merged into.
    pz_engine::simulate::simulate(&config(&out)).unwrap();
    assert!(!files(&out).keys().any(|k| k.contains("pz-tmp")));
}
