//! VMware VMDK images: a bounded, synchronous, panic-free parser, an
//! integrity check and a guest block reader.
//!
//! Reads:
//! * hosted sparse extents (`KDMV`): **monolithicSparse**, and
//!   **streamOptimized** (deflate-compressed grains with markers; the grain
//!   directory either inline, as qemu writes it, or at the end through the
//!   footer, as VMware writes it);
//! * text descriptors with **FLAT** (monolithicFlat, twoGbMaxExtentFlat,
//!   vmfs), **SPARSE** (twoGbMaxExtentSparse) and **ZERO** extents, whose
//!   files are opened through a caller's function.
//!
//! Refuses, with a `VMDK.*` finding: COWD (vmfsSparse), seSparse, raw device
//! mappings and devices, unknown create types, delta (child) disks, missing
//! extent files and extent names that leave the descriptor's directory.
//!
//! Every table is bounded by the file size and a named limit before it is
//! allocated, and a compressed grain never inflates past the grain size.
//!
//! `allocated_size` is, as for every format, the bytes of the file(s)
//! holding guest data: one grain per allocated grain of a sparse extent,
//! but a compressed (streamOptimized) grain by the whole sectors its marker
//! and deflate data take; a flat extent by its length.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Parser crates: every offset comes from hostile input, so arithmetic is checked or
// saturating and conversions are `try_from` (tests may compute freely).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::as_conversions)
)]

mod check;
pub mod descriptor;
mod error;
mod header;
pub mod rules;
mod sparse;

pub use descriptor::Descriptor;
pub use error::{GrainFault, ReadFault};
pub use rules::RULES;

use crate::descriptor::Access;
use crate::error::{DeltaParent, DescriptorFault, ExtentFault, LeadingBytes, OpenError};
use crate::header::{
    FLAG_NL_DETECT, FLAG_RGD, FLAG_ZERO_GRAIN, MAX_CAPACITY_SECTORS, MAX_DESCRIPTOR_BYTES, SECTOR,
};
use crate::sparse::{sectors_to_bytes, SparseExtent};
use preflight_disk::{
    check_guest_range, read_vec, BlockRead, DiskImage, FileSource, Format, ImageInfo, ReadError,
    Source,
};
use preflight_report::{Finding, FindingSink};
use std::collections::BTreeMap;
use std::sync::Arc;

/// At most this many findings of one code are listed by [`DiskImage::check`].
pub const MAX_FINDINGS_PER_CODE: usize = 20;
/// [`is_descriptor`] looks at most this far into a file.
pub const DETECT_WINDOW: usize = 4096;

/// An opened VMDK.
pub struct VmdkImage {
    info: ImageInfo,
    extents: Vec<Extent>,
    descriptor: Option<Descriptor>,
    notes: Vec<Finding>,
}

struct Extent {
    /// Guest offset of the first byte.
    start: u64,
    /// Length in bytes (non-zero).
    len: u64,
    data: ExtentData,
}

enum ExtentData {
    Flat { src: Arc<dyn Source>, offset: u64 },
    Sparse(Box<SparseExtent>),
    Zero,
}

/// Opens a VMDK whose first bytes are `src`. `open_extent` opens a file
/// named by a text descriptor (a relative name, already checked to contain
/// no `..`, no absolute path and no NUL); it returns an `io::Error` when the
/// file is missing.
pub fn open_with(
    src: Arc<dyn Source>,
    open_extent: &dyn Fn(&str) -> std::io::Result<Arc<dyn Source>>,
) -> Result<VmdkImage, Finding> {
    open_named(src, "image", open_extent).map_err(Finding::from)
}

/// Opens a VMDK file, resolving extent files in its directory.
pub fn open_path(path: &std::path::Path) -> Result<VmdkImage, Finding> {
    let name = path.display().to_string();
    let src: Arc<dyn Source> = match FileSource::open(path) {
        Ok(f) => Arc::new(f),
        Err(error) => return Err(OpenError::Io { file: name, error }.into()),
    };
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let open_extent = move |extent: &str| -> std::io::Result<Arc<dyn Source>> {
        Ok(Arc::new(FileSource::open(dir.join(extent))?))
    };
    open_named(src, &name, &open_extent).map_err(Finding::from)
}

/// Opens a VMDK with no extent files reachable: a text descriptor that names
/// extent files gives a `VMDK.MissingExtent` finding.
pub fn open(src: Arc<dyn Source>) -> Result<VmdkImage, Finding> {
    open_with(src, &|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "only the descriptor was given, not the files it names",
        ))
    })
}

/// True if `head` (the first bytes of a file) looks like a VMDK text
/// descriptor: it starts with `# Disk DescriptorFile`, or it is printable
/// text (up to NUL padding) with a `createType=` line within the first
/// [`DETECT_WINDOW`] bytes.
pub fn is_descriptor(head: &[u8]) -> bool {
    let head = head.get(..DETECT_WINDOW).unwrap_or(head);
    if head.starts_with(b"# Disk DescriptorFile") {
        return true;
    }
    let end = head.iter().position(|&b| b == 0).unwrap_or(head.len());
    let (text, padding) = head.split_at(end);
    if text.is_empty() || padding.iter().any(|&b| b != 0) {
        return false;
    }
    let printable = text
        .iter()
        .all(|&b| b >= 0x20 && b != 0x7f || matches!(b, b'\n' | b'\r' | b'\t'));
    printable
        && text.split(|&b| b == b'\n').any(|line| {
            let line = line.trim_ascii_start();
            line.strip_prefix(b"createType")
                .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"="))
        })
}

fn open_named(
    src: Arc<dyn Source>,
    name: &str,
    open_extent: &dyn Fn(&str) -> std::io::Result<Arc<dyn Source>>,
) -> Result<VmdkImage, OpenError> {
    let size = src.size();
    let window = u64::try_from(DETECT_WINDOW).unwrap_or(u64::MAX);
    let n = usize::try_from(size.min(window)).unwrap_or(0);
    let mut head = vec![0u8; n];
    src.read_exact_at(0, &mut head)
        .map_err(|error| OpenError::Io {
            file: name.to_string(),
            error,
        })?;
    if head.starts_with(header::MAGIC_KDMV) {
        open_sparse_image(src, name)
    } else if head.starts_with(header::MAGIC_COWD) {
        Err(OpenError::Cowd {
            file: name.to_string(),
        })
    } else if is_descriptor(&head) {
        open_descriptor(src, name, open_extent)
    } else {
        Err(OpenError::Magic {
            file: name.to_string(),
            found: LeadingBytes::of(&head),
        })
    }
}

fn sparse_features(s: &SparseExtent, features: &mut Vec<String>) {
    let h = &s.header;
    let mut add = |on: bool, f: &str| {
        if on && !features.iter().any(|x| x == f) {
            features.push(f.to_string());
        }
    };
    add(h.flags & FLAG_NL_DETECT != 0, "newline_check");
    add(h.flags & FLAG_RGD != 0, "redundant_gd");
    add(h.flags & FLAG_ZERO_GRAIN != 0, "zeroed_grain");
    add(h.compressed(), "compressed");
    add(h.markers(), "markers");
    add(s.gd_at_end, "gd_at_end");
}

fn open_sparse_image(src: Arc<dyn Source>, name: &str) -> Result<VmdkImage, OpenError> {
    let size = src.size();
    let s = SparseExtent::open(src, name)?;
    let mut info = ImageInfo::new(Format::Vmdk, s.geo.capacity_bytes, size);
    let subformat = if s.compressed() {
        "streamOptimized"
    } else {
        "monolithicSparse"
    };
    info.subformat = Some(subformat.to_string());
    info.allocated_size = s.allocated_bytes;
    info.cluster_size = Some(s.geo.grain_bytes);
    info.version = Some(s.header.version.to_string());
    sparse_features(&s, &mut info.features);
    let descriptor = s.descriptor.clone();
    let len = s.geo.capacity_bytes;
    let extents = if len == 0 {
        Vec::new()
    } else {
        vec![Extent {
            start: 0,
            len,
            data: ExtentData::Sparse(Box::new(s)),
        }]
    };
    Ok(VmdkImage {
        info,
        extents,
        descriptor,
        notes: Vec::new(),
    })
}

/// What a createType means for us.
enum Kind {
    Supported,
    Unsupported(&'static str),
    Unknown,
}

fn classify(create_type: &str) -> Kind {
    match create_type {
        "monolithicSparse"
        | "streamOptimized"
        | "monolithicFlat"
        | "twoGbMaxExtentSparse"
        | "twoGbMaxExtentFlat"
        | "vmfs"
        | "vmfsPreallocated"
        | "vmfsEagerZeroedThick"
        | "vmfsThin"
        | "custom" => Kind::Supported,
        "vmfsSparse" => Kind::Unsupported("an ESX snapshot (COWD) delta"),
        "seSparse" => Kind::Unsupported("a space-efficient sparse (seSparse) snapshot"),
        "vmfsRDM" | "vmfsRDMP" | "vmfsRawDeviceMap" | "vmfsPassthroughRawDeviceMap" => {
            Kind::Unsupported("a raw device mapping")
        }
        "vmfsRaw" | "fullDevice" | "partitionedDevice" => {
            Kind::Unsupported("a pass-through to a physical device")
        }
        _ => Kind::Unknown,
    }
}

/// Why an extent name is refused, if it is.
fn bad_extent_name(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if name.is_empty() {
        Some("is empty")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.starts_with('/')
        || name.starts_with('\\')
        || (bytes.get(1) == Some(&b':') && bytes.first().is_some_and(u8::is_ascii_alphabetic))
    {
        Some("is an absolute path")
    } else if name.split(['/', '\\']).any(|c| c == "..") {
        Some("leaves the descriptor's directory with `..`")
    } else if name.len() > descriptor::MAX_EXTENT_NAME {
        Some("is too long")
    } else {
        None
    }
}

fn open_descriptor(
    src: Arc<dyn Source>,
    name: &str,
    open_extent: &dyn Fn(&str) -> std::io::Result<Arc<dyn Source>>,
) -> Result<VmdkImage, OpenError> {
    let desc_err = |fault: DescriptorFault| OpenError::Descriptor {
        file: name.to_string(),
        fault,
    };
    let size = src.size();
    if size > MAX_DESCRIPTOR_BYTES {
        return Err(desc_err(DescriptorFault::TooLarge { size }));
    }
    let bytes = read_vec(&*src, "descriptor", 0, size, MAX_DESCRIPTOR_BYTES)
        .map_err(|e| desc_err(DescriptorFault::Unreadable(e)))?;
    let (d, bad) = descriptor::parse(&descriptor::text_of(&bytes));
    let more = bad.len().saturating_sub(1);
    if let Some(first) = bad.into_iter().next() {
        return Err(desc_err(DescriptorFault::BadLine { first, more }));
    }
    if d.is_delta() {
        return Err(OpenError::Delta {
            file: name.to_string(),
            parent: DeltaParent::of(&d),
        });
    }
    let create_type = d
        .create_type
        .clone()
        .ok_or_else(|| desc_err(DescriptorFault::NoCreateType))?;
    match classify(&create_type) {
        Kind::Supported => {}
        Kind::Unsupported(what) => {
            return Err(OpenError::UnsupportedType {
                file: name.to_string(),
                create_type,
                what,
            })
        }
        Kind::Unknown => {
            return Err(OpenError::CreateType {
                file: name.to_string(),
                create_type,
            })
        }
    }
    if d.extents.is_empty() {
        return Err(desc_err(DescriptorFault::NoExtents));
    }

    let mut files: BTreeMap<String, Arc<dyn Source>> = BTreeMap::new();
    let mut extents = Vec::with_capacity(d.extents.len());
    let mut notes = Vec::new();
    let mut info = ImageInfo::new(Format::Vmdk, 0, size);
    let mut start = 0u64;
    let mut allocated = 0u64;
    for line in &d.extents {
        let ext_err = |fault: ExtentFault| OpenError::ExtentType {
            file: name.to_string(),
            line: line.line,
            fault,
        };
        if line.access == Access::NoAccess {
            return Err(ext_err(ExtentFault::NoAccess));
        }
        let len = sectors_to_bytes(line.sectors)
            .filter(|_| line.sectors <= MAX_CAPACITY_SECTORS)
            .ok_or_else(|| OpenError::Capacity {
                file: name.to_string(),
                sectors: line.sectors,
                limit: MAX_CAPACITY_SECTORS,
            })?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= MAX_CAPACITY_SECTORS * SECTOR)
            .ok_or_else(|| OpenError::Capacity {
                file: name.to_string(),
                sectors: start.saturating_add(len) / SECTOR,
                limit: MAX_CAPACITY_SECTORS,
            })?;
        let kind = line.kind.as_str();
        let data = match kind {
            "ZERO" => ExtentData::Zero,
            "FLAT" | "VMFS" | "SPARSE" => {
                let file = line.file.clone().unwrap_or_default();
                if let Some(why) = bad_extent_name(&file) {
                    return Err(OpenError::ExtentPath {
                        file: name.to_string(),
                        name: file,
                        why,
                    });
                }
                let fsrc = match files.get(&file) {
                    Some(s) => Arc::clone(s),
                    None => {
                        let s = open_extent(&file).map_err(|error| OpenError::MissingExtent {
                            file: name.to_string(),
                            name: file.clone(),
                            error,
                        })?;
                        files.insert(file.clone(), Arc::clone(&s));
                        s
                    }
                };
                if kind == "SPARSE" {
                    let s = SparseExtent::open(fsrc, &file)?;
                    if s.geo.capacity_bytes != len {
                        notes.push(rules::EXTENT_SIZE.finding(format!(
                            "{file}: the sparse extent holds {} sectors but the descriptor (line {}) gives it {}",
                            s.header.capacity, line.line, line.sectors
                        )));
                    }
                    allocated = allocated.saturating_add(s.allocated_bytes);
                    if info.cluster_size.is_none() {
                        info.cluster_size = Some(s.geo.grain_bytes);
                    }
                    sparse_features(&s, &mut info.features);
                    ExtentData::Sparse(Box::new(s))
                } else {
                    let offset = sectors_to_bytes(line.offset.unwrap_or(0)).unwrap_or(u64::MAX);
                    let need = offset.saturating_add(len);
                    if fsrc.size() < need {
                        notes.push(rules::EXTENT_SIZE.finding(format!(
                            "{file}: the flat extent file is {} bytes, but the descriptor (line {}) needs {need} (offset {} sectors + {} sectors); the missing part reads as zeros",
                            fsrc.size(),
                            line.line,
                            line.offset.unwrap_or(0),
                            line.sectors
                        )));
                    }
                    allocated = allocated.saturating_add(len);
                    ExtentData::Flat { src: fsrc, offset }
                }
            }
            "VMFSSPARSE" | "SESPARSE" | "VMFSRDM" | "VMFSRAW" => {
                return Err(ext_err(ExtentFault::NotImportable {
                    kind: kind.to_string(),
                }))
            }
            other => {
                return Err(ext_err(ExtentFault::Unknown {
                    kind: other.to_string(),
                }))
            }
        };
        extents.push(Extent { start, len, data });
        start = end;
    }

    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    notes.push(rules::MULTI_FILE.finding_with_hint(
        format!(
            "{name}: the disk is a descriptor ({create_type}) plus {} extent file(s) ({}); ECS imports one object",
            names.len(),
            names.join(", ")
        ),
        rules::convert_hint(name),
    ));
    if !info.features.iter().any(|f| f == "multi_file") {
        info.features.push("multi_file".to_string());
    }
    info.virtual_size = start;
    info.file_size = files
        .values()
        .fold(size, |acc, s| acc.saturating_add(s.size()));
    info.allocated_size = allocated;
    info.subformat = Some(create_type);
    info.version = d.version.clone();
    Ok(VmdkImage {
        info,
        extents,
        descriptor: Some(d),
        notes,
    })
}

impl VmdkImage {
    /// The descriptor: the text file's, or the one embedded in a sparse
    /// extent (if it has one).
    pub fn descriptor(&self) -> Option<&Descriptor> {
        self.descriptor.as_ref()
    }

    /// `ddb.adapterType` from the descriptor (`ide`, `lsilogic`, `buslogic`,
    /// `legacyESX`, `pvscsi`), if given.
    pub fn adapter_type(&self) -> Option<&str> {
        self.descriptor.as_ref()?.get("ddb.adapterType")
    }

    /// Inflates every compressed grain and reports those that are not valid
    /// deflate streams of at most one grain (`VMDK.CompressedGrain`). Unlike
    /// [`DiskImage::check`] this reads all the data.
    pub fn check_grains(&self) -> Vec<Finding> {
        let mut sink = FindingSink::new(MAX_FINDINGS_PER_CODE);
        for e in &self.extents {
            if let ExtentData::Sparse(s) = &e.data {
                s.check_grains(&mut sink);
            }
        }
        sink.into_findings()
    }
}

impl BlockRead for VmdkImage {
    fn size(&self) -> u64 {
        self.info.virtual_size
    }

    fn next_data(&self, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
        self.next_data_from(offset)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        check_guest_range(offset, buf.len(), self.info.virtual_size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
            let idx = self
                .extents
                .partition_point(|e| e.start.saturating_add(e.len) <= pos);
            let e = self
                .extents
                .get(idx)
                .ok_or_else(|| ReadError::corrupt(error::ReadFault::NoExtent { offset: pos }))?;
            // partition_point found the extent holding pos: e.start <= pos < e.start + e.len.
            let in_ext = pos.saturating_sub(e.start);
            let left = buf.len().saturating_sub(done);
            let n = usize::try_from(e.len.saturating_sub(in_ext)).map_or(left, |x| x.min(left));
            if n == 0 {
                // An empty extent the search landed on: it would never advance.
                return Err(ReadError::corrupt(error::ReadFault::NoExtent {
                    offset: pos,
                }));
            }
            let part = buf
                .get_mut(done..done.saturating_add(n))
                .unwrap_or_default();
            match &e.data {
                ExtentData::Zero => part.fill(0),
                ExtentData::Sparse(s) => s.read(in_ext, part)?,
                ExtentData::Flat { src, offset } => {
                    let at = offset.saturating_add(in_ext);
                    let avail = src.size().saturating_sub(at);
                    let m = usize::try_from(avail).map_or(n, |a| a.min(n));
                    let (have, missing) = part.split_at_mut(m);
                    if !have.is_empty() {
                        src.read_exact_at(at, have)?;
                    }
                    missing.fill(0);
                }
            }
            done = done.saturating_add(n);
        }
        Ok(())
    }
}

impl VmdkImage {
    /// See [`BlockRead::next_data`]: zero extents are holes, a sparse
    /// extent's data is its allocated grains, a flat extent is all data.
    fn next_data_from(&self, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
        let size = self.info.virtual_size;
        let mut pos = offset;
        let mut idx = self
            .extents
            .partition_point(|e| e.start.saturating_add(e.len) <= pos);
        while pos < size {
            let Some(e) = self.extents.get(idx) else {
                return Ok(None);
            };
            let in_ext = pos.saturating_sub(e.start);
            let found = match &e.data {
                ExtentData::Zero => None,
                ExtentData::Flat { .. } => Some((in_ext, e.len)),
                ExtentData::Sparse(s) => s.next_data(in_ext, e.len)?,
            };
            if let Some((a, b)) = found {
                let end = e.start.saturating_add(b).min(size);
                let start = e.start.saturating_add(a);
                if start < end {
                    return Ok(Some((start, end)));
                }
            }
            pos = e.start.saturating_add(e.len);
            idx = idx.saturating_add(1);
        }
        Ok(None)
    }
}

impl DiskImage for VmdkImage {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn check(&self) -> Vec<Finding> {
        let mut sink = FindingSink::new(MAX_FINDINGS_PER_CODE);
        for n in &self.notes {
            sink.push(n.clone());
        }
        for e in &self.extents {
            if let ExtentData::Sparse(s) = &e.data {
                s.check(&mut sink);
            }
        }
        sink.into_findings()
    }
}

#[cfg(test)]
mod tests;
