//! HATS: Hierarchical Adaptive Tiling Scheme, the partitioned Parquet layout LSDB reads.
//!
//! A catalog is a directory holding `hats.properties` (or HiPSCat's `catalog_info.json`), a
//! partition list (`partition_info.csv`, else `dataset/_metadata`), and one Parquet file (or
//! directory of files) per HEALPix pixel at `Norder=K/Dir=D/Npix=N`.

pub mod catalog;
pub mod factory;
pub mod format;
pub mod pixel;
pub mod properties;
pub mod prune;
pub mod table;
pub mod writer;
