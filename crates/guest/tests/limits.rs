//! What sound filesystems made by the real tools (fixtures/guest/build-limits.sh) get
//! when they hold what Linux refuses without calling it corruption (a symlink loop), or
//! a file over one of the readers' own limits: one finding per cause, never
//! `GUEST.FilesystemCorrupt`.

mod common;

use common::{build, has, inspect_raw};
use std::path::PathBuf;
use std::sync::OnceLock;

static LIMITS: OnceLock<PathBuf> = OnceLock::new();

fn image(name: &str) -> PathBuf {
    build("build-limits.sh", &LIMITS).join(name)
}

/// An initramfs over the XFS reader's file limit (lamxfs reads files of at most 256 MiB)
/// is one `GUEST.ReadLimit` finding naming it, not also `GUEST.InitramfsUnreadable`, and
/// the drivers inside it are not judged missing.
#[test]
fn an_initramfs_over_a_read_limit_is_one_read_limit_finding() {
    let r = inspect_raw(&image("limits-xfs-big-initrd.raw"));
    let about: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.message.contains("/boot/initrd.img-6.1.0-28-amd64"))
        .collect();
    assert_eq!(about.len(), 1, "{about:#?}");
    assert_eq!(about[0].code, "GUEST.ReadLimit");
    assert!(
        about[0].message.contains("was not read")
            && about[0].message.contains("the verdict is incomplete"),
        "{}",
        about[0].message
    );
    for code in [
        "GUEST.InitramfsUnreadable",
        "GUEST.NoVirtioBlockDriver",
        "GUEST.InitramfsMissing",
        "GUEST.FilesystemCorrupt",
    ] {
        assert!(!has(&r, code), "{code}: {:#?}", r.findings);
    }
    let linux = r.facts.linux.as_ref().expect("a Linux root");
    assert_eq!(
        linux.kernels[0].initramfs.as_deref(),
        Some("/boot/initrd.img-6.1.0-28-amd64")
    );
}
