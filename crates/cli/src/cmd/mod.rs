//! One module per subcommand.

pub mod deploy;
pub mod image;
pub mod job;
pub mod login;
pub mod supervisor;
pub mod up;

/// Prints a JSON value, pretty.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
