//! NTFS through the `ntfs` crate (case-insensitive lookups with the
//! volume's $UpCase table). No symlinks or reparse points are followed.

use super::{components, FsError, FsInfo};
use crate::cache::{Cursor, View};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsFileNamespace;
use ntfs::{Ntfs, NtfsFile};
use std::io::Read;

/// An NTFS filesystem.
pub(crate) struct NtfsFs<'v, 'a> {
    ntfs: Ntfs,
    cur: Cursor<'v, 'a>,
}

fn corrupt(e: impl std::fmt::Display) -> FsError {
    FsError::Corrupt(format!("ntfs: {e}"))
}

impl<'v, 'a> NtfsFs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        let mut cur = view.cursor_zero_padded();
        let mut ntfs = Ntfs::new(&mut cur).map_err(corrupt)?;
        ntfs.read_upcase_table(&mut cur).map_err(corrupt)?;
        let label = match ntfs.volume_name(&mut cur) {
            Some(Ok(n)) => Some(n.name().to_string_lossy()),
            _ => None,
        };
        let info = FsInfo {
            fs_type: "ntfs".into(),
            uuid: Some(format!("{:016X}", ntfs.serial_number())),
            label: label.filter(|l| !l.is_empty()),
            declared_size: Some(ntfs.size()),
            features: Vec::new(),
        };
        Ok((NtfsFs { ntfs, cur }, info))
    }
}

fn lookup<'n>(
    ntfs: &'n Ntfs,
    cur: &mut Cursor<'_, '_>,
    path: &str,
) -> Result<NtfsFile<'n>, FsError> {
    let mut file = ntfs.root_directory(cur).map_err(corrupt)?;
    for name in components(path) {
        if !file.is_directory() {
            return Err(FsError::NotFound);
        }
        let index = file.directory_index(cur).map_err(corrupt)?;
        let mut finder = index.finder();
        let entry = match NtfsFileNameIndex::find(&mut finder, ntfs, cur, name) {
            Some(Ok(e)) => e,
            Some(Err(e)) => return Err(corrupt(e)),
            None => return Err(FsError::NotFound),
        };
        let next = entry.to_file(ntfs, cur).map_err(corrupt)?;
        file = next;
    }
    Ok(file)
}

impl super::Fs for NtfsFs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let file = lookup(&self.ntfs, &mut self.cur, path)?;
        if file.is_directory() {
            return Err(FsError::Corrupt(format!("ntfs: {path} is a directory")));
        }
        let item = match file.data(&mut self.cur, "") {
            Some(Ok(i)) => i,
            Some(Err(e)) => return Err(corrupt(e)),
            None => return Ok(Vec::new()),
        };
        let attr = item.to_attribute().map_err(corrupt)?;
        let value = attr.value(&mut self.cur).map_err(corrupt)?;
        let len = value.len();
        if len > limit {
            return Err(FsError::TooLarge(len));
        }
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        value
            .attach(&mut self.cur)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(corrupt)?;
        Ok(out)
    }

    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let file = lookup(&self.ntfs, &mut self.cur, path)?;
        let index = file.directory_index(&mut self.cur).map_err(corrupt)?;
        let mut entries = index.entries();
        let mut names = Vec::new();
        while let Some(entry) = entries.next(&mut self.cur) {
            let entry = entry.map_err(corrupt)?;
            if let Some(Ok(key)) = entry.key() {
                if key.namespace() != NtfsFileNamespace::Dos {
                    names.push(key.name().to_string_lossy());
                }
            }
        }
        Ok(names)
    }

    fn exists(&mut self, path: &str) -> bool {
        lookup(&self.ntfs, &mut self.cur, path).is_ok()
    }

    fn is_dir(&mut self, path: &str) -> bool {
        lookup(&self.ntfs, &mut self.cur, path).is_ok_and(|f| f.is_directory())
    }
}
