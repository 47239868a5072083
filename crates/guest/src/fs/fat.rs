//! FAT (the EFI System Partition) through the `fatfs` crate, read-only: its
//! 0.3 API asks for a read-write stream, and our cursor refuses writes.
use super::{FsError, FsInfo, WalkLimits};
use crate::cache::{Cursor, View};
use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

type Dir<'f, 'v, 'a> = fatfs::Dir<'f, Budgeted<'v, 'a>>;
type DirEntry<'f, 'v, 'a> = fatfs::DirEntry<'f, Budgeted<'v, 'a>>;

/// What one directory may cost to read: the FAT specification's largest directory
/// (65,536 32-byte slots, 2 MiB) and its cluster chain in the FAT, with room to spare.
const DIR_BUDGET: u64 = 4 << 20;

/// Paths [`FatFs::walk`] also resolves from the root, in the top two levels only (each
/// lookup scans a directory per level, and a crafted directory may contain itself).
const PATH_LOOKUPS: usize = 16;

/// The cursor fatfs reads through, with a byte budget that each call of the reader sets.
/// fatfs follows a directory's cluster chain without noticing a loop, so a chain that
/// loops back lists the same entries forever and a lookup of a name that is not there
/// never ends; past the budget every read fails, and so does the call.
struct Budgeted<'v, 'a> {
    cursor: Cursor<'v, 'a>,
    left: Rc<Cell<u64>>,
    /// Where the first read since it was last cleared began: the start of a directory's
    /// data, when it is cleared before the directory is listed.
    first: Rc<Cell<Option<u64>>>,
}

impl Read for Budgeted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.first.get().is_none() {
            self.first.set(Some(self.cursor.stream_position()?));
        }
        let left = self.left.get();
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::other(
                "read over the budget of this call (a looping cluster chain?)",
            ));
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let got = self.cursor.read(buf.get_mut(..n).unwrap_or_default())?;
        self.left
            .set(left.saturating_sub(u64::try_from(got).unwrap_or(u64::MAX)));
        Ok(got)
    }
}

impl Seek for Budgeted<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.cursor.seek(to)
    }
}

impl Write for Budgeted<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.cursor.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.cursor.flush()
    }
}

/// A FAT filesystem.
pub(crate) struct FatFs<'v, 'a> {
    fs: fatfs::FileSystem<Budgeted<'v, 'a>>,
    /// The budget of [`Budgeted`], set before each call into fatfs.
    budget: Rc<Cell<u64>>,
    /// [`Budgeted`]'s first read, which tells one directory from another.
    first: Rc<Cell<Option<u64>>>,
}

fn corrupt(e: impl std::fmt::Display) -> FsError {
    FsError::Corrupt(format!("fat: {e}"))
}

fn rel(path: &str) -> String {
    super::components(path).collect::<Vec<_>>().join("/")
}

/// The entries of a directory (`dir.iter()`) without `.` and `..`, at most `cap` of them.
fn entries<'f, 'v, 'a>(
    iter: impl Iterator<Item = io::Result<DirEntry<'f, 'v, 'a>>>,
    cap: usize,
) -> Result<Vec<DirEntry<'f, 'v, 'a>>, FsError> {
    let mut out = Vec::new();
    for e in iter {
        let e = e.map_err(corrupt)?;
        if out.len() >= cap {
            break;
        }
        let n = e.file_name();
        if n != "." && n != ".." {
            out.push(e);
        }
    }
    Ok(out)
}

/// A whole file, if it is at most `limit` bytes.
fn read_file(file: impl Read, limit: u64) -> Result<Vec<u8>, FsError> {
    let mut out = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    let len = u64::try_from(out.len()).unwrap_or(u64::MAX);
    if len > limit {
        return Err(FsError::TooLarge(len));
    }
    Ok(out)
}

/// A little-endian field of the boot sector.
fn le(bpb: &[u8; 512], at: usize, width: usize) -> u64 {
    bpb.get(at..at + width)
        .unwrap_or_default()
        .iter()
        .rev()
        .fold(0, |n, b| n << 8 | u64::from(*b))
}

impl<'v, 'a> FatFs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        let mut bpb = [0u8; 512];
        view.read_at(0, &mut bpb).map_err(corrupt)?;
        let bps = le(&bpb, 11, 2);
        let sectors_per_cluster = le(&bpb, 13, 1);
        let t16 = le(&bpb, 19, 2);
        let t32 = le(&bpb, 32, 4);
        let sectors = if t16 != 0 { t16 } else { t32 };
        // Refuse before fatfs sees it: a zero sector size divides by zero in
        // some FAT code.
        if !matches!(bps, 512 | 1024 | 2048 | 4096) || sectors_per_cluster == 0 {
            return Err(FsError::Corrupt(format!(
                "fat: bytes per sector {bps} or sectors per cluster {sectors_per_cluster} invalid"
            )));
        }
        let budget = Rc::new(Cell::new(DIR_BUDGET));
        let first = Rc::new(Cell::new(None));
        let stream = Budgeted {
            cursor: view.cursor(),
            left: Rc::clone(&budget),
            first: Rc::clone(&first),
        };
        let fs = fatfs::FileSystem::new(stream, fatfs::FsOptions::new()).map_err(corrupt)?;
        let id = fs.volume_id();
        let label = fs.volume_label().trim().to_string();
        let info = FsInfo {
            fs_type: "vfat".into(),
            uuid: Some(format!("{:04X}-{:04X}", id >> 16, id & 0xffff)),
            label: (!label.is_empty() && label != "NO NAME").then_some(label),
            declared_size: sectors.checked_mul(bps),
            features: Vec::new(),
        };
        Ok((FatFs { fs, budget, first }, info))
    }
}

impl<'v, 'a> FatFs<'v, 'a> {
    /// The entries of `dir` as [`entries`] lists them, or none if a directory whose data
    /// starts at the same place is in `listed` already. Directories share their data only on
    /// a corrupt volume (an entry of cluster 0 is the root to fatfs, an entry may name its
    /// own cluster); listing each again made a walk cost max_entries x directory size.
    fn entries_once<'f>(
        &'f self,
        dir: &Dir<'f, 'v, 'a>,
        cap: usize,
        listed: &mut HashSet<u64>,
    ) -> Result<Vec<DirEntry<'f, 'v, 'a>>, FsError> {
        self.first.set(None);
        let mut iter = dir.iter();
        // The first entry's read is at the start of the directory's data.
        let head = iter.next();
        if self.first.get().is_some_and(|at| !listed.insert(at)) {
            return Ok(Vec::new());
        }
        entries(head.into_iter().chain(iter), cap)
    }
}

impl FatFs<'_, '_> {
    /// Whether `path` names a file or a directory, resolved from the root.
    fn resolves(&self, path: &str) -> bool {
        let p = self.budget_for(path, 0);
        if p.is_empty() {
            return true;
        }
        let root = self.fs.root_dir();
        if root.open_file(&p).is_ok() {
            return true;
        }
        self.budget_for(path, 0);
        root.open_dir(&p).is_ok()
    }

    /// Sets the read budget for a call that resolves `path` (each directory on the way may
    /// cost [`DIR_BUDGET`]) and then reads up to `file` bytes.
    fn budget_for(&self, path: &str, file: u64) -> String {
        let p = rel(path);
        let dirs = u64::try_from(p.split('/').count()).unwrap_or(u64::MAX);
        self.budget.set(
            DIR_BUDGET
                .saturating_mul(dirs.saturating_add(1))
                .saturating_add(file),
        );
        p
    }
}

impl super::Fs for FatFs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let p = self.budget_for(path, limit);
        let f = self
            .fs
            .root_dir()
            .open_file(&p)
            .map_err(|_| FsError::NotFound)?;
        read_file(f, limit)
    }

    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        Ok(self.list_typed(path)?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_typed(&mut self, path: &str) -> Result<Vec<(String, bool)>, FsError> {
        let p = self.budget_for(path, DIR_BUDGET);
        let root = self.fs.root_dir();
        let dir = if p.is_empty() {
            root
        } else {
            root.open_dir(&p).map_err(|_| FsError::NotFound)?
        };
        Ok(entries(dir.iter(), usize::MAX)?
            .into_iter()
            .map(|e| (e.file_name(), e.is_dir()))
            .collect())
    }

    /// Holds each directory's handle while it walks (fatfs opens by path only, from the
    /// root: the default walk cost depth x entries x directory size).
    fn walk(&mut self, limits: WalkLimits) -> usize {
        let mut seen = 0usize;
        let mut lookups = 0usize;
        let mut listed = HashSet::new();
        let mut dirs = vec![(self.fs.root_dir(), String::new(), 0usize)];
        while let Some((dir, dir_path, depth)) = dirs.pop() {
            // One more than the walk can visit, so a directory past the cap still counts.
            let cap = limits.max_entries.saturating_sub(seen).saturating_add(1);
            self.budget.set(DIR_BUDGET);
            let Ok(found) = self.entries_once(&dir, cap, &mut listed) else {
                continue;
            };
            for e in found {
                if seen >= limits.max_entries {
                    return seen;
                }
                seen += 1;
                let path = format!("{dir_path}/{}", e.file_name());
                // The first few paths are also resolved from the root, as `inspect` resolves
                // them, so fatfs's lookup code stays under the fuzzer at a bounded cost.
                if depth <= 1 && lookups < PATH_LOOKUPS {
                    lookups += 1;
                    let _ = self.resolves(&path);
                }
                if e.is_dir() {
                    if depth < limits.max_depth {
                        dirs.push((e.to_dir(), path, depth + 1));
                    }
                } else {
                    // The file's size bounds the read; its chain may still loop in the FAT.
                    self.budget
                        .set(DIR_BUDGET.saturating_add(limits.file_limit));
                    let _ = read_file(e.to_file(), limits.file_limit);
                }
            }
        }
        seen
    }

    fn is_dir(&mut self, path: &str) -> bool {
        let p = self.budget_for(path, 0);
        p.is_empty() || self.fs.root_dir().open_dir(&p).is_ok()
    }

    fn exists(&mut self, path: &str) -> bool {
        self.resolves(path)
    }
}
