//! The guest view: payload blocks through the BAT.

use crate::tables;
use crate::VhdxImage;
use preflight_disk::{check_guest_range, read_blockwise, Format, ReadError, Unreadable};

/// Why a guest read of an opened VHDX failed: the structure and the offending values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFault {
    /// The BAT has no entry for a block of the disk.
    #[error("no BAT entry {index} for block {block}")]
    NoBatEntry {
        /// BAT index asked for.
        index: u64,
        /// Guest block.
        block: u64,
    },
    /// A present block's data pass the end of the file.
    #[error(
        "block {block} (BAT entry {index}) data at file bytes {start}..{end} passes the end of the \
         {file_size}-byte file"
    )]
    BlockPastEnd {
        /// Guest block.
        block: u64,
        /// Its BAT index.
        index: u64,
        /// First file byte read.
        start: u64,
        /// One past the last file byte read.
        end: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// A payload state only a differencing disk may use.
    #[error(
        "block {block} (BAT entry {index}) has state {state}, which a non-differencing disk cannot read"
    )]
    BlockState {
        /// Guest block.
        block: u64,
        /// Its BAT index.
        index: u64,
        /// The state bits of the entry.
        state: u64,
    },
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(crate) fn read_at(img: &VhdxImage, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
    check_guest_range(offset, buf.len(), img.info.virtual_size)?;
    if img.meta.has_parent {
        return Err(ReadError::Unsupported(Unreadable::Differencing {
            format: Format::Vhdx,
        }));
    }
    if img.active_header().is_some_and(|h| h.log_in_use()) {
        return Err(ReadError::Unsupported(Unreadable::LogReplay));
    }
    let g = &img.geometry;
    let file_size = img.src.size();
    // Geometry keeps the block size at least 1.
    read_blockwise(offset, buf, g.block_size, |block, in_block, chunk| {
        let index = g.payload_index(block);
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| img.bat.get(i))
            .copied()
            .ok_or_else(|| ReadError::corrupt(ReadFault::NoBatEntry { index, block }))?;
        match entry & tables::STATE_MASK {
            tables::PAYLOAD_NOT_PRESENT
            | tables::PAYLOAD_UNDEFINED
            | tables::PAYLOAD_ZERO
            | tables::PAYLOAD_UNMAPPED
            | tables::PAYLOAD_UNMAPPED_V095 => chunk.fill(0),
            tables::PAYLOAD_FULLY_PRESENT => {
                let at = (entry & tables::OFFSET_MASK).saturating_add(in_block);
                let end = at.saturating_add(len64(chunk.len()));
                if end > file_size {
                    return Err(ReadError::corrupt(ReadFault::BlockPastEnd {
                        block,
                        index,
                        start: at,
                        end,
                        file_size,
                    }));
                }
                img.src.read_exact_at(at, chunk)?;
            }
            state => {
                return Err(ReadError::corrupt(ReadFault::BlockState {
                    block,
                    index,
                    state,
                }))
            }
        }
        Ok(())
    })
}

/// The first run of blocks that may hold data at or after `offset`: every block whose BAT
/// state is not one of the zero states (a state the reader refuses counts as data, so the
/// read reports it).
pub(crate) fn next_data(img: &VhdxImage, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
    let size = img.info.virtual_size;
    let g = &img.geometry;
    let bs = g.block_size.max(1);
    let reads_zero = |block: u64| {
        let entry = usize::try_from(g.payload_index(block))
            .ok()
            .and_then(|i| img.bat.get(i))
            .copied();
        matches!(
            entry.map(|e| e & tables::STATE_MASK),
            Some(
                tables::PAYLOAD_NOT_PRESENT
                    | tables::PAYLOAD_UNDEFINED
                    | tables::PAYLOAD_ZERO
                    | tables::PAYLOAD_UNMAPPED
                    | tables::PAYLOAD_UNMAPPED_V095
            )
        )
    };
    let blocks = size.div_ceil(bs);
    let mut block = offset.checked_div(bs).unwrap_or(0);
    while block < blocks && reads_zero(block) {
        block = block.saturating_add(1);
    }
    if block >= blocks {
        return Ok(None);
    }
    let start = block.saturating_mul(bs).max(offset);
    while block < blocks && !reads_zero(block) {
        block = block.saturating_add(1);
    }
    Ok(Some((start, block.saturating_mul(bs).min(size))))
}
