//! The machine-readable result lines:
//!
//! ```text
//! PADDOCK_CHECK status=PASS check=kvm detail=kvm\ is\ loaded
//! PADDOCK_CHECK status=FAIL check=nvme-free detail=… remediation=…
//! PADDOCK_CHECK summary checks=12 failures=1 warnings=2
//! ```
//!
//! Fields are `key=value`, separated by single spaces. In a value, `\` is written `\\`, a
//! space `\ `, newline `\n`, carriage return `\r`, tab `\t`, and any other control character
//! `\xHH`; nothing else is escaped (`=` may appear: a field splits at its first `=`).
//! [`parse`] reads a line back exactly.

/// Escapes a value.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' => out.push_str("\\ "),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// One line's fields, in order; `None` when it is not a `PADDOCK_CHECK` line or an escape
/// is malformed.
pub fn parse(line: &str) -> Option<Vec<(String, String)>> {
    let rest = line.strip_prefix("PADDOCK_CHECK ")?;
    let mut fields = Vec::new();
    let mut chars = rest.chars().peekable();
    let mut token = String::new();
    let mut tokens: Vec<String> = Vec::new();
    // Split on unescaped spaces, unescaping values as we go.
    let mut in_value = false;
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                tokens.push(std::mem::take(&mut token));
                in_value = false;
            }
            '\\' => {
                let e = chars.next()?;
                match e {
                    '\\' => token.push('\\'),
                    ' ' => token.push(' '),
                    'n' => token.push('\n'),
                    'r' => token.push('\r'),
                    't' => token.push('\t'),
                    'x' => {
                        let h: String = [chars.next()?, chars.next()?].iter().collect();
                        token.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            '=' if !in_value => {
                token.push('\u{0}');
                in_value = true;
            }
            c => token.push(c),
        }
    }
    tokens.push(token);
    for t in tokens {
        match t.split_once('\u{0}') {
            Some((k, v)) => fields.push((k.to_string(), v.to_string())),
            // A bare word (`summary`).
            None => fields.push((t, String::new())),
        }
    }
    Some(fields)
}

/// A result line.
pub fn result(status: &str, check: &str, detail: &str, remediation: Option<&str>) -> String {
    let mut line = format!(
        "PADDOCK_CHECK status={status} check={} detail={}",
        escape(check),
        escape(detail)
    );
    if let Some(r) = remediation {
        line.push_str(&format!(" remediation={}", escape(r)));
    }
    line
}

/// The summary line.
pub fn summary(checks: usize, failures: usize, warnings: usize) -> String {
    format!("PADDOCK_CHECK summary checks={checks} failures={failures} warnings={warnings}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_runbook_shape() {
        let l = result(
            "FAIL",
            "ipoib_netplan",
            "command exited with 1",
            Some("render /etc/netplan/60-ipoib.yaml"),
        );
        assert_eq!(
            l,
            "PADDOCK_CHECK status=FAIL check=ipoib_netplan detail=command\\ exited\\ with\\ 1 remediation=render\\ /etc/netplan/60-ipoib.yaml"
        );
        let f = parse(&l).unwrap();
        assert_eq!(
            f[2],
            ("detail".to_string(), "command exited with 1".to_string())
        );
        assert_eq!(
            parse(&summary(3, 1, 0)).unwrap()[0],
            ("summary".to_string(), String::new())
        );
        assert_eq!(parse("PADDOCK_CHECK a=\\q"), None);
        assert_eq!(parse("OTHER x=1"), None);
        assert_eq!(parse("PADDOCK_CHECK a=b=c").unwrap()[0].1, "b=c");
    }

    proptest! {
        #[test]
        fn round_trip(check in "[a-z0-9_.-]{1,20}", detail in "\\PC*|[ \\\\=\\n\\r\\t\\x00-\\x1f\\x7f]{0,20}", remediation in proptest::option::of("\\PC*")) {
            let line = result("WARN", &check, &detail, remediation.as_deref());
            prop_assert!(!line.contains('\n'));
            let f = parse(&line).unwrap();
            prop_assert_eq!(&f[0], &("status".to_string(), "WARN".to_string()));
            prop_assert_eq!(&f[1].1, &check);
            prop_assert_eq!(&f[2].1, &detail);
            prop_assert_eq!(f.get(3).map(|x| x.1.clone()), remediation);
        }
    }
}
