//! The vocabulary every format crate shares.
//!
//! * [`Source`]: the container file's bytes, read by offset (a `File`, or a
//!   byte slice in tests and fuzzing). Format parsers read only through it.
//! * [`BlockRead`]: the guest's view of a disk, `read_at(guest_offset, buf)`,
//!   zeros where nothing is allocated. Guest inspection and conversion read
//!   images only through it.
//! * [`DiskImage`]: an opened image: its [`ImageInfo`], its integrity
//!   [`DiskImage::check`], and its [`BlockRead`].
//! * Bounded-read helpers ([`read_vec`], [`Regions`]) that make the hostile
//!   input rules easy to follow: never allocate from an unchecked field,
//!   never read past the end, tables must not overlap.
//! * [`raw`]: RAW images.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Parser crates: every offset comes from hostile input, so arithmetic is checked or
// saturating and conversions are `try_from` (tests may compute freely).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::as_conversions)
)]

pub mod raw;
mod source;

pub use source::{FileSource, Source};

use preflight_report::Finding;
use serde::Serialize;
use std::fmt;

/// The container formats ecs-preflight reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A plain disk image.
    Raw,
    /// Virtual PC / Hyper-V VHD (qemu calls it vpc).
    Vhd,
    /// QEMU copy-on-write v2 or v3.
    Qcow2,
    /// VMware VMDK.
    Vmdk,
    /// Hyper-V VHDX.
    Vhdx,
}

impl Format {
    /// The lowercase name used in reports (`raw`, `vhd`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vhd => "vhd",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vhdx => "vhdx",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an image says about itself. Field names are the JSON report's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Detected container format.
    pub format: Format,
    /// Variant within the format, e.g. `dynamic`, `fixed` (VHD, VHDX),
    /// `streamOptimized` (VMDK), `1.1` or `0.10` (qcow2 v3 or v2, as
    /// qemu-img's `compat` option names them).
    pub subformat: Option<String>,
    /// Size of the disk the guest sees, in bytes.
    pub virtual_size: u64,
    /// Size of the image file (for a VMDK with extents, the sum of its files).
    pub file_size: u64,
    /// Bytes of the image file holding guest data: allocated clusters,
    /// blocks or grains, a compressed one (qcow2 cluster, streamOptimized
    /// VMDK grain) by the bytes it takes in the file; for RAW, the file size.
    pub allocated_size: u64,
    /// Allocation unit: cluster (qcow2), block (VHD, VHDX) or grain (VMDK).
    pub cluster_size: Option<u64>,
    /// Format version, e.g. `1.1` for qcow2 v3 (its compat level), `1.0` for VHD.
    pub version: Option<String>,
    /// Feature flags that are set, by name (e.g. `lazy_refcounts`,
    /// `extended_l2`, `compression_zstd`).
    pub features: Vec<String>,
    /// Backing (parent) file named in the image, if any.
    pub backing_file: Option<String>,
    /// Encryption method, if the image is encrypted (`aes`, `luks`).
    pub encryption: Option<String>,
}

impl ImageInfo {
    /// A minimal description; the format crate fills in the rest.
    pub fn new(format: Format, virtual_size: u64, file_size: u64) -> Self {
        ImageInfo {
            format,
            subformat: None,
            virtual_size,
            file_size,
            allocated_size: 0,
            cluster_size: None,
            version: None,
            features: Vec::new(),
            backing_file: None,
            encryption: None,
        }
    }
}

/// Why a guest read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The request reaches past the virtual disk.
    #[error("read of {len} bytes at guest offset {offset} is past the virtual size {size}")]
    OutOfRange {
        /// Guest offset asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// Virtual size of the disk.
        size: u64,
    },
    /// The image's metadata points somewhere it must not. The payload is the format's typed
    /// fault (e.g. `preflight_qcow2::ReadFault`, [`BadDataRun`]): downcast it for the
    /// structure and the offending values; its text names them.
    #[error("corrupt image: {0}")]
    Corrupt(Box<dyn std::error::Error + Send + Sync>),
    /// The image cannot be read by us (encryption, external data file, …).
    #[error("unsupported: {0}")]
    Unsupported(Unreadable),
    /// The underlying file could not be read.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// [`ReadError::Corrupt`] with a format's typed fault.
    pub fn corrupt(fault: impl std::error::Error + Send + Sync + 'static) -> Self {
        ReadError::Corrupt(Box::new(fault))
    }
}

/// Why an image that opened cannot be read as a guest disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unreadable {
    /// A differencing disk holds only the changes to its parent.
    #[error(
        "a differencing {} holds only the changes to its parent disk; merge it into its parent first",
        format.as_str().to_ascii_uppercase()
    )]
    Differencing {
        /// The container format.
        format: Format,
    },
    /// A VHDX whose log holds writes not yet applied to the metadata and data.
    #[error(
        "the VHDX log must be replayed before the disk can be read (open it once in Hyper-V, or run \
         `qemu-img check -r all` on a copy)"
    )]
    LogReplay,
    /// The guest data are encrypted.
    #[error("the image is encrypted ({method}); decrypt it first")]
    Encrypted {
        /// The method's name (`aes`, `luks`).
        method: &'static str,
    },
    /// The guest data live in another file (a qcow2 external data file).
    #[error("the guest data live in an external data file")]
    ExternalDataFile,
}

/// A [`BlockRead::next_data`] answer that goes backwards, is empty or passes the disk's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("data stretch {start}..{end} asked from {from} on a {size}-byte disk")]
pub struct BadDataRun {
    /// First byte of the stretch.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// The offset it was asked from.
    pub from: u64,
    /// Virtual size of the disk.
    pub size: u64,
}

/// The guest's view of a disk: what a VM would read from its block device.
pub trait BlockRead: Send + Sync {
    /// Virtual size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` with guest bytes starting at `offset`. Unallocated areas
    /// read as zeros. Fails if the range passes [`BlockRead::size`].
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError>;

    /// The next guest stretch `(start, end)` at or after `offset` that may
    /// hold data; `None` when the rest reads as zeros. A hint for readers
    /// that want to skip holes (the converter's map pass): the default, and
    /// any format that does not know better, reports everything as data.
    fn next_data(&self, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
        let size = self.size();
        Ok((offset < size).then_some((offset, size)))
    }
}

/// An opened image of any format.
pub trait DiskImage: BlockRead {
    /// What the image says about itself.
    fn info(&self) -> &ImageInfo;

    /// Metadata integrity check: every problem found, with its code. Reads
    /// metadata only; memory is bounded by the file size, not the virtual
    /// size.
    fn check(&self) -> Vec<Finding>;
}

/// Implements [`BlockRead`] and [`DiskImage`] for a format's image type by forwarding, the
/// wiring VHD and VHDX share: the size and the facts come from the type's `info` field
/// (an [`ImageInfo`]), and `read_at`, `next_data` and `check` go to the functions named,
/// each taking the image first. The caller's crate must depend on `preflight-report`.
#[macro_export]
macro_rules! forward_disk_image {
    ($image:ty { read_at: $read_at:path, next_data: $next_data:path, check: $check:path $(,)? }) => {
        impl $crate::BlockRead for $image {
            fn size(&self) -> u64 {
                self.info.virtual_size
            }

            fn read_at(
                &self,
                offset: u64,
                buf: &mut [u8],
            ) -> ::std::result::Result<(), $crate::ReadError> {
                $read_at(self, offset, buf)
            }

            fn next_data(
                &self,
                offset: u64,
            ) -> ::std::result::Result<::std::option::Option<(u64, u64)>, $crate::ReadError> {
                $next_data(self, offset)
            }
        }

        impl $crate::DiskImage for $image {
            fn info(&self) -> &$crate::ImageInfo {
                &self.info
            }

            fn check(&self) -> ::std::vec::Vec<::preflight_report::Finding> {
                $check(self)
            }
        }
    };
}

/// Every stretch of `img` that may hold data, in order, from [`BlockRead::next_data`].
/// A reader whose answers go backwards, overlap or pass the disk's end is reported as
/// corrupt rather than followed.
pub fn data_runs(img: &dyn BlockRead) -> Result<Vec<(u64, u64)>, ReadError> {
    let size = img.size();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut pos = 0;
    while let Some((start, end)) = img.next_data(pos)? {
        if start < pos || end <= start || end > size {
            return Err(ReadError::corrupt(BadDataRun {
                start,
                end,
                from: pos,
                size,
            }));
        }
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
        pos = end;
    }
    Ok(runs)
}

/// Checks that `offset..offset+len` lies inside a guest disk of `size`.
pub fn check_guest_range(offset: u64, len: usize, size: u64) -> Result<(), ReadError> {
    let len64 = u64::try_from(len).unwrap_or(u64::MAX);
    match offset.checked_add(len64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(ReadError::OutOfRange {
            offset,
            len: len64,
            size,
        }),
    }
}

/// A block (cluster, grain) size of 0, which would never advance a read: refused as
/// corruption rather than looped on. Opening checks every format's block size, so only
/// a bug gets here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block size 0 cannot be read")]
pub struct ZeroBlockSize;

/// Fills `buf` from guest `offset` block by block, the loop of every block-mapped reader
/// (VHD and VHDX blocks, VMDK grains): splits the range at each multiple of `block_size`
/// and calls `read_piece(block, in_block, piece)` for each piece in order, `block` being
/// the block's number and `in_block` the piece's offset in it. The first error stops the
/// read.
pub fn read_blockwise(
    offset: u64,
    buf: &mut [u8],
    block_size: u64,
    mut read_piece: impl FnMut(u64, u64, &mut [u8]) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    if block_size == 0 {
        return Err(ReadError::corrupt(ZeroBlockSize));
    }
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        let pos = offset.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
        let block = pos.checked_div(block_size).unwrap_or(0);
        let in_block = pos.checked_rem(block_size).unwrap_or(0);
        let left_in_block = block_size.saturating_sub(in_block);
        // 1 <= n <= rest.len(): the block size is not 0, so in_block < block_size.
        let n = usize::try_from(left_in_block).map_or(rest.len(), |l| l.min(rest.len()));
        let Some(piece) = rest.get_mut(..n) else {
            break;
        };
        read_piece(block, in_block, piece)?;
        done = done.saturating_add(n);
    }
    Ok(())
}

/// Why a bounded read of the container file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoundsError {
    /// The range reaches past the end of the file.
    #[error("{what}: {len} bytes at offset {offset} pass the end of the file ({file_size} bytes)")]
    PastEnd {
        /// What was being read (e.g. "L1 table").
        what: &'static str,
        /// Offset in the file.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// The length is over the limit the caller set.
    #[error("{what}: {len} bytes is over the limit of {limit}")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// Length asked for.
        len: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// The file could not be read.
    #[error("{what}: I/O error")]
    Io {
        /// What was being read.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// An error's message followed by each of its causes, `": "`-separated: what a finding says
/// about an error whose cause is its `#[source]` rather than part of its message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Reads `len` bytes at `offset` into a new buffer, but only if the range is
/// inside the file and `len <= limit`: an allocation never follows an
/// unchecked header field.
pub fn read_vec(
    src: &dyn Source,
    what: &'static str,
    offset: u64,
    len: u64,
    limit: u64,
) -> Result<Vec<u8>, BoundsError> {
    if len > limit {
        return Err(BoundsError::TooLarge { what, len, limit });
    }
    let file_size = src.size();
    match offset.checked_add(len) {
        Some(end) if end <= file_size => {}
        _ => {
            return Err(BoundsError::PastEnd {
                what,
                offset,
                len,
                file_size,
            })
        }
    }
    let n = usize::try_from(len).map_err(|_| BoundsError::TooLarge { what, len, limit })?;
    let mut buf = vec![0u8; n];
    src.read_exact_at(offset, &mut buf)
        .map_err(|source| BoundsError::Io { what, source })?;
    Ok(buf)
}

/// A named byte range of the container file, used to find overlapping
/// metadata tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// What lives there, e.g. "L1 table".
    pub name: String,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// A set of metadata regions; reports any two that overlap.
#[derive(Debug, Default)]
pub struct Regions {
    regions: Vec<Region>,
}

impl Regions {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a region; on overlap with one already added, returns that one
    /// (the new region is still recorded).
    pub fn add(&mut self, name: impl Into<String>, start: u64, len: u64) -> Option<Region> {
        let end = start.saturating_add(len);
        let clash = self
            .regions
            .iter()
            .find(|r| len > 0 && r.end > r.start && start < r.end && r.start < end)
            .cloned();
        self.regions.push(Region {
            name: name.into(),
            start,
            end,
        });
        clash
    }

    /// All regions added so far.
    pub fn all(&self) -> &[Region] {
        &self.regions
    }
}

/// A byte range of the container file, `(offset, length, tag)`: the tag says what it is
/// (a BAT index, a sector number...) for the message.
pub type Extent<T> = (u64, u64, T);

/// The overlapping pairs among `extents`, sorted here by offset: one sweep, each extent
/// compared with the one reaching furthest among those before it, so every extent that
/// overlaps an earlier one is reported once. The formats' checks of allocated blocks
/// against each other all use it.
pub fn overlapping_extents<T: Copy + Ord>(
    extents: &mut [Extent<T>],
) -> Vec<(Extent<T>, Extent<T>)> {
    extents.sort_unstable();
    let mut out = Vec::new();
    let mut reach: Option<Extent<T>> = None;
    for &e in extents.iter() {
        if let Some(r) = reach {
            if e.0 < r.0.saturating_add(r.1) {
                out.push((r, e));
            }
        }
        let ends_later = reach.is_none_or(|r| e.0.saturating_add(e.1) > r.0.saturating_add(r.1));
        if ends_later {
            reach = Some(e);
        }
    }
    out
}

/// Formats a byte count for messages: `1073741824 (1 GiB)`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n;
    let mut unit: usize = 0;
    while value >= 1024
        && value.checked_rem(1024) == Some(0)
        && unit.saturating_add(1) < UNITS.len()
    {
        value = value.checked_div(1024).unwrap_or(value);
        unit = unit.saturating_add(1);
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{n} ({value} {})", UNITS.get(unit).unwrap_or(&"B"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_sweep() {
        let mut v = vec![
            (100, 10, 'c'),
            (0, 50, 'a'),
            (20, 5, 'b'),
            (60, 5, 'd'),
            (49, 1, 'e'),
        ];
        let o = overlapping_extents(&mut v);
        // b and e lie inside a; c and d overlap nothing.
        assert_eq!(
            o,
            vec![((0, 50, 'a'), (20, 5, 'b')), ((0, 50, 'a'), (49, 1, 'e'))]
        );
        assert!(overlapping_extents::<u8>(&mut []).is_empty());
        // Equal spans: duplicates pair with the first.
        let mut d = vec![(512, 512, 1), (512, 512, 2), (1024, 512, 3)];
        assert_eq!(
            overlapping_extents(&mut d),
            vec![((512, 512, 1), (512, 512, 2))]
        );
    }

    /// A reader whose `next_data` goes backwards.
    struct Backwards;

    impl BlockRead for Backwards {
        fn size(&self) -> u64 {
            100
        }
        fn read_at(&self, _: u64, _: &mut [u8]) -> Result<(), ReadError> {
            Ok(())
        }
        fn next_data(&self, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
            Ok(Some((offset.saturating_sub(10), 50)))
        }
    }

    #[test]
    fn a_bad_data_run_is_a_typed_corruption() {
        let Err(ReadError::Corrupt(fault)) = data_runs(&Backwards) else {
            panic!("a reader going backwards is followed");
        };
        let run = fault.downcast_ref::<BadDataRun>().expect("a BadDataRun");
        assert_eq!(
            *run,
            BadDataRun {
                start: 40,
                end: 50,
                from: 50,
                size: 100
            }
        );
        assert_eq!(
            ReadError::Corrupt(fault).to_string(),
            "corrupt image: data stretch 40..50 asked from 50 on a 100-byte disk"
        );
    }

    #[test]
    fn unreadable_texts_name_the_format() {
        let e = ReadError::Unsupported(Unreadable::Differencing {
            format: Format::Vhdx,
        });
        assert_eq!(
            e.to_string(),
            "unsupported: a differencing VHDX holds only the changes to its parent disk; merge it \
             into its parent first"
        );
    }

    #[test]
    fn an_io_cause_is_a_source_printed_once() {
        let e = BoundsError::Io {
            what: "BAT",
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(e.to_string(), "BAT: I/O error");
        assert_eq!(error_chain(&e), "BAT: I/O error: disk on fire");
    }

    #[test]
    fn read_vec_refuses_past_end_and_over_limit() {
        let data = vec![7u8; 100];
        let src: &dyn Source = &data;
        assert!(read_vec(src, "t", 90, 20, 1000).is_err());
        assert!(read_vec(src, "t", u64::MAX, 2, 1000).is_err());
        assert!(read_vec(src, "t", 0, 50, 10).is_err());
        assert_eq!(read_vec(src, "t", 90, 10, 1000).unwrap(), vec![7u8; 10]);
    }

    #[test]
    fn regions_detect_overlap() {
        let mut r = Regions::new();
        assert!(r.add("a", 0, 10).is_none());
        assert!(r.add("b", 10, 10).is_none());
        assert_eq!(r.add("c", 15, 1).unwrap().name, "b");
        assert!(r.add("empty", 5, 0).is_none());
    }

    #[test]
    fn a_blockwise_read_splits_at_block_boundaries() {
        let mut buf = [0u8; 10];
        let mut pieces = Vec::new();
        read_blockwise(6, &mut buf, 4, |block, in_block, piece| {
            pieces.push((block, in_block, piece.len()));
            piece.fill(u8::try_from(block).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(pieces, vec![(1, 2, 2), (2, 0, 4), (3, 0, 4)]);
        assert_eq!(buf, [1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
        // An empty read calls nothing; a zero block size is refused, typed.
        read_blockwise(6, &mut [], 4, |_, _, _| panic!("called")).unwrap();
        let Err(ReadError::Corrupt(fault)) = read_blockwise(0, &mut buf, 0, |_, _, _| Ok(()))
        else {
            panic!("a zero block size was read");
        };
        assert!(fault.downcast_ref::<ZeroBlockSize>().is_some());
        // The first error stops the read.
        let mut calls = 0;
        let e = read_blockwise(0, &mut buf, 4, |_, _, _| {
            calls += 1;
            Err(ReadError::Io(std::io::Error::other("bad sector")))
        });
        assert!(e.is_err() && calls == 1);
    }

    #[test]
    fn guest_range() {
        assert!(check_guest_range(0, 10, 10).is_ok());
        assert!(check_guest_range(1, 10, 10).is_err());
        assert!(check_guest_range(u64::MAX, 1, 10).is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(1 << 30), "1073741824 (1 GiB)");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
