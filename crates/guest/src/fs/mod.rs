//! Filesystems: probing by magic, and one small read-only interface over the
//! readers (ext4-view, lamxfs, fatfs, ntfs, our btrfs).

mod btrfs;
pub(crate) mod ext4;
mod fat;
mod jbd2;
mod ntfs;
mod xfs;

use crate::cache::View;
use serde::Serialize;

/// What a filesystem reader can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FsError {
    /// No such file or directory.
    #[error("not found")]
    NotFound,
    /// The file is bigger than the caller's limit.
    #[error("file of {0} bytes is over the read limit")]
    TooLarge(u64),
    /// Not read because it needs more than one of the reader's own limits: the
    /// filesystem is not at fault, the checks that need `path` are incomplete.
    #[error("{path} was not read: {limit}, the inspector's limit (not a fault of the filesystem)")]
    NotRead {
        /// What was being looked up or read.
        path: String,
        /// The limit it needs more than, in words (`more than 16 MiB of metadata…`).
        limit: String,
    },
    /// The filesystem's metadata is inconsistent, or a read failed.
    #[error("{0}")]
    Corrupt(String),
}

impl FsError {
    /// `NotRead` with the path the caller asked for, where the reader's inner layers
    /// did not know it.
    pub(crate) fn at_path(self, asked: &str) -> FsError {
        match self {
            FsError::NotRead { path, limit } if path.is_empty() => FsError::NotRead {
                path: asked.to_string(),
                limit,
            },
            other => other,
        }
    }
}

/// Most paths a reader reports as not read (one finding each).
const MAX_UNREAD_NOTES: usize = 32;

/// What a reader left unread because of its own limits, each path reported once,
/// as `GUEST.ReadLimit` notes (see [`Fs::notes`]).
#[derive(Debug, Default)]
pub(crate) struct UnreadLog {
    reported: std::collections::HashSet<String>,
    notes: Vec<String>,
    /// Unread reads past [`MAX_UNREAD_NOTES`] paths, not yet said: never dropped silently.
    unlisted: usize,
    reader: &'static str,
}

impl UnreadLog {
    /// Records `result`'s error if it is a `NotRead`, and passes it on.
    pub(crate) fn note<T>(
        &mut self,
        reader: &'static str,
        result: Result<T, FsError>,
    ) -> Result<T, FsError> {
        if let Err(e @ FsError::NotRead { .. }) = &result {
            let text = e.to_string();
            if self.reported.contains(&text) {
                // Said already.
            } else if self.reported.len() < MAX_UNREAD_NOTES {
                self.reported.insert(text.clone());
                self.notes.push(format!(
                    "{reader}: {text}; the checks that need it did not run and the verdict is incomplete"
                ));
            } else {
                self.unlisted += 1;
                self.reader = reader;
            }
        }
        result
    }

    /// The notes not taken yet.
    pub(crate) fn take(&mut self) -> Vec<(&'static preflight_report::Rule, String)> {
        if self.unlisted > 0 {
            self.notes.push(format!(
                "{}: {} more reads were over the inspector's limits ({MAX_UNREAD_NOTES} paths are \
                 named above); the checks that need them did not run and the verdict is incomplete",
                self.reader, self.unlisted
            ));
            self.unlisted = 0;
        }
        self.notes
            .drain(..)
            .map(|n| (&crate::rules::READ_LIMIT, n))
            .collect()
    }
}

/// How far [`Fs::walk`] goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkLimits {
    /// Entries visited at most.
    pub(crate) max_entries: usize,
    /// Directory levels below the root.
    pub(crate) max_depth: usize,
    /// Files up to this many bytes are read.
    pub(crate) file_limit: u64,
}

/// A mounted filesystem, read-only. Paths are absolute, `/`-separated.
pub(crate) trait Fs {
    /// Whole file, if it is at most `limit` bytes. Follows symlinks.
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError>;
    /// Names in a directory (without `.` and `..`). Follows symlinks.
    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError>;
    /// Names in a directory, each with whether it is a directory (following symlinks), so a
    /// walk need not resolve every path again. Readers that see entry types override it.
    fn list_typed(&mut self, path: &str) -> Result<Vec<(String, bool)>, FsError> {
        let names = self.list(path)?;
        let dir = path.trim_end_matches('/');
        Ok(names
            .into_iter()
            .map(|n| {
                let is_dir = self.is_dir(&format!("{dir}/{n}"));
                (n, is_dir)
            })
            .collect())
    }
    /// Visits every entry down to `limits.max_depth` levels below the root, reading each file
    /// up to `limits.file_limit` bytes; returns the entries visited (at most
    /// `limits.max_entries`). A directory that cannot be listed is skipped. This default
    /// resolves every path from the root; readers that can hold directory handles override it.
    fn walk(&mut self, limits: WalkLimits) -> usize {
        let mut seen = 0usize;
        let mut dirs = vec![(String::new(), 0usize)];
        while let Some((dir, depth)) = dirs.pop() {
            let Ok(entries) = self.list_typed(if dir.is_empty() { "/" } else { &dir }) else {
                continue;
            };
            for (name, is_dir) in entries {
                if seen >= limits.max_entries {
                    return seen;
                }
                seen += 1;
                let path = format!("{dir}/{name}");
                let _ = self.immutable(&path);
                if is_dir {
                    if depth < limits.max_depth {
                        dirs.push((path, depth + 1));
                    }
                } else {
                    let _ = self.read(&path, limits.file_limit);
                }
            }
        }
        seen
    }
    /// True if the path exists (following symlinks).
    fn exists(&mut self, path: &str) -> bool;
    /// True if the path is a directory (following symlinks).
    fn is_dir(&mut self, path: &str) -> bool {
        self.list(path).is_ok()
    }
    /// Whether the file has the immutable flag, where the reader can tell.
    fn immutable(&mut self, _path: &str) -> Option<bool> {
        None
    }
    /// What the reader had to do or leave out to read this filesystem (a journal
    /// replayed in memory, or not; a path over its limits), as findings; each is
    /// returned once, so callers take them after opening and again after reading.
    fn notes(&mut self) -> Vec<(&'static preflight_report::Rule, String)> {
        Vec::new()
    }
    /// Mounts the part of this filesystem that fstab's `options` name
    /// (a btrfs `subvol=`/`subvolid=`) at `at`, a path of this filesystem's
    /// own view: later paths at or under `at` resolve inside it. False for
    /// filesystems without such parts (the caller mounts them as usual).
    fn mount_subvolume(&mut self, _at: &str, _options: &str) -> Result<bool, FsError> {
        Ok(false)
    }
}

/// What lives on a partition, by magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2, ext3 or ext4 (the superblock says which).
    Ext,
    /// XFS.
    Xfs,
    /// FAT12/16/32.
    Fat,
    /// NTFS.
    Ntfs,
    /// btrfs.
    Btrfs,
    /// LVM2 physical volume (detected, not read).
    Lvm2,
    /// Linux swap.
    Swap,
    /// LUKS encrypted volume.
    Luks,
    /// exFAT (detected, not read).
    Exfat,
    /// ISO 9660.
    Iso9660,
    /// FreeBSD UFS2 (detected, not read).
    Ufs,
    /// ZFS pool member (detected, not read).
    Zfs,
    /// BitLocker encrypted volume (detected, not read).
    BitLocker,
}

/// Identifies the contents of a volume from its first bytes.
pub(crate) fn probe(view: &View<'_, '_>) -> Option<FsKind> {
    let head = view
        .read_vec(0, 4096.min(usize::try_from(view.len).unwrap_or(4096)))
        .ok()?;
    // `at(range)` is empty where the volume is shorter, and matches no magic.
    let at = |r: std::ops::Range<usize>| head.get(r).unwrap_or_default();
    if head.len() >= 512 {
        if at(3..11) == b"NTFS    " {
            return Some(FsKind::Ntfs);
        }
        if at(3..11) == b"EXFAT   " {
            return Some(FsKind::Exfat);
        }
        if head.starts_with(b"XFSB") {
            return Some(FsKind::Xfs);
        }
        if head.starts_with(b"LUKS\xba\xbe") {
            return Some(FsKind::Luks);
        }
        if at(510..512) == [0x55, 0xaa]
            && matches!(head.first(), Some(0xeb | 0xe9))
            && (at(54..57) == b"FAT" || at(82..87) == b"FAT32")
        {
            return Some(FsKind::Fat);
        }
        for s in 0..4 {
            let o = s * 512;
            if at(o..o + 8) == b"LABELONE" && at(o + 24..o + 32) == b"LVM2 001" {
                return Some(FsKind::Lvm2);
            }
        }
    }
    if at(1024 + 56..1024 + 58) == 0xEF53u16.to_le_bytes() {
        return Some(FsKind::Ext);
    }
    if head.len() == 4096 && at(4086..4096) == b"SWAPSPACE2" {
        return Some(FsKind::Swap);
    }
    if let Ok(b) = view.read_vec(0x10040, 8) {
        if b == b"_BHRfS_M" {
            return Some(FsKind::Btrfs);
        }
    }
    if let Ok(b) = view.read_vec(0x8001, 5) {
        if b == b"CD001" {
            return Some(FsKind::Iso9660);
        }
    }
    None
}

/// Facts about one filesystem, as `blkid` would show them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FsInfo {
    /// `ext2`, `ext3`, `ext4`, `xfs`, `vfat`, `ntfs`, `btrfs`, `LVM2_member`, `swap`…
    /// (blkid's TYPE names).
    pub fs_type: String,
    /// UUID as blkid prints it (FAT: `ABCD-1234`; NTFS: 16 hex digits).
    pub uuid: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Size the filesystem says it has, in bytes (when read).
    pub declared_size: Option<u64>,
    /// ext2/3/4 feature names, as `dumpe2fs -h` lists them.
    pub features: Vec<String>,
}

/// Opens a readable filesystem.
pub(crate) fn open<'v>(
    kind: FsKind,
    view: View<'v, '_>,
) -> Result<(Box<dyn Fs + 'v>, FsInfo), FsError> {
    match kind {
        FsKind::Ext => {
            let (fs, info) = ext4::Ext4Fs::open(view)?;
            Ok((Box::new(fs), info))
        }
        FsKind::Xfs => {
            let (fs, info) = xfs::XfsFs::open(view)?;
            Ok((Box::new(fs), info))
        }
        FsKind::Fat => {
            let (fs, info) = fat::FatFs::open(view)?;
            Ok((Box::new(fs), info))
        }
        FsKind::Ntfs => {
            let (fs, info) = ntfs::NtfsFs::open(view)?;
            Ok((Box::new(fs), info))
        }
        FsKind::Btrfs => {
            let (fs, info) = btrfs::BtrfsFs::open(view)?;
            Ok((Box::new(fs), info))
        }
        _ => Err(FsError::Corrupt(format!("{kind:?} is not readable"))),
    }
}

/// What the superblock alone says, for a filesystem its reader refused (so
/// the size and feature checks still run).
pub(crate) fn raw_info(kind: FsKind, view: &View<'_, '_>) -> Option<FsInfo> {
    match kind {
        FsKind::Ext => ext4::Super::parse(&view.read_vec(1024, 1024).ok()?)
            .ok()
            .map(|s| s.info()),
        FsKind::Xfs => {
            let sb = view.read_vec(0, 512).ok()?;
            let bsize = u64::from(u32::from_be_bytes(sb.get(4..8)?.try_into().ok()?));
            let blocks = u64::from_be_bytes(sb.get(8..16)?.try_into().ok()?);
            Some(FsInfo {
                fs_type: "xfs".into(),
                uuid: Some(uuid_string(sb.get(32..48)?)),
                label: None,
                declared_size: blocks.checked_mul(bsize),
                features: Vec::new(),
            })
        }
        _ => None,
    }
}

/// The reader's name, for findings about a volume it could not read.
pub(crate) fn reader_name(kind: FsKind) -> &'static str {
    match kind {
        FsKind::Ext => "ext4",
        FsKind::Xfs => "XFS",
        FsKind::Fat => "FAT",
        FsKind::Ntfs => "NTFS",
        FsKind::Btrfs => "btrfs",
        FsKind::Lvm2 => "LVM2 metadata",
        FsKind::Swap => "swap",
        FsKind::Luks => "LUKS",
        FsKind::Exfat => "exFAT",
        FsKind::Iso9660 => "ISO 9660",
        FsKind::Ufs => "UFS2",
        FsKind::Zfs => "ZFS",
        FsKind::BitLocker => "BitLocker",
    }
}

/// blkid's TYPE for a kind that is only detected.
pub(crate) fn blkid_type(kind: FsKind) -> &'static str {
    match kind {
        FsKind::Ext => "ext4",
        FsKind::Xfs => "xfs",
        FsKind::Fat => "vfat",
        FsKind::Ntfs => "ntfs",
        FsKind::Btrfs => "btrfs",
        FsKind::Lvm2 => "LVM2_member",
        FsKind::Swap => "swap",
        FsKind::Luks => "crypto_LUKS",
        FsKind::Exfat => "exfat",
        FsKind::Iso9660 => "iso9660",
        FsKind::Ufs => "ufs",
        FsKind::Zfs => "zfs_member",
        FsKind::BitLocker => "BitLocker",
    }
}

/// Formats 16 bytes as a lowercase RFC 4122 UUID.
pub(crate) fn uuid_string(b: &[u8]) -> String {
    let hex = |part: &[u8]| -> String { part.iter().map(|x| format!("{x:02x}")).collect() };
    if b.len() != 16 {
        return hex(b);
    }
    let (p1, rest) = b.split_at(4);
    let (p2, rest) = rest.split_at(2);
    let (p3, rest) = rest.split_at(2);
    let (p4, p5) = rest.split_at(2);
    format!(
        "{}-{}-{}-{}-{}",
        hex(p1),
        hex(p2),
        hex(p3),
        hex(p4),
        hex(p5)
    )
}

/// Splits a path into its components.
pub(crate) fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn not_read(path: &str) -> FsError {
        FsError::NotRead {
            path: path.into(),
            limit: "reading it needs more than 16 MiB of scattered ext4 metadata at once".into(),
        }
    }

    #[test]
    fn unread_paths_past_the_named_ones_are_counted_not_dropped() {
        let mut log = UnreadLog::default();
        for i in 0..MAX_UNREAD_NOTES + 5 {
            let _ = log.note::<()>("xfs", Err(not_read(&format!("/boot/initrd-{i}"))));
        }
        let notes = log.take();
        assert_eq!(notes.len(), MAX_UNREAD_NOTES + 1, "{notes:?}");
        let last = &notes.last().unwrap().1;
        assert!(
            last.starts_with("xfs: 5 more reads were over the inspector's limits"),
            "{last}"
        );
        assert!(log.take().is_empty(), "said once");
    }

    #[test]
    fn each_unread_path_is_one_read_limit_note_and_other_errors_pass() {
        let mut log = UnreadLog::default();
        for _ in 0..3 {
            assert!(log.note::<()>("ext4", Err(not_read("/etc"))).is_err());
        }
        assert!(matches!(
            log.note::<()>("ext4", Err(FsError::NotFound)),
            Err(FsError::NotFound)
        ));
        assert!(log
            .note::<()>("ext4", Err(FsError::Corrupt("bad".into())))
            .is_err());
        let notes = log.take();
        assert_eq!(notes.len(), 1, "{notes:?}");
        let (rule, text) = &notes[0];
        assert_eq!(rule.code, "GUEST.ReadLimit");
        assert_eq!(rule.severity, preflight_report::Severity::Warning);
        assert_eq!(
            text,
            "ext4: /etc was not read: reading it needs more than 16 MiB of scattered ext4 \
             metadata at once, the inspector's limit (not a fault of the filesystem); the checks \
             that need it did not run and the verdict is incomplete"
        );
        // Taken once; the same path later is not reported again.
        assert!(log.take().is_empty());
        let _ = log.note::<()>("ext4", Err(not_read("/etc")));
        assert!(log.take().is_empty());
    }

    #[test]
    fn at_path_fills_only_an_empty_path() {
        let inner = FsError::NotRead {
            path: String::new(),
            limit: "x".into(),
        };
        assert!(matches!(inner.at_path("/a"), FsError::NotRead { path, .. } if path == "/a"));
        assert!(
            matches!(not_read("/b").at_path("/a"), FsError::NotRead { path, .. } if path == "/b")
        );
        assert!(matches!(FsError::NotFound.at_path("/a"), FsError::NotFound));
    }
}
