//! systemd credentials (`LoadCredential=`): a unit reads them at
//! `/run/credentials/<unit>.service/<name>`, a directory that exists only inside that unit, so
//! every service's `check-config`, run from a shell or at build time, says it cannot read them
//! instead of failing.

use std::path::Path;

/// Where systemd puts a unit's credentials.
pub const DIR: &str = "/run/credentials/";

/// True when `path` names a systemd credential that is not there (we are outside its unit).
pub fn outside_its_unit(path: &Path) -> bool {
    path.starts_with(DIR) && !path.exists()
}

/// The note `check-config` prints for such a file, `field` naming the setting.
pub fn not_checked(field: &str, path: &Path) -> String {
    format!(
        "note: {field} {} is a systemd credential, readable only inside the unit; not checked",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absent_files_under_the_credentials_directory() {
        assert!(outside_its_unit(Path::new(
            "/run/credentials/paddock-test-none.service/token"
        )));
        assert!(!outside_its_unit(Path::new("/etc/paddock/token")));
        assert!(!outside_its_unit(Path::new("relative/run/credentials/x")));
        assert_eq!(
            not_checked("token_file", Path::new("/run/credentials/u.service/token")),
            "note: token_file /run/credentials/u.service/token is a systemd credential, readable only inside the unit; not checked"
        );
    }
}
