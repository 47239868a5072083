//! A small read cache over the guest disk that counts what it reads, and
//! bounded views of a partition for the filesystem readers.

use preflight_disk::{BlockRead, ReadError};
use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::io;

/// Cache granule: reads are rounded out to this, so the many small reads of
/// a filesystem walk (superblocks, inodes, directory blocks) cost one disk
/// read each 64 KiB.
pub(crate) const CHUNK: u64 = 64 * 1024;

/// Chunks kept (64 MiB): enough for the metadata of a walk; a long file read
/// (an initramfs) streams through it.
const MAX_CHUNKS: usize = 1024;

/// The guest disk with a chunk cache and a byte counter.
pub(crate) struct CachedDisk<'a> {
    disk: &'a dyn BlockRead,
    size: u64,
    chunks: RefCell<Chunks>,
    bytes_read: Cell<u64>,
}

#[derive(Default)]
struct Chunks {
    map: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl<'a> CachedDisk<'a> {
    pub(crate) fn new(disk: &'a dyn BlockRead) -> Self {
        CachedDisk {
            disk,
            size: disk.size(),
            chunks: RefCell::new(Chunks::default()),
            bytes_read: Cell::new(0),
        }
    }

    /// Virtual size of the disk.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes read from the underlying disk so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Reads `buf.len()` bytes at `offset`, through the cache.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        preflight_disk::check_guest_range(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + u64::try_from(done).unwrap_or(u64::MAX);
            let index = pos / CHUNK;
            let within = usize::try_from(pos % CHUNK).unwrap_or(0);
            let mut guard = self.chunks.borrow_mut();
            let Chunks { map, order } = &mut *guard;
            if !map.contains_key(&index) && order.len() >= MAX_CHUNKS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            // The entry API hands back the chunk it holds or inserts: no lookup can miss.
            let chunk = match map.entry(index) {
                Entry::Occupied(held) => held.into_mut(),
                Entry::Vacant(slot) => {
                    let start = index * CHUNK;
                    let len = CHUNK.min(self.size - start);
                    let mut data = vec![0u8; usize::try_from(len).unwrap_or(0)];
                    self.disk.read_at(start, &mut data)?;
                    self.bytes_read
                        .set(self.bytes_read.get().saturating_add(len));
                    order.push_back(index);
                    slot.insert(data)
                }
            };
            let src = chunk.get(within..).unwrap_or_default();
            let n = crate::bytes::copy_prefix(buf.get_mut(done..).unwrap_or_default(), src);
            if n == 0 {
                return Err(ReadError::OutOfRange {
                    offset: pos,
                    len: 1,
                    size: self.size,
                });
            }
            done += n;
        }
        Ok(())
    }

    /// Reads a small range into a new buffer.
    pub(crate) fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
}

/// One piece of a volume made of pieces (an LVM logical volume): `len` bytes
/// at volume offset `start` lie at `disk` on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) start: u64,
    pub(crate) disk: u64,
    pub(crate) len: u64,
}

/// A partition (or the whole disk): reads are bounded to `start..start+len`.
/// A volume made of pieces has them in `extents` (in volume order, covering
/// `0..len`); `start` is then where the first one lies.
#[derive(Clone, Copy)]
pub(crate) struct View<'d, 'a> {
    pub(crate) disk: &'d CachedDisk<'a>,
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) extents: &'d [Extent],
}

impl<'d, 'a> View<'d, 'a> {
    /// A contiguous range of the disk.
    pub(crate) fn new(disk: &'d CachedDisk<'a>, start: u64, len: u64) -> Self {
        View {
            disk,
            start,
            len,
            extents: &[],
        }
    }

    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let n = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        match offset.checked_add(n) {
            Some(end) if end <= self.len => {
                if self.extents.is_empty() {
                    return self.disk.read_at(self.start + offset, buf);
                }
                self.read_extents(offset, buf)
            }
            _ => Err(ReadError::OutOfRange {
                offset,
                len: n,
                size: self.len,
            }),
        }
    }

    /// A read that may cross from one extent to the next.
    fn read_extents(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + u64::try_from(done).unwrap_or(u64::MAX);
            let i = self.extents.partition_point(|e| e.start + e.len <= pos);
            let e =
                self.extents
                    .get(i)
                    .filter(|e| e.start <= pos)
                    .ok_or(ReadError::OutOfRange {
                        offset: pos,
                        len: 1,
                        size: self.len,
                    })?;
            let within = pos - e.start;
            let rest = buf.get_mut(done..).unwrap_or_default();
            let n = usize::try_from(e.len - within)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            self.disk
                .read_at(e.disk + within, rest.get_mut(..n).unwrap_or_default())?;
            done += n;
        }
        Ok(())
    }

    pub(crate) fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }

    /// A `Read + Seek` cursor over the view (for the fatfs crate).
    pub(crate) fn cursor(self) -> Cursor<'d, 'a> {
        Cursor {
            view: self,
            pos: 0,
            zeros_past_end: false,
            block: Vec::new(),
            block_start: 0,
        }
    }

    /// A cursor that reads zeros past the view's end instead of ending the read. For the ntfs
    /// crate, which panics on an end of file met inside a structure (binrw wraps the I/O
    /// error in a backtrace it declares unreachable); zeros fail its signature checks.
    pub(crate) fn cursor_zero_padded(self) -> Cursor<'d, 'a> {
        Cursor {
            view: self,
            pos: 0,
            zeros_past_end: true,
            block: Vec::new(),
            block_start: 0,
        }
    }
}

impl lamxfs::BlockRead for View<'_, '_> {
    type Error = ReadError;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        View::read_at(self, offset, buf)
    }
}

/// `Read + Seek` over a [`View`]; `Write` always fails (read-only adapter for
/// fatfs, whose 0.3 API asks for a read-write stream).
pub(crate) struct Cursor<'d, 'a> {
    view: View<'d, 'a>,
    pos: u64,
    zeros_past_end: bool,
    /// The last block read, at `block_start`: the readers read directory entries and
    /// headers field by field, a few bytes at a time, and each trip through the cache
    /// costs a hash lookup.
    block: Vec<u8>,
    block_start: u64,
}

/// Bytes a [`Cursor`] reads ahead.
const CURSOR_BLOCK: u64 = 4096;

impl io::Read for Cursor<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.view.len.saturating_sub(self.pos);
        let n =
            usize::try_from(left.min(u64::try_from(buf.len()).unwrap_or(u64::MAX))).unwrap_or(0);
        if n == 0 {
            if self.zeros_past_end && !buf.is_empty() {
                buf.fill(0);
                self.pos = self
                    .pos
                    .saturating_add(u64::try_from(buf.len()).unwrap_or(0));
                return Ok(buf.len());
            }
            return Ok(0);
        }
        let want = buf.get_mut(..n).unwrap_or_default();
        let n = want.len();
        let len = want.len() as u64;
        let mut in_block = self.pos >= self.block_start
            && self.pos + len <= self.block_start + self.block.len() as u64;
        if !in_block && len < CURSOR_BLOCK {
            // The aligned block that holds the read and the next one, or up to the view's end
            // (a read that fits stays in the pair).
            let start = self.pos - self.pos % CURSOR_BLOCK;
            let end = (start + 2 * CURSOR_BLOCK).min(self.view.len);
            self.block
                .resize(usize::try_from(end - start).unwrap_or(0), 0);
            in_block = self.view.read_at(start, &mut self.block).is_ok();
            if !in_block {
                self.block.clear();
            }
            self.block_start = start;
        }
        let cached = in_block
            .then(|| {
                // in_block: the block starts at or before pos.
                let at = usize::try_from(self.pos - self.block_start).ok()?;
                self.block.get(at..at.checked_add(n)?)
            })
            .flatten();
        if let Some(cached) = cached {
            want.copy_from_slice(cached);
        } else {
            // Large, or the block around it unreadable: read exactly what was asked.
            self.view
                .read_at(self.pos, want)
                .map_err(io::Error::other)?;
        }
        self.pos += u64::try_from(n).unwrap_or(0);
        Ok(n)
    }
}

impl io::Seek for Cursor<'_, '_> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let new = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => self.view.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek out of range",
            )),
        }
    }
}

impl io::Write for Cursor<'_, '_> {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the guest disk is read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preflight_disk::raw::RawImage;
    use std::io::{Read, Seek, SeekFrom};
    use std::sync::Arc;

    #[test]
    fn cursor_reads_before_its_cached_block() {
        let bytes: Vec<u8> = (0..CHUNK * 2).map(|i| (i % 251) as u8).collect();
        let chunk = usize::try_from(CHUNK).unwrap();
        let disk = RawImage::new(Arc::new(bytes.clone()));
        let cache = CachedDisk::new(&disk);
        let mut c = View::new(&cache, 0, cache.size()).cursor();
        let mut small = [0u8; 10];
        c.seek(SeekFrom::Start(10_000)).unwrap();
        c.read_exact(&mut small).unwrap();
        assert_eq!(small[..], bytes[10_000..10_010]);
        // A large read before the cached block bypasses it.
        let mut large = vec![0u8; 5000];
        c.seek(SeekFrom::Start(0)).unwrap();
        c.read_exact(&mut large).unwrap();
        assert_eq!(large[..], bytes[..5000]);
        // Reads that cross chunks, and one past the end that reads nothing.
        let mut across = vec![0u8; 300];
        c.seek(SeekFrom::Start(CHUNK - 100)).unwrap();
        c.read_exact(&mut across).unwrap();
        assert_eq!(across[..], bytes[chunk - 100..chunk + 200]);
        c.seek(SeekFrom::End(0)).unwrap();
        assert_eq!(c.read(&mut small).unwrap(), 0);
    }
}
