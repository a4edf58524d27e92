//! Integration tests of the switchboard: one test binary, real HTTP and WebSockets on loopback,
//! real SQLite and PostgreSQL.

mod common;

mod api_errors;
mod auth;
mod lifecycle;
mod restart;
mod storage;
