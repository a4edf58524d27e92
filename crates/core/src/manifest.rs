//! Image manifests in Treadmill's v0 format, and the content-addressed store layout.
//!
//! A manifest is a TOML file; the image id is the sha256 of its exact bytes (two manifests with
//! the same content but different bytes are different images). Keys are Treadmill's, so
//! manifests written by Treadmill's tools parse here and the other way round:
//!
//! ```toml
//! manifest_version = 0
//! manifest_extensions = ["org.tockos.treadmill.manifest-ext.base"]
//! "org.tockos.treadmill.manifest-ext.base.label" = "vm-ubuntu-2204-amd64-uefi"
//! "org.tockos.treadmill.manifest-ext.base.revision" = 2
//! "org.tockos.treadmill.manifest-ext.base.description" = "Ubuntu 22.04"
//! "org.tockos.treadmill.manifest-ext.base.attrs" = { "org.tockos.treadmill.image.qemu_layered_v0.head" = "layer-1" }
//! ["org.tockos.treadmill.manifest-ext.base.blobs".layer-1]
//! "org.tockos.treadmill.manifest-ext.base.sha256-digest" = "<64 hex>"
//! "org.tockos.treadmill.manifest-ext.base.size" = 1234
//! "org.tockos.treadmill.manifest-ext.base.attrs" = {}
//! ```
//!
//! Unknown keys and unknown extensions are ignored, as the format asks. Store paths:
//! `images/aa/bb/cc/<image id>` and `blobs/aa/bb/cc/<sha256>`, where `aa/bb/cc` are the first
//! three bytes of the hex digest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::ImageId;

/// The extension every manifest must list.
pub const BASE_EXTENSION: &str = "org.tockos.treadmill.manifest-ext.base";

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid TOML of the Treadmill v0 format: {0}")]
    Syntax(String),
    #[error("unsupported manifest_version {0} (this reads 0)")]
    Version(u64),
    #[error("manifest_extensions must list {BASE_EXTENSION}")]
    MissingBaseExtension,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

/// One blob of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobSpec {
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.sha256-digest")]
    pub sha256_digest: String,
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.size")]
    pub size: u64,
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.attrs", default)]
    pub attrs: BTreeMap<String, String>,
}

/// A parsed image manifest (base extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    pub manifest_version: u64,
    pub manifest_extensions: Vec<String>,
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.label")]
    pub label: String,
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.revision")]
    pub revision: u64,
    /// Required (it may be empty): Treadmill's parser refuses a manifest without it.
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.description")]
    pub description: String,
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.attrs", default)]
    pub attrs: BTreeMap<String, String>,
    /// Required: Treadmill's parser refuses a manifest without it.
    #[serde(rename = "org.tockos.treadmill.manifest-ext.base.blobs")]
    pub blobs: BTreeMap<String, BlobSpec>,
}

const MAX_LABEL: usize = 64;
const MAX_TEXT: usize = 64 * 1024;
/// Longest attribute name accepted. Treadmill's `validate` says 64 bytes, but its reader never
/// calls it and its own netboot builder writes the 65-byte
/// `org.tockos.treadmill.image.nbd_qcow2_layered_v0.blob-virtual-size`; this bound only keeps
/// hostile input in check.
pub const MAX_ATTR_NAME: usize = 255;
const MAX_BLOBS: usize = 4096;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn check_attrs(at: &str, attrs: &BTreeMap<String, String>) -> Result<(), ManifestError> {
    for (k, v) in attrs {
        if k.len() > MAX_ATTR_NAME {
            return Err(invalid(
                format!("{at}.{k}"),
                format!("attribute name over {MAX_ATTR_NAME} bytes"),
            ));
        }
        if v.len() > MAX_TEXT {
            return Err(invalid(format!("{at}.{k}"), "attribute value over 64 KiB"));
        }
    }
    Ok(())
}

impl ImageManifest {
    /// Parses and validates manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<ImageManifest, ManifestError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        // Keys Treadmill's parser requires and a default would hide (an upload without its
        // blobs would otherwise be published as an image of none): said plainly.
        if let Ok(table) = toml::from_str::<toml::Table>(text) {
            for key in ["description", "blobs"] {
                let key = format!("{BASE_EXTENSION}.{key}");
                if !table.contains_key(&key) {
                    return Err(invalid(
                        key,
                        "missing; Treadmill's reader requires it (a description may be empty)",
                    ));
                }
            }
        }
        let mut m: ImageManifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        // Treadmill's reader decodes digests as hex of either case and names the blob by its
        // lower-case hex, as the store does: read them the same way.
        for b in m.blobs.values_mut() {
            b.sha256_digest.make_ascii_lowercase();
        }
        m.validate()?;
        Ok(m)
    }

    /// The limits and rules of the format: Treadmill's own validation, widened to what its
    /// reader takes where Treadmill's tools write more (attribute names up to
    /// [`MAX_ATTR_NAME`] bytes; an empty label, which names no image: only its id does).
    /// `manifest_version` must still be 0: another major version need not be compatible.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.manifest_version != 0 {
            return Err(ManifestError::Version(self.manifest_version));
        }
        if !self.manifest_extensions.iter().any(|e| e == BASE_EXTENSION) {
            return Err(ManifestError::MissingBaseExtension);
        }
        if self.label.len() > MAX_LABEL {
            return Err(invalid("label", "must be at most 64 bytes"));
        }
        if self.description.len() > MAX_TEXT {
            return Err(invalid("description", "must be at most 64 KiB"));
        }
        check_attrs("attrs", &self.attrs)?;
        if self.blobs.len() > MAX_BLOBS {
            return Err(invalid("blobs", "at most 4096 blobs"));
        }
        for (name, blob) in &self.blobs {
            let ok_name = !name.is_empty()
                && name.len() <= MAX_LABEL
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok_name {
                return Err(invalid(
                    format!("blobs.{name}"),
                    "blob names are 1 to 64 of A-Z a-z 0-9 _ -",
                ));
            }
            if ImageId::from_str(&blob.sha256_digest).is_err() {
                return Err(invalid(
                    format!("blobs.{name}.sha256-digest"),
                    "must be 64 lowercase hex characters",
                ));
            }
            check_attrs(&format!("blobs.{name}.attrs"), &blob.attrs)?;
        }
        Ok(())
    }

    /// The sum of the blob sizes.
    pub fn total_size(&self) -> u64 {
        self.blobs.values().map(|b| b.size).sum()
    }

    /// Serializes to TOML. The image id is the sha256 of exactly these bytes.
    pub fn to_toml(&self) -> Result<String, ManifestError> {
        toml::to_string(self).map_err(|e| ManifestError::Syntax(e.to_string()))
    }
}

/// The sha256 of some bytes, as an image id / blob digest.
pub fn sha256_id(bytes: &[u8]) -> ImageId {
    ImageId::from_digest(Sha256::digest(bytes).into())
}

/// Where a store keeps an image manifest: `images/aa/bb/cc/<id>`.
pub fn image_path(id: &ImageId) -> PathBuf {
    sharded("images", id.as_str())
}

/// Where a store keeps a blob: `blobs/aa/bb/cc/<sha256>`.
pub fn blob_path(digest: &ImageId) -> PathBuf {
    sharded("blobs", digest.as_str())
}

fn sharded(top: &str, hex: &str) -> PathBuf {
    PathBuf::from(top)
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(&hex[4..6])
        .join(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest in Treadmill's own key spelling, including a layered-qcow2 head attribute and
    /// a key this version does not know.
    const TREADMILL: &str = r#"
manifest_version = 0
manifest_extensions = ["org.tockos.treadmill.manifest-ext.base", "org.example.unknown-ext"]
"org.tockos.treadmill.manifest-ext.base.label" = "vm-ubuntu-2204-amd64-uefi"
"org.tockos.treadmill.manifest-ext.base.revision" = 3
"org.tockos.treadmill.manifest-ext.base.description" = "Ubuntu 22.04 VM"
"org.example.unknown-ext.whatever" = true

["org.tockos.treadmill.manifest-ext.base.attrs"]
"org.tockos.treadmill.image.qemu_layered_v0.head" = "layer-1"

["org.tockos.treadmill.manifest-ext.base.blobs".layer-0]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"
"org.tockos.treadmill.manifest-ext.base.size" = 1
"org.tockos.treadmill.manifest-ext.base.attrs" = {}

["org.tockos.treadmill.manifest-ext.base.blobs".layer-1]
"org.tockos.treadmill.manifest-ext.base.sha256-digest" = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
"org.tockos.treadmill.manifest-ext.base.size" = 1

["org.tockos.treadmill.manifest-ext.base.blobs".layer-1."org.tockos.treadmill.manifest-ext.base.attrs"]
"org.tockos.treadmill.image.qemu_layered_v0.lower" = "layer-0"
"#;

    #[test]
    fn treadmill_manifest_parses() {
        let m = ImageManifest::parse(TREADMILL.as_bytes()).unwrap();
        assert_eq!(m.label, "vm-ubuntu-2204-amd64-uefi");
        assert_eq!(m.revision, 3);
        assert_eq!(
            m.attrs["org.tockos.treadmill.image.qemu_layered_v0.head"],
            "layer-1"
        );
        assert_eq!(
            m.blobs["layer-1"].attrs["org.tockos.treadmill.image.qemu_layered_v0.lower"],
            "layer-0"
        );
        assert_eq!(m.total_size(), 2);
        // Written back, it parses to the same manifest.
        let again = ImageManifest::parse(m.to_toml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, m);
    }

    /// Issue 15 item 14: what Treadmill's reader takes and Paddock decided to take too (an
    /// empty label, an upper-case digest, read as lower case), and what it still refuses
    /// (`manifest_version` other than 0).
    #[test]
    fn empty_label_and_upper_case_digests_are_read() {
        let empty = TREADMILL.replace("\"vm-ubuntu-2204-amd64-uefi\"", "\"\"");
        assert_eq!(ImageManifest::parse(empty.as_bytes()).unwrap().label, "");
        let upper = TREADMILL.replace(
            "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9",
            "5FECEB66FFC86F38D952786C6D696C79C2DBC239DD4E91B46729D73A27FB57E9",
        );
        let m = ImageManifest::parse(upper.as_bytes()).unwrap();
        assert_eq!(
            m.blobs["layer-0"].sha256_digest,
            "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"
        );
        let v1 = TREADMILL.replace("manifest_version = 0", "manifest_version = 1");
        assert_eq!(
            ImageManifest::parse(v1.as_bytes()),
            Err(ManifestError::Version(1))
        );
    }

    #[test]
    fn description_and_blobs_are_required() {
        let no_description = TREADMILL.replace(
            "\"org.tockos.treadmill.manifest-ext.base.description\" = \"Ubuntu 22.04 VM\"\n",
            "",
        );
        let e = ImageManifest::parse(no_description.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("org.tockos.treadmill.manifest-ext.base.description: missing;"),
            "{e}"
        );
        let cut = TREADMILL
            .find("[\"org.tockos.treadmill.manifest-ext.base.blobs\"")
            .unwrap();
        let e = ImageManifest::parse(&TREADMILL.as_bytes()[..cut])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("org.tockos.treadmill.manifest-ext.base.blobs: missing;"),
            "{e}"
        );
    }

    #[test]
    fn attribute_names_up_to_255_bytes() {
        let netboot = "org.tockos.treadmill.image.nbd_qcow2_layered_v0.blob-virtual-size";
        assert_eq!(netboot.len(), 65);
        let m = TREADMILL.replace("org.tockos.treadmill.image.qemu_layered_v0.lower", netboot);
        ImageManifest::parse(m.as_bytes()).unwrap();
        let long = format!("org.example.{}", "x".repeat(MAX_ATTR_NAME - 11));
        let m = TREADMILL.replace("org.tockos.treadmill.image.qemu_layered_v0.lower", &long);
        let e = ImageManifest::parse(m.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("attribute name over 255 bytes"), "{e}");
    }

    #[test]
    fn bad_manifests_are_refused_with_the_field() {
        let no_base = TREADMILL.replace("\"org.tockos.treadmill.manifest-ext.base\", ", "");
        assert_eq!(
            ImageManifest::parse(no_base.as_bytes()),
            Err(ManifestError::MissingBaseExtension)
        );
        let v1 = TREADMILL.replace("manifest_version = 0", "manifest_version = 1");
        assert_eq!(
            ImageManifest::parse(v1.as_bytes()),
            Err(ManifestError::Version(1))
        );
        let bad_digest = TREADMILL.replace("5feceb66", "XXXXXXXX");
        let e = ImageManifest::parse(bad_digest.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("blobs.layer-0.sha256-digest"), "{e}");
        let bad_name = TREADMILL.replace(".layer-0]", ".\"layer 0\"]");
        assert!(
            ImageManifest::parse(bad_name.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("blob names")
        );
        assert!(matches!(
            ImageManifest::parse(b"not = [toml"),
            Err(ManifestError::Syntax(_))
        ));
        assert!(matches!(
            ImageManifest::parse(&[0xff, 0xfe]),
            Err(ManifestError::Syntax(_))
        ));
    }

    #[test]
    fn store_layout() {
        let id = sha256_id(b"1");
        assert_eq!(
            id.as_str(),
            "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
        );
        assert_eq!(
            blob_path(&id),
            PathBuf::from(
                "blobs/6b/86/b2/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
            )
        );
        assert_eq!(
            image_path(&id).parent().unwrap(),
            PathBuf::from("images/6b/86/b2")
        );
    }
}
