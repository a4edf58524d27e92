//! `paddock-audit serve`: the latest report as a readable page (`/`) and as JSON
//! (`/report.json`), re-read from its file on every request (a new `collect --output`
//! shows at once). For the live audit ISO: an operator points a browser at the machine.
//! One self-contained page: inline style, no script, no external assets.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The page of a report.
///
/// The report is a file as read (any format version, possibly hand-edited), so it is
/// handled as arbitrary JSON: every field is read by name and a missing one shows as `—`.
pub fn page(report: &Value) -> String {
    let verdict = report["summary"]["verdict"].as_str().unwrap_or("?");
    let colour = match verdict {
        "OK" => "#1b7f3b",
        "WARNING" => "#9a6700",
        _ => "#b42318",
    };
    let mut h = String::new();
    h.push_str("<!doctype html><html><head><meta charset=\"utf-8\"><title>");
    h.push_str(&esc(&format!(
        "{} — {verdict}",
        text(&report["identity"]["hostname"])
    )));
    h.push_str("</title><style>body{font:15px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:13px}.v{font-size:2em;font-weight:bold}</style></head><body>");
    h.push_str(&format!(
        "<div class=\"v\" style=\"color:{colour}\">{}</div><p>{} failures, {} warnings · {} · format {}</p>",
        esc(verdict),
        text(&report["summary"]["failures"]),
        text(&report["summary"]["warnings"]),
        esc(&text(&report["host"])),
        esc(&text(&report["format"]))
    ));
    h.push_str("<h2>Identity</h2><table>");
    if let Some(id) = report["identity"].as_object() {
        for (k, v) in id {
            let value = match v {
                Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
                v => text(v),
            };
            h.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                esc(k),
                esc(&value)
            ));
        }
    }
    h.push_str("</table><h2>Findings</h2>");
    let findings = report["summary"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if findings.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str(
            "<table><tr><th>severity</th><th>collector</th><th>code</th><th>message</th></tr>",
        );
        for f in &findings {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&f["severity"])),
                esc(&text(&f["collector"])),
                esc(&text(&f["code"])),
                esc(&text(&f["message"]))
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Collectors</h2><table><tr><th>collector</th><th>status</th><th>ms</th><th>error</th></tr>");
    if let Some(c) = report["collectors"].as_object() {
        for (name, run) in c {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                esc(&text(&run["status"])),
                esc(&text(&run["duration_ms"])),
                esc(run["error"].as_str().unwrap_or(""))
            ));
        }
    }
    h.push_str("</table><h2>Hardware</h2>");
    if let Some(hw) = report["hardware"].as_object() {
        for (name, section) in hw.iter().filter(|(_, s)| !s.is_null()) {
            h.push_str(&format!(
                "<details><summary>{}</summary><pre>{}</pre></details>",
                esc(name),
                esc(&serde_json::to_string_pretty(section).unwrap_or_default())
            ));
        }
    }
    h.push_str("<p><a href=\"/report.json\">report.json</a></p></body></html>\n");
    h
}

/// The report, or the status and message to answer with.
fn read(path: &PathBuf) -> Result<Value, (StatusCode, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no report yet at {}: {e}\n", path.display()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: not a report: {e}\n", path.display()),
        )
    })
}

async fn html(State(path): State<PathBuf>) -> Response {
    match read(&path) {
        Ok(r) => Html(page(&r)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn json(State(path): State<PathBuf>) -> Response {
    match read(&path) {
        Ok(r) => ([(header::CONTENT_TYPE, "application/json")], r.to_string()).into_response(),
        Err(e) => e.into_response(),
    }
}

pub fn router(report: PathBuf) -> Router {
    Router::new()
        .route("/", get(html))
        .route("/report.json", get(json))
        .with_state(report)
}

/// Serves until the process is stopped; over TLS with `tls` (plain HTTP otherwise).
pub fn serve(
    report: PathBuf,
    listen: SocketAddr,
    tls: Option<paddock_http::TlsFiles>,
) -> Result<(), String> {
    let tls = tls
        .map(paddock_http::TlsServer::new)
        .transpose()
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        eprintln!(
            "paddock-audit: serving {} on {scheme}://{}/",
            report.display(),
            listen
        );
        let limits = paddock_http::Limits::default();
        paddock_http::serve_with(
            listener,
            router(report),
            limits,
            tls,
            std::future::pending(),
        )
        .await
        .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_escapes_what_it_shows() {
        let r = serde_json::json!({
            "format": "paddock-audit/1", "host": "local",
            "identity": {"hostname": "<script>x</script>", "macs": ["02:00:00:00:00:01"]},
            "collectors": {"gpu": {"status": "failed", "duration_ms": 3, "error": "a & b"}},
            "hardware": {"cpu": {"model": "EPYC <9534>"}, "gpu": null},
            "summary": {"verdict": "FAILED", "failures": 1, "warnings": 0,
                        "findings": [{"severity": "failure", "collector": "gpu", "code": "gpu.ecc_uncorrected", "message": "3 errors"}]}
        });
        let p = super::page(&r);
        assert!(p.contains("&lt;script&gt;x&lt;/script&gt;") && !p.contains("<script>"));
        assert!(p.contains("a &amp; b") && p.contains("EPYC &lt;9534&gt;"));
        assert!(p.contains("gpu.ecc_uncorrected") && p.contains(">FAILED<"));
        assert!(
            !p.contains("http://") && !p.contains("https://"),
            "no external assets"
        );
    }
}
