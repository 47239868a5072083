//! Volumes that are recognised but never read: encrypted ones (BitLocker)
//! and FreeBSD's UFS2 and ZFS. Knowing what they are lets the report say why
//! the guest was not inspected instead of calling the disk empty.

use crate::bytes;
use crate::cache::View;
use crate::fs::FsKind;

/// UFS2 superblock magic (`FS_UFS2_MAGIC`), at 1372 in the superblock.
const UFS2_MAGIC: u32 = 0x1954_0119;
/// Where FreeBSD looks for a UFS2 superblock (SBLOCK_UFS2).
const UFS2_SUPERBLOCK: u64 = 65536;
/// ZFS uberblock magic; the uberblock ring is 128 KiB into each vdev label.
const ZFS_UBERBLOCK_MAGIC: u64 = 0x00ba_b10c;

/// GPT type of a FreeBSD boot partition (gptboot).
pub(crate) const GUID_FREEBSD_BOOT: &str = "83BD6B9D-7F41-11DC-BE0B-001560B84F0F";

/// Identifies a volume [`crate::fs::probe`] does not know.
pub(crate) fn probe(view: &View<'_, '_>) -> Option<FsKind> {
    if let Ok(b) = view.read_vec(0, 512) {
        if bytes::magic_at(&b, 3, b"-FVE-FS-") {
            return Some(FsKind::BitLocker);
        }
    }
    if let Some(m) = view
        .read_vec(UFS2_SUPERBLOCK + 1372, 4)
        .ok()
        .and_then(|b| bytes::le32(&b, 0))
    {
        if m == UFS2_MAGIC || m.swap_bytes() == UFS2_MAGIC {
            return Some(FsKind::Ufs);
        }
    }
    // The uberblock ring (128 KiB after the label's first 128 KiB) has slots of 1 KiB
    // (ashift 9) up to 8 KiB; a pool writes slot txg % slots, so any slot may be the
    // only one in use (a fresh pool's first is usually empty).
    if let Ok(ring) = view.read_vec(128 * 1024, 128 * 1024) {
        let found = ring
            .chunks_exact(1024)
            .filter_map(|slot| bytes::le64(slot, 0))
            .any(|m| m == ZFS_UBERBLOCK_MAGIC || m.swap_bytes() == ZFS_UBERBLOCK_MAGIC);
        if found {
            return Some(FsKind::Zfs);
        }
    }
    None
}
