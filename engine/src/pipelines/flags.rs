//! Homogenising redshift quality flags across surveys (Combine Redshift Catalogs).

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::common::{plan_datafusion_err, plan_err, Result};
use serde::Deserialize;

/// The translation pz ships; `--translation` replaces it.
pub const DEFAULT_TRANSLATION: &str = include_str!("../../data/flag_translation.yaml");

// Unknown keys are refused: a misspelt `rule:` or `value:` would otherwise drop a survey's
// rules without a word.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    surveys: BTreeMap<String, SurveyRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SurveyRaw {
    instrument_type: String,
    #[serde(default)]
    values: BTreeMap<String, i32>,
    #[serde(default)]
    rules: Vec<RuleRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    when: String,
    value: i32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cond {
    Cmp(&'static str, f64),
    Between(f64, f64),
}

impl Cond {
    /// A rule's condition, or why it is not one.
    fn parse(s: &str) -> std::result::Result<Cond, String> {
        const USAGE: &str = "use an operator ==, !=, <, <=, >, >= and a number, or 'between A B'";
        let number = |t: &str| -> std::result::Result<f64, String> {
            match t.parse::<f64>() {
                // A NaN bound matches nothing and an infinite one everything or nothing: neither
                // is a flag threshold.
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(format!("'{t}' is not a finite number")),
                Err(_) => Err(format!("'{t}' is not a number ({USAGE})")),
            }
        };
        let t: Vec<&str> = s.split_whitespace().collect();
        match t.as_slice() {
            ["between", a, b] => {
                let (lo, hi) = (number(a)?, number(b)?);
                if lo > hi {
                    return Err(format!(
                        "'between {a} {b}' is empty: the lower bound comes first (between {b} {a})"
                    ));
                }
                Ok(Cond::Between(lo, hi))
            }
            [op, v] => {
                let op = ["==", "!=", "<=", ">=", "<", ">"]
                    .into_iter()
                    .find(|o| o == op)
                    .ok_or_else(|| format!("'{op}' is not an operator ({USAGE})"))?;
                Ok(Cond::Cmp(op, number(v)?))
            }
            _ => Err(USAGE.to_string()),
        }
    }

    fn holds(&self, x: f64) -> bool {
        match *self {
            Cond::Between(a, b) => x >= a && x <= b,
            Cond::Cmp(op, v) => match op {
                "==" => x == v,
                "!=" => x != v,
                "<=" => x <= v,
                ">=" => x >= v,
                "<" => x < v,
                _ => x > v,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct SurveyRule {
    pub name: String,
    pub instrument_type: char,
    values: Vec<(f64, i32)>,
    rules: Vec<(Cond, i32)>,
}

impl SurveyRule {
    /// The homogenized flag of a survey flag value.
    pub fn flag(&self, v: f64) -> Option<i32> {
        self.values
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, h)| *h)
            .or_else(|| self.rules.iter().find(|(c, _)| c.holds(v)).map(|(_, h)| *h))
    }
}

/// Translation rules by survey (keys lower-cased).
#[derive(Debug, Clone)]
pub struct Translation {
    pub source: String,
    surveys: BTreeMap<String, SurveyRule>,
}

pub const VALID_FLAGS: [i32; 6] = [0, 1, 2, 3, 4, 6];

impl Translation {
    pub fn default_rules() -> Result<Self> {
        Self::parse(DEFAULT_TRANSLATION, "pz's default flag translation")
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a flag translation file's text; `source` names it in errors. Pure: no files
    /// are read.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let raw: FileFormat = serde_saphyr::from_str(text)
            .map_err(|e| plan_datafusion_err!("{source}: {}", yaml_error(&e)))?;
        if raw.surveys.is_empty() {
            return plan_err!("{source}: no surveys under 'surveys:'");
        }
        let mut surveys: BTreeMap<String, SurveyRule> = BTreeMap::new();
        for (name, s) in raw.surveys {
            let it = match s.instrument_type.trim() {
                "s" => 's',
                "g" => 'g',
                "p" => 'p',
                other => {
                    return plan_err!(
                        "{source}: survey '{name}': instrument_type '{other}' is not s, g or p"
                    )
                }
            };
            let mut values: Vec<(f64, i32)> = Vec::new();
            for (k, v) in s.values {
                let key: f64 = k
                    .trim()
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite())
                    .ok_or_else(|| {
                        plan_datafusion_err!(
                            "{source}: survey '{name}': flag value '{k}' is not a finite number"
                        )
                    })?;
                if let Some(prev) = values.iter().find(|(p, _)| *p == key) {
                    // "1" and "1.0" are different YAML keys but the same flag: one would be
                    // silently ignored.
                    return plan_err!(
                        "{source}: survey '{name}': flag value '{k}' is given twice (as {} and {k})",
                        prev.0
                    );
                }
                if !VALID_FLAGS.contains(&v) {
                    return plan_err!(
                        "{source}: survey '{name}': {k} maps to {v}, not one of 0, 1, 2, 3, 4, 6"
                    );
                }
                values.push((key, v));
            }
            let mut rules = Vec::new();
            for r in s.rules {
                let c = Cond::parse(&r.when).map_err(|why| {
                    plan_datafusion_err!("{source}: survey '{name}': bad rule '{}': {why}", r.when)
                })?;
                if !VALID_FLAGS.contains(&r.value) {
                    return plan_err!("{source}: survey '{name}': rule '{}' gives {}, not one of 0, 1, 2, 3, 4, 6", r.when, r.value);
                }
                rules.push((c, r.value));
            }
            let key = name.to_lowercase();
            // Surveys are matched case-insensitively, so two spellings would shadow each other.
            if let Some(other) = surveys.get(&key) {
                return plan_err!(
                    "{source}: surveys '{}' and '{name}' are the same survey (names are matched ignoring case)",
                    other.name
                );
            }
            surveys.insert(
                key,
                SurveyRule {
                    name,
                    instrument_type: it,
                    values,
                    rules,
                },
            );
        }
        Ok(Translation {
            source: source.to_string(),
            surveys,
        })
    }

    pub fn survey(&self, name: &str) -> Option<&SurveyRule> {
        self.surveys.get(&name.trim().to_lowercase())
    }
}

/// serde-saphyr's message, in the words of this file's format (its duplicate-key message
/// speaks of the library's options, which a user of pz cannot set).
fn yaml_error(e: &serde_saphyr::Error) -> String {
    let mut inner = e;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = &**error;
    }
    if let serde_saphyr::Error::DuplicateMappingKey { key, location } = inner {
        let key = key
            .as_deref()
            .map(|k| format!(" '{k}'"))
            .unwrap_or_default();
        return format!(
            "line {}: key{key} is given twice in the same mapping",
            location.line()
        );
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("not a flag translation file: {first}")
}

/// A quality-like flag in [0, 1]: 0→0, (0, 0.7)→1, [0.7, 0.9)→2, [0.9, 0.99)→3, [0.99, 1]→4.
pub fn quality_flag(q: f64) -> Option<i32> {
    Some(match q {
        0.0 => 0,
        q if q > 0.0 && q < 0.7 => 1,
        q if (0.7..0.9).contains(&q) => 2,
        q if (0.9..0.99).contains(&q) => 3,
        q if (0.99..=1.0).contains(&q) => 4,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_parse_and_apply() {
        let t = Translation::default_rules().unwrap();
        let v = t.survey("vvds").unwrap();
        assert_eq!(
            (v.flag(4.0), v.flag(9.0), v.flag(23.0), v.flag(7.0)),
            (Some(4), Some(2), Some(3), None)
        );
        let d = t.survey("DESI").unwrap();
        assert_eq!(
            (d.flag(0.0), d.flag(4.0), d.flag(7.0)),
            (Some(4), Some(4), Some(0))
        );
        assert_eq!(t.survey("zcosmos").unwrap().flag(3.5), Some(4));
        assert_eq!(t.survey("PRIMUS").unwrap().instrument_type, 'p');
        assert!(t.survey("nope").is_none());
    }

    #[test]
    fn quality_flags() {
        assert_eq!(quality_flag(0.0), Some(0));
        assert_eq!(quality_flag(0.5), Some(1));
        assert_eq!(quality_flag(0.7), Some(2));
        assert_eq!(quality_flag(0.95), Some(3));
        assert_eq!(quality_flag(1.0), Some(4));
        assert_eq!(quality_flag(1.5), None);
    }

    #[test]
    fn bad_files_are_named() {
        let e = Translation::parse("surveys:\n  X:\n    instrument_type: q\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.yaml") && e.contains("'X'") && e.contains("'q'"),
            "{e}"
        );
        let e = Translation::parse("surveys:\n  X:\n    instrument_type: s\n    rules:\n      - {when: \"~ 3\", value: 4}\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad rule '~ 3'") && e.contains("'~'"), "{e}");
        let e = Translation::parse(
            "surveys:\n  X:\n    instrument_type: s\n    values: {1: 5}\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("maps to 5"), "{e}");
        assert!(Translation::parse("not: [valid", "f.yaml").is_err());
    }

    fn err(yaml: &str) -> String {
        Translation::parse(yaml, "f.yaml").unwrap_err().to_string()
    }

    fn one_rule(when: &str) -> String {
        format!("surveys:\n  X:\n    instrument_type: s\n    rules:\n      - {{when: \"{when}\", value: 4}}\n")
    }

    #[test]
    fn rules_that_cannot_be_meant_are_errors() {
        let e = err(&one_rule("between 5 1"));
        assert!(
            e.contains("f.yaml")
                && e.contains("'X'")
                && e.contains("between 5 1")
                && e.contains("empty"),
            "{e}"
        );
        for when in ["== nan", "< inf", "between -inf 3", "between 1 NaN"] {
            let e = err(&one_rule(when));
            assert!(e.contains("not a finite number"), "{when}: {e}");
        }
        let e = err(&one_rule("= 3"));
        assert!(e.contains("'=' is not an operator"), "{e}");
        let e = err(&one_rule("> three"));
        assert!(e.contains("'three' is not a number"), "{e}");
        assert!(err(&one_rule("between 1 2 3")).contains("bad rule"));
        // A single point is a legitimate range.
        let t = Translation::parse(&one_rule("between 2 2"), "f.yaml").unwrap();
        assert_eq!(t.survey("x").unwrap().flag(2.0), Some(4));
    }

    #[test]
    fn silent_shadowing_is_an_error() {
        let e = err("surveys:\n  X:\n    instrument_type: s\n    values: {1: 4, 1.0: 3}\n");
        assert!(e.contains("given twice") && e.contains("'X'"), "{e}");
        let e = err("surveys:\n  X:\n    instrument_type: s\n    values: {nan: 4}\n");
        assert!(e.contains("'nan' is not a finite number"), "{e}");
        let e = err("surveys:\n  VVDS:\n    instrument_type: s\n  vvds:\n    instrument_type: g\n");
        assert!(e.contains("'VVDS' and 'vvds'"), "{e}");
        // A misspelt key would otherwise drop the survey's rules.
        let e = err("surveys:\n  X:\n    instrument_type: s\n    rule:\n      - {when: \"> 1\", value: 4}\n");
        assert!(e.contains("f.yaml") && e.contains("rule"), "{e}");
        assert!(err("surveys: {}\n").contains("no surveys"));
    }

    #[test]
    fn duplicate_keys_are_named_in_the_files_words() {
        let e = err("surveys:\n  X:\n    instrument_type: s\n    instrument_type: g\n");
        assert!(
            e.contains("f.yaml")
                && e.contains("line 4")
                && e.contains("'instrument_type' is given twice"),
            "{e}"
        );
        assert!(
            !e.contains("DuplicateKeyPolicy") && !e.contains("Options"),
            "{e}"
        );
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // The parser takes files from users: any text gives a value or an error.
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let pieces = [
            "surveys:",
            "\n",
            "  ",
            "X:",
            "instrument_type: s",
            "values: {",
            "}",
            "rules:",
            "- {when: \"",
            "\", value: 4}",
            "between",
            " 1 ",
            "2",
            "&a ",
            "*a",
            "[",
            "]",
            "'",
            "\"",
            "#",
            ":",
            "-",
            "\t",
            "\u{0}",
            "é",
            "{",
            "<<: *a",
            "!!binary",
            "---",
            "...",
        ];
        for _ in 0..3000 {
            let n = (next() % 24) as usize;
            let text: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let _ = Translation::parse(&text, "fuzz");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Translation::parse(&deep, "deep").is_err());
    }
}
