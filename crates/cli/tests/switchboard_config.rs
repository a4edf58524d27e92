//! `paddock-switchboard` configuration with the real binary: the database URL kept in a file.

#![allow(clippy::unwrap_used)]

mod shell;

/// The database URL from a file (`database_url_file`, what the NixOS module's
/// `databaseUrlFile` hands over as a credential): `check-config` reads it (or notes a systemd
/// credential, or skips it with `--no-secrets`) and never prints its password; `user add` and
/// `serve` use it; a database that cannot be opened is named without the password.
#[test]
fn the_database_url_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = shell::free_port();
    let script = format!(
        r##"
set -e
code() {{ set +e; "$@"; echo $?; set -e; }}
mkdir D
printf 'sqlite://%s/D/sb.db?mode=rwc\n' "$PWD" > db-url
printf 'listen = "127.0.0.1:{port}"\ndatabase_url_file = "%s/db-url"\n' "$PWD" > sb.toml
paddock-switchboard check-config --config sb.toml > sb.cc
printf 'database_url_file = "%s/nope"\n' "$PWD" > missing.toml
code paddock-switchboard check-config --config missing.toml 2> missing.err > missing.rc
paddock-switchboard check-config --no-secrets --config missing.toml > nosecrets.cc
printf 'database_url_file = "/run/credentials/paddock-switchboard.service/database-url"\n' > cred.toml
paddock-switchboard check-config --config cred.toml 2> cred.err > /dev/null
# The local PostgreSQL (trust authentication) without that database: refused at once.
printf 'postgres://paddock:hunter2@127.0.0.1:5432/paddock_no_such_db\n' > pg-url
printf 'database_url_file = "%s/pg-url"\n' "$PWD" > pg.toml
paddock-switchboard check-config --config pg.toml > pg.cc
printf 'database_url = "sqlite://x"\ndatabase_url_file = "%s/db-url"\n' "$PWD" > both.toml
code paddock-switchboard check-config --config both.toml 2> both.err > both.rc

TOKEN=$(paddock-switchboard user add admin --privilege admin --config sb.toml | tail -1)
paddock-switchboard serve --config sb.toml > serve.out 2> serve.err &
SERVER=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:{port}/healthz > /dev/null && break; sleep 0.1; done
curl -sf -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{port}/api/v1/users > users.json
kill $SERVER
code paddock-switchboard serve --config pg.toml > pgserve.out 2> pgserve.err
"##
    );
    let out = shell::run(dir.path(), &script);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert!(out.status.success(), "{out:?}\n{}", read("serve.err"));
    assert!(read("sb.cc").contains("/D/sb.db"), "{}", read("sb.cc"));
    assert_eq!(read("missing.rc").trim(), "1");
    assert!(
        read("missing.err").contains("nope"),
        "{}",
        read("missing.err")
    );
    assert!(
        read("nosecrets.cc").contains("(not read)"),
        "{}",
        read("nosecrets.cc")
    );
    assert!(
        read("cred.err").contains("is a systemd credential, readable only inside the unit"),
        "{}",
        read("cred.err")
    );
    let pg = read("pg.cc");
    assert!(
        pg.contains("postgres://paddock@127.0.0.1:5432/paddock_no_such_db"),
        "{pg}"
    );
    assert!(!pg.contains("hunter2"), "{pg}");
    assert_eq!(read("both.rc").trim(), "1");
    assert!(
        read("both.err").contains("not both"),
        "{}",
        read("both.err")
    );
    // user add and serve used the file's SQLite database.
    assert!(
        read("users.json").contains("admin"),
        "{}",
        read("users.json")
    );
    assert!(dir.path().join("D/sb.db").exists());
    // A database that cannot be opened: named, without the password.
    assert_eq!(read("pgserve.out").trim(), "1");
    let err = read("pgserve.err");
    assert!(err.contains("postgres://paddock@127.0.0.1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
