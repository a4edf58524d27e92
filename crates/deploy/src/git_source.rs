//! A commit of the deployments repo, read from git (a bare repo or a clone) without a
//! checkout: the branch's commit id and the text of every file under `db/`.

use std::path::Path;

/// The files of one commit that the deployments DB reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Full hex id of the commit.
    pub commit: String,
    /// `(path in repo, text)` of each file under `db/`.
    pub files: Vec<(String, String)>,
    /// Files under `db/` that are not UTF-8 text.
    pub not_text: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path}: not a git repository: {message}")]
    Open { path: String, message: String },
    #[error("branch `{branch}` does not exist in {path} (deleted, or never pushed)")]
    NoBranch { branch: String, path: String },
    #[error("{path}: reading {what}: {message}")]
    Read {
        path: String,
        what: String,
        message: String,
    },
}

/// Reads `refs/heads/<branch>` of the repository at `repo`.
pub fn read_branch(repo: &Path, branch: &str) -> Result<Snapshot, GitError> {
    let path = repo.display().to_string();
    let read_err = |what: &str, e: &dyn std::fmt::Display| GitError::Read {
        path: path.clone(),
        what: what.to_string(),
        message: e.to_string(),
    };
    let repo = gix::open(repo).map_err(|e| GitError::Open {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let name = format!("refs/heads/{branch}");
    let mut reference = match repo.try_find_reference(name.as_str()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(GitError::NoBranch {
                branch: branch.to_string(),
                path,
            });
        }
        Err(e) => return Err(read_err(&name, &e)),
    };
    let commit = reference
        .peel_to_commit()
        .map_err(|e| read_err(&name, &e))?;
    let id = commit.id.to_string();
    let tree = commit.tree().map_err(|e| read_err(&id, &e))?;
    let mut records = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut records)
        .map_err(|e| read_err(&id, &e))?;
    let mut files = Vec::new();
    let mut not_text = Vec::new();
    for entry in records.records {
        let file = entry.filepath.to_string();
        if !entry.mode.is_blob() || !paddock_core::deployments::is_db_file(&file) {
            continue;
        }
        let blob = repo.find_blob(entry.oid).map_err(|e| read_err(&file, &e))?;
        match String::from_utf8(blob.data.clone()) {
            Ok(text) => files.push((file, text)),
            Err(_) => not_text.push(file),
        }
    }
    files.sort();
    Ok(Snapshot {
        commit: id,
        files,
        not_text,
    })
}
