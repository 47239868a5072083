//! ext3/ext4 images copied from a running VM: the journal needs recovery and
//! has no CSUM_V3 (every ext4 before metadata_csum), so ext4-view would not
//! replay it. Fixture: fixtures/guest/build-fs.sh (debugfs `jw` transactions).

mod common;

use common::{build, has, inspect_raw};
use std::collections::HashMap;
use std::sync::OnceLock;

static FS: OnceLock<std::path::PathBuf> = OnceLock::new();

fn env(dir: &std::path::Path, name: &str) -> HashMap<String, String> {
    std::fs::read_to_string(dir.join(name))
        .expect("env file")
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect()
}

#[test]
fn unreplayed_v2_journal_is_replayed_in_memory() {
    let dir = build("build-fs.sh", &FS);
    let want = env(&dir, "fs-ext4-journal.env");
    let r = inspect_raw(&dir.join("fs-ext4-journal.raw"));
    let codes = common::codes(&r);
    assert!(!has(&r, "GUEST.FilesystemCorrupt"), "{codes:?}");
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{codes:?}");
    let os = r.facts.os.as_ref().expect("os found");
    // What e2fsck's replay gives: the committed os-release block is in,
    // the revoked hostname block is not.
    assert_eq!(os.version.as_deref(), Some(want["VERSION_ID"].as_str()));
    assert_eq!(os.version.as_deref(), Some("7"));
    assert_eq!(os.hostname.as_deref(), Some(want["HOSTNAME"].as_str()));
    let note = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.FilesystemNeedsRecovery")
        .expect("needs-recovery warning");
    assert!(
        note.message.contains("replayed in memory"),
        "{}",
        note.message
    );
    assert!(note.message.contains("2 committed"), "{}", note.message);
    assert_eq!(r.facts.filesystems[0].info.fs_type, "ext4");
    assert!(!r.facts.linux.as_ref().expect("linux").kernels.is_empty());
}
