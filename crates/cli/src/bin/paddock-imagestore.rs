//! `paddock-imagestore`, installed alongside `paddock` (see paddock-imagestore's `cli`).

fn main() -> std::process::ExitCode {
    paddock_imagestore_server::cli::main()
}
