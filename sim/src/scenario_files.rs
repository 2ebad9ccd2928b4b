//! Finding scenario files: the `*.json` files under the given files and folders.

use std::path::{Path, PathBuf};

use crate::error::SimError;

/// The scenario files `paths` name: a file is taken as it is; a folder gives every
/// `*.json` file below it, recursively, sorted by path. The order of `paths` is kept.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SimError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_json(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SimError> {
    let io = |source| SimError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
    Ok(())
}
