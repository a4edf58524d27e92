//! `paddock-puppet` for the QEMU driver's test guest (`tests/support/guest.rs`): the same
//! `paddock_puppet::cli::main` as the binary paddock-cli installs, built here so that
//! `cargo test -p paddock-supervisor` has one without building paddock-cli.

fn main() -> std::process::ExitCode {
    paddock_puppet::cli::main()
}
