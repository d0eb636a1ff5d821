//! OPTIONS of `CREATE MODEL`: typed reads, and an error for every key nobody read.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::{plan_err, Result};

/// The values a numeric option may take: an interval of finite numbers (NaN and ±inf are
/// never in it), each end open or closed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Domain {
    lo: f64,
    hi: f64,
    lo_open: bool,
    hi_open: bool,
}

impl Domain {
    /// [lo, hi]
    pub const fn closed(lo: f64, hi: f64) -> Self {
        Domain {
            lo,
            hi,
            lo_open: false,
            hi_open: false,
        }
    }

    /// (lo, hi)
    pub const fn open(lo: f64, hi: f64) -> Self {
        Domain {
            lo,
            hi,
            lo_open: true,
            hi_open: true,
        }
    }

    /// (lo, hi]
    pub const fn above_to(lo: f64, hi: f64) -> Self {
        Domain {
            lo,
            hi,
            lo_open: true,
            hi_open: false,
        }
    }

    /// [lo, hi)
    pub const fn from_below(lo: f64, hi: f64) -> Self {
        Domain {
            lo,
            hi,
            lo_open: false,
            hi_open: true,
        }
    }

    /// Any finite number.
    pub const fn finite() -> Self {
        Domain::closed(f64::MIN, f64::MAX)
    }

    pub fn contains(&self, x: f64) -> bool {
        x.is_finite()
            && (if self.lo_open {
                x > self.lo
            } else {
                x >= self.lo
            })
            && (if self.hi_open {
                x < self.hi
            } else {
                x <= self.hi
            })
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Domain::finite() {
            return write!(f, "a finite number");
        }
        write!(
            f,
            "a number in {}{}, {}{}",
            if self.lo_open { "(" } else { "[" },
            self.lo,
            self.hi,
            if self.hi_open { ")" } else { "]" }
        )
    }
}

/// Reads an algorithm's options; [`OptionReader::finish`] rejects keys the algorithm does not
/// know, so a misspelt key is an error instead of a silently ignored setting.
pub struct OptionReader<'a> {
    algorithm: &'a str,
    options: &'a BTreeMap<String, String>,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> OptionReader<'a> {
    pub fn new(algorithm: &'a str, options: &'a BTreeMap<String, String>) -> Self {
        OptionReader {
            algorithm,
            options,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.read.borrow_mut().insert(key.to_string());
        self.options.get(key).map(|s| s.trim())
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.raw(key).unwrap_or(default).to_string()
    }

    pub fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => plan_err!(
                    "{}: option {key} must be a number, got '{v}'",
                    self.algorithm
                ),
            },
        }
    }

    pub fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(x) => Ok(x),
                _ => plan_err!(
                    "{}: option {key} must be a whole number >= 0, got '{v}'",
                    self.algorithm
                ),
            },
        }
    }

    pub fn u64(&self, key: &str, default: u64) -> Result<u64> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(x) => Ok(x),
                _ => plan_err!(
                    "{}: option {key} must be a whole number >= 0, got '{v}'",
                    self.algorithm
                ),
            },
        }
    }

    /// A number that must lie in `domain`; the error names the option and its domain.
    pub fn f64_in(&self, key: &str, default: f64, domain: Domain) -> Result<f64> {
        debug_assert!(
            domain.contains(default),
            "default of {key} outside its domain"
        );
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if domain.contains(x) => Ok(x),
                _ => plan_err!(
                    "{}: option {key} must be {domain}, got '{v}'",
                    self.algorithm
                ),
            },
        }
    }

    /// A whole number from `lo` to `hi` (both included).
    pub fn usize_in(&self, key: &str, default: usize, lo: usize, hi: usize) -> Result<usize> {
        debug_assert!(
            (lo..=hi).contains(&default),
            "default of {key} outside its domain"
        );
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(x) if (lo..=hi).contains(&x) => Ok(x),
                _ => plan_err!(
                    "{}: option {key} must be a whole number from {lo} to {hi}, got '{v}'",
                    self.algorithm
                ),
            },
        }
    }

    /// A comma-separated list of 1 to `max_len` numbers, each in `domain`.
    pub fn f64_list_in(
        &self,
        key: &str,
        domain: Domain,
        max_len: usize,
    ) -> Result<Option<Vec<f64>>> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        let parsed: Option<Vec<f64>> = v
            .split(',')
            .map(|p| p.trim().parse::<f64>().ok().filter(|x| domain.contains(*x)))
            .collect();
        match parsed {
            Some(list) if !list.is_empty() && list.len() <= max_len => Ok(Some(list)),
            _ => plan_err!(
                "{}: option {key} must be 1 to {max_len} comma-separated numbers, each {domain}, got '{v}'",
                self.algorithm
            ),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.raw(key).map(|s| s.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "yes", "1", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "no", "0", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => plan_err!(
                "{}: option {key} must be true or false, got '{v}'",
                self.algorithm
            ),
        }
    }

    /// A comma-separated list of numbers.
    pub fn f64_list(&self, key: &str) -> Result<Option<Vec<f64>>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => {
                let mut out = Vec::new();
                for part in v.split(',') {
                    match part.trim().parse::<f64>() {
                        Ok(x) if x.is_finite() => out.push(x),
                        _ => {
                            return plan_err!(
                                "{}: option {key} must be comma-separated numbers, got '{v}'",
                                self.algorithm
                            )
                        }
                    }
                }
                Ok(Some(out))
            }
        }
    }

    /// Errors on keys no reader asked for, listing the ones the algorithm knows.
    pub fn finish(self) -> Result<()> {
        let read = self.read.into_inner();
        let unknown: Vec<&String> = self.options.keys().filter(|k| !read.contains(*k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = read.iter().map(|s| s.as_str()).collect();
        plan_err!(
            "{}: unknown OPTIONS key{} {}; this algorithm knows: {}",
            self.algorithm,
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )
    }
}
