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

/// The fixture with some bytes replaced.
struct Patched {
    base: preflight_disk::raw::RawImage,
    patches: Vec<(u64, u8)>,
}

impl preflight_disk::BlockRead for Patched {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), preflight_disk::ReadError> {
        self.base.read_at(offset, buf)?;
        let end = offset + u64::try_from(buf.len()).expect("len");
        for &(o, b) in &self.patches {
            if (offset..end).contains(&o) {
                buf[usize::try_from(o - offset).expect("in buf")] = b;
            }
        }
        Ok(())
    }
}

#[test]
fn journal_that_cannot_be_replayed_is_a_warning_not_an_error() {
    use preflight_disk::BlockRead;
    let dir = build("build-fs.sh", &FS);
    let src = preflight_disk::FileSource::open(dir.join("fs-ext4-journal.raw")).expect("open");
    let base = preflight_disk::raw::RawImage::new(std::sync::Arc::new(src));
    // The JBD2 v2 superblock: its magic and type at the start of a 4 KiB block.
    let mut head = [0u8; 8];
    let jsb = (0..base.size() / 4096)
        .map(|b| b * 4096)
        .find(|&at| {
            base.read_at(at, &mut head).expect("read");
            head == [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 4]
        })
        .expect("journal superblock");
    // An incompatible feature nobody knows (s_feature_incompat, big-endian).
    let disk = Patched {
        base,
        patches: vec![(jsb + 0x28 + 3, 0x80)],
    };
    let r = preflight_guest::inspect(&disk);
    let codes = common::codes(&r);
    assert!(!has(&r, "GUEST.FilesystemCorrupt"), "{codes:?}");
    let os = r.facts.os.as_ref().expect("os found");
    // Read as it is on the disk: the journal's newer os-release is not in.
    assert_eq!(os.version.as_deref(), Some("6"));
    let note = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.FilesystemNeedsRecovery")
        .expect("needs-recovery warning");
    assert!(
        note.message.contains("was not replayed"),
        "{}",
        note.message
    );
    assert!(
        note.message.contains("unknown incompatible features 0x80"),
        "{}",
        note.message
    );
    assert!(
        note.message.contains("verdict is incomplete"),
        "{}",
        note.message
    );
}
