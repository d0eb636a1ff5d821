//! Model files (from a data directory, or inside a Ballista plan) on arbitrary bytes.
//!
//! The first byte picks how the rest is used: as a whole file, or as a payload that is
//! sealed with a valid checksum first, so mutations reach the decoder and the structural
//! checks instead of stopping at the checksum. A model that decodes must then estimate a
//! small batch (ordinary, non-detected and non-finite photometry) without a panic, an
//! out-of-bounds read or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pz_udfs::photoz::photometry::Photometry;
use pz_udfs::photoz::Model;

const ROWS: usize = 19;

fn batch(nbands: usize) -> Photometry {
    let mut p = Photometry::new(ROWS, nbands);
    for b in 0..nbands {
        let mags: Vec<f64> = (0..ROWS)
            .map(|r| match r % 7 {
                5 => 99.0,
                6 => f64::NAN,
                _ => 19.0 + 0.37 * r as f64 + 0.11 * b as f64,
            })
            .collect();
        let errs: Vec<f64> = (0..ROWS).map(|r| 0.01 + 0.02 * (r % 5) as f64).collect();
        p.set_column(b, false, &mags);
        p.set_column(b, true, &errs);
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let decoded = if mode & 1 == 0 {
        Model::from_bytes(&Model::seal(rest))
    } else {
        Model::from_bytes(rest)
    };
    if let Ok(model) = decoded {
        let phot = batch(model.photometry.nbands());
        let est = model.estimate(&phot);
        assert_eq!(est.summary.len(), ROWS);
        assert_eq!(est.pdf.len(), ROWS * model.grid.nz);
    }
});
