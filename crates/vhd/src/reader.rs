//! The guest view: fixed disks read straight from the file, dynamic disks
//! through the BAT.

use crate::{header, tables, Layout, Sparse, VhdImage};
use preflight_disk::{check_guest_range, read_blockwise, Format, ReadError, Unreadable};

/// Why a guest read of an opened VHD failed: the structure and the offending values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFault {
    /// A fixed disk's file is shorter than the disk.
    #[error(
        "fixed VHD: guest bytes {offset}..{end} pass the end of the data area at {data_end} \
         (the file is shorter than the disk size {disk_size})"
    )]
    FixedPastEnd {
        /// First guest byte asked for.
        offset: u64,
        /// One past the last.
        end: u64,
        /// Where the data area ends in the file.
        data_end: u64,
        /// Virtual size of the disk.
        disk_size: u64,
    },
    /// A BAT entry points at a block that ends past the data area.
    #[error(
        "block {index} at file offset {block_start} ends at {block_end}, past the end of \
         the data area at {data_end}"
    )]
    BlockPastEnd {
        /// BAT index.
        index: u64,
        /// Where the block (its bitmap) starts in the file.
        block_start: u64,
        /// Where its data end.
        block_end: u64,
        /// Where the data area ends.
        data_end: u64,
    },
}

pub(crate) fn read_at(img: &VhdImage, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
    check_guest_range(offset, buf.len(), img.info.virtual_size)?;
    if img.footer.disk_type == header::DISK_DIFFERENCING {
        return Err(ReadError::Unsupported(Unreadable::Differencing {
            format: Format::Vhd,
        }));
    }
    match &img.layout {
        Layout::Fixed => read_fixed(img, offset, buf),
        Layout::Sparse(s) => read_sparse(img, s, offset, buf),
    }
}

/// A fixed disk's guest offset is its file offset, so the file's holes are
/// the disk's; a dynamic disk's data is its allocated blocks (from the BAT).
pub(crate) fn next_data(img: &VhdImage, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
    let size = img.info.virtual_size;
    if offset >= size {
        return Ok(None);
    }
    match &img.layout {
        Layout::Fixed => Ok(img
            .src
            .next_data(offset)?
            .and_then(|(start, end)| (start < size).then_some((start, end.min(size))))),
        Layout::Sparse(s) => Ok(allocated_run(s, offset, size)),
    }
}

/// The first run of allocated blocks at or after `offset`, clipped to `size`.
fn allocated_run(s: &Sparse, offset: u64, size: u64) -> Option<(u64, u64)> {
    let bs = s.block_size.max(1);
    let from = usize::try_from(offset.checked_div(bs)?).ok()?;
    let allocated = |e: &u32| *e != tables::UNALLOCATED;
    let first = from.checked_add(s.bat.get(from..)?.iter().position(allocated)?)?;
    let run = s
        .bat
        .get(first..)?
        .iter()
        .take_while(|e| allocated(e))
        .count();
    let start = len64(first).saturating_mul(bs).max(offset);
    let end = len64(first.saturating_add(run))
        .saturating_mul(bs)
        .min(size);
    (start < end).then_some((start, end))
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn read_fixed(img: &VhdImage, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
    let file_size = img.src.size();
    // The data ends where the footer starts (or at the end of the file when
    // only the copy at offset 0 was found).
    let data_end = if img.end.is_some() {
        file_size.saturating_sub(header::FOOTER_SIZE)
    } else {
        file_size
    };
    let end = offset.saturating_add(len64(buf.len()));
    if end > data_end {
        return Err(ReadError::corrupt(ReadFault::FixedPastEnd {
            offset,
            end,
            data_end,
            disk_size: img.info.virtual_size,
        }));
    }
    img.src.read_exact_at(offset, buf)?;
    Ok(())
}

fn read_sparse(img: &VhdImage, s: &Sparse, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
    // The block size was checked at open to be a power of two >= 512.
    read_blockwise(offset, buf, s.block_size, |index, in_block, chunk| {
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| s.bat.get(i))
            .copied();
        match entry {
            // Past the table or not allocated: zeros, as qemu reads them.
            None | Some(tables::UNALLOCATED) => chunk.fill(0),
            Some(e) => {
                let block_start = u64::from(e).saturating_mul(512);
                let data = block_start.saturating_add(s.bitmap_size);
                let block_end = data.saturating_add(s.block_size);
                if block_end > s.data_end {
                    return Err(ReadError::corrupt(ReadFault::BlockPastEnd {
                        index,
                        block_start,
                        block_end,
                        data_end: s.data_end,
                    }));
                }
                img.src
                    .read_exact_at(data.saturating_add(in_block), chunk)?;
            }
        }
        Ok(())
    })
}
