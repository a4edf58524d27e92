//! The paths a store serves, parsed and validated: `images/aa/bb/cc/<id>`,
//! `blobs/aa/bb/cc/<sha256>` and `all.txt`. A file path is only ever built from a validated
//! digest, so nothing a client sends can point outside the store.

use std::path::PathBuf;

use paddock_core::ImageId;
use paddock_core::manifest::{blob_path, image_path};

/// A valid store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePath {
    Image(ImageId),
    Blob(ImageId),
    AllTxt,
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Not a store path at all (404).
    NotFound,
    /// Under `images/` or `blobs/` but malformed: wrong shards, not 64 lowercase hex, `..`,
    /// encoded characters (400).
    Malformed(String),
}

impl StorePath {
    /// Parses the raw (still percent-encoded) path of a request, with or without a leading `/`
    /// or `./`.
    pub fn parse(raw: &str) -> Result<StorePath, PathError> {
        let p = raw.trim_start_matches('/');
        let p = p.strip_prefix("./").unwrap_or(p);
        if p == "all.txt" {
            return Ok(StorePath::AllTxt);
        }
        let (kind, rest) = match p.split_once('/') {
            Some(("images", rest)) => ("images", rest),
            Some(("blobs", rest)) => ("blobs", rest),
            _ => return Err(PathError::NotFound),
        };
        let bad = || {
            PathError::Malformed(format!(
                "{raw}: expected {kind}/aa/bb/cc/<64 lowercase hex>"
            ))
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [a, b, c, name] = parts.as_slice() else {
            return Err(bad());
        };
        if name.len() != 64 || !name.bytes().all(|x| matches!(x, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        if *a != &name[0..2] || *b != &name[2..4] || *c != &name[4..6] {
            return Err(bad());
        }
        let id: ImageId = name.parse().map_err(|_| bad())?;
        Ok(if kind == "images" {
            StorePath::Image(id)
        } else {
            StorePath::Blob(id)
        })
    }

    /// The path relative to the store root.
    pub fn relative(&self) -> PathBuf {
        match self {
            StorePath::Image(id) => image_path(id),
            StorePath::Blob(d) => blob_path(d),
            StorePath::AllTxt => PathBuf::from("all.txt"),
        }
    }

    /// The digest the file's content must hash to (none for `all.txt`).
    pub fn digest(&self) -> Option<&ImageId> {
        match self {
            StorePath::Image(d) | StorePath::Blob(d) => Some(d),
            StorePath::AllTxt => None,
        }
    }

    /// The line of `all.txt` naming this file.
    pub fn index_line(&self) -> String {
        format!("./{}", self.relative().display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9";

    #[test]
    fn parses_valid_paths_and_refuses_the_rest() {
        let blob = format!("/blobs/5f/ec/eb/{HEX}");
        assert!(matches!(StorePath::parse(&blob), Ok(StorePath::Blob(_))));
        assert!(matches!(
            StorePath::parse(&format!("./images/5f/ec/eb/{HEX}")),
            Ok(StorePath::Image(_))
        ));
        assert_eq!(StorePath::parse("/all.txt"), Ok(StorePath::AllTxt));
        assert_eq!(StorePath::parse("/favicon.ico"), Err(PathError::NotFound));
        for bad in [
            format!("/blobs/00/ec/eb/{HEX}"),
            format!("/blobs/5f/ec/eb/{}", HEX.to_uppercase()),
            format!("/blobs/5f/ec/{HEX}"),
            "/blobs/../../etc/passwd".to_string(),
            format!("/blobs/5f%2Fec/eb/x/{HEX}"),
            format!("/blobs/5f/ec/eb/{HEX}/extra"),
            "/blobs/5f/ec/eb/..".to_string(),
        ] {
            assert!(
                matches!(StorePath::parse(&bad), Err(PathError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            StorePath::parse(&blob).unwrap().index_line(),
            format!("./blobs/5f/ec/eb/{HEX}")
        );
    }
}
