//! Against catalogs written by the real hats-import (../shared/data/hats); skipped, with the
//! reason printed, when ../shared is absent.

use std::collections::BTreeSet;

use datafusion::arrow::array::Int64Array;
use pz_catalogs::hats::pixel::Pixel;
use pz_catalogs::{write_hats, HatsCatalog, HatsWriteOptions};
use pz_engine::PzContext;

fn partition_set(cat: &HatsCatalog) -> BTreeSet<(u8, u64)> {
    cat.partitions
        .iter()
        .map(|p| (p.pixel.order(), p.pixel.npix()))
        .collect()
}

/// pz's adaptive partitioning reproduces hats-import's leaves from the same flat rows.
#[test]
fn partitioning_matches_hats_import() {
    let Some(hats) = pz_tests::shared_hats("partitioning_matches_hats_import") else {
        return;
    };
    for (flat, catalog, sort) in [
        ("objects.parquet", "objects", "objectId"),
        ("specz.parquet", "specz", "id"),
    ] {
        let file = std::fs::File::open(hats.join(flat)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        let out = tempfile::tempdir().unwrap();
        let opts = HatsWriteOptions {
            pixel_threshold: 20_000,
            sort_columns: vec![sort.into()],
            ..Default::default()
        };
        let summary = write_hats(&batches, schema, &out.path().join(catalog), &opts).unwrap();
        let ours = HatsCatalog::open(&out.path().join(catalog).display().to_string()).unwrap();
        let theirs = HatsCatalog::open(&hats.join(catalog).display().to_string()).unwrap();
        assert_eq!(partition_set(&ours), partition_set(&theirs), "{catalog}");
        let rows: u64 = summary.partitions.iter().map(|p| p.1).sum();
        assert_eq!(Some(rows), theirs.properties.total_rows, "{catalog}");
    }
}

async fn scanned(ctx: &PzContext, sql: &str) -> (usize, usize) {
    let plan = ctx
        .run_last(&format!("EXPLAIN {sql}"))
        .await
        .unwrap()
        .unwrap();
    let text = pz_tests::rows(&plan.batches).concat().join("\n");
    let line = text
        .lines()
        .find(|l| l.contains("HatsScanExec"))
        .expect("a HatsScanExec in the plan");
    let part = line
        .split("partitions=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let (a, b) = part.split_once('/').unwrap();
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

/// EXPLAIN names how many partitions a cone reads: every partition holding a matching row,
/// and fewer than all.
#[tokio::test]
async fn cone_reads_only_overlapping_partitions() {
    let Some(hats) = pz_tests::shared_hats("cone_reads_only_overlapping_partitions") else {
        return;
    };
    let ctx = PzContext::ephemeral();
    let dir = hats.join("objects").display().to_string();
    ctx.run_last(&format!(
        "CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{dir}'"
    ))
    .await
    .unwrap();
    let cat = HatsCatalog::open(&dir).unwrap();
    for (ra, dec, r) in [
        (0.0, -30.0, 0.3),
        (359.0, -29.3, 0.4),
        (2.8, -30.9, 0.1),
        (0.0, -30.0, 10.0),
    ] {
        let sql = format!("SELECT _healpix_29 FROM objects WHERE cone(ra, dec, {ra}, {dec}, {r})");
        let (read, total) = scanned(&ctx, &sql).await;
        assert_eq!(total, 16);
        let out = ctx.run_last(&sql).await.unwrap().unwrap();
        let mut needed = BTreeSet::new();
        for b in &out.batches {
            let h = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            for v in h.values() {
                let p = cat
                    .partitions
                    .iter()
                    .find(|p| p.pixel.range29().contains(&(*v as u64)))
                    .expect("row in a partition");
                needed.insert(p.pixel);
            }
        }
        assert!(
            read >= needed.len(),
            "cone ({ra}, {dec}, {r}) read {read} < {} needed",
            needed.len()
        );
        if r < 1.0 {
            assert!(read < total, "cone ({ra}, {dec}, {r}) pruned nothing");
        }
    }
    // A healpix equality reads exactly the partitions under that pixel.
    let p5 = Pixel::new(5, 4111).unwrap();
    let (read, _) = scanned(
        &ctx,
        &format!(
            "SELECT * FROM objects WHERE healpix(5, ra, dec) = {}",
            p5.npix()
        ),
    )
    .await;
    assert_eq!(read, 1);
    let (read, _) = scanned(
        &ctx,
        "SELECT * FROM objects WHERE healpix(4, ra, dec) = 1033",
    )
    .await;
    let expect = cat
        .partitions
        .iter()
        .filter(|p| p.pixel.overlaps(&Pixel::new(4, 1033).unwrap()))
        .count();
    assert_eq!(read, expect);
}
