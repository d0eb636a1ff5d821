//! The data directory: where pz keeps what must outlive a process (registered tables now;
//! models and products later).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::common::{exec_datafusion_err, Result};
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
        let mut c = self.load()?;
        c.tables.insert(name.to_string(), ddl.to_string());
        self.save(&c)
    }

    pub fn forget_table(&self, name: &str) -> Result<bool> {
        let mut c = self.load()?;
        let had = c.tables.remove(name).is_some();
        if had {
            self.save(&c)?;
        }
        Ok(had)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// Models live as one file each: `models/<name>.pzmodel`.
impl DataDir {
    fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    fn model_path(&self, name: &str) -> PathBuf {
        // Names are SQL identifiers; keep the file name safe whatever was quoted.
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.models_dir().join(format!("{safe}.pzmodel"))
    }

    /// Writes a model (to a temporary file first, so a crash leaves the old one intact).
    pub fn save_model(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let dir = self.models_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", dir.display()))?;
        let p = self.model_path(name);
        let tmp = p.with_extension("pzmodel.tmp");
        std::fs::write(&tmp, bytes)
            .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &p)
            .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", p.display()))?;
        Ok(p)
    }

    pub fn remove_model(&self, name: &str) -> Result<()> {
        let p = self.model_path(name);
        if p.exists() {
            std::fs::remove_file(&p)
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
