//! `paddock-audit`: see `paddock_audit::cli`.

fn main() -> std::process::ExitCode {
    paddock_audit::cli::main()
}
