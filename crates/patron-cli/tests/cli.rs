//! The `patron` binary as a user runs it: real processes, real SQLite files in temp folders.
//! (The storage contract tests cover PostgreSQL; these keep to SQLite to stay fast.)

// A test target is always built with cfg(test); saying so lets clippy.toml's test
// allowances (unwrap, expect, panic) cover the helpers too, not only the #[test] functions.
#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

#[path = "cli/analyze.rs"]
mod analyze;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/jobs.rs"]
mod jobs;
#[path = "cli/program.rs"]
mod program;
#[path = "cli/tiers.rs"]
mod tiers;

const EXAMPLES: &[&str] = &[
    "coffee-chain.toml",
    "israeli-pharmacy.toml",
    "persian-retail.toml",
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/programs")
}

/// A fresh folder per test, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("patron-cli-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
    fn db(&self) -> String {
        format!("sqlite://{}", self.path("patron.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `patron ARGS` in `dir`, with none of the user's PATRON_* settings.
fn patron(dir: &TempDir, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_patron"))
        .args(args)
        .current_dir(&dir.0)
        .env_remove("PATRON_DATABASE_URL")
        .env_remove("PATRON_CONFIG")
        .env_remove("PATRON_LOG")
        .env_remove("PATRON_LISTEN")
        .output()
        .unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `patron --db DIR/patron.db ARGS`.
fn patron_db(dir: &TempDir, args: &[&str]) -> Output {
    let db = dir.db();
    let mut all = vec!["--db", db.as_str()];
    all.extend_from_slice(args);
    patron(dir, &all)
}

fn apply_coffee(dir: &TempDir, tenant: &str) {
    let file = examples_dir().join("coffee-chain.toml");
    let out = patron_db(
        dir,
        &[
            "program",
            "apply",
            file.to_str().unwrap(),
            "--tenant",
            tenant,
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn every_command_has_help() {
    let dir = TempDir::new("help");
    let commands: &[&[&str]] = &[
        &[],
        &["migrate"],
        &["program"],
        &["program", "validate"],
        &["program", "apply"],
        &["program", "show"],
        &["program", "history"],
        &["members"],
        &["members", "import"],
        &["cards"],
        &["cards", "issue-batch"],
        &["ledger"],
        &["ledger", "verify"],
        &["jobs"],
        &["jobs", "run"],
        &["tenants"],
        &["tenants", "list"],
        &["demo"],
        &["serve"],
        &["keys"],
        &["keys", "create"],
        &["keys", "list"],
        &["keys", "revoke"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = patron(&dir, &args);
        assert_eq!(out.code, 0, "patron {args:?}: {out:?}");
        assert!(
            out.stdout.contains("Usage: patron"),
            "patron {args:?}: {}",
            out.stdout
        );
    }
    assert!(
        !dir.path("patron.db").exists(),
        "--help must not create a database"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = TempDir::new("usage");
    assert_eq!(patron(&dir, &["no-such-command"]).code, 2);
    assert_eq!(
        patron(&dir, &["ledger", "verify"]).code,
        2,
        "needs --tenant or --all-tenants"
    );
    assert_eq!(
        patron(
            &dir,
            &["cards", "issue-batch", "--tenant", "t", "--count", "0"]
        )
        .code,
        2
    );
}

#[test]
fn every_example_program_validates() {
    let dir = TempDir::new("examples");
    for name in EXAMPLES {
        let file = examples_dir().join(name);
        let out = patron(&dir, &["program", "validate", file.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{name}: {out:?}");
        assert!(out.stdout.contains(": ok: "), "{name}: {}", out.stdout);
    }
    assert!(
        !dir.path("patron.db").exists(),
        "validate needs no database"
    );
}

#[test]
fn a_broken_program_is_reported_with_file_line_and_column() {
    let dir = TempDir::new("broken");
    let source = std::fs::read_to_string(examples_dir().join("coffee-chain.toml"))
        .unwrap()
        .replace(
            "time_zone = \"America/New_York\"",
            "time_zone = \"America/New_Yrok\"",
        );
    let file = dir.write("club.toml", &source);
    let line = source
        .lines()
        .position(|l| l.starts_with("time_zone"))
        .unwrap()
        + 1;
    let out = patron(&dir, &["program", "validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    let expected = format!("{}:{line}:13: error:", file.display());
    assert!(
        out.stderr.contains(&expected),
        "wanted {expected:?} in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("^"),
        "a caret under the column: {}",
        out.stderr
    );

    // A TOML syntax error is located too.
    let file = dir.write("syntax.toml", "[club]\nname = \"x\n");
    let out = patron(&dir, &["program", "validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!("{}:2:", file.display())),
        "{}",
        out.stderr
    );

    // Applying it changes nothing: not even a database is created.
    let out = patron_db(
        &dir,
        &[
            "program",
            "apply",
            file.to_str().unwrap(),
            "--tenant",
            "club",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("nothing was applied"), "{}", out.stderr);
    assert!(!dir.path("patron.db").exists());
}

#[test]
fn apply_then_show_round_trips_and_history_lists_the_diff() {
    let dir = TempDir::new("apply");
    let original = std::fs::read_to_string(examples_dir().join("coffee-chain.toml")).unwrap();
    let file = dir.write("club.toml", &original);
    let path = file.to_str().unwrap();

    let out = patron_db(
        &dir,
        &[
            "program",
            "apply",
            path,
            "--tenant",
            "northside",
            "--actor",
            "alice",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("stored program version 1"),
        "{}",
        out.stdout
    );
    let out = patron_db(&dir, &["program", "apply", path, "--tenant", "northside"]);
    assert!(
        out.stdout.contains("unchanged, version 1"),
        "{}",
        out.stdout
    );

    let changed = original.replace("threshold = 30", "threshold = 40");
    dir.write("club.toml", &changed);
    let out = patron_db(
        &dir,
        &[
            "program",
            "apply",
            path,
            "--tenant",
            "northside",
            "--actor",
            "bob",
        ],
    );
    assert!(
        out.stdout.contains("stored program version 2"),
        "{}",
        out.stdout
    );

    let out = patron_db(&dir, &["program", "show", "--tenant", "northside"]);
    assert_eq!(out.code, 0, "{out:?}");
    let (header, body) = out.stdout.split_once('\n').unwrap();
    assert!(
        header.starts_with("# ") && header.contains("version 2") && header.contains("by bob"),
        "{header}"
    );
    assert_eq!(body, changed);
    let out = patron_db(
        &dir,
        &["program", "show", "--tenant", "northside", "--version", "1"],
    );
    assert_eq!(out.stdout.split_once('\n').unwrap().1, original);
    let out = patron_db(
        &dir,
        &["program", "show", "--tenant", "northside", "--version", "7"],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no program version 7"),
        "{}",
        out.stderr
    );

    let out = patron_db(&dir, &["program", "history", "--tenant", "northside"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("version 2") && out.stdout.contains("by bob"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("-threshold = 30") && out.stdout.contains("+threshold = 40"),
        "{}",
        out.stdout
    );

    let out = patron_db(&dir, &["tenants", "list"]);
    assert!(
        out.stdout.contains("northside") && out.stdout.contains("v2"),
        "{}",
        out.stdout
    );
}

#[test]
fn import_reports_bad_rows_by_line_and_refuses_unknown_columns() {
    let dir = TempDir::new("import");
    apply_coffee(&dir, "club");
    let csv = dir.write(
        "members.csv",
        "external_id,name,email,phone,birthday,consent_email\n\
         M1,Ann Lee,ann@example.com,+12125550101,1990-01-02,true\n\
         M2,Bob,not-an-email,,,false\n\
         M3,Cy,cy@example.com,,,\n\
         M4,Di,di@example.com,,2999-01-01,yes\n",
    );
    let path = csv.to_str().unwrap();
    let name = csv.display().to_string();

    // Consent columns need the consent text: refused whole, nothing imported.
    let out = patron_db(&dir, &["members", "import", path, "--tenant", "club"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!("{name}:1: ")),
        "{}",
        out.stderr
    );

    let out = patron_db(
        &dir,
        &[
            "members",
            "import",
            path,
            "--tenant",
            "club",
            "--consent-text",
            "Email me offers",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!("{name}:3: invalid email")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{name}:5: invalid birthday")),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("imported 2, rejected 2 of 4 rows"),
        "{}",
        out.stdout
    );

    let unknown = dir.write("unknown.csv", "external_id,colour\nX1,red\n");
    let out = patron_db(
        &dir,
        &[
            "members",
            "import",
            unknown.to_str().unwrap(),
            "--tenant",
            "club",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}:1: unknown column \"colour\"",
            unknown.display()
        )),
        "{}",
        out.stderr
    );
    let out = patron_db(&dir, &["tenants", "list"]);
    let row = out.stdout.lines().find(|l| l.starts_with("club")).unwrap();
    assert_eq!(
        row.split_whitespace().nth(2),
        Some("2"),
        "still 2 members: {row}"
    );

    let out = patron_db(
        &dir,
        &[
            "members",
            "import",
            path,
            "--tenant",
            "nobody",
            "--consent-text",
            "x",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("tenant \"nobody\" not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn issued_cards_are_valid_numbers_in_one_batch() {
    let dir = TempDir::new("cards");
    apply_coffee(&dir, "club");
    let file = dir.path("batch.csv");
    let out = patron_db(
        &dir,
        &[
            "cards",
            "issue-batch",
            "--tenant",
            "club",
            "--count",
            "25",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("issued batch"), "{}", out.stderr);
    let mut reader = csv::Reader::from_path(&file).unwrap();
    assert_eq!(reader.headers().unwrap(), vec!["number", "batch_id"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 25);
    for row in &rows {
        assert!(
            patron_domain::card::is_valid_card_number(&row[0]),
            "{}",
            &row[0]
        );
        assert_eq!(&row[1], &rows[0][1]);
    }

    let out = patron_db(
        &dir,
        &["cards", "issue-batch", "--tenant", "club", "--count", "2"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a header and two cards on stdout: {}",
        out.stdout
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| patron_domain::card::is_valid_card_number(l.split(',').next().unwrap()))
    );
}

#[test]
fn ledger_verify_and_jobs_on_a_fresh_tenant() {
    let dir = TempDir::new("verify");
    let out = patron_db(&dir, &["migrate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("applied 0001_init"), "{}", out.stdout);
    assert!(
        patron_db(&dir, &["migrate"])
            .stdout
            .contains("already up to date")
    );

    apply_coffee(&dir, "club");
    let out = patron_db(&dir, &["ledger", "verify", "--tenant", "club"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("clean"), "{}", out.stdout);
    assert_eq!(
        patron_db(&dir, &["ledger", "verify", "--all-tenants"]).code,
        0
    );
    assert_eq!(
        patron_db(&dir, &["ledger", "verify", "--tenant", "other"]).code,
        1
    );

    let out = patron_db(&dir, &["jobs", "run", "--tenant", "club"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("points expired"), "{}", out.stdout);
}

#[test]
fn the_database_url_comes_from_flag_then_environment_then_config_file() {
    let dir = TempDir::new("config");
    let config = dir.write(
        "patron.toml",
        "# settings\ndatabase_url = \"sqlite://from-file.db\"\n",
    );
    let config = config.to_str().unwrap();
    let out = patron(&dir, &["--config", config, "migrate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("sqlite://from-file.db"),
        "{}",
        out.stdout
    );
    let out = patron(
        &dir,
        &[
            "--config",
            config,
            "--db",
            "sqlite://from-flag.db",
            "migrate",
        ],
    );
    assert!(
        out.stdout.contains("sqlite://from-flag.db"),
        "{}",
        out.stdout
    );
    let out = Command::new(env!("CARGO_BIN_EXE_patron"))
        .args(["--config", config, "migrate"])
        .current_dir(&dir.0)
        .env("PATRON_DATABASE_URL", "sqlite://from-env.db")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("sqlite://from-env.db"));

    let bad = dir.write(
        "bad.toml",
        "database_url = \"sqlite://x.db\"\ndatabse = 1\n",
    );
    let out = patron(&dir, &["--config", bad.to_str().unwrap(), "migrate"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{}:2:1: unknown setting `databse`", bad.display())),
        "{}",
        out.stderr
    );

    let server = dir.write(
        "server.toml",
        "listen = \"127.0.0.1:9\"\npage_size_max = 20\nbody_limit_bytes = -1\n",
    );
    let out = patron(&dir, &["--config", server.to_str().unwrap(), "migrate"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}:3:20: `body_limit_bytes` must be",
            server.display()
        )),
        "{}",
        out.stderr
    );
    let out = Command::new(env!("CARGO_BIN_EXE_patron"))
        .args(["migrate"])
        .current_dir(&dir.0)
        .env("PATRON_PAGE_SIZE_MAX", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PATRON_PAGE_SIZE_MAX"));
    let out = Command::new(env!("CARGO_BIN_EXE_patron"))
        .args(["migrate"])
        .current_dir(&dir.0)
        .env("PATRON_REQUEST_TIMEOUT_SECONDS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("PATRON_REQUEST_TIMEOUT_SECONDS=\"0\": must be 1 to 3600 seconds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_small_demo_builds_verifies_and_is_reused() {
    let dir = TempDir::new("demo");
    let demo = dir.path("club");
    let demo = demo.to_str().unwrap();
    let out = patron(
        &dir,
        &[
            "demo",
            "--dir",
            demo,
            "--members",
            "50",
            "--months",
            "2",
            "--seed",
            "7",
            "--no-serve",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("50 members"), "{}", out.stdout);
    assert!(out.stdout.contains(": clean"), "{}", out.stdout);
    assert!(
        out.stdout.contains("ledger verify --tenant demo"),
        "{}",
        out.stdout
    );

    let db = format!("sqlite://{demo}/patron.db");
    let out = patron(&dir, &["--db", &db, "ledger", "verify", "--tenant", "demo"]);
    assert_eq!(out.code, 0, "{out:?}");

    // Two months of purchases, refunds and redemptions: the statistics kept purchase by
    // purchase are exactly what a rebuild from the history computes.
    let out = patron(
        &dir,
        &[
            "--db",
            &db,
            "analyze",
            "rebuild-stats",
            "--tenant",
            "demo",
            "--dry-run",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");

    let out = patron(
        &dir,
        &[
            "demo",
            "--dir",
            demo,
            "--members",
            "50",
            "--months",
            "2",
            "--no-serve",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("reusing"), "{}", out.stderr);
    assert!(
        out.stdout
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("ptk_"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("/v1/purchases"), "{}", out.stdout);
    assert!(out.stdout.contains("/openapi.json"), "{}", out.stdout);
}

/// `patron keys create` prints the key alone on its last line of stdout.
fn create_key(dir: &TempDir, tenant: &str, scope: &str) -> String {
    let out = patron_db(
        dir,
        &[
            "keys", "create", "--tenant", tenant, "--scope", scope, "--name", "till 3",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let key = out.stdout.trim_end().lines().last().unwrap().to_string();
    assert!(key.starts_with("ptk_"), "{out:?}");
    key
}

#[test]
fn keys_are_created_listed_and_revoked() {
    let dir = TempDir::new("keys");
    apply_coffee(&dir, "club");
    let key = create_key(&dir, "club", "pos");
    let out = patron_db(&dir, &["keys", "list", "--tenant", "club"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("till 3"), "{}", out.stdout);
    assert!(out.stdout.contains(&key[..12]), "{}", out.stdout);
    assert!(!out.stdout.contains(&key), "the secret is shown only once");
    let row = out.stdout.lines().nth(1).unwrap();
    let id = row.split_whitespace().next().unwrap().to_string();
    assert!(
        row.contains("pos") && row.trim_end().ends_with('-'),
        "{row}"
    );

    let out = patron_db(&dir, &["keys", "revoke", "--tenant", "club", &id]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = patron_db(&dir, &["keys", "list", "--tenant", "club"]);
    assert!(
        !out.stdout.lines().nth(1).unwrap().trim_end().ends_with('-'),
        "{}",
        out.stdout
    );
    let out = patron_db(&dir, &["keys", "revoke", "--tenant", "club", &id]);
    assert_eq!(out.code, 1, "revoking twice: {out:?}");

    let out = patron_db(
        &dir,
        &["keys", "create", "--tenant", "club", "--scope", "root"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("admin"), "{}", out.stderr);
    let out = patron_db(
        &dir,
        &["keys", "create", "--tenant", "nobody", "--scope", "read"],
    );
    assert_eq!(out.code, 1, "{out:?}");
}

/// Sends one HTTP/1.1 GET and returns the status code, or None if the server is not up.
fn http_get(port: u16, path: &str, key: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Kills the server when the test ends, even if it fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_answers_health_and_authenticated_requests() {
    let dir = TempDir::new("serve");
    apply_coffee(&dir, "club");
    let key = create_key(&dir, "club", "read");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_patron"))
            .args(["--db", &dir.db(), "serve", "--listen", &listen])
            .current_dir(&dir.0)
            .env_remove("PATRON_CONFIG")
            .env_remove("PATRON_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let health = loop {
        if let Some(status) = http_get(port, "/healthz", None) {
            break status;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("patron serve exited early: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "patron serve did not answer within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(health, 200);
    assert_eq!(http_get(port, "/v1/members", Some(&key)), Some(200));
    assert_eq!(http_get(port, "/v1/members", None), Some(401));
}
