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
