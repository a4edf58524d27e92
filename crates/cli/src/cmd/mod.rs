//! One module per subcommand.

pub mod demo_vm;
pub mod deploy;
pub mod image;
pub mod job;
pub mod login;
pub mod mirror_progress;
pub mod supervisor;
pub mod up;

/// Prints a JSON value, pretty.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A table: each column as wide as its widest cell (in characters), two spaces apart; the last
/// column is not padded; the columns in `right` (numbers) are aligned right.
pub fn format_table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = headers.len().saturating_sub(1);
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate().take(headers.len()) {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right.contains(&i) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i < last {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_columns_line_up() {
        let rows = vec![
            vec![
                "a-very-long-label-longer-than-the-old-32-columns".to_string(),
                "1".into(),
                "x".into(),
            ],
            vec!["b".to_string(), "123".into(), "y".into()],
        ];
        let t = super::format_table(&["LABEL", "REVISION", "ID"], &rows, &[1]);
        let lines: Vec<&str> = t.lines().collect();
        let col = lines[0].find("ID").unwrap();
        for l in &lines[1..] {
            assert_eq!(l.rfind(' ').map(|i| i + 1), Some(col), "{t}");
        }
        assert!(lines[1].contains("         1  x"), "{t}");
        assert!(lines[2].starts_with("b  "), "{t}");
    }
}
