//! Broken catalogs give one clear error naming the file or key, and never a panic.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use pz_engine::PzContext;

use crate::{copy_dir, error_of};

/// Every row of a Parquet file, in one batch.
fn read_parquet(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Rewrites `key=…` in both properties files of a catalog.
fn set_property(catalog: &Path, key: &str, value: &str) {
    for f in ["hats.properties", "properties"] {
        let p = catalog.join(f);
        let text = std::fs::read_to_string(&p).unwrap();
        let mut found = false;
        let mut lines: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key}=")) {
                    found = true;
                    format!("{key}={value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        if !found {
            lines.push(format!("{key}={value}"));
        }
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    }
}

/// Every file and directory under `dir`, relative, sorted: to show nothing was written.
fn tree(dir: &Path) -> Vec<String> {
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

#[tokio::test]
async fn properties_out_of_their_domain_are_named() {
    let (_keep, sky) = pz_tests::small_sky(3_000, 11);
    let work = tempfile::tempdir().unwrap();
    let fresh = |name: &str| {
        let c = work.path().join(name);
        copy_dir(&sky.objects_dir, &c);
        c
    };

    // A coordinate column that is not floating point: an integer id as RA.
    let c = fresh("intra");
    set_property(&c, "hats_col_ra", "objectId");
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("hats_col_ra")
            && e.contains("'objectId'")
            && e.contains("Int64")
            && e.contains("floating point")
            && e.contains(&c.canonicalize().unwrap().display().to_string()),
        "{e}"
    );
    // … or Dec, in a cross-match (where it used to give wrong pairs).
    let c = fresh("intdec");
    set_property(&c, "hats_col_dec", "objectId");
    let e = error_of(&format!(
        "SELECT count(*) FROM crossmatch('{0}', '{0}', 1.0)",
        c.display()
    ))
    .await;
    assert!(
        e.contains("hats_col_dec") && e.contains("'objectId'"),
        "{e}"
    );

    // A catalog type HATS does not have.
    let c = fresh("banana");
    set_property(&c, "dataproduct_type", "banana");
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("dataproduct_type 'banana'") && e.contains("hats.properties"),
        "{e}"
    );

    // hats_col_healpix naming a column the data lacks.
    let c = fresh("nohealpix");
    set_property(&c, "hats_col_healpix", "_healpix_12");
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("hats_col_healpix")
            && e.contains("'_healpix_12'")
            && e.contains("not in the schema"),
        "{e}"
    );

    // A margin width that is not one.
    let c = fresh("nanmargin");
    set_property(&c, "hats_margin_threshold", "NaN");
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(e.contains("hats_margin_threshold 'NaN'"), "{e}");

    // A partition list with its header only, while the properties promise rows.
    let c = fresh("headeronly");
    std::fs::write(c.join("partition_info.csv"), "Norder,Npix\n").unwrap();
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("partition_info.csv lists no partitions")
            && e.contains("3000 rows")
            && e.contains("hats.properties"),
        "{e}"
    );

    // Row counts in the list that disagree with hats_nrows.
    let c = fresh("badcounts");
    let cat = pz_catalogs::HatsCatalog::open(&c.display().to_string()).unwrap();
    let mut csv = String::from("Norder,Npix,num_rows\n");
    for p in &cat.partitions {
        csv.push_str(&format!("{},{},1\n", p.pixel.order(), p.pixel.npix()));
    }
    std::fs::write(c.join("partition_info.csv"), csv).unwrap();
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains(&format!("counts {} rows", cat.partitions.len())) && e.contains("says 3000"),
        "{e}"
    );

    // A pixel HEALPix does not have.
    let c = fresh("order30");
    std::fs::write(c.join("partition_info.csv"), "Norder,Npix\n30,0\n").unwrap();
    let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
    assert!(
        e.contains("partition_info.csv line 2") && e.contains("Norder=30/Npix=0"),
        "{e}"
    );
}

/// `_metadata` names each row group's file; a `Norder=` beyond 29 there used to underflow
/// (a panic in debug builds, garbage pruning ranges in release).
#[tokio::test]
async fn metadata_naming_an_impossible_pixel() {
    use parquet::file::metadata::{
        ParquetMetaDataBuilder, ParquetMetaDataReader, ParquetMetaDataWriter,
    };
    let (_keep, sky) = pz_tests::small_sky(3_000, 11);
    let work = tempfile::tempdir().unwrap();
    for (name, bad) in [
        ("order30", "Norder=30/Dir=0/Npix=0.parquet"),
        ("order200", "Norder=200/Dir=0/Npix=0.parquet"),
        ("npix", "Norder=1/Dir=0/Npix=48.parquet"),
    ] {
        let c = work.path().join(name);
        copy_dir(&sky.objects_dir, &c);
        std::fs::remove_file(c.join("partition_info.csv")).unwrap();
        let md_path = c.join("dataset/_metadata");
        let md = ParquetMetaDataReader::new()
            .parse_and_finish(&File::open(&md_path).unwrap())
            .unwrap();
        let mut b = ParquetMetaDataBuilder::new(md.file_metadata().clone());
        for rg in md.row_groups() {
            let cols = rg
                .columns()
                .iter()
                .map(|c| {
                    c.clone()
                        .into_builder()
                        .set_file_path(bad.to_string())
                        .build()
                        .unwrap()
                })
                .collect();
            b = b.add_row_group(
                rg.clone()
                    .into_builder()
                    .set_column_metadata(cols)
                    .build()
                    .unwrap(),
            );
        }
        let mut f = File::create(&md_path).unwrap();
        std::io::Write::write_all(&mut f, b"PAR1").unwrap();
        ParquetMetaDataWriter::new(&mut f, &b.build())
            .finish()
            .unwrap();
        let e = error_of(&format!("SELECT count(*) FROM hats('{}')", c.display())).await;
        assert!(
            e.contains("_metadata") && e.contains(bad) && e.contains("not a HEALPix pixel"),
            "{name}: {e}"
        );
    }
}

#[tokio::test]
async fn partitions_that_disagree_with_the_catalog_schema() {
    let (_keep, sky) = pz_tests::small_sky(3_000, 11);
    let work = tempfile::tempdir().unwrap();

    // One partition lacks a column the others have (it used to read as nulls).
    let c = work.path().join("nocol");
    copy_dir(&sky.objects_dir, &c);
    let cat = pz_catalogs::HatsCatalog::open(&c.display().to_string()).unwrap();
    let victim = &cat.partitions[1].path;
    let b = read_parquet(victim);
    let keep: Vec<usize> = (0..b.num_columns())
        .filter(|&i| b.schema().field(i).name() != "mag_i")
        .collect();
    write_parquet(victim, &b.project(&keep).unwrap());
    for sql in [
        format!("SELECT count(mag_i) FROM hats('{}')", c.display()),
        format!(
            "SELECT count(*) FROM crossmatch('{0}', '{0}', 1.0)",
            c.display()
        ),
    ] {
        let e = error_of(&sql).await;
        assert!(
            e.contains(&victim.display().to_string()) && e.contains("no column 'mag_i'"),
            "{sql}: {e}"
        );
    }

    // One partition has string ids where the catalog says Int64 (it used to fail in a cast
    // that named no file, column or row).
    let c = work.path().join("strid");
    copy_dir(&sky.objects_dir, &c);
    let cat = pz_catalogs::HatsCatalog::open(&c.display().to_string()).unwrap();
    let victim = &cat.partitions[0].path;
    let b = read_parquet(victim);
    let idx = b.schema().index_of("objectId").unwrap();
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..b.num_rows()).map(|i| format!("x{i}")),
    ));
    let mut fields: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[idx] = Field::new("objectId", DataType::Utf8, false);
    let mut cols = b.columns().to_vec();
    cols[idx] = ids;
    write_parquet(
        victim,
        &RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap(),
    );
    for sql in [
        format!("SELECT sum(\"objectId\") FROM hats('{}')", c.display()),
        format!(
            "SELECT count(*) FROM crossmatch('{0}', '{0}', 1.0)",
            c.display()
        ),
    ] {
        let e = error_of(&sql).await;
        assert!(
            e.contains(&victim.display().to_string())
                && e.contains("column 'objectId' as Utf8")
                && e.contains("Int64"),
            "{sql}: {e}"
        );
    }
}

#[tokio::test]
async fn writer_options_out_of_their_domain_write_nothing() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("cat");
    let rows = "SELECT * FROM (VALUES (1, 10.0, 20.0), (2, 11.0, 21.0)) AS t(id, ra, dec)";
    for (options, words) in [
        ("'pixel_threshold' '0'", "0 is not a pixel threshold"),
        ("'pixel_threshold' '-5'", "'-5' is not a whole number"),
        ("'highest_order' '30'", "order 30 is outside 0..=29"),
        ("'lowest_order' '300'", "order 300 is outside 0..=29"),
        (
            "'lowest_order' '8', 'highest_order' '5'",
            "lowest_order 8 is above highest_order 5",
        ),
        ("'ra' 'id', 'dec' 'id'", "both name column 'id'"),
        ("'ra' ''", "'ra': the column name is empty"),
        ("'catalog_name' ' '", "'catalog_name': the name is empty"),
        ("'overwrite' 'maybe'", "'maybe' is not true or false"),
    ] {
        let e = error_of(&format!(
            "COPY ({rows}) TO '{}' STORED AS HATS OPTIONS ({options})",
            out.display()
        ))
        .await;
        assert!(e.contains(words), "{options}: {e}");
    }
    // Positions that are not floating point.
    for (cols, t) in [("CAST(10 AS BIGINT)", "Int64"), ("'10.5'", "Utf8")] {
        let e = error_of(&format!(
            "COPY (SELECT 1 AS id, {cols} AS ra, 20.0 AS dec) TO '{}' STORED AS HATS",
            out.display()
        ))
        .await;
        assert!(
            e.contains("position column 'ra'") && e.contains(t) && e.contains("floating point"),
            "{cols}: {e}"
        );
    }
    // A value with a line break would add keys of its own to hats.properties.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("ra", DataType::Float64, false),
            Field::new("dec", DataType::Float64, false),
        ])),
        vec![
            Arc::new(datafusion::arrow::array::Float64Array::from(vec![1.0])),
            Arc::new(datafusion::arrow::array::Float64Array::from(vec![2.0])),
        ],
    )
    .unwrap();
    let opts = pz_catalogs::HatsWriteOptions {
        catalog_name: Some("x\ndataproduct_type=margin".into()),
        ..Default::default()
    };
    let e = pz_catalogs::write_hats(std::slice::from_ref(&batch), batch.schema(), &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'catalog_name'") && e.contains("line break"),
        "{e}"
    );
    let opts = pz_catalogs::HatsWriteOptions {
        highest_order: 40,
        ..Default::default()
    };
    let e = pz_catalogs::write_hats(std::slice::from_ref(&batch), batch.schema(), &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("order 40 is outside 0..=29"), "{e}");
    assert_eq!(tree(work.path()), Vec::<String>::new());
}
