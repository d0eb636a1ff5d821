//! Whole jobs built from pz's SQL: the training set maker (`tsm`), and those to come.

pub mod crc;
pub mod flags;
pub mod inputs;
pub mod output;
pub mod provenance;
pub mod tsm;
pub mod validate;
