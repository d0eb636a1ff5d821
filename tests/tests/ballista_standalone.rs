//! A HATS scan with a cone() predicate and pz functions runs on an in-process Ballista
//! cluster and returns exactly what local execution returns.

use pz_engine::PzContext;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hats_cone_on_ballista_equals_local() {
    let (_d, sky) = pz_tests::small_sky(20_000, 3);
    let dir = sky
        .objects_dir
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    let ddl = format!("CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{dir}'");
    let query = "SELECT \"objectId\", healpix(10, ra, dec) AS pix, round(ang_sep(ra, dec, 0.0, -30.0), 6) AS sep, \
                 flux_to_mag(1000.0 * mag_i) AS f \
                 FROM objects WHERE cone(ra, dec, 0.0, -30.0, 0.15) AND mag_i < 25 ORDER BY \"objectId\"";

    let local = PzContext::ephemeral();
    local.run_last(&ddl).await.unwrap();
    let expected = pz_tests::rows(&local.run_last(query).await.unwrap().unwrap().batches);
    assert!(
        expected.len() > 50,
        "too few rows to compare: {}",
        expected.len()
    );

    let cluster = pz_engine::ballista::standalone_context(2).await.unwrap();
    cluster.sql(&ddl).await.unwrap().collect().await.unwrap();
    let got = pz_tests::rows(&cluster.sql(query).await.unwrap().collect().await.unwrap());
    assert_eq!(got, expected);

    // The distributed plan carries the pruned HATS scan.
    let plan = cluster
        .sql(&format!("EXPLAIN {query}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = pz_tests::rows(&plan).concat().join("\n");
    assert!(
        text.contains("HatsScanExec") || text.contains("cone("),
        "{text}"
    );
}

/// A model travels in the plan: photoz() on the Ballista cluster gives bit-identical PDFs and
/// point estimates to local execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photoz_on_ballista_is_bit_identical_to_local() {
    let (_d, sky) = pz_tests::small_sky(6_000, 11);
    let root = sky.objects_dir.parent().unwrap().canonicalize().unwrap();
    let ddl = format!(
        "CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{}'; \
         CREATE EXTERNAL TABLE truth STORED AS PARQUET LOCATION '{}'",
        root.join("objects").display(),
        root.join("truth.parquet").display()
    );
    let local = PzContext::ephemeral();
    local.run_script(&ddl).await.unwrap();
    local
        .run_script(
            "CREATE MODEL knn USING knn AS SELECT o.*, t.redshift FROM objects o JOIN truth t ON o.\"objectId\" = t.\"objectId\" \
             WHERE o.\"objectId\" % 3 = 0",
        )
        .await
        .unwrap();
    let model = local.models().get("knn").unwrap();
    let features = model
        .features
        .iter()
        .map(|f| f.column.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!(
        "SELECT \"objectId\", p.z_mode, p.z_mean, p.z_lo68, p.odds, arrow_cast(p.pdf, 'List(Float32)') AS pdf \
         FROM (SELECT \"objectId\", photoz('knn', {features}) AS p FROM objects WHERE \"objectId\" % 3 <> 0) ORDER BY \"objectId\""
    );
    let expected = local.run_last(&query).await.unwrap().unwrap().batches;
    let expected_rows = pz_tests::rows(&expected);
    assert!(expected_rows.len() > 1000, "{}", expected_rows.len());

    let cluster = pz_engine::ballista::standalone_context(2).await.unwrap();
    for stmt in ddl.split(';') {
        cluster.sql(stmt).await.unwrap().collect().await.unwrap();
    }
    pz_engine::model_registry(&cluster.state()).insert(model.as_ref().clone());
    let got = cluster.sql(&query).await.unwrap().collect().await.unwrap();
    // Compare the raw bits of every PDF value, not their printed form.
    let bits = |batches: &[datafusion::arrow::array::RecordBatch]| -> Vec<u32> {
        use datafusion::arrow::array::AsArray;
        let mut out = Vec::new();
        for b in batches {
            let l = b.column(5).as_list::<i32>();
            let v = l
                .values()
                .as_primitive::<datafusion::arrow::datatypes::Float32Type>();
            out.extend((0..v.len()).map(|i| v.value(i).to_bits()));
        }
        out
    };
    assert_eq!(pz_tests::rows(&got), expected_rows);
    assert_eq!(bits(&got), bits(&expected));
}
