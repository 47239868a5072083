//! Inputs that once crashed a reader (fixtures/crashes/), through the fuzz targets' entry
//! points: each must now be read without a panic.

use preflight_disk::raw::RawImage;
use preflight_guest::inspect;
use preflight_guest::{walk_filesystem, FsKind};
use std::sync::Arc;

fn crash(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/crashes/");
    std::fs::read(format!("{path}{name}")).unwrap()
}

/// The ntfs crate 0.4.0 sliced out of range on an index entry shorter than its header
/// (index_entry.rs:205): the walk now ends with the directory reported corrupt.
#[test]
fn ntfs_index_entry_shorter_than_its_header() {
    let disk = RawImage::new(Arc::new(crash("fs_ntfs-index-entry-range.bin")));
    // A panic fails the test; the volume itself opens, only a directory is corrupt.
    let walked = walk_filesystem(FsKind::Ntfs, &disk);
    assert!(walked.is_ok(), "{walked:?}");
}

/// The same volume as partition 1 of an MBR disk: one finding names the partition and the
/// reader, and the verdict is incomplete rather than "import the system disk".
#[test]
fn ntfs_index_entry_crash_as_partition_1() {
    let volume = crash("fs_ntfs-index-entry-range.bin");
    let mut disk = vec![0u8; 8 << 20];
    disk[446 + 4] = 0x07; // NTFS
    disk[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    disk[446 + 12..446 + 16].copy_from_slice(&8192u32.to_le_bytes());
    disk[510..512].copy_from_slice(&[0x55, 0xaa]);
    disk[1 << 20..(1 << 20) + volume.len()].copy_from_slice(&volume);
    let r = inspect(&RawImage::new(Arc::new(disk)));
    let codes: Vec<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
    let corrupt: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.code == "GUEST.FilesystemCorrupt")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(corrupt.len(), 1, "{codes:?}");
    assert!(
        corrupt[0].starts_with("partition 1: NTFS"),
        "{}",
        corrupt[0]
    );
    assert!(!codes.contains(&"GUEST.InternalError"), "{codes:?}");
    assert!(!codes.contains(&"GUEST.NoOperatingSystem"), "{codes:?}");
    assert!(codes.contains(&"GUEST.InspectionIncomplete"), "{codes:?}");
}
