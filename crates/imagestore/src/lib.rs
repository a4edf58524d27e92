//! paddock-imagestore: content-addressed images on disk, in the layout of DESIGN.md and of
//! Treadmill stores (`images/aa/bb/cc/<id>`, `blobs/aa/bb/cc/<sha256>`).
//!
//! This first piece is the local store: read an image with every byte verified, and write blobs
//! and manifests so that a crash or a bad byte never leaves a wrong file at a final path (write
//! to a temporary file in the same directory, hash while writing, fsync, rename only when the
//! digest matches).

pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod import;
pub mod index;
pub mod local;
pub mod maintenance;
pub mod mirror;
pub mod paths;
pub mod server;
pub mod tokens;
pub mod unsynced;

pub use local::{LocalStore, StoreError, VerifiedImage, copy_verified};
