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
    let dir = tempfile::tempdir().unwrap();
    let lids: Vec<i64> = (0..left.len() as i64).collect();
    let rids: Vec<i64> = (0..right.len() as i64).collect();
    let opts = HatsWriteOptions {
        pixel_threshold: threshold,
        ..Default::default()
    };
    let lb = batch(&lids, &left, "lid");
    let rb = batch(&rids, &right, "rid");
    let ls = write_hats(
        std::slice::from_ref(&lb),
        lb.schema(),
        &dir.path().join("left"),
        &opts,
    )
    .unwrap();
    let rs = write_hats(
        std::slice::from_ref(&rb),
        rb.schema(),
        &dir.path().join("right"),
        &opts,
    )
    .unwrap();
    assert!(
        ls.partitions.len() > 4 && rs.partitions.len() > 4,
        "want many partitions"
    );
    let orders: std::collections::BTreeSet<u8> = ls
        .partitions
        .iter()
        .chain(&rs.partitions)
        .map(|p| p.0.order)
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
}

fn near(rng: &mut Lcg, p: (f64, f64), arcsec: f64) -> (f64, f64) {
    let cosd = p.1.to_radians().cos().max(1e-9);
    let dec = (p.1 + (rng.next() - 0.5) * 2.0 * arcsec / 3600.0).clamp(-90.0, 90.0);
    let ra = (p.0 + (rng.next() - 0.5) * 2.0 * arcsec / 3600.0 / cosd).rem_euclid(360.0);
    (if ra >= 360.0 { 0.0 } else { ra }, dec)
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
