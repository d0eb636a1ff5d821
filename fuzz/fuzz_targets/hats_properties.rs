//! HATS `hats.properties` / `properties` text (and HiPSCat's `catalog_info.json`) on arbitrary
//! bytes: the properties of a catalog, or an error naming the file and key; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pz_catalogs::hats::properties::CatalogProperties;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("/fuzz/catalog/hats.properties");
    let _ = CatalogProperties::from_properties_bytes(data, file);
    let _ = CatalogProperties::from_catalog_info_bytes(
        data,
        Path::new("/fuzz/catalog/catalog_info.json"),
    );
});
