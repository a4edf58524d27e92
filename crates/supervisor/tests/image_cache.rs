//! The supervisor's image cache against a real store server on loopback: first store that
//! answers, one download shared by concurrent jobs, LRU eviction that spares pinned blobs,
//! digests verified.

#![allow(clippy::unwrap_used)]

#[path = "../../imagestore-server/tests/support/tmpfs.rs"]
mod tmpfs;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use paddock_core::ImageId;
use paddock_core::manifest::blob_path;
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;
use paddock_imagestore_server::server::ServerSettings;
use paddock_supervisor::image_cache::ImageSource;

fn import(store: &LocalStore, dir: &std::path::Path, label: &str, size: usize) -> ImageId {
    let f = dir.join(label);
    std::fs::write(&f, label.repeat(size / label.len())).unwrap();
    store
        .import(
            &f,
            &ImportOptions {
                label: label.into(),
                revision: None,
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_downloads_lru_eviction_and_verification() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("S");
    let store = LocalStore::new(&root);
    let a = import(&store, dir.path(), "aaaa", 100_000);
    let b = import(&store, dir.path(), "bbbb", 100_000);
    let c = import(&store, dir.path(), "cccc", 100_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = ServerSettings {
        root: root.clone(),
        listen: addr,
        max_upload_bytes: 1 << 20,
    };
    tokio::spawn(async move {
        paddock_imagestore_server::server::serve(&settings, listener, std::future::pending())
            .await
            .unwrap()
    });
    // A server that does not answer comes first: the next one is used.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}")
    };
    let cache_dir = dir.path().join("cache");
    let src = Arc::new(ImageSource::new(
        vec![],
        vec![dead, format!("http://{addr}")],
        &cache_dir,
        250_000,
    ));

    // Four jobs want A at once: one download.
    let mut gets = Vec::new();
    for _ in 0..4 {
        let (src, a) = (src.clone(), a.clone());
        gets.push(tokio::spawn(async move {
            src.get(&a).await.map(|(_, pin)| pin)
        }));
    }
    let mut pins_a = Vec::new();
    for g in gets {
        pins_a.push(g.await.unwrap().unwrap());
    }
    assert_eq!(src.blobs_downloaded.load(Ordering::Relaxed), 1);
    let blob_of = |id: &ImageId| {
        let img = LocalStore::new(&cache_dir).verified_image(id).unwrap();
        img.blobs[0].1.clone()
    };
    let blob_a = blob_of(&a);

    // B and C while A is pinned: the cache goes over its limit, but A stays.
    let (_, pin_b) = src.get(&b).await.unwrap();
    drop(pin_b);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (_, pin_c) = src.get(&c).await.unwrap();
    assert!(blob_a.exists(), "a pinned blob was evicted");
    assert!(
        !cache_dir
            .join(paddock_core::manifest::image_path(&b))
            .exists(),
        "B (least recently used, unpinned) should be gone"
    );
    // A no longer in use: the next fetch may evict it.
    pins_a.clear();
    drop(pin_c);
    let (_, _pin_b) = src.get(&b).await.unwrap();
    assert!(
        !blob_a.exists(),
        "A was the least recently used and unpinned"
    );
    assert!(LocalStore::new(&cache_dir).verified_image(&b).is_ok());

    // A blob corrupted on the server is refused and not cached.
    let img = store.verified_image(&a).unwrap();
    std::fs::write(&img.blobs[0].1, "rotten").unwrap();
    let e = src.get(&a).await.unwrap_err();
    assert!(e.to_string().contains("hashes to"), "{e}");
    let digest: ImageId = img.manifest.blobs["workload"]
        .sha256_digest
        .parse()
        .unwrap();
    assert!(!cache_dir.join(blob_path(&digest)).exists());
    // An unknown image.
    let e = src.get(&ImageId::from_digest([9; 32])).await.unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_disk_fails_the_image_and_caches_nothing_truncated() {
    let Some(fs) = tmpfs::Tmpfs::mount("20m", "supervisor cache full disk") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("S");
    let store = LocalStore::new(&root);
    let ids: Vec<ImageId> = tmpfs::distinct_blobs(3, 7_000_000)
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let f = dir.path().join(format!("w{i}"));
            std::fs::write(&f, b).unwrap();
            store
                .import(
                    &f,
                    &ImportOptions {
                        label: format!("big-{i}"),
                        revision: None,
                        description: String::new(),
                        entry_point: None,
                        ready_on_puppet: false,
                    },
                )
                .unwrap()
        })
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = ServerSettings {
        root: root.clone(),
        listen: addr,
        max_upload_bytes: 1 << 20,
    };
    tokio::spawn(async move {
        paddock_imagestore_server::server::serve(&settings, listener, std::future::pending())
            .await
            .unwrap()
    });
    let cache_dir = fs.path().join("cache");
    // A limit far above the disk: the disk fills before any eviction.
    let src = Arc::new(ImageSource::new(
        vec![],
        vec![format!("http://{addr}")],
        &cache_dir,
        1 << 30,
    ));
    let mut results = Vec::new();
    for id in &ids {
        results.push(src.get(id).await.map(|(img, pin)| (img.id, pin)));
    }
    assert!(
        results[0].is_ok() && results[1].is_ok(),
        "two 7 MB blobs fit"
    );
    let e = results[2].as_ref().unwrap_err();
    assert!(e.to_string().contains("space"), "{e}");
    assert!(
        !cache_dir
            .join(paddock_core::manifest::image_path(&ids[2]))
            .exists()
    );
    // Every blob in the cache is whole, and check finds nothing wrong.
    let index = paddock_imagestore::index::list(&cache_dir).unwrap();
    assert_eq!(index.len(), 4, "{index:?}");
    let r = paddock_imagestore::maintenance::check(&cache_dir, false, |_, _| {}).unwrap();
    assert!(r.corrupt.is_empty() && r.links.is_empty(), "{r:?}");
    for id in &ids[..2] {
        LocalStore::new(&cache_dir).verified_image(id).unwrap();
    }
}
