//! Parsers of the tools' outputs. Each takes the text a tool printed and returns typed data
//! or a [`ParseError`]; none panics on malformed or truncated input (they are fuzzed).

pub mod dmidecode;
pub mod ip;
pub mod ipmitool;
pub mod jedec;
pub mod lsblk;
pub mod lscpu;
pub mod lspci;
pub mod nvidia_smi;
pub mod nvme;
pub mod proc;
pub mod smartctl;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tool} output: {message}")]
pub struct ParseError {
    pub tool: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(tool: &'static str, message: impl Into<String>) -> Self {
        ParseError {
            tool,
            message: message.into(),
        }
    }
}

/// A value that says something: `None` for the placeholders vendors and anonymisers leave
/// (`Not Specified`, `To Be Filled By O.E.M.`, `--`, `REDACTED`, `XXXX`, `N/A`, `NO DIMM`,
/// …), and all-zero ids behind a type prefix (`GPU-00000000-0000-0000-0000-000000000000`).
pub fn meaningful(value: &str) -> Option<String> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    let masked = |s: &str| {
        s.chars()
            .all(|c| c == '-' || c == 'X' || c == 'x' || c == '*' || c == '0' || c == ' ')
    };
    let zero_id = v.split_once('-').is_some_and(|(prefix, rest)| {
        !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_alphabetic())
            && rest.chars().filter(|c| *c == '0').count() >= 8
            && rest.chars().all(|c| c == '0' || c == '-')
    });
    let placeholder = v.is_empty()
        || masked(v)
        || zero_id
        || matches!(
            lower.as_str(),
            "not specified"
                | "not present"
                | "not provided"
                | "not available"
                | "to be filled by o.e.m."
                | "default string"
                | "none"
                | "n/a"
                | "na"
                | "unknown"
                | "redacted"
                | "0123456789"
                | "system serial number"
                | "system product name"
                | "chassis serial number"
                | "base board serial number"
                | "[n/a]"
                | "null"
                | "no dimm"
                | "not installed"
        );
    (!placeholder).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_not_values() {
        for p in [
            "",
            " ",
            "Not Specified",
            "To Be Filled By O.E.M.",
            "--",
            "REDACTED",
            "XXXXXXXX",
            "N/A",
            "0000000",
            "Default string",
            "NO DIMM",
            "GPU-00000000-0000-0000-0000-000000000000",
            "MIG-00000000-0000-0000-0000-000000000000",
        ] {
            assert_eq!(super::meaningful(p), None, "{p:?}");
        }
        assert_eq!(
            super::meaningful(" PowerEdge R750 ").as_deref(),
            Some("PowerEdge R750")
        );
        assert_eq!(super::meaningful("0x1A").as_deref(), Some("0x1A"));
        assert!(super::meaningful("GPU-07310d02-5a07-b366-b9c8-dda734271cd2").is_some());
        assert!(super::meaningful("DDR4-0000").is_some());
        assert_eq!(super::meaningful("dm-0").as_deref(), Some("dm-0"));
    }
}
