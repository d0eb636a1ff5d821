//! crossmatch against brute force where geometry is hardest: around a pole and on the
//! corners of many small partitions, with catalogs generated here.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use pz_catalogs::{write_hats, HatsWriteOptions};
use pz_engine::PzContext;
use pz_udfs::astro::ang_sep::ang_sep_arcsec;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn batch(ids: &[i64], pos: &[(f64, f64)], id_name: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(id_name, DataType::Int64, false),
        Field::new("ra", DataType::Float64, false),
        Field::new("dec", DataType::Float64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Float64Array::from_iter_values(pos.iter().map(|p| p.0))),
            Arc::new(Float64Array::from_iter_values(pos.iter().map(|p| p.1))),
        ],
    )
    .unwrap()
}

/// (left id, right id) → (distance, rank) by brute force.
fn brute(
    left: &[(f64, f64)],
    right: &[(f64, f64)],
    r: f64,
    k: usize,
) -> BTreeMap<(i64, i64), (f64, i64)> {
    let mut out = BTreeMap::new();
    for (i, l) in left.iter().enumerate() {
        let mut c: Vec<(f64, usize)> = right
            .iter()
            .enumerate()
            .filter_map(|(j, p)| {
                let d = ang_sep_arcsec(l.0, l.1, p.0, p.1).unwrap().unwrap();
                (d <= r).then_some((d, j))
            })
            .collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (rank, (d, j)) in c.into_iter().take(k).enumerate() {
            out.insert((i as i64, j as i64), (d, rank as i64 + 1));
        }
    }
    out
}

async fn check(left: Vec<(f64, f64)>, right: Vec<(f64, f64)>, threshold: u64, r: f64, k: usize) {
    let (ls, rs) = check_with(left, right, threshold, threshold, r, k).await;
    assert!(ls > 4 && rs > 4, "want many partitions");
}

/// Cross-matches catalogs written with the given thresholds against brute force; returns
/// how many partitions each had.
async fn check_with(
    left: Vec<(f64, f64)>,
    right: Vec<(f64, f64)>,
    lthreshold: u64,
    rthreshold: u64,
    r: f64,
    k: usize,
) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let lids: Vec<i64> = (0..left.len() as i64).collect();
    let rids: Vec<i64> = (0..right.len() as i64).collect();
    let opts = |threshold| HatsWriteOptions {
        pixel_threshold: threshold,
        ..Default::default()
    };
    let lb = batch(&lids, &left, "lid");
    let rb = batch(&rids, &right, "rid");
    let ls = write_hats(
        std::slice::from_ref(&lb),
        lb.schema(),
        &dir.path().join("left"),
        &opts(lthreshold),
    )
    .unwrap();
    let rs = write_hats(
        std::slice::from_ref(&rb),
        rb.schema(),
        &dir.path().join("right"),
        &opts(rthreshold),
    )
    .unwrap();
    let orders: std::collections::BTreeSet<u8> = ls
        .partitions
        .iter()
        .chain(&rs.partitions)
        .map(|p| p.0.order())
        .collect();
    assert!(
        orders.len() > 1,
        "want several partition orders: {orders:?}"
    );

    let ctx = PzContext::ephemeral();
    ctx.run_script(&format!(
        "CREATE EXTERNAL TABLE l STORED AS HATS LOCATION '{0}/left';
         CREATE EXTERNAL TABLE r STORED AS HATS LOCATION '{0}/right';",
        dir.path().display()
    ))
    .await
    .unwrap();
    let out = ctx
        .run_last(&format!(
            "SELECT lid, rid, dist_arcsec, match_rank FROM crossmatch('l', 'r', {r}, {k})"
        ))
        .await
        .unwrap()
        .unwrap();
    let mut got = BTreeMap::new();
    for row in pz_tests::rows(&out.batches) {
        let key = (
            row[0].parse::<i64>().unwrap(),
            row[1].parse::<i64>().unwrap(),
        );
        got.insert(
            key,
            (
                row[2].parse::<f64>().unwrap(),
                row[3].parse::<i64>().unwrap(),
            ),
        );
    }
    let expect = brute(&left, &right, r, k);
    assert!(
        expect.len() > 100,
        "too few pairs to be a test: {}",
        expect.len()
    );
    assert_eq!(got.len(), expect.len(), "pair count");
    for (key, (d, rank)) in &expect {
        let Some((gd, grank)) = got.get(key) else {
            panic!("missing pair {key:?}")
        };
        assert_eq!(grank, rank, "rank of {key:?}");
        assert!((gd - d).abs() < 1e-9, "distance of {key:?}: {gd} vs {d}");
    }
    (ls.partitions.len(), rs.partitions.len())
}

fn near(rng: &mut Lcg, p: (f64, f64), arcsec: f64) -> (f64, f64) {
    let cosd = p.1.to_radians().cos().max(1e-9);
    let dec = (p.1 + (rng.next() - 0.5) * 2.0 * arcsec / 3600.0).clamp(-90.0, 90.0);
    let ra = (p.0 + (rng.next() - 0.5) * 2.0 * arcsec / 3600.0 / cosd).rem_euclid(360.0);
    (if ra >= 360.0 { 0.0 } else { ra }, dec)
}

/// Left rows in parts of a left leaf that no right leaf covers still find the right rows
/// just across the boundary. Around (0, 0), the centre of base pixel 4 where its four
/// order-1 children meet: the right rows all lie in one child (one order-1 leaf), the left
/// rows in the others (one order-0 leaf, as they span several children). The left rows
/// outside the right leaf used to get no task at all.
#[tokio::test]
async fn left_rows_beside_right_leaves_match_across_the_boundary() {
    let mut rng = Lcg(3);
    let child = |p: (f64, f64)| cdshealpix::nested::hash(1, p.0.to_radians(), p.1.to_radians());
    let disk: Vec<(f64, f64)> = (0..2000)
        .map(|_| {
            let (x, y) = (rng.next() * 2.0 - 1.0, rng.next() * 2.0 - 1.0);
            let ra = (x * 1.5 / 3600.0).rem_euclid(360.0);
            (if ra >= 360.0 { 0.0 } else { ra }, y * 1.5 / 3600.0)
        })
        .collect();
    let first = child(disk[0]);
    let (right, left): (Vec<_>, Vec<_>) = disk.into_iter().partition(|&p| child(p) == first);
    // What makes this a test: pairs whose left row lies outside the right's only leaf.
    let across = brute(&left, &right, 2.0, 3)
        .keys()
        .filter(|(l, _)| child(left[*l as usize]) != first)
        .count();
    assert!(across > 100, "{across} pairs across the boundary");
    let (ls, rs) = check_with(left, right, 1_000_000, 1_000_000, 2.0, 3).await;
    assert_eq!((ls, rs), (1, 1));
}

#[tokio::test]
async fn around_the_south_pole() {
    let mut rng = Lcg(7);
    let left: Vec<(f64, f64)> = (0..3000)
        .map(|_| (rng.next() * 360.0, -90.0 + rng.next().powf(0.7) * 0.3))
        .collect();
    let mut right: Vec<(f64, f64)> = left.iter().map(|&p| near(&mut rng, p, 1.5)).collect();
    right.extend((0..2000).map(|_| (rng.next() * 360.0, -90.0 + rng.next().powf(0.7) * 0.3)));
    check(left, right, 300, 3.0, 3).await;
}

#[tokio::test]
async fn on_partition_corners_across_ra_zero() {
    // Points packed around the corners of order-8 pixels near (0, -30).
    let mut rng = Lcg(11);
    let mut left = Vec::new();
    for px in 0..40u64 {
        let p = cdshealpix::nested::hash(6, 0.0, (-30f64).to_radians()) * 16 + px % 16;
        let v = cdshealpix::nested::vertices(8, p);
        for (lon, lat) in v {
            for _ in 0..12 {
                left.push(near(&mut rng, (lon.to_degrees(), lat.to_degrees()), 4.0));
            }
        }
    }
    let mut right: Vec<(f64, f64)> = left.iter().map(|&p| near(&mut rng, p, 2.0)).collect();
    right.extend(left.iter().map(|&p| near(&mut rng, p, 6.0)));
    check(left, right, 150, 2.5, 4).await;
}

fn nullable_batch(ids: &[i64], pos: &[(Option<f64>, Option<f64>)], id_name: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(id_name, DataType::Int64, false),
        Field::new("ra", DataType::Float64, true),
        Field::new("dec", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Float64Array::from_iter(pos.iter().map(|p| p.0))),
            Arc::new(Float64Array::from_iter(pos.iter().map(|p| p.1))),
        ],
    )
    .unwrap()
}

/// Rewrites every partition file of a catalog with `edit` applied to its rows.
fn edit_partitions(dir: &std::path::Path, edit: impl Fn(&RecordBatch) -> RecordBatch) {
    let cat = pz_catalogs::HatsCatalog::open(&dir.display().to_string()).unwrap();
    for p in &cat.partitions {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&p.path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        let all = datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap();
        let out = edit(&all);
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&p.path).unwrap(),
            out.schema(),
            None,
        )
        .unwrap();
        w.write(&out).unwrap();
        w.close().unwrap();
    }
}

/// Null (or NaN) coordinates match nothing. A null used to be read from the value buffer
/// underneath, (0, 0) after a Parquet round trip, and matched the objects there.
#[tokio::test]
async fn null_and_nan_positions_match_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Left: rows within 0.5" of (0, 0); right: objects at (0, 0) and near the left rows.
    let lpos: Vec<(Option<f64>, Option<f64>)> = (0..10)
        .map(|i| (Some(0.0001 * i as f64), Some(0.00005)))
        .collect();
    let mut rpos: Vec<(Option<f64>, Option<f64>)> = vec![(Some(0.0), Some(0.0))];
    rpos.extend((1..10).map(|i| (Some(0.0001 * i as f64 + 0.00002), Some(0.00005))));
    rpos.push((Some(0.00051), Some(0.00003)));
    let lids: Vec<i64> = (0..lpos.len() as i64).collect();
    let rids: Vec<i64> = (100..100 + rpos.len() as i64).collect();
    let opts = HatsWriteOptions::default();
    for (name, b) in [
        ("left", nullable_batch(&lids, &lpos, "lid")),
        ("right", nullable_batch(&rids, &rpos, "rid")),
    ] {
        write_hats(
            std::slice::from_ref(&b),
            b.schema(),
            &dir.path().join(name),
            &opts,
        )
        .unwrap();
    }
    // Left 1: ra and dec null; left 2: ra null; left 3: ra NaN. Right 110: ra and dec null.
    let blank = |b: &RecordBatch, id_col: &str, nulls: &[(i64, bool, bool, bool)]| {
        let ids = b
            .column_by_name(id_col)
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        let col = |name: &str, which: usize| -> Arc<Float64Array> {
            let c = b
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            Arc::new(Float64Array::from_iter((0..b.num_rows()).map(|i| {
                match nulls.iter().find(|n| n.0 == ids.value(i)) {
                    Some(n) if which == 0 && n.1 => None,
                    Some(n) if which == 1 && n.2 => None,
                    Some(n) if which == 0 && n.3 => Some(f64::NAN),
                    _ => Some(c.value(i)),
                }
            })))
        };
        let mut cols = b.columns().to_vec();
        cols[b.schema().index_of("ra").unwrap()] = col("ra", 0);
        cols[b.schema().index_of("dec").unwrap()] = col("dec", 1);
        RecordBatch::try_new(b.schema(), cols).unwrap()
    };
    edit_partitions(&dir.path().join("left"), |b| {
        blank(
            b,
            "lid",
            &[
                (1, true, true, false),
                (2, true, false, false),
                (3, false, false, true),
            ],
        )
    });
    edit_partitions(&dir.path().join("right"), |b| {
        blank(b, "rid", &[(110, true, true, false)])
    });

    let ctx = PzContext::ephemeral();
    for unique in ["false", "true"] {
        let out = ctx
            .run_last(&format!(
                "SELECT lid, rid, dist_arcsec FROM crossmatch('{0}/left', '{0}/right', 1.0, 3, {unique}) ORDER BY lid, rid",
                dir.path().display()
            ))
            .await
            .unwrap()
            .unwrap();
        let rows = pz_tests::rows(&out.batches);
        let pairs: Vec<(i64, i64)> = rows
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        assert!(
            pairs
                .iter()
                .all(|&(l, r)| ![1, 2, 3].contains(&l) && r != 110),
            "unique={unique}: a null or NaN position matched: {pairs:?}"
        );
        // Everything else still matches: left 0 is 0.18" from right 100 at (0, 0).
        assert!(pairs.contains(&(0, 100)), "unique={unique}: {pairs:?}");
        for l in [4, 5, 6, 7, 8, 9] {
            assert!(
                pairs.iter().any(|p| p.0 == l),
                "unique={unique}: left {l} unmatched: {pairs:?}"
            );
        }
    }
}

const RADIUS_CHILD: &str = "PZ_TEST_MAX_RADIUS_CHILD";

/// The largest radius defaults to `PZ_CROSSMATCH_MAX_RADIUS_ARCSEC`. The variable is set
/// only in a child process running this same test, so no other test sees it.
#[tokio::test]
async fn max_radius_default_comes_from_the_environment() {
    if let Ok(mode) = std::env::var(RADIUS_CHILD) {
        let dir = tempfile::tempdir().unwrap();
        let pos = [(10.0, 10.0), (10.001, 10.0)];
        let b = batch(&[1, 2], &pos, "id");
        write_hats(
            std::slice::from_ref(&b),
            b.schema(),
            &dir.path().join("c"),
            &HatsWriteOptions::default(),
        )
        .unwrap();
        let c = dir.path().join("c");
        let ctx = PzContext::ephemeral();
        let q = |r: f64| {
            format!(
                "SELECT count(*) FROM crossmatch('{0}', '{0}', {r}, 2)",
                c.display()
            )
        };
        match mode.as_str() {
            "120" => {
                let out = ctx.run_last(&q(100.0)).await.unwrap().unwrap();
                assert_eq!(pz_tests::rows(&out.batches), vec![vec!["4".to_string()]]);
                let e = ctx.run_last(&q(130.0)).await.unwrap_err().strip_backtrace();
                assert!(e.contains("above the maximum of 120 arcsec"), "{e}");
                // A SET still wins over the variable.
                ctx.run_last("SET pz.crossmatch_max_radius_arcsec = 200")
                    .await
                    .unwrap();
                ctx.run_last(&q(150.0)).await.unwrap();
            }
            "abc" => {
                let e = ctx.run_last(&q(1.0)).await.unwrap_err().strip_backtrace();
                assert!(
                    e.contains("PZ_CROSSMATCH_MAX_RADIUS_ARCSEC='abc'")
                        && e.contains("not a radius"),
                    "{e}"
                );
                ctx.run_last("SET pz.crossmatch_max_radius_arcsec = 30")
                    .await
                    .unwrap();
                ctx.run_last(&q(1.0)).await.unwrap();
            }
            other => panic!("unknown child mode {other}"),
        }
        println!("child {mode} done");
        return;
    }
    for mode in ["120", "abc"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "max_radius_default_comes_from_the_environment",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RADIUS_CHILD, mode)
            .env("PZ_CROSSMATCH_MAX_RADIUS_ARCSEC", mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("child {mode} done")),
            "child {mode} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An object store that, like a network one, needs the runtime's reactor (here its timer)
/// to make progress: blocking a current-thread runtime's only thread on it never ends.
#[derive(Debug)]
struct ReactorStore(Arc<dyn datafusion::object_store::ObjectStore>);

impl std::fmt::Display for ReactorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReactorStore({})", self.0)
    }
}

async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

mod store {
    pub use datafusion::object_store::path::Path;
    pub use datafusion::object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
        PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
    };
}

#[async_trait::async_trait]
impl datafusion::object_store::ObjectStore for ReactorStore {
    async fn put_opts(
        &self,
        location: &store::Path,
        payload: store::PutPayload,
        opts: store::PutOptions,
    ) -> store::Result<store::PutResult> {
        tick().await;
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &store::Path,
        opts: store::PutMultipartOptions,
    ) -> store::Result<Box<dyn store::MultipartUpload>> {
        tick().await;
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &store::Path,
        options: store::GetOptions,
    ) -> store::Result<store::GetResult> {
        tick().await;
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, store::Result<store::Path>>,
    ) -> futures::stream::BoxStream<'static, store::Result<store::Path>> {
        self.0.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&store::Path>,
    ) -> futures::stream::BoxStream<'static, store::Result<store::ObjectMeta>> {
        use futures::StreamExt;
        let inner = Arc::clone(&self.0);
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            tick().await;
            inner.list(prefix.as_ref())
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&store::Path>,
    ) -> store::Result<store::ListResult> {
        tick().await;
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &store::Path,
        to: &store::Path,
        options: store::CopyOptions,
    ) -> store::Result<()> {
        tick().await;
        self.0.copy_opts(from, to, options).await
    }
}

/// Planning a cross-match over a URL table lists and reads its files through the object
/// store; on a current-thread runtime that must be awaited, not blocked on. A watchdog ends
/// the process if it hangs, so the failure is a failure and not a stuck test run.
#[tokio::test(flavor = "current_thread")]
async fn crossmatch_over_a_url_table_on_a_current_thread_runtime() {
    use datafusion::execution::object_store::ObjectStoreUrl;
    let (done, watch) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Only a timeout is a hang; a disconnect means the test ended (or failed) itself.
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watch.recv_timeout(std::time::Duration::from_secs(300))
        {
            eprintln!("crossmatch over a URL table: planning hung on a current-thread runtime");
            std::process::abort();
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(5);
    let right: Vec<(f64, f64)> = (0..400)
        .map(|_| (10.0 + rng.next() * 0.1, 20.0 + rng.next() * 0.1))
        .collect();
    let left: Vec<(f64, f64)> = right.iter().map(|&p| near(&mut rng, p, 0.3)).collect();
    let lids: Vec<i64> = (0..left.len() as i64).collect();
    let rids: Vec<i64> = (0..right.len() as i64).collect();
    let write = |name: &str, b: RecordBatch| {
        let path = dir.path().join(name);
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            b.schema(),
            None,
        )
        .unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        path.canonicalize().unwrap()
    };
    let lpath = write("specz.parquet", batch(&lids, &left, "lid"));
    let rpath = write("objects.parquet", batch(&rids, &right, "rid"));

    let ctx = PzContext::ephemeral();
    let local = ctx
        .ctx
        .runtime_env()
        .object_store(ObjectStoreUrl::local_filesystem())
        .unwrap();
    let url = ObjectStoreUrl::parse("slow://sky").unwrap();
    ctx.ctx
        .runtime_env()
        .register_object_store(url.as_ref(), Arc::new(ReactorStore(local)));
    let slow = |p: &std::path::Path| format!("slow://sky{}", p.display());

    // A registered left side and a URL right side, then both as URLs.
    ctx.run_last(&format!(
        "CREATE EXTERNAL TABLE specz STORED AS PARQUET LOCATION '{}'",
        lpath.display()
    ))
    .await
    .unwrap();
    let out = ctx
        .run_last(&format!(
            "SELECT count(*), count(DISTINCT lid) FROM crossmatch('specz', '{}', 1.0)",
            slow(&rpath)
        ))
        .await
        .unwrap()
        .unwrap();
    let brute_pairs = brute(&left, &right, 1.0, 1).len();
    assert!(brute_pairs > 300, "{brute_pairs}");
    assert_eq!(
        pz_tests::rows(&out.batches),
        vec![vec![brute_pairs.to_string(), brute_pairs.to_string()]]
    );
    let out = ctx
        .run_last(&format!(
            "SELECT count(*) FROM crossmatch('{}', '{}', 1.0)",
            slow(&lpath),
            slow(&rpath)
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pz_tests::rows(&out.batches),
        vec![vec![brute_pairs.to_string()]]
    );
    // The file table's columns are qualified by its file name.
    let out = ctx
        .run_last(&format!(
            "SELECT count(ra_objects) FROM crossmatch('specz', '{}', 1.0)",
            slow(&rpath)
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pz_tests::rows(&out.batches),
        vec![vec![brute_pairs.to_string()]]
    );
    let _ = done.send(());
}
