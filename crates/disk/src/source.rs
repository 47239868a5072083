//! Byte sources: where a container format's bytes come from.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Random-access bytes of an image file. Shared by threads, so `&self`.
pub trait Source: Send + Sync {
    /// Total length in bytes.
    fn size(&self) -> u64;

    /// Reads exactly `buf.len()` bytes at `offset`; an error if the file is
    /// shorter.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// The next stretch `(start, end)` at or after `offset` that may hold
    /// data; `None` when only holes remain. Bytes outside every stretch read
    /// as zeros, so a reader may skip them. The default knows of no holes.
    fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        let size = self.size();
        Ok((offset < size).then_some((offset, size)))
    }
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        u64::try_from(self.len()).unwrap_or(u64::MAX)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let slice = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(slice);
        Ok(())
    }
}

impl Source for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the image",
    )
}

/// An image file on disk. The size is taken once at open: an image that
/// changes while we read it is not supported.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    size: u64,
    path: PathBuf,
}

impl FileSource {
    /// Opens `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a directory", path.display()),
            ));
        }
        Ok(FileSource {
            size: meta.len(),
            file,
            path: path.to_path_buf(),
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Asks the filesystem with `SEEK_DATA`/`SEEK_HOLE`, so a sparse file's
    /// holes are skipped without reading them. A filesystem without them
    /// (`EINVAL`) reports the whole rest of the file as data.
    fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        use rustix::fs::{seek, SeekFrom};
        if offset >= self.size {
            return Ok(None);
        }
        // The file position moves, but every read here is positional (pread).
        let start = match seek(&self.file, SeekFrom::Data(offset)) {
            Ok(start) => start,
            Err(rustix::io::Errno::NXIO) => return Ok(None),
            Err(_) => return Ok(Some((offset, self.size))),
        };
        if start >= self.size {
            return Ok(None);
        }
        let end = seek(&self.file, SeekFrom::Hole(start)).map_or(self.size, |e| e.min(self.size));
        Ok(Some((start, end.max(start))))
    }
}
