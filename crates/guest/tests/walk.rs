//! `walk_filesystem` (the per-reader fuzz entry) on filesystems made by mkfs.ext4 -d and
//! mkfs.vfat + mcopy from one directory tree: it sees every entry `find` lists.

mod common;
use common::sh;
use preflight_disk::raw::RawImage;
use preflight_disk::FileSource;
use preflight_guest::{walk_filesystem, FsKind};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// A tree of 3 levels, 13 entries (FAT-safe names).
fn tree(root: &Path) -> usize {
    for d in ["etc", "etc/default", "boot", "boot/grub", "lib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (f, body) in [
        ("etc/hostname", "walker\n"),
        ("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
        ("etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n"),
        ("boot/grub/grub.cfg", "set timeout=1\n"),
        ("boot/config", "CONFIG_VIRTIO_BLK=y\n"),
        ("lib/big.bin", ""),
        ("readme.txt", "hello\n"),
    ] {
        std::fs::write(root.join(f), body).unwrap();
    }
    std::fs::write(root.join("lib/big.bin"), vec![7u8; 300_000]).unwrap();
    let out = Command::new("find")
        .arg(root)
        .args(["-mindepth", "1"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn open(path: &Path) -> RawImage {
    RawImage::new(Arc::new(FileSource::open(path).unwrap()))
}

#[test]
fn walks_every_entry_of_ext4_and_fat() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("walk-filesystem");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src");
    let entries = tree(&src);
    assert_eq!(entries, 12);

    let ext4 = dir.join("ext4.img");
    sh("truncate", &["-s", "8M", ext4.to_str().unwrap()]);
    sh(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-d",
            src.to_str().unwrap(),
            ext4.to_str().unwrap(),
        ],
    );
    // mkfs.ext4 adds lost+found.
    assert_eq!(walk_filesystem(FsKind::Ext, &open(&ext4)), Ok(entries + 1));

    let fat = dir.join("fat.img");
    sh("truncate", &["-s", "8M", fat.to_str().unwrap()]);
    sh("mkfs.vfat", &["-F", "12", fat.to_str().unwrap()]);
    let mut args = vec!["-s", "-i", fat.to_str().unwrap()];
    let names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .collect();
    args.extend(names.iter().map(String::as_str));
    args.push("::/");
    sh("mcopy", &args);
    assert_eq!(walk_filesystem(FsKind::Fat, &open(&fat)), Ok(entries));

    // The wrong reader for the bytes is an error, not a panic.
    assert!(walk_filesystem(FsKind::Xfs, &open(&ext4)).is_err());
    assert!(walk_filesystem(FsKind::Ntfs, &open(&fat)).is_err());
}

/// Empty and truncated NTFS volumes: an error, not a panic inside the ntfs crate (which
/// declares an end of file inside a structure unreachable). Found by the fs_ntfs fuzz target.
#[test]
fn truncated_ntfs_is_an_error_not_a_panic() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("walk-ntfs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let full = dir.join("full.ntfs");
    sh("truncate", &["-s", "4M", full.to_str().unwrap()]);
    sh("mkntfs", &["-q", "-F", "-Q", full.to_str().unwrap()]);
    assert!(walk_filesystem(FsKind::Ntfs, &open(&full)).is_ok_and(|n| n > 0));
    let bytes = std::fs::read(&full).unwrap();
    for len in [0usize, 11, 512, 4096, 20_000, 1 << 20] {
        let disk = RawImage::new(Arc::new(bytes[..len].to_vec()));
        assert!(
            walk_filesystem(FsKind::Ntfs, &disk).is_err() || len >= 20_000,
            "{len} bytes"
        );
    }
}
