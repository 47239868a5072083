//! XFS through the `lamxfs` crate (v4 and v5, CRCs checked, dirty logs
//! replayed in memory). lamxfs does not follow symlinks; we do.

use super::{components, uuid_string, FsError, FsInfo};
use crate::cache::View;
use lamxfs::{Path, Xfs};

/// Symlinks followed while resolving one path (Linux's limit is 40).
const MAX_SYMLINK_HOPS: u32 = 40;

/// An XFS filesystem.
pub(crate) struct XfsFs<'v, 'a> {
    fs: Xfs<View<'v, 'a>>,
    view: View<'v, 'a>,
}

/// `XFS_DIFLAG_IMMUTABLE` in the inode core's `di_flags`.
const DIFLAG_IMMUTABLE: u16 = 0x0008;
/// Offset of `di_flags` in the inode core (`xfs_dinode`).
const DI_FLAGS: usize = 90;

fn map_err(e: lamxfs::Error) -> FsError {
    match e {
        lamxfs::Error::NotFound { .. } => FsError::NotFound,
        lamxfs::Error::FileTooLarge { size, .. } => FsError::TooLarge(size),
        other => FsError::Corrupt(format!("xfs: {other:?}")),
    }
}

impl<'v, 'a> XfsFs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        let sb = view
            .read_vec(0, 512)
            .map_err(|e| FsError::Corrupt(format!("xfs superblock: {e}")))?;
        let bsize = u64::from(u32::from_be_bytes([sb[4], sb[5], sb[6], sb[7]]));
        let mut d = [0u8; 8];
        d.copy_from_slice(&sb[8..16]);
        let dblocks = u64::from_be_bytes(d);
        let fs = Xfs::open(view, view.len).map_err(map_err)?;
        let label = fs.label().map(str::to_string).filter(|l| !l.is_empty());
        let info = FsInfo {
            fs_type: "xfs".into(),
            uuid: Some(uuid_string(&fs.uuid())),
            label,
            declared_size: dblocks.checked_mul(bsize),
            features: Vec::new(),
        };
        Ok((XfsFs { fs, view }, info))
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
                if hops > MAX_SYMLINK_HOPS {
                    return Err(FsError::Corrupt(format!(
                        "xfs: too many symlinks in {path}"
                    )));
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
        let be32 =
            |o: usize| u64::from(u32::from_be_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]));
        let (block_size, ag_blocks) = (be32(4), be32(84));
        let inode_size = u64::from(u16::from_be_bytes([sb[104], sb[105]]));
        let (inopb_log, agblk_log) = (u32::from(sb[123]), u32::from(sb[124]));
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
        (core.get(..2)? == b"IN").then(|| u16::from_be_bytes([core[DI_FLAGS], core[DI_FLAGS + 1]]))
    }
}

impl super::Fs for XfsFs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let p = self.canonical(path)?;
        let ino = self.fs.resolve(Path::new(p.as_bytes())).map_err(map_err)?;
        let md = self.fs.metadata(&ino).map_err(map_err)?;
        if md.size() > limit {
            return Err(FsError::TooLarge(md.size()));
        }
        self.fs.read_file(Path::new(p.as_bytes())).map_err(map_err)
    }
    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let p = self.canonical(path)?;
        let entries = self.fs.read_dir(Path::new(p.as_bytes())).map_err(map_err)?;
        Ok(entries
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .filter(|n| n != "." && n != "..")
            .collect())
    }
    fn exists(&mut self, path: &str) -> bool {
        self.canonical(path).is_ok()
    }
    fn immutable(&mut self, path: &str) -> Option<bool> {
        let p = self.canonical(path).ok()?;
        let ino = self.fs.resolve(Path::new(p.as_bytes())).ok()?;
        self.inode_flags(ino.ino).map(|f| f & DIFLAG_IMMUTABLE != 0)
    }
}
