//! The deployments DB's limits and the refusals both readers (a commit's tree in git, a
//! directory on disk) apply to a file before reading it: symbolic links and anything but a
//! regular file, files over the size limits. A refused file rejects the whole state. See
//! docs/deployments.md ("Limits").

use super::diagnostic::{Diagnostic, Pos};

/// The largest file under `db/` that is read: 4 MiB (a site of some 40,000 supervisors).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most all the files under `db/` may come to together: 16 MiB.
pub const MAX_DB_BYTES: u64 = 16 << 20;
/// The largest request `POST /api/v1/deployment` takes (the state as JSON, with its commit
/// and generation), whatever the switchboard's `max_body_bytes`: 64 MiB. The deploy daemon
/// checks a state's size against it before posting.
pub const MAX_STATE_JSON_BYTES: usize = 64 << 20;
/// The most errors a rejection report carries; the total is sent with them.
pub const MAX_REPORTED_ERRORS: usize = 100;
/// The longest error line a rejection report carries; a longer one is cut.
pub const MAX_ERROR_LINE_BYTES: usize = 1024;

const START: Pos = Pos { line: 1, column: 1 };

/// `file` is a symbolic link (never followed, whatever it points at).
pub fn symlink(file: &str) -> Diagnostic {
    not_regular(file, "a symbolic link")
}

/// `file` is something other than a regular file (`what`: "a submodule", "a FIFO", …).
pub fn not_regular(file: &str, what: &str) -> Diagnostic {
    Diagnostic::new(
        file,
        START,
        "",
        format!("{what}; the deployments DB takes regular files only"),
    )
}

/// `file` is not UTF-8 text.
pub fn not_text(file: &str) -> Diagnostic {
    Diagnostic::new(file, START, "", "not UTF-8 text")
}

/// `file`, read, turned out over the limit of one file (it grew after its size was taken).
pub fn too_big(file: &str, size: u64) -> Diagnostic {
    Diagnostic::new(
        file,
        START,
        "",
        format!(
            "{size} bytes, over the {} limit of one file",
            mib(MAX_FILE_BYTES)
        ),
    )
}

/// Which of `files` (`(path, size)`, sorted by path) may be read: each within
/// [`MAX_FILE_BYTES`], as long as the ones read stay within [`MAX_DB_BYTES`] together. An
/// error for each file over the per-file limit, and one for the file at which the total goes
/// over (that file and the ones after it are not read).
pub fn budget(files: &[(String, u64)]) -> (Vec<bool>, Vec<Diagnostic>) {
    let mut read = vec![false; files.len()];
    let mut errors = Vec::new();
    let within: u64 = files
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s <= MAX_FILE_BYTES)
        .sum();
    let mut total: u64 = 0;
    let mut over = false;
    for (i, (path, size)) in files.iter().enumerate() {
        if *size > MAX_FILE_BYTES {
            errors.push(too_big(path, *size));
            continue;
        }
        total += size;
        if over {
            continue;
        }
        if total > MAX_DB_BYTES {
            over = true;
            errors.push(Diagnostic::new(
                path,
                START,
                "",
                format!(
                    "the files under db/ come to {within} bytes, over the {} limit of the whole DB (reached at this file)",
                    mib(MAX_DB_BYTES)
                ),
            ));
            continue;
        }
        read[i] = true;
    }
    (read, errors)
}

/// `line`, cut to at most [`MAX_ERROR_LINE_BYTES`] bytes (at a character boundary, ending
/// with `…`).
pub fn cut_line(line: &str) -> String {
    if line.len() <= MAX_ERROR_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_ERROR_LINE_BYTES - '…'.len_utf8();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// `n` bytes as whole MiB (the limits are whole MiB).
fn mib(n: u64) -> String {
    format!("{} MiB", n >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_per_file_and_in_all() {
        let f = |p: &str, s: u64| (p.to_string(), s);
        let (read, errors) = budget(&[f("db/a.yaml", 10), f("db/b.yaml", 52_428_800)]);
        assert_eq!(read, vec![true, false]);
        assert_eq!(
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec!["db/b.yaml:1:1: 52428800 bytes, over the 4 MiB limit of one file"]
        );
        let three = MAX_FILE_BYTES - 1;
        let files: Vec<_> = (0..5).map(|i| f(&format!("db/s{i}.yaml"), three)).collect();
        let (read, errors) = budget(&files);
        assert_eq!(read, vec![true, true, true, true, false]);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().starts_with(&format!(
                "db/s4.yaml:1:1: the files under db/ come to {} bytes, over the 16 MiB limit",
                5 * three
            )),
            "{}",
            errors[0]
        );
        assert_eq!(budget(&[]), (vec![], vec![]));
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        assert_eq!(cut_line("short"), "short");
        let long = "é".repeat(MAX_ERROR_LINE_BYTES);
        let cut = cut_line(&long);
        assert!(
            cut.len() <= MAX_ERROR_LINE_BYTES && cut.ends_with('…'),
            "{}",
            cut.len()
        );
    }
}
