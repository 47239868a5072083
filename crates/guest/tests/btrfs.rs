//! btrfs roots as real installers lay them out, written by the kernel's own
//! btrfs driver (fixtures/guest/build-fs.sh): Ubuntu's root in subvolume `@`
//! with /boot in `@boot`, and openSUSE's root as the default subvolume.

mod common;

use common::{build, has, inspect_raw};
use preflight_disk::raw::RawImage;
use preflight_disk::FileSource;
use preflight_guest::{FsKind, GuestReport};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

static FS: OnceLock<PathBuf> = OnceLock::new();

fn dir() -> PathBuf {
    build("build-fs.sh", &FS)
}

fn env(name: &str) -> HashMap<String, String> {
    std::fs::read_to_string(dir().join(name))
        .expect("env file")
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect()
}

fn assert_clean_linux(r: &GuestReport) {
    let codes = common::codes(r);
    for bad in [
        "GUEST.NoOperatingSystem",
        "GUEST.FilesystemNotInspected",
        "GUEST.FilesystemCorrupt",
        "GUEST.NoKernel",
        "GUEST.RootNotOnSystemDisk",
        "GUEST.FstabUnknownDevice",
        "GUEST.NoVirtioBlockDriver",
        "GUEST.InternalError",
        "GUEST.NoBootLoader",
        "GUEST.FilesystemLargerThanPartition",
        "GUEST.GptBackupHeader",
    ] {
        assert!(!has(r, bad), "{bad} in {codes:?}: {:#?}", r.findings);
    }
}

#[test]
fn ubuntu_root_in_subvolume_with_boot_subvolume() {
    let want = env("fs-btrfs-subvol.env");
    // What `btrfs subvolume list` said the layout is.
    assert!(want["SUBVOLS"].contains(":@ ") && want["SUBVOLS"].contains(":@boot "));
    assert_eq!(want["DEFAULT"], "5", "the top level stays the default");
    let r = inspect_raw(&dir().join("fs-btrfs-subvol.raw"));
    assert_clean_linux(&r);
    let fs = &r.facts.filesystems[0];
    assert_eq!(fs.kind, FsKind::Btrfs);
    assert_eq!(fs.info.fs_type, "btrfs");
    assert_eq!(fs.info.uuid.as_deref(), Some(want["UUID"].as_str()));
    assert_eq!(fs.info.label.as_deref(), Some("ubuntu-root"));
    assert_eq!(r.facts.boot_mode.as_deref(), Some("BIOS"));
    let os = r.facts.os.as_ref().expect("os");
    assert_eq!(os.distro.as_deref(), Some("ubuntu"));
    assert_eq!(os.version.as_deref(), Some("22.04"));
    assert_eq!(os.hostname.as_deref(), Some("btrfs-ubuntu"));
    // /bin is a symlink to usr/bin inside @.
    assert_eq!(r.facts.architecture.as_deref(), Some("x86_64"));
    let linux = r.facts.linux.as_ref().expect("linux");
    assert!(
        linux.fstab.iter().all(|e| e.filesystem == Some(0)),
        "{:?}",
        linux.fstab
    );
    // The kernel lives in @boot, mounted at /boot by subvol=@boot; its config is
    // zstd-compressed over several extents, the CONFIG lines in the last one.
    let k = linux
        .kernels
        .iter()
        .find(|k| k.version == "5.15.0-105-generic")
        .expect("kernel from @boot");
    assert!(k.config, "config read");
    assert!(k.virtio_boot, "{:?}", k.drivers);
    assert!(k.initramfs.is_some());
    assert!(k.modules_dir);
    assert_eq!(linux.shadow_immutable, Some(false));
}

#[test]
fn opensuse_root_is_the_default_subvolume() {
    let want = env("fs-btrfs-default.env");
    assert_eq!(want["DEFAULT_PATH"], "@/.snapshots/1/snapshot");
    let r = inspect_raw(&dir().join("fs-btrfs-default.raw"));
    assert_clean_linux(&r);
    assert!(r.facts.boot.bios_boot_partition);
    assert_eq!(r.facts.boot_mode.as_deref(), Some("BIOS"));
    let os = r.facts.os.as_ref().expect("os");
    assert_eq!(os.distro.as_deref(), Some("opensuse-leap"));
    assert_eq!(os.hostname.as_deref(), Some("btrfs-suse"));
    let fs = &r.facts.filesystems[os.root_filesystem];
    assert_eq!(fs.info.uuid.as_deref(), Some(want["UUID"].as_str()));
    assert_eq!(fs.partition, Some(2));
    let linux = r.facts.linux.as_ref().expect("linux");
    assert!(linux
        .kernels
        .iter()
        .any(|k| k.version == "5.14.21-150500.55.39-default" && k.virtio_boot));
    assert_eq!(linux.fstab.len(), 3);
    // chattr +i through the kernel: BTRFS_INODE_IMMUTABLE read from the inode.
    assert_eq!(linux.shadow_immutable, Some(true));
    assert!(has(&r, "GUEST.ShadowImmutable"), "{:?}", common::codes(&r));
}

fn btrfs_file(path: &str, limit: u64) -> Result<Vec<u8>, String> {
    let src = FileSource::open(dir().join("fs-btrfs-subvol.btrfs")).expect("open");
    let img = RawImage::new(Arc::new(src));
    preflight_guest::read_filesystem_file(FsKind::Btrfs, &img, path, limit)
}

#[test]
fn compressed_and_symlinked_files_read_as_written() {
    let zlib: String = (1..=30000).map(|i| format!("zlib line {i}\n")).collect();
    let got = btrfs_file("/etc/zlib/big.txt", 1 << 20).expect("zlib file");
    assert_eq!(got.len(), zlib.len());
    assert!(got == zlib.as_bytes(), "zlib-compressed file differs");
    // Through the /bin -> usr/bin symlink.
    let sh = btrfs_file("/bin/sh", 1 << 20).expect("sh");
    assert_eq!(&sh[..4], b"\x7fELF");
    assert_eq!(sh, std::fs::read("/bin/dash").expect("dash"));
    // LZO is refused by name, never read as garbage.
    let e = btrfs_file("/usr/share/doc/lzo/small.txt", 1 << 20).expect_err("lzo");
    assert!(e.contains("LZO"), "{e}");
    assert!(matches!(btrfs_file("/etc/none", 1 << 20), Err(e) if e.contains("not found")));
    let size = btrfs_file("/etc/zlib/big.txt", 10).expect_err("limit");
    assert!(size.contains("over the read limit"), "{size}");
    let walked = preflight_guest::walk_filesystem(
        FsKind::Btrfs,
        &RawImage::new(Arc::new(
            FileSource::open(dir().join("fs-btrfs-subvol.btrfs")).expect("open"),
        )),
    )
    .expect("walk");
    assert!(walked > 10, "{walked}");
}

/// The btrfs image with some bytes replaced (checksums set again, so the
/// reader's parsers see the damage rather than a checksum error).
struct Mutated {
    base: RawImage,
    patches: std::collections::BTreeMap<u64, u8>,
}

impl preflight_disk::BlockRead for Mutated {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), preflight_disk::ReadError> {
        self.base.read_at(offset, buf)?;
        let end = offset + u64::try_from(buf.len()).expect("len");
        for (&o, &b) in self.patches.range(offset..end) {
            buf[usize::try_from(o - offset).expect("in buf")] = b;
        }
        Ok(())
    }
}

#[test]
fn mutated_metadata_never_panics_or_hangs() {
    use preflight_disk::BlockRead;
    const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let src: Arc<dyn preflight_disk::Source> =
        Arc::new(FileSource::open(dir().join("fs-btrfs-subvol.btrfs")).expect("open"));
    let base = RawImage::new(src.clone());
    let mut sb = vec![0u8; 4096];
    base.read_at(0x10000, &mut sb).expect("superblock");
    let nodesize = u64::from(u32::from_le_bytes(sb[0x94..0x98].try_into().expect("4")));
    let fsid = sb[0x20..0x30].to_vec();
    // Tree blocks: node-sized blocks whose header carries the fsid.
    let mut blocks = vec![(0x10000u64, 4096u64)];
    let mut head = vec![0u8; 0x40];
    let mut at = 0u64;
    while at + nodesize <= base.size() {
        base.read_at(at, &mut head).expect("read");
        if head[0x20..0x30] == fsid[..] && at != 0x10000 {
            blocks.push((at, nodesize));
        }
        at += 4096;
    }
    assert!(blocks.len() > 5, "{} tree blocks", blocks.len());
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let started = std::time::Instant::now();
    for _ in 0..120 {
        let (start, len) = blocks[usize::try_from(next() % blocks.len() as u64).expect("idx")];
        let mut block = vec![0u8; usize::try_from(len).expect("len")];
        base.read_at(start, &mut block).expect("block");
        for _ in 0..1 + next() % 4 {
            // Past the checksum; mostly in the header and item table.
            let span = if next() % 2 == 0 { 0x400 } else { len - 0x20 };
            let o = usize::try_from(0x20 + next() % span).expect("o");
            block[o] = u8::try_from(next() & 0xff).expect("byte");
        }
        let sum = CRC32C.checksum(&block[0x20..]);
        block[..4].copy_from_slice(&sum.to_le_bytes());
        let patches = block
            .iter()
            .enumerate()
            .map(|(i, &b)| (start + i as u64, b))
            .collect();
        let disk = Mutated {
            base: RawImage::new(src.clone()),
            patches,
        };
        let _ = preflight_guest::walk_filesystem(FsKind::Btrfs, &disk);
        let _ = preflight_guest::read_filesystem_file(
            FsKind::Btrfs,
            &disk,
            "/etc/zlib/big.txt",
            1 << 20,
        );
    }
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
}
