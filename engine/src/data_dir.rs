//! The data directory: where pz keeps what must outlive a process (registered tables now;
//! models and products later).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::common::{exec_datafusion_err, plan_err, Result};
use serde::{Deserialize, Serialize};

/// Resolution order: an explicit path, else `$PZ_DATA_DIR`, else the platform's user data
/// folder (e.g. `~/.local/share/pz`).
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    /// Table name → the DDL that recreates it.
    tables: BTreeMap<String, String>,
    /// View name → its `CREATE VIEW` statement; restored after the tables they read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    views: BTreeMap<String, String>,
}

/// Changes of `catalog.json` are read-modify-write; the server makes them from many tasks
/// at once, so they take turns.
fn catalog_write_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    fn catalog_path(&self) -> PathBuf {
        self.root.join("catalog.json")
    }

    fn load(&self) -> Result<CatalogFile> {
        let p = self.catalog_path();
        if !p.exists() {
            return Ok(CatalogFile::default());
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| exec_datafusion_err!("cannot read {}: {e}", p.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| exec_datafusion_err!("{} is not a pz catalog file: {e}", p.display()))
    }

    fn save(&self, c: &CatalogFile) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", self.root.display()))?;
        let p = self.catalog_path();
        let tmp = p.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(c)
            .map_err(|e| exec_datafusion_err!("cannot encode the catalog: {e}"))?;
        std::fs::write(&tmp, text)
            .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &p)
            .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", p.display()))
    }

    /// Registered tables: name → DDL.
    pub fn tables(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.load()?.tables)
    }

    pub fn remember_table(&self, name: &str, ddl: &str) -> Result<()> {
        let _one_writer = catalog_write_lock();
        let mut c = self.load()?;
        c.tables.insert(name.to_string(), ddl.to_string());
        self.save(&c)
    }

    pub fn forget_table(&self, name: &str) -> Result<bool> {
        let _one_writer = catalog_write_lock();
        let mut c = self.load()?;
        let had = c.tables.remove(name).is_some();
        if had {
            self.save(&c)?;
        }
        Ok(had)
    }

    /// Registered views: name → `CREATE VIEW` statement.
    pub fn views(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.load()?.views)
    }

    pub fn remember_view(&self, name: &str, ddl: &str) -> Result<()> {
        let _one_writer = catalog_write_lock();
        let mut c = self.load()?;
        c.views.insert(name.to_string(), ddl.to_string());
        self.save(&c)
    }

    pub fn forget_view(&self, name: &str) -> Result<bool> {
        let _one_writer = catalog_write_lock();
        let mut c = self.load()?;
        let had = c.views.remove(name).is_some();
        if had {
            self.save(&c)?;
        }
        Ok(had)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// Models live as one file each: `models/<name>.pzmodel`, the name percent-encoded so that
/// distinct names never share a file.
impl DataDir {
    fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// The file of model `name`: ASCII letters, digits, `_` and `-` kept, every other byte
    /// of its UTF-8 as `%XX`.
    pub fn model_path(&self, name: &str) -> PathBuf {
        let mut file = String::with_capacity(name.len() + 8);
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                file.push(b as char);
            } else {
                file.push_str(&format!("%{b:02X}"));
            }
        }
        self.models_dir().join(format!("{file}.pzmodel"))
    }

    /// The model name a file in the models folder stands for: its stem decoded as
    /// [`DataDir::model_path`] encodes, or the stem itself when it is not such an encoding.
    pub fn model_name_of(path: &Path) -> String {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        decode_name(&stem).unwrap_or(stem)
    }

    /// Writes a model (to a temporary file first, so a crash leaves the old one intact).
    pub fn save_model(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        if name.is_empty() {
            return plan_err!("a model needs a name");
        }
        let dir = self.models_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", dir.display()))?;
        let p = self.model_path(name);
        // File systems take names of up to 255 bytes.
        if p.file_name().map_or(0, |f| f.len()) > 255 {
            return plan_err!(
                "model name '{name}' is too long to be a file name in {}",
                dir.display()
            );
        }
        let tmp = p.with_extension("pzmodel.tmp");
        std::fs::write(&tmp, bytes)
            .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &p)
            .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", p.display()))?;
        Ok(p)
    }

    /// Removes the file of model `name`, if there is one.
    pub fn remove_model(&self, name: &str) -> Result<()> {
        self.remove_model_file(&self.model_path(name))
    }

    /// Removes a model file, if it exists.
    pub fn remove_model_file(&self, p: &Path) -> Result<()> {
        if p.exists() {
            std::fs::remove_file(p)
                .map_err(|e| exec_datafusion_err!("cannot remove {}: {e}", p.display()))?;
        }
        Ok(())
    }

    /// Every stored model file with its bytes (unreadable files are reported, not fatal).
    pub fn model_files(&self) -> Vec<(PathBuf, std::io::Result<Vec<u8>>)> {
        let Ok(rd) = std::fs::read_dir(self.models_dir()) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pzmodel"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p);
                (p, b)
            })
            .collect()
    }
}

/// Inverse of the encoding of [`DataDir::model_path`]; None for a stem it would not write.
fn decode_name(stem: &str) -> Option<String> {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = stem.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_file_names_are_distinct_and_decode_back() {
        let d = DataDir::new("/tmp/pz");
        let names = [
            "knn",
            "a b",
            "a_b",
            "a%20b",
            "Ünïcode",
            "x/../y",
            "a-b",
            "A",
        ];
        let paths: Vec<PathBuf> = names.iter().map(|n| d.model_path(n)).collect();
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(DataDir::model_name_of(p), names[i], "{}", p.display());
            assert_eq!(p.parent(), Some(d.root.join("models").as_path()));
            for q in &paths[..i] {
                assert_ne!(p, q);
            }
        }
        assert_eq!(d.model_path("knn"), d.root.join("models/knn.pzmodel"));
        // A stem pz would not write is listed as it is.
        assert_eq!(DataDir::model_name_of(Path::new("m/a b.pzmodel")), "a b");
        assert_eq!(
            DataDir::model_name_of(Path::new("m/bad%zz.pzmodel")),
            "bad%zz"
        );
    }
}
