//! Issue 15 item 22: every option, argument and subcommand in every command's `--help` says
//! what it is (no bare `--config <CONFIG>`).

#![allow(clippy::unwrap_used)]

use std::process::Command;

/// `--help` of `bin args…` and, recursively, of each of its subcommands: the entries with no
/// description, as `bin args…: ENTRY`.
fn undescribed(bin: &str, exe: &str, args: &[String], out: &mut Vec<String>) {
    let help = Command::new(exe).args(args).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut section = "";
    let mut subcommands = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            section = "";
            continue;
        }
        if let Some(s) = ["Commands:", "Options:", "Arguments:"]
            .into_iter()
            .find(|s| line == *s)
        {
            section = s;
            continue;
        }
        if section.is_empty() || !line.starts_with(' ') {
            continue;
        }
        let entry = line.trim();
        // An entry and its description are separated by two spaces or more; a continuation
        // line (a long description wrapped) starts further in and is skipped with it.
        let parts: Vec<&str> = entry.split("  ").filter(|p| !p.is_empty()).collect();
        if parts.len() < 2 && !line.starts_with("          ") {
            out.push(format!("{bin} {}: {entry}", args.join(" ")));
        }
        if section == "Commands:" {
            let name = parts[0].split_whitespace().next().unwrap_or("");
            if name != "help" {
                subcommands.push(name.to_string());
            }
        }
    }
    for s in subcommands {
        let mut a = args.to_vec();
        a.push(s);
        undescribed(bin, exe, &a, out);
    }
}

#[test]
fn every_help_entry_is_described() {
    let bins = [
        ("paddock", env!("CARGO_BIN_EXE_paddock")),
        (
            "paddock-switchboard",
            env!("CARGO_BIN_EXE_paddock-switchboard"),
        ),
        (
            "paddock-supervisor",
            env!("CARGO_BIN_EXE_paddock-supervisor"),
        ),
        ("paddock-deploy", env!("CARGO_BIN_EXE_paddock-deploy")),
        ("paddock-audit", env!("CARGO_BIN_EXE_paddock-audit")),
        ("paddock-puppet", env!("CARGO_BIN_EXE_paddock-puppet")),
        (
            "paddock-imagestore",
            env!("CARGO_BIN_EXE_paddock-imagestore"),
        ),
    ];
    let mut missing = Vec::new();
    for (bin, exe) in bins {
        undescribed(bin, exe, &[], &mut missing);
    }
    assert!(
        missing.is_empty(),
        "no description:\n{}",
        missing.join("\n")
    );
}
