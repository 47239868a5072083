//! Linux md RAID member superblocks (metadata 0.90, 1.0, 1.1, 1.2), read so a
//! RAID1 member's data can be inspected like a plain partition: ECS attaches
//! one disk, so the array can only ever run from this one member.

use crate::bytes::{self, le32, le64};
use crate::cache::View;

/// The md superblock magic (both versions).
const MD_MAGIC: u32 = 0xa92b_4efc;

/// What one member's superblock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// `0.90`, `1.0`, `1.1` or `1.2`.
    pub(crate) version: &'static str,
    /// RAID level (1 for a mirror).
    pub(crate) level: i32,
    /// Array name (`host:0`), or the uuid for 0.90 which has no name.
    pub(crate) name: String,
    /// Members of the array.
    pub(crate) raid_disks: u32,
    /// Where the array's data starts in this member, in bytes.
    pub(crate) data_offset: u64,
    /// Bytes of array data in this member.
    pub(crate) data_size: u64,
}

/// Finds an md superblock in the member `view`, where each version puts it.
pub(crate) fn read(view: &View<'_, '_>) -> Option<Member> {
    let len = view.len;
    // 1.1 at 0, 1.2 at 4 KiB, 1.0 at the end less 8 KiB rounded down to 4 KiB.
    let v1 = [
        (Some(0), "1.1"),
        (Some(4096), "1.2"),
        (len.checked_sub(8192).map(|o| o & !4095), "1.0"),
    ];
    for (at, version) in v1 {
        let Some(at) = at else { continue };
        let Ok(sb) = view.read_vec(at, 256) else {
            continue;
        };
        if let Some(member) = parse_v1(&sb, version, len) {
            return Some(member);
        }
    }
    // 0.90: 64 KiB from the end, 64 KiB aligned; data from 0.
    let at = (len & !65535).checked_sub(65536)?;
    let sb = view.read_vec(at, 128).ok()?;
    parse_v090(&sb, at)
}

/// A version 1 superblock (`sb`, 256 bytes) of a member `len` bytes long;
/// `None` when it is not one or its data area does not fit.
fn parse_v1(sb: &[u8], version: &'static str, len: u64) -> Option<Member> {
    if le32(sb, 0)? != MD_MAGIC || le32(sb, 4)? != 1 {
        return None;
    }
    let uuid = crate::fs::uuid_string(bytes::slice(sb, 16, 16)?);
    let name: String = bytes::slice(sb, 32, 32)?
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| char::from(b))
        .collect();
    let data_offset = le64(sb, 128)?.saturating_mul(512);
    // The array's size per member (`size`) when set, else all the data area.
    let data_size = le64(sb, 136)?.saturating_mul(512);
    let data_size = match le64(sb, 80)?.saturating_mul(512) {
        0 => data_size,
        used => used.min(data_size),
    };
    if data_offset.checked_add(data_size).is_none_or(|e| e > len) || data_size == 0 {
        return None;
    }
    Some(Member {
        version,
        level: le32(sb, 72)? as i32,
        name: if name.is_empty() { uuid } else { name },
        raid_disks: le32(sb, 92)?,
        data_offset,
        data_size,
    })
}

/// A version 0.90 superblock (`sb`, 128 bytes read) found at `at`.
fn parse_v090(sb: &[u8], at: u64) -> Option<Member> {
    if le32(sb, 0)? != MD_MAGIC || le32(sb, 4)? != 0 || le32(sb, 8)? != 90 {
        return None;
    }
    // The uuid is in four words: word 0 at 5, words 1-3 at 13..16.
    let mut name = String::new();
    for w in [5usize, 13, 14, 15] {
        for b in bytes::array::<4>(sb, w * 4)? {
            name.push_str(&format!("{b:02x}"));
        }
    }
    let size_kib = u64::from(le32(sb, 4 * 8)?);
    Some(Member {
        version: "0.90",
        level: le32(sb, 4 * 7)? as i32,
        name,
        raid_disks: le32(sb, 4 * 10)?,
        data_offset: 0,
        data_size: size_kib.saturating_mul(1024).min(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachedDisk;
    use preflight_disk::raw::RawImage;
    use std::sync::Arc;

    fn member(image: Vec<u8>) -> Option<Member> {
        let disk = RawImage::new(Arc::new(image));
        let cache = CachedDisk::new(&disk);
        read(&View::new(&cache, 0, cache.size()))
    }

    #[test]
    fn metadata_0_90_at_the_end() {
        let len = 4 << 20;
        let mut d = vec![0u8; len];
        let at = (len & !65535) - 65536;
        let w = |d: &mut Vec<u8>, word: usize, v: u32| {
            d[at + word * 4..at + word * 4 + 4].copy_from_slice(&v.to_le_bytes());
        };
        w(&mut d, 0, MD_MAGIC);
        w(&mut d, 1, 0);
        w(&mut d, 2, 90);
        w(&mut d, 5, 0x0102_0304);
        w(&mut d, 7, 1);
        w(&mut d, 8, 3 * 1024); // KiB
        w(&mut d, 10, 2);
        let m = member(d).unwrap();
        assert_eq!((m.version, m.level, m.raid_disks), ("0.90", 1, 2));
        assert_eq!((m.data_offset, m.data_size), (0, 3 << 20));
        assert!(m.name.starts_with("04030201"), "{}", m.name);
    }

    #[test]
    fn metadata_1_1_at_the_start_and_hostile_sizes() {
        let mut d = vec![0u8; 4 << 20];
        d[0..4].copy_from_slice(&MD_MAGIC.to_le_bytes());
        d[4..8].copy_from_slice(&1u32.to_le_bytes());
        d[32..38].copy_from_slice(b"web:md");
        d[72..76].copy_from_slice(&1u32.to_le_bytes());
        d[128..136].copy_from_slice(&2048u64.to_le_bytes());
        d[136..144].copy_from_slice(&4096u64.to_le_bytes());
        let m = member(d.clone()).unwrap();
        assert_eq!((m.version, m.name.as_str()), ("1.1", "web:md"));
        assert_eq!((m.data_offset, m.data_size), (1 << 20, 2 << 20));
        // Data past the member: not an array we can read.
        d[136..144].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(member(d), None);
    }

    #[test]
    fn truncated_superblocks_are_not_members() {
        let mut sb = vec![0u8; 256];
        sb[0..4].copy_from_slice(&MD_MAGIC.to_le_bytes());
        sb[4..8].copy_from_slice(&1u32.to_le_bytes());
        sb[136..144].copy_from_slice(&8u64.to_le_bytes());
        assert!(parse_v1(&sb, "1.1", 1 << 20).is_some());
        // Cut inside the uuid, the name and the sizes: each gives None, not a panic.
        for cut in [0, 3, 20, 40, 100, 130, 140, 143] {
            assert_eq!(parse_v1(&sb[..cut], "1.1", 1 << 20), None, "cut at {cut}");
        }
        let mut old = vec![0u8; 128];
        old[0..4].copy_from_slice(&MD_MAGIC.to_le_bytes());
        old[8..12].copy_from_slice(&90u32.to_le_bytes());
        assert!(parse_v090(&old, 1 << 20).is_some());
        for cut in [10, 30, 50, 63] {
            assert_eq!(parse_v090(&old[..cut], 1 << 20), None, "cut at {cut}");
        }
    }
}
