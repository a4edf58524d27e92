//! paddock-deploy: the deployments repo (docs/deployments.md) read straight from a commit's
//! tree with gix, validated whole, and applied to the switchboard in one admin call. An invalid
//! commit is rejected whole and reported to the switchboard; the last good state stays live.

pub mod activation;
pub mod apply;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod git_source;
pub mod report;
pub mod watch;
pub mod worktree;
