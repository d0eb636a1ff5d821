//! The flag-translation YAML of `pz combine-redshifts` on arbitrary text: rules, or an
//! error naming the file and key; never a panic. Rules that parse are applied to a few
//! values, since a rule that parses must also evaluate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pz_engine::pipelines::flags::Translation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Translation::parse(text, "fuzz.yaml") {
        // Survey names are whatever keys the text has.
        let keys = text
            .lines()
            .filter_map(|l| l.split(':').next())
            .map(|k| k.trim().trim_matches(['"', '\'']));
        for name in keys {
            if let Some(rule) = t.survey(name) {
                for v in [f64::NAN, -1.0, 0.0, 1.0, 2.5, 3.0, 4.0, 9.0, 1e300] {
                    let _ = rule.flag(v);
                }
            }
        }
    }
});
