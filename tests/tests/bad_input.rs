//! Broken catalogs give one clear error naming the file or key, and never a panic.

use std::path::Path;

use pz_engine::PzContext;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

async fn error_of(sql: &str) -> String {
    let ctx = PzContext::ephemeral();
    match ctx.run_last(sql).await {
        Ok(_) => panic!("expected an error from {sql}"),
        Err(e) => e.strip_backtrace(),
    }
}

#[tokio::test]
async fn broken_catalogs_are_named() {
    let (_keep, sky) = pz_tests::small_sky(3_000, 11);
    let work = tempfile::tempdir().unwrap();

    // No partition_info.csv and no _metadata.
    let c = work.path().join("nolist");
    copy_dir(&sky.objects_dir, &c);
    std::fs::remove_file(c.join("partition_info.csv")).unwrap();
    // _metadata alone is enough…
    let ok = PzContext::ephemeral();
    let n = ok
        .run_last(&format!("SELECT count(*) FROM hats('{}')", c.display()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pz_tests::rows(&n.batches), vec![vec!["3000".to_string()]]);
    // …without it there is no partition list.
    std::fs::remove_file(c.join("dataset/_metadata")).unwrap();
    let e = error_of(&format!("SELECT * FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("no partition list") && e.contains("partition_info.csv") && e.contains("nolist"),
        "{e}"
    );

    // hats.properties without hats_col_ra.
    let c = work.path().join("nora");
    copy_dir(&sky.objects_dir, &c);
    for f in ["hats.properties", "properties"] {
        let p = c.join(f);
        let text = std::fs::read_to_string(&p).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("hats_col_ra"))
            .collect();
        std::fs::write(&p, kept.join("\n")).unwrap();
    }
    let e = error_of(&format!("SELECT * FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("hats_col_ra") && e.contains("hats.properties"),
        "{e}"
    );

    // A partition listed but missing.
    let c = work.path().join("missing");
    copy_dir(&sky.objects_dir, &c);
    let cat = pz_catalogs::HatsCatalog::open(&c.display().to_string()).unwrap();
    let victim = &cat.partitions[0];
    std::fs::remove_file(&victim.path).unwrap();
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("is missing") && e.contains(&victim.path.display().to_string()),
        "{e}"
    );

    // A truncated Parquet file.
    let c = work.path().join("truncated");
    copy_dir(&sky.objects_dir, &c);
    let cat = pz_catalogs::HatsCatalog::open(&c.display().to_string()).unwrap();
    let victim = &cat.partitions[cat.partitions.len() - 1].path;
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("not a valid Parquet file") && e.contains(&victim.display().to_string()),
        "{e}"
    );

    // Columns named in the properties that the data lacks.
    let c = work.path().join("badcol");
    copy_dir(&sky.objects_dir, &c);
    for f in ["hats.properties", "properties"] {
        let p = c.join(f);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("hats_col_dec=dec", "hats_col_dec=declination");
        std::fs::write(&p, text).unwrap();
    }
    let e = error_of(&format!("SELECT * FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("'declination'") && e.contains("not in the schema"),
        "{e}"
    );
}

#[tokio::test]
async fn writer_rejects_bad_positions_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("cat");
    let e = error_of(&format!(
        "COPY (SELECT * FROM (VALUES (1, 10.0, 20.0), (2, 11.0, 95.0)) AS t(id, ra, dec)) TO '{}' STORED AS HATS",
        out.display()
    ))
    .await;
    assert!(e.contains("declination 95"), "{e}");
    let e = error_of(&format!(
        "COPY (SELECT * FROM (VALUES (1, 10.0, 20.0), (2, CAST(NULL AS DOUBLE), 5.0)) AS t(id, ra, dec)) TO '{}' STORED AS HATS",
        out.display()
    ))
    .await;
    assert!(e.contains("row 1") && e.contains("null"), "{e}");
    let e = error_of(&format!(
        "COPY (SELECT 1 AS id, 2.0 AS x) TO '{}' STORED AS HATS",
        out.display()
    ))
    .await;
    assert!(e.contains("position column 'ra'"), "{e}");
    // Nothing was written, not even a temporary directory.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}
