//! `paddock-deploy`, installed alongside `paddock` (see paddock-deploy's `cli`).

fn main() -> std::process::ExitCode {
    paddock_deploy::cli::main()
}
