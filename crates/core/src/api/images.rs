//! The image store server's API (`/api/v1/images`): the images a store holds, and one image
//! with its manifest as stored. Served by `paddock-imagestore`'s server, read by its
//! `StoreClient` (the `paddock image` commands, the switchboard's label lookup).
//!
//! The fields are declared in the order of their names: the JSON keys come out sorted, as the
//! server wrote them before these types (a `serde_json::Map` without `preserve_order`).

use serde::{Deserialize, Serialize};

use crate::ImageId;

/// One stored image: an element of [`ImageList`], and of the local store's listing
/// (`paddock image list --store`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub description: String,
    pub id: ImageId,
    pub label: String,
    /// Why this stored image cannot be used (its manifest does not hash to its name, or is
    /// not a manifest Paddock reads): it is listed anyway, never hidden, and only its id
    /// names it. Label, revision and description are then what could be read, if anything.
    /// Absent from the JSON of an image that can be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub revision: u64,
    /// The bytes of its blobs (0 for an image with a problem).
    pub size: u64,
}

/// `GET /api/v1/images[?label=LABEL]`: every image of the store (of that label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageList {
    pub images: Vec<ImageSummary>,
}

/// `GET /api/v1/images/{name}` (an id, a label: its newest revision, or `label@revision`):
/// the image's [`ImageSummary`] and its manifest as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShown {
    pub description: String,
    pub id: ImageId,
    pub label: String,
    /// The manifest's TOML as JSON, as stored: every key of the file (Treadmill's blob
    /// `sources` and keys Paddock does not read included), none added, no default filled in.
    /// Absent when the file is not TOML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
    /// As [`ImageSummary::problem`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub revision: u64,
    pub size: u64,
}

impl ImageShown {
    /// The image `summary` with its manifest (`None` when it is not TOML).
    pub fn new(summary: ImageSummary, manifest: Option<serde_json::Value>) -> ImageShown {
        let ImageSummary {
            description,
            id,
            label,
            revision,
            problem,
            size,
        } = summary;
        ImageShown {
            description,
            id,
            label,
            manifest,
            problem,
            revision,
            size,
        }
    }

    /// The image without its manifest.
    pub fn summary(&self) -> ImageSummary {
        ImageSummary {
            description: self.description.clone(),
            id: self.id.clone(),
            label: self.label.clone(),
            revision: self.revision,
            problem: self.problem.clone(),
            size: self.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5a1f5e4c4bbd5b6d04e1d1b0fb0b3ef3a2a4d2b0b2b8b1c7a9e4e8e0a3f2d1c0";
    const BAD: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// Today's answers, byte for byte (as `serde_json::json!` wrote them before these types).
    fn list_sample() -> String {
        format!(
            r#"{{"images":[{{"description":"says hello","id":"{ID}","label":"hello","revision":2,"size":1234}},{{"description":"","id":"{BAD}","label":"","problem":"the manifest hashes to something else","revision":0,"size":0}}]}}"#
        )
    }

    fn show_sample() -> String {
        format!(
            r#"{{"description":"says hello","id":"{ID}","label":"hello","manifest":{{"manifest_version":0,"org.tockos.treadmill.manifest-ext.base.blobs":{{"root":{{"org.tockos.treadmill.manifest-ext.base.sha256-digest":"ab","org.tockos.treadmill.manifest-ext.base.size":1234,"sources":["https://example.org/x"]}}}},"org.tockos.treadmill.manifest-ext.base.label":"hello","x-unknown":{{"kept":true}}}},"revision":2,"size":1234}}"#
        )
    }

    #[test]
    fn a_listing_round_trips_byte_for_byte() {
        let s = list_sample();
        let list: ImageList = serde_json::from_str(&s).unwrap();
        assert_eq!(list.images.len(), 2);
        assert_eq!(list.images[0].id.to_string(), ID);
        assert_eq!(list.images[0].problem, None);
        assert_eq!(
            list.images[1].problem.as_deref(),
            Some("the manifest hashes to something else")
        );
        assert_eq!(serde_json::to_string(&list).unwrap(), s);
        // The same bytes as the untyped JSON the server built before.
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), s);
        assert_eq!(
            serde_json::to_string_pretty(&list).unwrap(),
            serde_json::to_string_pretty(&v).unwrap()
        );
    }

    #[test]
    fn a_shown_image_round_trips_with_its_manifest_as_stored() {
        let s = show_sample();
        let shown: ImageShown = serde_json::from_str(&s).unwrap();
        let m = shown.manifest.as_ref().unwrap();
        assert_eq!(m["x-unknown"]["kept"], true);
        assert_eq!(
            m["org.tockos.treadmill.manifest-ext.base.blobs"]["root"]["sources"][0],
            "https://example.org/x"
        );
        assert_eq!(serde_json::to_string(&shown).unwrap(), s);

        // Without a manifest (not TOML) and with a problem: no `manifest` key, `problem` kept.
        let bare = format!(
            r#"{{"description":"","id":"{BAD}","label":"","problem":"not TOML","revision":0,"size":0}}"#
        );
        let shown: ImageShown = serde_json::from_str(&bare).unwrap();
        assert_eq!(shown.manifest, None);
        assert_eq!(shown.problem.as_deref(), Some("not TOML"));
        assert_eq!(serde_json::to_string(&shown).unwrap(), bare);
        // Its summary is the listing's element.
        let listed = serde_json::to_string(&shown.summary()).unwrap();
        assert_eq!(listed, bare);
        let again = ImageShown::new(shown.summary(), None);
        assert_eq!(again, shown);
    }

    #[test]
    fn an_answer_without_a_valid_id_is_refused() {
        let no_id = r#"{"description":"","label":"x","revision":1,"size":0}"#;
        assert!(serde_json::from_str::<ImageSummary>(no_id).is_err());
        let bad_id = r#"{"description":"","id":"xyz","label":"x","revision":1,"size":0}"#;
        assert!(serde_json::from_str::<ImageShown>(bad_id).is_err());
    }
}
