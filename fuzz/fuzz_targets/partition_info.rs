//! `partition_info.csv` on arbitrary bytes: a partition list, or an error naming the file
//! and line; never a panic (orders above 29, pixels past 12·4^order, huge row counts).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pz_catalogs::hats::catalog::parse_partition_info;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("/fuzz/catalog/partition_info.csv");
    let dataset = Path::new("/fuzz/catalog/dataset");
    if let Ok(parts) = parse_partition_info(data, file, dataset, ".parquet") {
        for p in &parts {
            // Every listed pixel must be one the pruning code can work with.
            let _ = p.pixel.range29();
        }
    }
});
