//! The layouts and encodings HATS catalogs come in: HATS v1.0 with a directory of files per
//! pixel, the older HiPSCat layout, and Parquet written with zstd, BYTE_STREAM_SPLIT and
//! DELTA_BINARY_PACKED. Each must read back exactly the rows of the original catalog.

use std::fs::File;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pz_catalogs::HatsCatalog;
use pz_engine::PzContext;

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// Rewrites a Parquet file with the encodings hats-import users meet in the wild.
fn rewrite_with_encodings(src: &Path, dst: &Path) {
    let batches = read(src);
    let schema = batches[0].schema();
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        let enc = match f.data_type() {
            datafusion::arrow::datatypes::DataType::Int64 => Encoding::DELTA_BINARY_PACKED,
            _ => Encoding::BYTE_STREAM_SPLIT,
        };
        props = props.set_column_encoding(f.name().as_str().into(), enc);
    }
    let mut w =
        ArrowWriter::try_new(File::create(dst).unwrap(), schema, Some(props.build())).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

async fn fingerprint(dir: &Path) -> Vec<Vec<String>> {
    let ctx = PzContext::ephemeral();
    let out = ctx
        .run_last(&format!(
            "SELECT count(*), sum(\"objectId\"), round(sum(ra), 6), round(sum(dec), 6), round(sum(CAST(mag_i AS DOUBLE)), 4), \
             round(sum(CAST(magerr_u AS DOUBLE)), 4), sum(CASE WHEN cone(ra, dec, 0.0, -30.0, 0.1) THEN 1 ELSE 0 END) FROM hats('{}')",
            dir.display()
        ))
        .await
        .unwrap()
        .unwrap();
    pz_tests::rows(&out.batches)
}

/// Rows in one catalog and not the other, both ways.
async fn differing_rows(a: &Path, b: &Path) -> (String, String) {
    let ctx = PzContext::ephemeral();
    let q = |x: &Path, y: &Path| {
        format!(
            "SELECT count(*) FROM (SELECT * FROM hats('{}') EXCEPT SELECT * FROM hats('{}'))",
            x.display(),
            y.display()
        )
    };
    let one = ctx.run_last(&q(a, b)).await.unwrap().unwrap();
    let two = ctx.run_last(&q(b, a)).await.unwrap().unwrap();
    (
        pz_tests::rows(&one.batches)[0][0].clone(),
        pz_tests::rows(&two.batches)[0][0].clone(),
    )
}

#[tokio::test]
async fn every_layout_reads_the_same_rows() {
    let (_keep, sky) = pz_tests::small_sky(8_000, 17);
    let original = HatsCatalog::open(&sky.objects_dir.display().to_string()).unwrap();
    assert!(original.partitions.len() > 2);
    let expect = fingerprint(&sky.objects_dir).await;
    let work = tempfile::tempdir().unwrap();
    let props = std::fs::read_to_string(sky.objects_dir.join("hats.properties")).unwrap();

    // HATS v1.0, one directory of files per pixel (hats_npix_suffix=/), with odd encodings;
    // no _metadata, so the list comes from partition_info.csv.
    let dirs = work.path().join("dirs");
    std::fs::create_dir_all(dirs.join("dataset")).unwrap();
    std::fs::write(
        dirs.join("hats.properties"),
        props.replace("hats_npix_suffix=.parquet", "hats_npix_suffix=/"),
    )
    .unwrap();
    std::fs::copy(
        sky.objects_dir.join("partition_info.csv"),
        dirs.join("partition_info.csv"),
    )
    .unwrap();
    for p in &original.partitions {
        let d = dirs.join("dataset").join(p.pixel.relative_path("/"));
        std::fs::create_dir_all(&d).unwrap();
        // Split each pixel over two files.
        let batches = read(&p.path);
        let all =
            datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let half = all.num_rows() / 2;
        for (i, part) in [all.slice(0, half), all.slice(half, all.num_rows() - half)]
            .iter()
            .enumerate()
        {
            let tmp = work.path().join("tmp.parquet");
            let mut w =
                ArrowWriter::try_new(File::create(&tmp).unwrap(), part.schema(), None).unwrap();
            w.write(part).unwrap();
            w.close().unwrap();
            rewrite_with_encodings(&tmp, &d.join(format!("part{i}.parquet")));
        }
    }
    assert_eq!(
        fingerprint(&dirs).await,
        expect,
        "directory-per-pixel layout"
    );
    assert_eq!(
        differing_rows(&dirs, &sky.objects_dir).await,
        ("0".into(), "0".into())
    );

    // HiPSCat: catalog_info.json, Norder= folders at the root, _hipscat_index.
    let hips = work.path().join("hipscat");
    std::fs::create_dir_all(&hips).unwrap();
    std::fs::write(
        hips.join("catalog_info.json"),
        r#"{"catalog_name": "objects", "catalog_type": "object", "total_rows": 8000, "epoch": "J2000", "ra_column": "ra", "dec_column": "dec"}"#,
    )
    .unwrap();
    let mut csv = String::from("Norder,Dir,Npix,num_rows\n");
    for p in &original.partitions {
        let dst = hips.join(p.pixel.relative_path(".parquet"));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        rewrite_with_encodings(&p.path, &dst);
        let rows: usize = read(&p.path).iter().map(|b| b.num_rows()).sum();
        csv.push_str(&format!(
            "{},{},{},{}\n",
            p.pixel.order(),
            p.pixel.dir(),
            p.pixel.npix(),
            rows
        ));
    }
    std::fs::write(hips.join("partition_info.csv"), csv).unwrap();
    assert_eq!(fingerprint(&hips).await, expect, "HiPSCat layout");
    assert_eq!(
        differing_rows(&hips, &sky.objects_dir).await,
        ("0".into(), "0".into())
    );
    let info = PzContext::ephemeral()
        .run_last(&format!(
            "SELECT value FROM hats_info('{}') WHERE key = 'layout'",
            hips.display()
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pz_tests::rows(&info.batches),
        vec![vec!["hipscat".to_string()]]
    );
}
