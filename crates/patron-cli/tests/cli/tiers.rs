//! `patron members set-tier`: the manual tier floor from the command line, refused with a
//! clear message for an unknown tier or member.

use super::{TempDir, apply_coffee, patron, patron_db};

#[test]
fn set_tier_explains_what_it_refuses() {
    let dir = TempDir::new("set-tier");
    let help = patron(&dir, &["members", "set-tier", "--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("--until"), "{}", help.stdout);
    apply_coffee(&dir, "club");
    let unknown = patron_db(
        &dir,
        &[
            "members", "set-tier", "--tenant", "club", "mem_x", "platinum", "--reason", "vip",
        ],
    );
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(
        unknown.stderr.contains("platinum") && unknown.stderr.contains("reserve"),
        "{}",
        unknown.stderr
    );
    let nobody = patron_db(
        &dir,
        &[
            "members",
            "set-tier",
            "--tenant",
            "club",
            "mem_x",
            "gold",
            "--until",
            "2099-12-31",
            "--reason",
            "vip",
        ],
    );
    assert_ne!(nobody.code, 0, "{nobody:?}");
    assert!(nobody.stderr.contains("mem_x"), "{}", nobody.stderr);
}
