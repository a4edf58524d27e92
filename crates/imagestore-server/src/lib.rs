//! paddock-imagestore-server: the image store's HTTP server and the `paddock-imagestore`
//! command, on the store library `paddock_imagestore`.
//!
//! [`server`] serves a store directory: the store paths (`images/…`, `blobs/…`, `all.txt`) for
//! mirrors and supervisors, the image API (`/api/v1/images`), and verified uploads with a push
//! token ([`tokens`]). [`config`] is its TOML file, [`cli`] the command (`serve`,
//! `check-config`, `gc`, `check`, `token`).

pub mod cli;
pub mod config;
pub mod server;
pub mod tokens;
