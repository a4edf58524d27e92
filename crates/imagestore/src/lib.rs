//! paddock-imagestore: content-addressed images on disk, in the layout of DESIGN.md and of
//! Treadmill stores (`images/aa/bb/cc/<id>`, `blobs/aa/bb/cc/<sha256>`).
//!
//! This first piece is the local store: read an image with every byte verified, and write blobs
//! and manifests so that a crash or a bad byte never leaves a wrong file at a final path (write
//! to a temporary file, hash while writing, surface every write error, check the length on disk,
//! fsync, rename only when whole and the digest matches: [`staged`]), and read only regular
//! files, never through a link ([`regular`]).

pub mod catalog;
pub mod import;
pub mod index;
pub mod local;
pub mod maintenance;
pub mod mirror;
pub mod paths;
pub mod regular;
pub mod staged;
pub mod transfer;
pub mod unsynced;

pub use local::{LocalStore, StoreError, VerifiedImage, copy_verified};
