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
