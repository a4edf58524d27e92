//! `paddock-switchboard`, installed with `paddock`; see [`paddock_switchboard::cli::main`].

fn main() -> std::process::ExitCode {
    paddock_switchboard::cli::main()
}
