//! The audit service's configuration (TOML; `audit.example.toml`, field by field): what
//! `paddock-audit run` collects, where it writes, which baseline it checks, where it reports.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the report is written.
    pub output: PathBuf,
    /// Collectors to run; all when empty.
    #[serde(default)]
    pub collectors: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// A baseline checked after collecting.
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    /// The switchboard reports go to.
    #[serde(default)]
    pub report_to: Option<String>,
    #[serde(default)]
    pub supervisor: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_timeout() -> u64 {
    60
}

pub use paddock_core::config_file::ConfigError;

impl Config {
    /// Reads and checks a configuration: fields, collector names, the baseline (whole), the
    /// token file's readability.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_checking(path, true)
    }

    /// As [`Config::load`]; with `secrets` false the token file is not read (a build-time
    /// check, where secrets do not exist yet).
    pub fn load_checking(path: &Path, secrets: bool) -> Result<Config, ConfigError> {
        let (mut c, mut problems): (Config, _) =
            paddock_core::config_file::read_toml_checked(path)?;
        paddock_core::config_file::relative_to_file(
            path,
            [
                Some(&mut c.output),
                c.baseline.as_mut(),
                c.token_file.as_mut(),
            ]
            .into_iter()
            .flatten(),
        );
        if let Err(e) = crate::cli::select(&c.collectors) {
            problems.at("collectors", format!("collectors: {e}"));
        }
        if c.timeout_s == 0 {
            problems.at("timeout_s", "timeout_s: at least 1");
        }
        match (&c.report_to, &c.supervisor) {
            (Some(url), Some(_)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    problems.at(
                        "report_to",
                        format!("report_to: `{url}` is not an http(s) URL"),
                    );
                } else if let Err(e) = paddock_core::transport::require_plain(url) {
                    problems.at("report_to", format!("report_to: {e}"));
                }
            }
            (None, None) => {}
            (Some(_), None) => problems.at(
                "report_to",
                "report_to and supervisor: set both (or neither)",
            ),
            (None, Some(_)) => problems.at(
                "supervisor",
                "report_to and supervisor: set both (or neither)",
            ),
        }
        if let Some(b) = &c.baseline {
            match std::fs::read_to_string(b) {
                Err(e) => problems.at("baseline", format!("baseline {}: {e}", b.display())),
                Ok(text) => {
                    if let Err(errors) =
                        crate::check::baseline::load(&b.display().to_string(), &text)
                    {
                        for e in errors.0 {
                            problems.at("baseline", format!("baseline: {e}"));
                        }
                    }
                }
            }
        }
        // A systemd credential exists only inside its unit: not checkable from outside.
        if let Some(t) = c
            .token_file
            .as_ref()
            .filter(|t| secrets && !paddock_core::credential::outside_its_unit(t))
            && let Err(e) = std::fs::read_to_string(t)
        {
            problems.at("token_file", format!("token_file {}: {e}", t.display()));
        }
        problems.finish()?;
        Ok(c)
    }

    /// The settings that matter, one `name: value` a line, for `check-config`.
    pub fn summary(&self) -> String {
        let mut lines = vec![
            format!("output: {}", self.output.display()),
            format!(
                "collectors: {}",
                if self.collectors.is_empty() {
                    "all".to_string()
                } else {
                    self.collectors.join(", ")
                }
            ),
            format!("timeout_s: {}", self.timeout_s),
            match &self.baseline {
                Some(b) => format!("baseline: {}", b.display()),
                None => "baseline: none".into(),
            },
        ];
        match (&self.report_to, &self.supervisor) {
            (Some(url), Some(s)) => {
                lines.push(format!("report_to: {url} as supervisor {s}"));
                if let Some(t) = &self.token_file {
                    lines.push(format!("token_file: {}", t.display()));
                }
            }
            _ => lines.push("report_to: none".into()),
        }
        lines.join("\n")
    }

    /// The reporting destination, as the command line would give it.
    pub fn report_to(&self) -> crate::report_to::ReportTo {
        crate::report_to::ReportTo {
            url: self.report_to.clone(),
            supervisor: self.supervisor.clone(),
            token_file: self.token_file.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_and_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.toml");
        std::fs::write(&p, include_str!("../audit.example.toml")).unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!((c.timeout_s, c.collectors.len()), (60, 0));
        let bad = [
            (
                "output = \"r.json\"\ncollectors = [\"cpu\", \"gpus\"]\n",
                "unknown collector `gpus`",
            ),
            (
                "output = \"r.json\"\nreport_to = \"http://x\"\n",
                "set both",
            ),
            (
                "output = \"r.json\"\nouptut = 1\n",
                "unknown field `ouptut`",
            ),
            (
                "output = \"r.json\"\nreport_to = \"https://x\"\nsupervisor = \"s\"\n",
                "no TLS",
            ),
            (
                "output = \"r.json\"\nbaseline = \"missing.yaml\"\n",
                "baseline",
            ),
        ];
        for (text, want) in bad {
            std::fs::write(&p, text).unwrap();
            let e = Config::load(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        std::fs::write(
            dir.path().join("b.yaml"),
            "checks:\n  - {name: x, kind: path_exsts, path: /}\n",
        )
        .unwrap();
        std::fs::write(&p, "output = \"r.json\"\nbaseline = \"b.yaml\"\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("b.yaml:2:21: checks[0].kind: unknown kind"),
            "{e}"
        );
        assert!(
            !e.contains("unknown field `path`"),
            "an unknown kind does not make its parameters unknown: {e}"
        );
    }
}
