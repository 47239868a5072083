//! The file names in a squashfs 4.0 image: what dracut's `squash` module puts
//! in `squash-root.img` (the initramfs's modules among them).
//!
//! Hand-written rather than the `backhand` crate: its current releases need a
//! newer Rust than ours and link C liblzma and zstd, and we need only names,
//! never file data. We decode the inode and directory tables (metadata blocks
//! of at most 8 KiB) with the decoders the initramfs reader already links,
//! under a bound on memory, entries and depth.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

/// The superblock magic, "hsqs".
pub const MAGIC: &[u8; 4] = b"hsqs";

/// A metadata block unpacks to at most this many bytes.
const METADATA_BLOCK: usize = 8192;
/// Most bytes of inode and directory tables together.
const MAX_TABLES: usize = 128 * 1024 * 1024;
/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 64;

/// Why a squashfs could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SquashfsError {
    /// Not a squashfs 4.0 image.
    #[error("not a squashfs 4.0 image ({0})")]
    NotSquashfs(String),
    /// Compressed with a method we do not decode.
    #[error("squashfs compressor {0} is not supported")]
    Compressor(u16),
    /// A table, block or entry is out of range or does not decode.
    #[error("corrupt squashfs: {0}")]
    Corrupt(String),
    /// The tables pass the memory bound.
    #[error("squashfs tables larger than {0} bytes")]
    TooLarge(usize),
}

fn corrupt(what: impl Into<String>) -> SquashfsError {
    SquashfsError::Corrupt(what.into())
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A writer that refuses more than `left` bytes.
struct Capped {
    out: Vec<u8>,
    left: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.left {
            return Err(io::Error::other("metadata block larger than 8 KiB"));
        }
        self.left -= buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn unpack(compressor: u16, src: &[u8]) -> Result<Vec<u8>, SquashfsError> {
    let mut w = Capped {
        out: Vec::new(),
        left: METADATA_BLOCK,
    };
    let err = |e: &dyn std::fmt::Display| corrupt(format!("metadata block: {e}"));
    match compressor {
        1 => {
            let mut d = flate2::read::ZlibDecoder::new(src).take(METADATA_BLOCK as u64 + 1);
            io::copy(&mut d, &mut w).map_err(|e| err(&e))?;
        }
        2 => lzma_rs::lzma_decompress(&mut io::BufReader::new(src), &mut w).map_err(|e| err(&e))?,
        3 => {
            w.out = super::lzo::decompress_lzo1x(src, METADATA_BLOCK).map_err(|e| err(&e))?;
        }
        4 => lzma_rs::xz_decompress(&mut io::BufReader::new(src), &mut w).map_err(|e| err(&e))?,
        5 => {
            w.out = lz4_flex::block::decompress(src, METADATA_BLOCK).map_err(|e| err(&e))?;
        }
        6 => {
            let mut s = src;
            let d = ruzstd::decoding::StreamingDecoder::new(&mut s).map_err(|e| err(&e))?;
            io::copy(&mut d.take(METADATA_BLOCK as u64 + 1), &mut w).map_err(|e| err(&e))?;
        }
        other => return Err(SquashfsError::Compressor(other)),
    }
    Ok(w.out)
}

/// A table of metadata blocks, unpacked, with where each block starts.
struct Table {
    data: Vec<u8>,
    /// On-disk offset of a block (from the table's start) -> its offset in `data`.
    starts: HashMap<u64, usize>,
}

impl Table {
    fn read(
        img: &[u8],
        start: u64,
        end: u64,
        compressor: u16,
        budget: &mut usize,
    ) -> Result<Table, SquashfsError> {
        let mut t = Table {
            data: Vec::new(),
            starts: HashMap::new(),
        };
        let mut pos = start;
        while pos < end {
            let at = usize::try_from(pos).map_err(|_| corrupt("table offset"))?;
            let header =
                le16(img, at).ok_or_else(|| corrupt(format!("table at {pos} past the end")))?;
            let size = usize::from(header & 0x7fff);
            let body = img
                .get(at + 2..at + 2 + size)
                .ok_or_else(|| corrupt(format!("metadata block at {pos} past the end")))?;
            let block = if header & 0x8000 != 0 {
                body.to_vec()
            } else {
                unpack(compressor, body)?
            };
            if block.len() > METADATA_BLOCK {
                return Err(corrupt(format!(
                    "metadata block at {pos} unpacks past 8 KiB"
                )));
            }
            if block.len() > *budget {
                return Err(SquashfsError::TooLarge(MAX_TABLES));
            }
            *budget -= block.len();
            t.starts.insert(pos - start, t.data.len());
            t.data.extend_from_slice(&block);
            pos += 2 + size as u64;
        }
        Ok(t)
    }

    /// Offset in `data` of (block, offset within it).
    fn at(&self, block: u64, offset: usize) -> Result<usize, SquashfsError> {
        let base = self
            .starts
            .get(&block)
            .ok_or_else(|| corrupt(format!("no metadata block at table offset {block}")))?;
        Ok(base + offset)
    }
}

/// A directory's contents as its inode gives them.
struct Dir {
    block: u64,
    offset: usize,
    size: usize,
}

fn dir_of(inodes: &Table, reference: u64) -> Result<Option<Dir>, SquashfsError> {
    let at = inodes.at(
        reference >> 16,
        usize::try_from(reference & 0xffff).unwrap_or(0),
    )?;
    let b = &inodes.data;
    let kind = le16(b, at).ok_or_else(|| corrupt("inode past the table"))?;
    let field = |o: usize| le32(b, at + o).ok_or_else(|| corrupt("inode past the table"));
    match kind {
        1 => Ok(Some(Dir {
            block: u64::from(field(16)?),
            size: usize::from(le16(b, at + 24).ok_or_else(|| corrupt("inode past the table"))?),
            offset: usize::from(le16(b, at + 26).ok_or_else(|| corrupt("inode past the table"))?),
        })),
        8 => Ok(Some(Dir {
            size: field(20)? as usize,
            block: u64::from(field(24)?),
            offset: usize::from(le16(b, at + 34).ok_or_else(|| corrupt("inode past the table"))?),
        })),
        _ => Ok(None),
    }
}

/// Every path in the image (no leading `/`), directories included, at most
/// `max_entries` of them.
pub fn list(img: &[u8], max_entries: usize) -> Result<Vec<String>, SquashfsError> {
    let sb = img
        .get(..96)
        .ok_or_else(|| SquashfsError::NotSquashfs("shorter than a superblock".into()))?;
    if !sb.starts_with(MAGIC) {
        return Err(SquashfsError::NotSquashfs("no hsqs magic".into()));
    }
    let (major, minor) = (le16(sb, 28).unwrap_or(0), le16(sb, 30).unwrap_or(0));
    if (major, minor) != (4, 0) {
        return Err(SquashfsError::NotSquashfs(format!(
            "version {major}.{minor}"
        )));
    }
    let compressor = le16(sb, 20).unwrap_or(0);
    let root = le64(sb, 32).unwrap_or(0);
    let len = img.len() as u64;
    let inode_start = le64(sb, 64).unwrap_or(u64::MAX);
    let dir_start = le64(sb, 72).unwrap_or(u64::MAX);
    // The directory table ends where the first later table (or its index) begins.
    let dir_end = [40, 48, 56, 80, 88]
        .iter()
        .filter_map(|&o| le64(sb, o))
        .filter(|&p| p > dir_start && p != u64::MAX)
        .min()
        .unwrap_or(len)
        .min(len);
    if inode_start >= dir_start || dir_start > len {
        return Err(corrupt(format!(
            "inode table at {inode_start}, directory table at {dir_start}, image {len} bytes"
        )));
    }
    let mut budget = MAX_TABLES;
    let inodes = Table::read(img, inode_start, dir_start, compressor, &mut budget)?;
    let dirs = Table::read(img, dir_start, dir_end, compressor, &mut budget)?;

    let mut names = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(root, String::new(), 0usize)];
    while let Some((reference, path, depth)) = stack.pop() {
        if depth > MAX_DEPTH || !seen.insert(reference) {
            continue;
        }
        let Some(dir) = dir_of(&inodes, reference)? else {
            continue;
        };
        // The size counts 3 bytes for the "." and ".." squashfs does not store.
        let start = dirs.at(dir.block, dir.offset)?;
        let end = start + dir.size.saturating_sub(3);
        let listing = dirs
            .data
            .get(start..end)
            .ok_or_else(|| corrupt(format!("directory of {path:?} past the table")))?;
        let mut p = 0usize;
        while p < listing.len() {
            let count = le32(listing, p).ok_or_else(|| corrupt("directory header"))? as usize + 1;
            let inode_block = le32(listing, p + 4).ok_or_else(|| corrupt("directory header"))?;
            p += 12;
            if count > 256 {
                return Err(corrupt(format!("directory header of {count} entries")));
            }
            for _ in 0..count {
                let entry =
                    |o: usize| le16(listing, p + o).ok_or_else(|| corrupt("directory entry"));
                let offset = entry(0)?;
                let kind = entry(4)?;
                let name_len = usize::from(entry(6)?) + 1;
                let name = listing
                    .get(p + 8..p + 8 + name_len)
                    .ok_or_else(|| corrupt("directory entry name"))?;
                p += 8 + name_len;
                let name = String::from_utf8_lossy(name);
                if name.contains('/') || name == "." || name == ".." {
                    return Err(corrupt(format!("directory entry named {name:?}")));
                }
                let full = if path.is_empty() {
                    name.into_owned()
                } else {
                    format!("{path}/{name}")
                };
                if names.len() >= max_entries {
                    return Ok(names);
                }
                if kind == 1 || kind == 8 {
                    let child = (u64::from(inode_block) << 16) | u64::from(offset);
                    stack.push((child, full.clone(), depth + 1));
                }
                names.push(full);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_superblocks_are_errors() {
        assert!(list(b"hsqs", 10).is_err());
        let mut sb = vec![0u8; 96];
        sb[0..4].copy_from_slice(MAGIC);
        sb[28] = 4;
        assert!(list(&sb, 10).is_err(), "tables in the wrong order");
        sb[64..72].copy_from_slice(&96u64.to_le_bytes());
        sb[72..80].copy_from_slice(&1000u64.to_le_bytes());
        assert!(list(&sb, 10).is_err(), "tables past the end");
    }
}
