//! `paddock-supervisor`, installed alongside `paddock` (see paddock-supervisor's `cli`).

fn main() -> std::process::ExitCode {
    paddock_supervisor::cli::main()
}
