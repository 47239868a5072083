//! What sound filesystems made by the real tools (fixtures/guest/build-limits.sh) get
//! when they hold what Linux refuses without calling it corruption (a symlink loop), or
//! a file over one of the readers' own limits: one finding per cause, never
//! `GUEST.FilesystemCorrupt`.

mod common;

use common::{build, codes, has, inspect_raw};
use preflight_disk::raw::RawImage;
use preflight_disk::FileSource;
use preflight_guest::FsKind;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

static LIMITS: OnceLock<PathBuf> = OnceLock::new();

fn image(name: &str) -> PathBuf {
    build("build-limits.sh", &LIMITS).join(name)
}

const READERS: [(&str, FsKind); 3] = [
    ("ext4", FsKind::Ext),
    ("xfs", FsKind::Xfs),
    ("btrfs", FsKind::Btrfs),
];

/// `ln -s a b; ln -s b a` is legal: Linux answers ELOOP, the path does not resolve.
/// Each reader says "not found", as for a path that is not there.
#[test]
fn a_symlink_loop_does_not_resolve_and_is_not_corruption() {
    for (fs, kind) in READERS {
        let path = image(&format!("limits-loop-root-{fs}.raw"));
        let disk = RawImage::new(Arc::new(FileSource::open(&path).unwrap()));
        assert_eq!(
            preflight_guest::read_filesystem_file(kind, &disk, "/etc/os-release", 4096),
            Err("not found".to_string()),
            "{fs}"
        );
        // The rest of the root reads as usual: os-release from /usr/lib.
        let r = inspect_raw(&path);
        assert!(
            !has(&r, "GUEST.FilesystemCorrupt"),
            "{fs}: {:#?}",
            r.findings
        );
        assert_eq!(
            r.facts.os.as_ref().and_then(|o| o.distro.as_deref()),
            Some("debian"),
            "{fs}: {:?}",
            codes(&r)
        );
    }
}

/// A data volume whose /etc is a loop: no OS on it, and nothing corrupt either.
#[test]
fn a_data_volume_with_a_looping_etc_is_not_corrupt() {
    for (fs, _) in READERS {
        let r = inspect_raw(&image(&format!("limits-loop-data-{fs}.raw")));
        assert!(
            !has(&r, "GUEST.FilesystemCorrupt"),
            "{fs}: {:#?}",
            r.findings
        );
        assert!(has(&r, "GUEST.NoOperatingSystem"), "{fs}: {:?}", codes(&r));
    }
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
