//! `paddock-puppet`, installed alongside `paddock` so the local driver's workloads find it.

fn main() -> std::process::ExitCode {
    paddock_puppet::cli::main()
}
