//! pz's SQL front end (`CREATE MODEL … OPTIONS …`, `DROP MODEL`, `SHOW MODELS`, `DESCRIBE
//! MODEL` and every DataFusion statement around them) on arbitrary text: an error or
//! statements, never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let _ = pz_sql::parse_pz_statements(sql);
    }
});
