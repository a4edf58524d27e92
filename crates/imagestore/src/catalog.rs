//! Naming images: by id, by label (its newest revision) or by `label@revision`; and a
//! manifest's JSON as stored (`GET /api/v1/images/{name}`, `paddock image show --json`).

use crate::import::ImageSummary;

/// Finds the image `name` refers to. An image with a problem is found by its id only (its
/// label, if it could be read, never stands for it).
pub fn resolve<'a>(images: &'a [ImageSummary], name: &str) -> Option<&'a ImageSummary> {
    if let Some(i) = images.iter().find(|i| i.id.as_str() == name) {
        return Some(i);
    }
    let (label, revision) = match name.split_once('@') {
        Some((l, r)) => (l, Some(r.parse::<u64>().ok()?)),
        None => (name, None),
    };
    // An empty label names nothing: such an image is named by its id.
    if label.is_empty() {
        return None;
    }
    images
        .iter()
        .filter(|i| i.problem.is_none())
        .filter(|i| i.label == label && revision.is_none_or(|r| i.revision == r))
        .max_by_key(|i| i.revision)
}

/// A manifest's JSON as stored: every key of the TOML file, Treadmill's blob `sources` and keys
/// Paddock does not read included, none added (no default filled in). `None` when the bytes
/// are not TOML.
pub fn manifest_json(bytes: &[u8]) -> Option<serde_json::Value> {
    let table: toml::Table = toml::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    serde_json::to_value(table).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_core::ImageId;

    fn img(label: &str, revision: u64, n: u8) -> ImageSummary {
        ImageSummary {
            id: ImageId::from_digest([n; 32]),
            label: label.into(),
            revision,
            description: String::new(),
            size: 1,
            problem: None,
        }
    }

    #[test]
    fn labels_resolve_to_the_newest_revision() {
        let list = vec![
            img("hello", 1, 1),
            img("hello", 3, 3),
            img("hello", 2, 2),
            img("x", 9, 9),
        ];
        assert_eq!(resolve(&list, "hello").unwrap().revision, 3);
        assert_eq!(resolve(&list, "hello@2").unwrap().revision, 2);
        assert!(resolve(&list, "hello@7").is_none());
        assert!(resolve(&list, "hello@x").is_none());
        assert!(resolve(&list, "nope").is_none());
        let id = list[3].id.to_string();
        assert_eq!(resolve(&list, &id).unwrap().label, "x");
    }
}
