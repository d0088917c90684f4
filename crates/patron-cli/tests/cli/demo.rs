//! `patron demo` when its address is taken: it says so before it builds or creates anything.

use super::{TempDir, patron};

#[test]
fn demo_on_a_busy_port_fails_at_once_and_creates_nothing() {
    let dir = TempDir::new("demo-busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let port = taken.local_addr().unwrap().port().to_string();
    let club = dir.path("club");
    let out = patron(
        &dir,
        &[
            "demo",
            "--dir",
            club.to_str().unwrap(),
            "--members",
            "5",
            "--months",
            "1",
            "--listen",
            &listen,
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", out.stderr);
    assert!(
        errors[0].contains(&port) && errors[0].contains("--listen"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("ptk_"),
        "no key is made: {}",
        out.stdout
    );
    assert!(!club.exists(), "nothing is created in {}", club.display());
}
