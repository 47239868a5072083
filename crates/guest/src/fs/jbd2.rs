//! Replays an ext3/ext4 journal (JBD2, superblock v1 or v2, with or without
//! checksums) into an in-memory overlay: the blocks the kernel would write
//! back at mount, looked up by filesystem block number. Nothing is written.
//!
//! ext4-view replays only journals with the CSUM_V3 feature; the images of
//! older systems (no metadata_csum: CentOS/RHEL 6–7, Ubuntu ≤ 16.04) copied
//! from a running VM have plain JBD2 v2 journals, so we replay those here and
//! hand ext4-view a superblock without `needs_recovery`.
//!
//! The scan follows the kernel's recovery: transactions from `s_start` with
//! sequence `s_sequence` on, as long as each block has the magic and the
//! expected sequence; only committed transactions count; a block revoked by
//! a transaction at or after the one that logged it is not replayed.
//! Checksums are not verified (the kernel stops at the first bad one; a bad
//! checksum here means we may replay a torn last transaction, which is what
//! the filesystem looked like anyway).

use std::collections::{BTreeMap, HashMap};

/// JBD2 block header magic.
const MAGIC: u32 = 0xC03B_3998;
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOKE: u32 = 5;

const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
/// CSUM_V3: ext4-view replays these journals itself (checking checksums).
pub(crate) const INCOMPAT_CSUM_V3: u32 = 0x10;
const KNOWN_INCOMPAT: u32 =
    INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3;

const TAG_ESCAPE: u32 = 1;
const TAG_SAME_UUID: u32 = 2;
const TAG_LAST: u32 = 8;

/// Journal blocks scanned at most (a 1 GiB journal of 1 KiB blocks; the
/// mapping of the journal file is one `u64` per block).
pub(crate) const MAX_JOURNAL_BLOCKS: u64 = 1 << 20;

/// The big-endian `u32` at `o`; an error if the block is shorter.
fn be32(b: &[u8], o: usize) -> Result<u32, String> {
    o.checked_add(4)
        .and_then(|end| b.get(o..end))
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| format!("journal block of {} bytes has no field at {o}", b.len()))
}

/// The journal superblock fields recovery needs.
#[derive(Debug, Clone)]
pub(crate) struct JournalSuper {
    /// Journal block size (must be the filesystem's).
    pub(crate) block_size: u32,
    /// Blocks in the journal.
    pub(crate) maxlen: u32,
    /// First log block.
    pub(crate) first: u32,
    /// Sequence of the first transaction to replay.
    pub(crate) sequence: u32,
    /// Log block of the first transaction; 0 when the journal is clean.
    pub(crate) start: u32,
    /// Incompatible features (v2 superblocks only).
    pub(crate) incompat: u32,
}

impl JournalSuper {
    /// Parses the first block of the journal.
    pub(crate) fn parse(b: &[u8]) -> Result<JournalSuper, String> {
        if b.len() < 0x30 || be32(b, 0)? != MAGIC {
            return Err("journal superblock has no JBD2 magic".into());
        }
        let kind = be32(b, 4)?;
        let incompat = match kind {
            SUPERBLOCK_V1 => 0,
            SUPERBLOCK_V2 => be32(b, 0x28)?,
            other => return Err(format!("journal superblock type {other} is unknown")),
        };
        Ok(JournalSuper {
            block_size: be32(b, 0xC)?,
            maxlen: be32(b, 0x10)?,
            first: be32(b, 0x14)?,
            sequence: be32(b, 0x18)?,
            start: be32(b, 0x1C)?,
            incompat,
        })
    }

    fn tag_bytes(&self) -> usize {
        if self.incompat & INCOMPAT_CSUM_V3 != 0 {
            return 16;
        }
        let mut n = 12;
        if self.incompat & INCOMPAT_CSUM_V2 != 0 {
            n += 2;
        }
        if self.incompat & INCOMPAT_64BIT == 0 {
            n -= 4;
        }
        n
    }

    /// Bytes at the end of a descriptor or revoke block taken by its checksum.
    fn tail_bytes(&self) -> usize {
        if self.incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
            4
        } else {
            0
        }
    }
}

/// A block the journal replaces: where its new contents are on the disk.
#[derive(Debug, Clone, Copy)]
struct Replacement {
    /// Byte offset of the journal copy in the filesystem.
    at: u64,
    /// The copy's first four bytes were zeroed because they were the magic.
    escaped: bool,
}

/// The journal's view of the filesystem: blocks to read from the journal
/// instead of their home, plus the superblock patch that tells ext4-view
/// there is nothing left to recover.
#[derive(Debug, Clone)]
pub(crate) struct Overlay {
    block_size: u64,
    blocks: BTreeMap<u64, Replacement>,
    /// Committed transactions replayed.
    pub(crate) transactions: u32,
    /// Set the superblock checksum again after the patch (metadata_csum).
    resum_superblock: bool,
}

impl Overlay {
    /// An overlay that replays nothing (the journal is left as it is), and
    /// only clears `needs_recovery`.
    pub(crate) fn unreplayed(block_size: u64, metadata_csum: bool) -> Overlay {
        Overlay {
            block_size,
            blocks: BTreeMap::new(),
            transactions: 0,
            resum_superblock: metadata_csum,
        }
    }

    /// Blocks replaced.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Patches `buf`, read from the filesystem at byte `off`, with the
    /// journal's blocks; `read` reads the journal copies.
    pub(crate) fn apply(
        &self,
        off: u64,
        buf: &mut [u8],
        read: &dyn Fn(u64, usize) -> Result<Vec<u8>, String>,
    ) -> Result<(), String> {
        let len = u64::try_from(buf.len()).map_err(|_| "read too large".to_string())?;
        let end = off.saturating_add(len);
        if self.block_size == 0 || len == 0 {
            return Ok(());
        }
        let first = off / self.block_size;
        let last = (end - 1) / self.block_size;
        let bs = usize::try_from(self.block_size).map_err(|_| "block size".to_string())?;
        for (&block, rep) in self.blocks.range(first..=last) {
            let mut data = read(rep.at, bs)?;
            if rep.escaped {
                if let Some(head) = data.get_mut(..4) {
                    head.copy_from_slice(&MAGIC.to_be_bytes());
                }
            }
            // A journal copy cut short by the end of the disk is an error, not a short copy.
            if data.len() < bs {
                return Err(format!("journal copy of block {block} is cut short"));
            }
            let bstart = block * self.block_size;
            let from = bstart.max(off);
            let to = (bstart + self.block_size).min(end);
            let (d0, d1) = (
                usize::try_from(from - bstart).unwrap_or(0),
                usize::try_from(to - bstart).unwrap_or(0),
            );
            let (b0, b1) = (
                usize::try_from(from - off).unwrap_or(0),
                usize::try_from(to - off).unwrap_or(0),
            );
            match (buf.get_mut(b0..b1), data.get(d0..d1)) {
                (Some(to), Some(from)) if to.len() == from.len() => to.copy_from_slice(from),
                _ => {
                    return Err(format!(
                        "journal copy of block {block} does not fit the read"
                    ))
                }
            }
        }
        self.patch_superblock(off, buf);
        Ok(())
    }

    /// Clears `needs_recovery` in the ext4 superblock (bytes 1024..2048 of
    /// the filesystem), and sets its checksum again under metadata_csum.
    fn patch_superblock(&self, off: u64, buf: &mut [u8]) {
        const SB: u64 = 1024;
        const INCOMPAT: u64 = SB + 96;
        const CSUM: u64 = SB + 0x3FC;
        let end = off + buf.len() as u64;
        let at = |abs: u64| usize::try_from(abs - off).unwrap_or(usize::MAX);
        if off <= INCOMPAT && INCOMPAT < end {
            if let Some(flags) = buf.get_mut(at(INCOMPAT)) {
                *flags &= !0x04;
            }
        }
        if self.resum_superblock && off <= SB && CSUM + 4 <= end {
            const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
            let Some(sum) = buf.get(at(SB)..at(CSUM)).map(|sb| CRC32C.checksum(sb) ^ !0) else {
                return;
            };
            if let Some(field) = buf.get_mut(at(CSUM)..at(CSUM).saturating_add(4)) {
                field.copy_from_slice(&sum.to_le_bytes());
            }
        }
    }
}

struct Transaction {
    sequence: u32,
    /// (filesystem block, log block, escaped)
    tags: Vec<(u64, u64, bool)>,
}

/// Replays the journal whose log blocks live at the filesystem blocks
/// `map` (log block i is `map[i]`). `read` reads filesystem blocks.
pub(crate) fn replay(
    js: &JournalSuper,
    fs_block_size: u64,
    metadata_csum: bool,
    map: &[u64],
    read: &dyn Fn(u64, usize) -> Result<Vec<u8>, String>,
) -> Result<Overlay, String> {
    if u64::from(js.block_size) != fs_block_size {
        return Err(format!(
            "journal block size {} is not the filesystem's {fs_block_size}",
            js.block_size
        ));
    }
    let unknown = js.incompat & !KNOWN_INCOMPAT;
    if unknown != 0 {
        return Err(format!(
            "journal has unknown incompatible features {unknown:#x}"
        ));
    }
    let mut overlay = Overlay::unreplayed(fs_block_size, metadata_csum);
    if js.start == 0 {
        return Ok(overlay);
    }
    let maxlen = u64::from(js.maxlen).min(map.len() as u64);
    let first = u64::from(js.first);
    if first == 0 || first >= maxlen || u64::from(js.start) < first || u64::from(js.start) >= maxlen
    {
        return Err(format!(
            "journal start {} / first {} outside its {} blocks",
            js.start, js.first, js.maxlen
        ));
    }
    let bs = usize::try_from(fs_block_size).map_err(|_| "block size".to_string())?;
    let next = |pos: u64| if pos + 1 >= maxlen { first } else { pos + 1 };
    // The filesystem block of log block `pos`.
    let log_block = |pos: u64| -> Result<u64, String> {
        usize::try_from(pos)
            .ok()
            .and_then(|i| map.get(i))
            .copied()
            .ok_or_else(|| format!("log block {pos} is outside the journal's map"))
    };
    let read_log = |pos: u64| -> Result<Vec<u8>, String> {
        let phys = log_block(pos)?;
        let b = read(
            phys.checked_mul(fs_block_size)
                .ok_or_else(|| format!("journal block {phys} out of range"))?,
            bs,
        )?;
        if b.len() != bs {
            return Err("short journal read".into());
        }
        Ok(b)
    };
    let tag_bytes = js.tag_bytes();
    let tail = js.tail_bytes();
    let wide_revoke = js.incompat & INCOMPAT_64BIT != 0;

    let mut committed: Vec<Transaction> = Vec::new();
    let mut revoked: HashMap<u64, u32> = HashMap::new();
    let mut pending = Transaction {
        sequence: js.sequence,
        tags: Vec::new(),
    };
    let mut pending_revokes: Vec<u64> = Vec::new();
    let mut pos = u64::from(js.start);
    // Each log block is visited at most once per pass over the log.
    let mut budget = maxlen;
    'scan: while budget > 0 {
        budget -= 1;
        let b = read_log(pos)?;
        if be32(&b, 0)? != MAGIC || be32(&b, 8)? != pending.sequence {
            break;
        }
        match be32(&b, 4)? {
            DESCRIPTOR => {
                let mut o = 12usize;
                let end = bs.saturating_sub(tail);
                while o + tag_bytes <= end {
                    let lo = u64::from(be32(&b, o)?);
                    let (flags, hi) = if tag_bytes == 16 {
                        (be32(&b, o + 4)?, u64::from(be32(&b, o + 8)?))
                    } else {
                        // The 16-bit flags are the low half of the word at o + 4.
                        let flags = be32(&b, o + 4)? & 0xFFFF;
                        let hi = if js.incompat & INCOMPAT_64BIT != 0 {
                            u64::from(be32(&b, o + 8)?)
                        } else {
                            0
                        };
                        (flags, hi)
                    };
                    o += tag_bytes;
                    if flags & TAG_SAME_UUID == 0 {
                        o += 16;
                    }
                    pos = next(pos);
                    if budget == 0 {
                        break 'scan;
                    }
                    budget -= 1;
                    pending
                        .tags
                        .push(((hi << 32) | lo, pos, flags & TAG_ESCAPE != 0));
                    if flags & TAG_LAST != 0 {
                        break;
                    }
                }
            }
            COMMIT => {
                let seq = pending.sequence;
                let done = std::mem::replace(
                    &mut pending,
                    Transaction {
                        sequence: seq.wrapping_add(1),
                        tags: Vec::new(),
                    },
                );
                for r in pending_revokes.drain(..) {
                    let e = revoked.entry(r).or_insert(seq);
                    if seq_after(seq, *e) {
                        *e = seq;
                    }
                }
                committed.push(done);
            }
            REVOKE => {
                let count = usize::try_from(be32(&b, 12)?).unwrap_or(usize::MAX).min(bs);
                let rec = if wide_revoke { 8 } else { 4 };
                let mut o = 16usize;
                while o + rec <= count {
                    let r = if wide_revoke {
                        (u64::from(be32(&b, o)?) << 32) | u64::from(be32(&b, o + 4)?)
                    } else {
                        u64::from(be32(&b, o)?)
                    };
                    pending_revokes.push(r);
                    o += rec;
                }
            }
            _ => break,
        }
        pos = next(pos);
    }
    for t in &committed {
        for &(block, log, escaped) in &t.tags {
            if revoked
                .get(&block)
                .is_some_and(|&r| !seq_after(t.sequence, r))
            {
                continue;
            }
            let phys = log_block(log)?;
            let at = phys
                .checked_mul(fs_block_size)
                .ok_or_else(|| format!("journal block {phys} out of range"))?;
            overlay.blocks.insert(block, Replacement { at, escaped });
        }
    }
    overlay.transactions = u32::try_from(committed.len()).unwrap_or(u32::MAX);
    Ok(overlay)
}

/// `a` is a later transaction than `b` (sequences wrap).
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn block(words: &[(usize, u32)], bs: usize) -> Vec<u8> {
        let mut b = vec![0u8; bs];
        for &(o, v) in words {
            b[o..o + 4].copy_from_slice(&v.to_be_bytes());
        }
        b
    }

    #[test]
    fn wrapping_log_and_revoke() {
        let bs = 1024usize;
        // Log of 6 blocks, first=1, start=4: descriptor at 4, data at 5,
        // commit wraps to 1, then a revoke transaction at 2-3.
        let js = JournalSuper {
            block_size: 1024,
            maxlen: 6,
            first: 1,
            sequence: 7,
            start: 4,
            incompat: INCOMPAT_REVOKE,
        };
        let mut log = vec![vec![0u8; bs]; 6];
        log[4] = block(&[(0, MAGIC), (4, DESCRIPTOR), (8, 7), (12, 100)], bs);
        // Tag flags (u16 at tag+6): LAST_TAG, no SAME_UUID.
        log[4][18..20].copy_from_slice(&8u16.to_be_bytes());
        log[5] = vec![0xAB; bs];
        log[1] = block(&[(0, MAGIC), (4, COMMIT), (8, 7)], bs);
        log[2] = block(&[(0, MAGIC), (4, REVOKE), (8, 8), (12, 20), (16, 200)], bs);
        log[3] = block(&[(0, MAGIC), (4, COMMIT), (8, 8)], bs);
        let map: Vec<u64> = (0..6).collect();
        let read = |at: u64, len: usize| Ok(log[(at / 1024) as usize][..len].to_vec());
        let o = replay(&js, 1024, false, &map, &read).unwrap();
        assert_eq!(o.transactions, 2);
        assert_eq!(o.len(), 1);
        let mut buf = vec![0u8; 2048];
        o.apply(100 * 1024 - 1024, &mut buf, &read).unwrap();
        assert_eq!(&buf[1024..1028], &[0xAB; 4]);
        assert_eq!(&buf[..4], &[0; 4]);
    }

    #[test]
    fn uncommitted_transaction_is_not_replayed() {
        let bs = 1024usize;
        let js = JournalSuper {
            block_size: 1024,
            maxlen: 8,
            first: 1,
            sequence: 1,
            start: 1,
            incompat: 0,
        };
        let mut log = vec![vec![0u8; bs]; 8];
        log[1] = block(&[(0, MAGIC), (4, DESCRIPTOR), (8, 1), (12, 50)], bs);
        log[1][18..20].copy_from_slice(&8u16.to_be_bytes());
        log[2] = vec![1; bs];
        let map: Vec<u64> = (0..8).collect();
        let read = |at: u64, len: usize| Ok(log[(at / 1024) as usize][..len].to_vec());
        let o = replay(&js, 1024, false, &map, &read).unwrap();
        assert_eq!((o.transactions, o.len()), (0, 0));
    }
}
