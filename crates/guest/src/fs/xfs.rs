//! XFS through the `lamxfs` crate (v4 and v5, CRCs checked, dirty logs
//! replayed in memory). lamxfs does not follow symlinks; we do.

use super::{components, uuid_string, FsError, FsInfo, UnreadLog};
use crate::cache::View;
use lamxfs::{Path, Xfs};

/// Symlinks followed while resolving one path (Linux's limit is 40).
const MAX_SYMLINK_HOPS: u32 = 40;

/// An XFS filesystem.
pub(crate) struct XfsFs<'v, 'a> {
    fs: Xfs<View<'v, 'a>>,
    view: View<'v, 'a>,
    /// Paths over lamxfs's limits.
    unread: UnreadLog,
}

/// Entries lamxfs 0.1.3 lists from one directory (its `dir.rs` `MAX_DIR_ENTRIES`, not
/// exported): past it, it stops without saying so, or fails with `dir_too_large`.
const LAMXFS_MAX_DIR_ENTRIES: usize = 1 << 20;

/// A directory over lamxfs's listing limits: not read, not corrupt.
fn dir_too_large() -> FsError {
    FsError::NotRead {
        path: String::new(),
        limit: format!(
            "the directory has {LAMXFS_MAX_DIR_ENTRIES} entries or more (or 65,536 blocks), the most the XFS reader lists"
        ),
    }
}

/// `XFS_DIFLAG_IMMUTABLE` in the inode core's `di_flags`.
const DIFLAG_IMMUTABLE: u16 = 0x0008;
/// Offset of `di_flags` in the inode core (`xfs_dinode`).
const DI_FLAGS: usize = 90;

fn map_err(e: lamxfs::Error) -> FsError {
    match e {
        lamxfs::Error::NotFound { .. } => FsError::NotFound,
        // The caller's size limit is checked first: these are lamxfs's own limits and
        // features it does not read, not faults of the filesystem.
        lamxfs::Error::FileTooLarge { size, max } => FsError::NotRead {
            path: String::new(),
            limit: format!("it is {size} bytes and the XFS reader reads files of at most {max}"),
        },
        lamxfs::Error::UnsupportedFeature(feature) => FsError::NotRead {
            path: String::new(),
            limit: format!("it uses the XFS feature {feature}, which the reader does not read"),
        },
        lamxfs::Error::OutOfMemory { site } => FsError::NotRead {
            path: String::new(),
            limit: format!("the XFS reader ran out of memory ({site})"),
        },
        lamxfs::Error::Inconsistent {
            token: "dir_too_large",
            ..
        } => dir_too_large(),
        other => FsError::Corrupt(format!("xfs: {other:?}")),
    }
}

impl<'v, 'a> XfsFs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        let sb = view
            .read_vec(0, 512)
            .map_err(|e| FsError::Corrupt(format!("xfs superblock: {e}")))?;
        let truncated = || FsError::Corrupt("xfs superblock is truncated".into());
        let bsize = u64::from(be32(&sb, 4).ok_or_else(truncated)?);
        let dblocks = sb
            .get(8..16)
            .and_then(|d| d.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(truncated)?;
        let fs = Xfs::open(view, view.len).map_err(|e| map_err(e).at_path("/"))?;
        let label = fs.label().map(str::to_string).filter(|l| !l.is_empty());
        let info = FsInfo {
            fs_type: "xfs".into(),
            uuid: Some(uuid_string(&fs.uuid())),
            label,
            declared_size: dblocks.checked_mul(bsize),
            features: Vec::new(),
        };
        Ok((
            XfsFs {
                fs,
                view,
                unread: UnreadLog::default(),
            },
            info,
        ))
    }

    /// The path with every symlink replaced by its target.
    fn canonical(&mut self, path: &str) -> Result<String, FsError> {
        let mut done: Vec<String> = Vec::new();
        let mut todo: std::collections::VecDeque<String> =
            components(path).map(str::to_string).collect();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                done.pop();
                continue;
            }
            let cand = format!(
                "/{}",
                done.iter()
                    .chain(std::iter::once(&c))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("/")
            );
            let ino = self
                .fs
                .resolve(Path::new(cand.as_bytes()))
                .map_err(map_err)?;
            let md = self.fs.metadata(&ino).map_err(map_err)?;
            if md.is_symlink() {
                hops += 1;
                // A loop (`ln -s a b; ln -s b a`) is legal on a sound filesystem: Linux
                // answers ELOOP, the path does not resolve. Not corruption.
                if hops > MAX_SYMLINK_HOPS {
                    return Err(FsError::NotFound);
                }
                let target = self
                    .fs
                    .read_link(Path::new(cand.as_bytes()))
                    .map_err(map_err)?;
                let target = String::from_utf8_lossy(&target).into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                for t in components(&target).rev() {
                    todo.push_front(t.to_string());
                }
            } else {
                done.push(c);
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// The inode core's `di_flags` of `ino` (lamxfs does not expose them). The inode number
    /// encodes its place: AG, block in the AG, slot in the block (superblock log sizes).
    fn inode_flags(&self, ino: u64) -> Option<u16> {
        let sb = self.view.read_vec(0, 128).ok()?;
        let (block_size, ag_blocks) = (u64::from(be32(&sb, 4)?), u64::from(be32(&sb, 84)?));
        let inode_size = u64::from(be16(&sb, 104)?);
        let (inopb_log, agblk_log) = (u32::from(*sb.get(123)?), u32::from(*sb.get(124)?));
        if inopb_log + agblk_log >= 64 {
            return None;
        }
        let ag = ino >> (inopb_log + agblk_log);
        let block = (ino >> inopb_log) & ((1u64 << agblk_log) - 1);
        let slot = ino & ((1u64 << inopb_log) - 1);
        let at = ag
            .checked_mul(ag_blocks)?
            .checked_add(block)?
            .checked_mul(block_size)?
            .checked_add(slot.checked_mul(inode_size)?)?;
        let core = self.view.read_vec(at, DI_FLAGS + 2).ok()?;
        if core.get(..2)? != b"IN" {
            return None;
        }
        be16(&core, DI_FLAGS)
    }
}

/// The big-endian `u16` at `o`, if `b` holds it.
fn be16(b: &[u8], o: usize) -> Option<u16> {
    let w = b.get(o..o.checked_add(2)?)?;
    Some(u16::from_be_bytes(w.try_into().ok()?))
}

/// The big-endian `u32` at `o`, if `b` holds it.
fn be32(b: &[u8], o: usize) -> Option<u32> {
    let w = b.get(o..o.checked_add(4)?)?;
    Some(u32::from_be_bytes(w.try_into().ok()?))
}

impl XfsFs<'_, '_> {
    /// [`super::Fs::read`], without noting what was not read.
    fn read_file(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let p = self.canonical(path)?;
        let ino = self.fs.resolve(Path::new(p.as_bytes())).map_err(map_err)?;
        let md = self.fs.metadata(&ino).map_err(map_err)?;
        if md.size() > limit {
            return Err(FsError::TooLarge(md.size()));
        }
        self.fs.read_file(Path::new(p.as_bytes())).map_err(map_err)
    }

    /// [`super::Fs::list`], without noting what was not read.
    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let p = self.canonical(path)?;
        let entries = self.fs.read_dir(Path::new(p.as_bytes())).map_err(map_err)?;
        // lamxfs stops at its limit without an error: a full list may have been cut.
        if entries.len() >= LAMXFS_MAX_DIR_ENTRIES {
            return Err(dir_too_large());
        }
        Ok(entries
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .filter(|n| n != "." && n != "..")
            .collect())
    }
}

impl super::Fs for XfsFs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let r = self.read_file(path, limit).map_err(|e| e.at_path(path));
        self.unread.note("XFS", r)
    }
    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let r = self.list_dir(path).map_err(|e| e.at_path(path));
        self.unread.note("XFS", r)
    }
    fn exists(&mut self, path: &str) -> bool {
        let r = self.canonical(path).map_err(|e| e.at_path(path));
        self.unread.note("XFS", r).is_ok()
    }
    fn notes(&mut self) -> Vec<(&'static preflight_report::Rule, String)> {
        self.unread.take()
    }
    fn immutable(&mut self, path: &str) -> Option<bool> {
        let p = self.canonical(path).ok()?;
        let ino = self.fs.resolve(Path::new(p.as_bytes())).ok()?;
        self.inode_flags(ino.ino).map(|f| f & DIFLAG_IMMUTABLE != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_over_lamxfs_limits_is_not_read_not_corrupt() {
        let e = map_err(lamxfs::Error::Inconsistent {
            token: "dir_too_large",
            where_: lamxfs::Location::Inode { ino: 128 },
        })
        .at_path("/etc");
        assert!(
            matches!(&e, FsError::NotRead { path, limit }
                if path == "/etc" && limit.contains("1048576 entries or more")),
            "{e:?}"
        );
        // Other inconsistencies stay corruption.
        let e = map_err(lamxfs::Error::Inconsistent {
            token: "dir_entry_oob",
            where_: lamxfs::Location::Inode { ino: 128 },
        });
        assert!(matches!(e, FsError::Corrupt(_)), "{e:?}");
    }
}
