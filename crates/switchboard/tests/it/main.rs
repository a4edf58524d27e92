//! Integration tests of the switchboard: one test binary, real HTTP and WebSockets on loopback,
//! real SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

mod access;
mod api_errors;
mod audit;
mod auth;
mod console;
mod console_input;
mod deployment;
mod hostile;
mod images;
mod lifecycle;
mod matching;
mod secrets;
mod shutdown;
mod storage;
