//! paddock-audit: the hardware inventory of a host as versioned JSON (collectors run in
//! parallel, never fatal), baseline checks with machine-readable result lines, locally or on
//! a remote host. See docs/audit.md.

pub mod check;
pub mod cli;
pub mod collector;
pub mod collectors;
pub mod config;
pub mod host;
pub mod parse;
pub mod report;
pub mod report_to;
pub mod serve;
pub mod ssh;
