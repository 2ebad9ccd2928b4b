//! The node's own state in one embedded database: spells (their records, stores and
//! counters), workers (with their keys), and deployed services (the table of modules,
//! blueprints, services and aliases, and the modules' bytes). One redb file,
//! `<data dir>/braid.redb`, readable and writable by the node's user only (mode 0600):
//! every change is one transaction, durable when it returns, so a node killed at any
//! moment restarts with everything that was committed. Without a data dir the same
//! tables live in memory.
//!
//! Values are bytes (JSON for records, whatever the caller stores for store values);
//! what they mean is the business of `spells.rs`, `workers.rs` and
//! `builtins/deploy.rs`.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::builtins::DeployStore;

/// Records keyed by a name: one table per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `table` → the deployed services' table (JSON, `builtins/deploy.rs`).
    Deploy,
    /// Module hash → the module's bytes.
    Modules,
    /// Spell id → the spell's record (JSON, `spells.rs`).
    Spells,
    /// Worker id → the worker's record, its secret key included (`workers.rs`).
    Workers,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Deploy => DEPLOY,
            Table::Modules => MODULES,
            Table::Spells => SPELLS,
            Table::Workers => WORKERS,
        }
    }
}

const DEPLOY: TableDefinition<&str, &[u8]> = TableDefinition::new("deploy");
const MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("modules");
const SPELLS: TableDefinition<&str, &[u8]> = TableDefinition::new("spells");
const WORKERS: TableDefinition<&str, &[u8]> = TableDefinition::new("workers");
/// (spell id, key) → a value of the spell's store.
const SPELL_STORE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("spell_store");
/// Spell id → how many particles its triggers have started.
const SPELL_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("spell_counters");

/// A failure of the database, with what was being done.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("the node's database ({what}): {source}")]
    Redb {
        what: String,
        #[source]
        source: redb::Error,
    },
}

fn failed<E: Into<redb::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> DbError {
    let what = what.into();
    move |e| DbError::Redb {
        what,
        source: e.into(),
    }
}

/// The node's database. The file is locked while open, so two processes never share a
/// data dir; nodes of one process on the same data dir (a node built again while the
/// last tasks of the one before still end) share one open database.
pub(crate) struct Db {
    db: redb::Database,
}

/// The databases open in this process, by file.
static OPEN: std::sync::Mutex<Vec<(std::path::PathBuf, std::sync::Weak<Db>)>> =
    std::sync::Mutex::new(Vec::new());

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

/// The database file's name in the data dir.
pub(crate) const DB_FILE: &str = "braid.redb";

impl Db {
    /// Opens (or makes) `<dir>/braid.redb`, mode 0600 (or gives the one this process
    /// has open).
    pub(crate) fn open(dir: &Path) -> Result<std::sync::Arc<Db>, DbError> {
        let path = dir.join(DB_FILE);
        let canonical = |p: &Path| p.canonicalize().map(|d| d.join(DB_FILE)).ok();
        // Invariant: nothing panics while holding this lock.
        let mut open = OPEN
            .lock()
            .expect("the open databases lock is never poisoned");
        open.retain(|(_, db)| db.strong_count() > 0);
        if let Some(known) = canonical(dir) {
            if let Some(db) = open
                .iter()
                .find(|(p, _)| *p == known)
                .and_then(|(_, db)| db.upgrade())
            {
                return Ok(db);
            }
        }
        let io = |e: std::io::Error| DbError::Redb {
            what: format!("cannot prepare {}", path.display()),
            source: redb::Error::Io(e),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        {
            // Made here with the mode it keeps: it holds workers' secret keys.
            let mut options = std::fs::OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path).map_err(io)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        // The last node of this process on this data dir may be letting go of the file
        // on another thread at this moment: wait for it a little (another process that
        // holds it keeps it, and this fails saying so).
        let mut attempts = 0;
        let db = loop {
            match redb::Database::create(&path) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        }
        .map_err(failed(format!(
            "cannot open {} (is another node using this data dir?)",
            path.display()
        )))?;
        let db = std::sync::Arc::new(Db::ready(db)?);
        open.push((
            canonical(dir).unwrap_or(path),
            std::sync::Arc::downgrade(&db),
        ));
        Ok(db)
    }

    /// An empty database in memory (a node without a data dir).
    pub(crate) fn in_memory() -> Result<Db, DbError> {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(failed("cannot make the in-memory database"))?;
        Db::ready(db)
    }

    /// Makes every table, so that readers never meet a missing one.
    fn ready(db: redb::Database) -> Result<Db, DbError> {
        let txn = db.begin_write().map_err(failed("begin"))?;
        for table in [Table::Deploy, Table::Modules, Table::Spells, Table::Workers] {
            txn.open_table(table.definition())
                .map_err(failed("make the tables"))?;
        }
        txn.open_table(SPELL_STORE)
            .map_err(failed("make the tables"))?;
        txn.open_table(SPELL_COUNTERS)
            .map_err(failed("make the tables"))?;
        txn.commit().map_err(failed("make the tables"))?;
        Ok(Db { db })
    }

    /// Runs `f` on the database.
    fn with<T>(&self, f: impl FnOnce(&redb::Database) -> Result<T, DbError>) -> Result<T, DbError> {
        f(&self.db)
    }

    /// The record `key` of `table`.
    pub(crate) fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        let what = || format!("read {key} of {table:?}");
        self.with(|db| {
            let txn = db.begin_read().map_err(failed(what()))?;
            let t = txn.open_table(table.definition()).map_err(failed(what()))?;
            Ok(t.get(key)
                .map_err(failed(what()))?
                .map(|v| v.value().to_vec()))
        })
    }

    /// Writes the record `key` of `table`.
    pub(crate) fn put(&self, table: Table, key: &str, bytes: &[u8]) -> Result<(), DbError> {
        let what = || format!("write {key} of {table:?}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            {
                let mut t = txn.open_table(table.definition()).map_err(failed(what()))?;
                t.insert(key, bytes).map_err(failed(what()))?;
            }
            txn.commit().map_err(failed(what()))
        })
    }

    /// Removes the record `key` of `table`; true if there was one.
    pub(crate) fn delete(&self, table: Table, key: &str) -> Result<bool, DbError> {
        let what = || format!("remove {key} of {table:?}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            let removed = {
                let mut t = txn.open_table(table.definition()).map_err(failed(what()))?;
                t.remove(key).map_err(failed(what()))?.is_some()
            };
            txn.commit().map_err(failed(what()))?;
            Ok(removed)
        })
    }

    /// Every record of `table`, in key order.
    pub(crate) fn all(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let what = || format!("list {table:?}");
        self.with(|db| {
            let txn = db.begin_read().map_err(failed(what()))?;
            let t = txn.open_table(table.definition()).map_err(failed(what()))?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(failed(what()))? {
                let (k, v) = entry.map_err(failed(what()))?;
                out.push((k.value().to_owned(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// A value of a spell's store.
    pub(crate) fn store_get(&self, spell: &str, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        let what = || format!("read {key} of spell {spell}");
        self.with(|db| {
            let txn = db.begin_read().map_err(failed(what()))?;
            let t = txn.open_table(SPELL_STORE).map_err(failed(what()))?;
            Ok(t.get((spell, key))
                .map_err(failed(what()))?
                .map(|v| v.value().to_vec()))
        })
    }

    /// Changes values of a spell's store in one transaction: `Some` writes, `None`
    /// removes.
    pub(crate) fn store_put(
        &self,
        spell: &str,
        entries: &[(&str, Option<&[u8]>)],
    ) -> Result<(), DbError> {
        let what = || format!("write the store of spell {spell}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            {
                let mut t = txn.open_table(SPELL_STORE).map_err(failed(what()))?;
                for (key, value) in entries {
                    match value {
                        Some(bytes) => {
                            t.insert((spell, *key), *bytes).map_err(failed(what()))?;
                        }
                        None => {
                            t.remove((spell, *key)).map_err(failed(what()))?;
                        }
                    }
                }
            }
            txn.commit().map_err(failed(what()))
        })
    }

    /// Reads a value of a spell's store and writes what `f` makes of it, in one
    /// transaction (`f`'s error leaves the store as it was).
    pub(crate) fn store_update<T, E>(
        &self,
        spell: &str,
        key: &str,
        f: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), E>,
    ) -> Result<Result<T, E>, DbError> {
        let what = || format!("update {key} of spell {spell}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            let out = {
                let mut t = txn.open_table(SPELL_STORE).map_err(failed(what()))?;
                let old = t
                    .get((spell, key))
                    .map_err(failed(what()))?
                    .map(|v| v.value().to_vec());
                match f(old.as_deref()) {
                    Err(e) => return Ok(Err(e)),
                    Ok((Some(new), out)) => {
                        t.insert((spell, key), new.as_slice())
                            .map_err(failed(what()))?;
                        out
                    }
                    Ok((None, out)) => {
                        t.remove((spell, key)).map_err(failed(what()))?;
                        out
                    }
                }
            };
            txn.commit().map_err(failed(what()))?;
            Ok(Ok(out))
        })
    }

    /// Adds one to a spell's counter and returns the new value, durably.
    pub(crate) fn next_counter(&self, spell: &str) -> Result<u64, DbError> {
        let what = || format!("count a run of spell {spell}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            let next = {
                let mut t = txn.open_table(SPELL_COUNTERS).map_err(failed(what()))?;
                let next = t
                    .get(spell)
                    .map_err(failed(what()))?
                    .map_or(0, |v| v.value())
                    + 1;
                t.insert(spell, next).map_err(failed(what()))?;
                next
            };
            txn.commit().map_err(failed(what()))?;
            Ok(next)
        })
    }

    /// How many particles a spell's triggers have started.
    pub(crate) fn counter(&self, spell: &str) -> Result<u64, DbError> {
        let what = || format!("read the counter of spell {spell}");
        self.with(|db| {
            let txn = db.begin_read().map_err(failed(what()))?;
            let t = txn.open_table(SPELL_COUNTERS).map_err(failed(what()))?;
            Ok(t.get(spell)
                .map_err(failed(what()))?
                .map_or(0, |v| v.value()))
        })
    }

    /// Writes a spell's record with its first store values, in one transaction.
    pub(crate) fn add_spell(
        &self,
        spell: &str,
        record: &[u8],
        values: &[(String, Vec<u8>)],
    ) -> Result<(), DbError> {
        let what = || format!("install spell {spell}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            {
                let mut t = txn.open_table(SPELLS).map_err(failed(what()))?;
                t.insert(spell, record).map_err(failed(what()))?;
                let mut store = txn.open_table(SPELL_STORE).map_err(failed(what()))?;
                for (key, value) in values {
                    store
                        .insert((spell, key.as_str()), value.as_slice())
                        .map_err(failed(what()))?;
                }
            }
            txn.commit().map_err(failed(what()))
        })
    }

    /// Removes a spell: its record, its store and its counter, in one transaction.
    pub(crate) fn remove_spell(&self, spell: &str) -> Result<(), DbError> {
        let what = || format!("remove spell {spell}");
        self.with(|db| {
            let txn = db.begin_write().map_err(failed(what()))?;
            {
                let mut t = txn.open_table(SPELLS).map_err(failed(what()))?;
                t.remove(spell).map_err(failed(what()))?;
                let mut counters = txn.open_table(SPELL_COUNTERS).map_err(failed(what()))?;
                counters.remove(spell).map_err(failed(what()))?;
                let mut store = txn.open_table(SPELL_STORE).map_err(failed(what()))?;
                let keys: Vec<String> = {
                    let mut keys = Vec::new();
                    for entry in store.range((spell, "")..).map_err(failed(what()))? {
                        let (k, _) = entry.map_err(failed(what()))?;
                        let (owner, key) = k.value();
                        if owner != spell {
                            break;
                        }
                        keys.push(key.to_owned());
                    }
                    keys
                };
                for key in &keys {
                    store
                        .remove((spell, key.as_str()))
                        .map_err(failed(what()))?;
                }
            }
            txn.commit().map_err(failed(what()))
        })
    }
}

/// Deployed services in the database: the table under `Deploy`/`table`, modules under
/// `Modules`/<hash>.
pub(crate) struct DbDeployStore(pub(crate) std::sync::Arc<Db>);

impl DeployStore for DbDeployStore {
    fn load_table(&self) -> Result<Option<Vec<u8>>, String> {
        self.0
            .get(Table::Deploy, "table")
            .map_err(|e| e.to_string())
    }
    fn save_table(&self, bytes: &[u8]) -> Result<(), String> {
        self.0
            .put(Table::Deploy, "table", bytes)
            .map_err(|e| e.to_string())
    }
    fn load_module(&self, hash: &str) -> Result<Vec<u8>, String> {
        self.0
            .get(Table::Modules, hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no module {hash}"))
    }
    fn save_module(&self, hash: &str, bytes: &[u8]) -> Result<(), String> {
        self.0
            .put(Table::Modules, hash, bytes)
            .map_err(|e| e.to_string())
    }
}

impl DbDeployStore {
    /// Imports what an older node kept in `legacy` (`<data dir>/deployed`), once: when
    /// the database has no table of deployed services yet. Returns how many modules
    /// came over.
    pub(crate) fn import(&self, legacy: &dyn DeployStore) -> Result<usize, String> {
        if self.load_table()?.is_some() {
            return Ok(0);
        }
        let Some(table) = legacy.load_table()? else {
            return Ok(0);
        };
        let parsed: serde_json::Value = serde_json::from_slice(&table)
            .map_err(|e| format!("the old table of deployed services is not JSON: {e}"))?;
        let mut modules = 0;
        if let Some(hashes) = parsed.get("modules").and_then(|m| m.as_object()) {
            for hash in hashes.keys() {
                self.save_module(hash, &legacy.load_module(hash)?)?;
                modules += 1;
            }
        }
        self.save_table(&table)?;
        Ok(modules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_reopening_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path()).unwrap();
            db.put(Table::Spells, "s1", b"record").unwrap();
            db.store_put("s1", &[("a", Some(b"1")), ("b", Some(b"2"))])
                .unwrap();
            db.store_put("s2", &[("a", Some(b"other"))]).unwrap();
            assert_eq!(db.next_counter("s1").unwrap(), 1);
            assert_eq!(db.next_counter("s1").unwrap(), 2);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DB_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(
            db.get(Table::Spells, "s1").unwrap(),
            Some(b"record".to_vec())
        );
        assert_eq!(db.store_get("s1", "b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(db.counter("s1").unwrap(), 2);
        db.remove_spell("s1").unwrap();
        assert_eq!(db.get(Table::Spells, "s1").unwrap(), None);
        assert_eq!(db.store_get("s1", "a").unwrap(), None);
        assert_eq!(db.counter("s1").unwrap(), 0);
        // Another spell's store is untouched.
        assert_eq!(db.store_get("s2", "a").unwrap(), Some(b"other".to_vec()));
    }

    #[test]
    fn an_older_nodes_deployed_files_are_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = crate::builtins::DirDeployStore::new(dir.path().join("deployed"));
        let hash = "ab".repeat(32);
        legacy.save_module(&hash, b"\0asm").unwrap();
        let table = format!(r#"{{"version": 1, "modules": {{"{hash}": {{}}}}}}"#);
        legacy.save_table(table.as_bytes()).unwrap();
        let store = DbDeployStore(Db::open(dir.path()).unwrap());
        assert_eq!(store.import(&legacy), Ok(1));
        assert_eq!(store.load_table().unwrap(), Some(table.into_bytes()));
        assert_eq!(store.load_module(&hash).unwrap(), b"\0asm");
        // Once: what the database holds now wins.
        store.save_table(b"{}").unwrap();
        assert_eq!(store.import(&legacy), Ok(0));
        assert_eq!(store.load_table().unwrap(), Some(b"{}".to_vec()));
    }

    #[test]
    fn a_failed_update_changes_nothing() {
        let db = Db::in_memory().unwrap();
        db.store_put("s", &[("k", Some(b"v"))]).unwrap();
        let out = db
            .store_update("s", "k", |_| Err::<(Option<Vec<u8>>, ()), _>("no"))
            .unwrap();
        assert_eq!(out, Err("no"));
        assert_eq!(db.store_get("s", "k").unwrap(), Some(b"v".to_vec()));
        let out = db
            .store_update("s", "k", |old| {
                Ok::<_, ()>((Some([old.unwrap(), b"w"].concat()), 7))
            })
            .unwrap();
        assert_eq!(out, Ok(7));
        assert_eq!(db.store_get("s", "k").unwrap(), Some(b"vw".to_vec()));
    }
}
