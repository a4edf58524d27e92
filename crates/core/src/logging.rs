//! The log set-up of the service binaries (`paddock-switchboard`, `paddock-supervisor`,
//! `paddock up`, `paddock-imagestore`, `paddock-deploy`, `paddock-audit`): lines on standard
//! error, levels from `RUST_LOG` (else a default), colour only when standard error is a terminal
//! and `NO_COLOR` is unset or empty (never in a file, a pipe or the journal); and, whatever `RUST_LOG` says, libraries that log message contents are held
//! to levels where they do not ([`CAPPED`]), so no secret reaches a log at any level.

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Log targets (a crate, with its modules) and the most detailed level each may log at.
/// - `tungstenite` logs every frame it reads or writes at `trace`, payload included (a
///   `start_job` carries secret parameters), and the client handshake request with its
///   `Authorization` header (the supervisor token).
/// - `tokio_tungstenite`, `hyper`, `hyper_util`, `h2`, `reqwest`: nothing with contents above
///   `trace`; held there so that a later version logging more at `trace` cannot leak.
/// - `axum::rejection` logs rejection texts at `trace`, and a JSON error quotes the value it
///   could not take.
///
/// `sqlx` is not capped: it logs statements at `debug`, never the values bound to them.
pub const CAPPED: &[(&str, Level)] = &[
    ("tungstenite", Level::DEBUG),
    ("tokio_tungstenite", Level::DEBUG),
    ("hyper", Level::DEBUG),
    ("hyper_util", Level::DEBUG),
    ("h2", Level::DEBUG),
    ("reqwest", Level::DEBUG),
    ("axum::rejection", Level::DEBUG),
];

/// Whether an event or span may be logged at all under [`CAPPED`]. Checked after `RUST_LOG`,
/// so no directive (`tungstenite=trace`, `tungstenite::protocol=trace`, `trace`) lifts a cap.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    CAPPED.iter().all(|(prefix, most)| {
        let under = target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        !under || meta.level() <= most
    })
}

/// Whether log lines are coloured: only on a terminal, and not when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org/>).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// How log lines are written, from `PADDOCK_LOG_FORMAT`: `text` (the default) or `json` (one
/// JSON object a line, for a log collector). Another value is refused with a warning on
/// standard error, and text is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// The format `PADDOCK_LOG_FORMAT`'s value (`value`) asks for; `Err` names a bad one.
    pub fn from_env(value: Option<&std::ffi::OsStr>) -> Result<Format, String> {
        match value.map(|v| v.to_str()) {
            None => Ok(Format::Text),
            Some(Some("" | "text")) => Ok(Format::Text),
            Some(Some("json")) => Ok(Format::Json),
            Some(v) => Err(format!(
                "PADDOCK_LOG_FORMAT: {:?} is neither text nor json; writing text",
                v.unwrap_or("(not UTF-8)")
            )),
        }
    }
}

/// Installs the logger: `RUST_LOG`, else `default` (an `EnvFilter` directive string such as
/// `info,sqlx=warn`), with [`CAPPED`] on top, in the [`Format`] `PADDOCK_LOG_FORMAT` asks for.
/// Records of the `log` crate (tungstenite logs through it) go through the same filter. A
/// second call does nothing.
pub fn init(default: &str) {
    let filter = || {
        let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        env.and(filter_fn(allowed).with_max_level_hint(LevelFilter::TRACE))
    };
    let format = Format::from_env(std::env::var_os("PADDOCK_LOG_FORMAT").as_deref())
        .unwrap_or_else(|warning| {
            eprintln!("warning: {warning}");
            Format::Text
        });
    let registry = tracing_subscriber::registry();
    let _ = match format {
        Format::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(filter()),
            )
            .try_init(),
        Format::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(colour(
                        std::io::IsTerminal::is_terminal(&std::io::stderr()),
                        std::env::var_os("NO_COLOR").as_deref(),
                    ))
                    .with_filter(filter()),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::callsite::Identifier;
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;

    struct Cs;
    impl tracing::callsite::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unreachable!()
        }
    }
    static CS: Cs = Cs;

    fn meta(target: &'static str, level: Level) -> Metadata<'static> {
        Metadata::new(
            "event",
            target,
            level,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&CS)),
            Kind::EVENT,
        )
    }

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        use std::ffi::OsStr;
        assert_eq!(Format::from_env(None), Ok(Format::Text));
        assert_eq!(Format::from_env(Some(OsStr::new(""))), Ok(Format::Text));
        assert_eq!(Format::from_env(Some(OsStr::new("text"))), Ok(Format::Text));
        assert_eq!(Format::from_env(Some(OsStr::new("json"))), Ok(Format::Json));
        let e = Format::from_env(Some(OsStr::new("yaml"))).unwrap_err();
        assert!(e.contains("\"yaml\" is neither text nor json"), "{e}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new(""))));
    }

    #[test]
    fn payload_loggers_are_capped_and_others_are_not() {
        assert!(!allowed(&meta("tungstenite::protocol", Level::TRACE)));
        assert!(!allowed(&meta("tungstenite", Level::TRACE)));
        assert!(allowed(&meta("tungstenite::protocol", Level::DEBUG)));
        assert!(!allowed(&meta("tokio_tungstenite", Level::TRACE)));
        assert!(!allowed(&meta("axum::rejection", Level::TRACE)));
        assert!(allowed(&meta("axum::serve", Level::TRACE)));
        assert!(allowed(&meta("tungstenite_other", Level::TRACE)));
        assert!(allowed(&meta("paddock_switchboard::api", Level::TRACE)));
        assert!(allowed(&meta("sqlx::query", Level::TRACE)));
    }
}
