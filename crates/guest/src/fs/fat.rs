//! FAT (the EFI System Partition) through the `fatfs` crate, read-only: its
//! 0.3 API asks for a read-write stream, and our cursor refuses writes.

use super::{FsError, FsInfo};
use crate::cache::{Cursor, View};
use std::io::Read;

/// A FAT filesystem.
pub(crate) struct FatFs<'v, 'a> {
    fs: fatfs::FileSystem<Cursor<'v, 'a>>,
}

fn corrupt(e: impl std::fmt::Display) -> FsError {
    FsError::Corrupt(format!("fat: {e}"))
}

fn rel(path: &str) -> String {
    super::components(path).collect::<Vec<_>>().join("/")
}

impl<'v, 'a> FatFs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        let bpb = view.read_vec(0, 512).map_err(corrupt)?;
        let bps = u64::from(u16::from_le_bytes([bpb[11], bpb[12]]));
        let t16 = u64::from(u16::from_le_bytes([bpb[19], bpb[20]]));
        let t32 = u64::from(u32::from_le_bytes([bpb[32], bpb[33], bpb[34], bpb[35]]));
        let sectors = if t16 != 0 { t16 } else { t32 };
        // Refuse before fatfs sees it: a zero sector size divides by zero in
        // some FAT code.
        if !matches!(bps, 512 | 1024 | 2048 | 4096) || bpb[13] == 0 {
            return Err(FsError::Corrupt(format!(
                "fat: bytes per sector {bps} or sectors per cluster {} invalid",
                bpb[13]
            )));
        }
        let fs = fatfs::FileSystem::new(view.cursor(), fatfs::FsOptions::new()).map_err(corrupt)?;
        let id = fs.volume_id();
        let label = fs.volume_label().trim().to_string();
        let info = FsInfo {
            fs_type: "vfat".into(),
            uuid: Some(format!("{:04X}-{:04X}", id >> 16, id & 0xffff)),
            label: (!label.is_empty() && label != "NO NAME").then_some(label),
            declared_size: sectors.checked_mul(bps),
            features: Vec::new(),
        };
        Ok((FatFs { fs }, info))
    }
}

impl super::Fs for FatFs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let p = rel(path);
        let root = self.fs.root_dir();
        let mut f = root.open_file(&p).map_err(|_| FsError::NotFound)?;
        let mut out = Vec::new();
        (&mut f)
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(corrupt)?;
        if u64::try_from(out.len()).unwrap_or(u64::MAX) > limit {
            return Err(FsError::TooLarge(
                u64::try_from(out.len()).unwrap_or(u64::MAX),
            ));
        }
        Ok(out)
    }

    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        Ok(self.list_typed(path)?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_typed(&mut self, path: &str) -> Result<Vec<(String, bool)>, FsError> {
        let p = rel(path);
        let root = self.fs.root_dir();
        let dir = if p.is_empty() {
            root
        } else {
            root.open_dir(&p).map_err(|_| FsError::NotFound)?
        };
        let mut entries = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(corrupt)?;
            let n = e.file_name();
            if n != "." && n != ".." {
                entries.push((n, e.is_dir()));
            }
        }
        Ok(entries)
    }

    fn is_dir(&mut self, path: &str) -> bool {
        let p = rel(path);
        p.is_empty() || self.fs.root_dir().open_dir(&p).is_ok()
    }

    fn exists(&mut self, path: &str) -> bool {
        let p = rel(path);
        if p.is_empty() {
            return true;
        }
        let root = self.fs.root_dir();
        root.open_file(&p).is_ok() || root.open_dir(&p).is_ok()
    }
}
