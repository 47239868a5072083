//! Opening a sparse extent: the header (and the streamOptimized footer that
//! may replace it), the embedded descriptor, and the notes they give.

use super::tables::load_directory;
use super::{sectors_to_bytes, SparseExtent};
use crate::descriptor::{self, BadLine};
use crate::error::{show_bytes, DeltaParent, FooterFault, LeadingBytes, OpenError};
use crate::header::{
    self, Marker, SparseHeader, FLAG_COMPRESSED, FLAG_NL_DETECT, FOOTER_LEN, GD_AT_END,
    KNOWN_FLAGS, MARKER_FOOTER, MAX_DESCRIPTOR_BYTES, NEWLINE_CHECK, SECTOR,
};
use crate::rules;
use preflight_disk::{read_vec, BoundsError, Source};
use preflight_report::Finding;
use std::sync::{Arc, Mutex};

fn io_err(file: &str, error: std::io::Error) -> OpenError {
    OpenError::Io {
        file: file.to_string(),
        error,
    }
}

impl SparseExtent {
    /// Opens the sparse extent in `src`; `name` is used in messages.
    pub(crate) fn open(src: Arc<dyn Source>, name: &str) -> Result<SparseExtent, OpenError> {
        let file_size = src.size();
        let head = match read_vec(&*src, "sparse header", 0, 512, 512) {
            Ok(h) => h,
            Err(BoundsError::Io { source, .. }) => return Err(io_err(name, source)),
            Err(_) => {
                return Err(OpenError::Truncated {
                    file: name.to_string(),
                    file_size,
                })
            }
        };
        if head.starts_with(header::MAGIC_COWD) {
            return Err(OpenError::Cowd {
                file: name.to_string(),
            });
        }
        let primary = SparseHeader::parse(&head).ok_or_else(|| OpenError::Magic {
            file: name.to_string(),
            found: LeadingBytes::of(&head),
        })?;
        let gd_at_end = primary.gd_offset == GD_AT_END;
        let header = if gd_at_end {
            read_footer(&*src, name)?
        } else {
            primary.clone()
        };
        let geo = header.geometry(name)?;
        let mut notes = header_notes(&primary, &header, name, file_size);

        let (descriptor, desc_range) = match embedded_descriptor(&*src, &primary, name) {
            Ok(Some((text, range))) => {
                let (d, bad) = descriptor::parse(&text);
                if d.is_delta() {
                    return Err(OpenError::Delta {
                        file: name.to_string(),
                        parent: DeltaParent::of(&d),
                    });
                }
                notes.extend(bad_line_notes(name, &bad));
                (Some(d), Some(range))
            }
            Ok(None) => (None, None),
            Err(f) => {
                notes.push(f);
                (None, None)
            }
        };

        let gd =
            load_directory(&*src, "grain directory", header.gd_offset, &geo).map_err(|source| {
                match source {
                    BoundsError::Io { source, .. } => io_err(name, source),
                    source => OpenError::GdOffset {
                        file: name.to_string(),
                        source,
                    },
                }
            })?;

        let mut extent = SparseExtent {
            src,
            name: name.to_string(),
            header,
            geo,
            gd,
            gd_at_end,
            descriptor,
            desc_range,
            notes,
            allocated_bytes: 0,
            cache: Mutex::new(None),
        };
        if extent.header.markers() && !gd_at_end && !extent.ends_with_eos() {
            extent.notes.push(rules::NO_END_OF_STREAM.finding(format!(
                "{name}: the stream does not end with an end-of-stream marker"
            )));
        }
        extent.allocated_bytes = extent.count_allocated().map_err(|e| io_err(name, e))?;
        Ok(extent)
    }
}

/// Reads the footer at EOF-1024 of a streamOptimized file whose header says
/// the grain directory is at the end; returns the footer's header.
fn read_footer(src: &dyn Source, name: &str) -> Result<SparseHeader, OpenError> {
    let size = src.size();
    let footer_err = |fault: FooterFault| OpenError::Footer {
        file: name.to_string(),
        fault,
    };
    let at = size
        .checked_sub(FOOTER_LEN)
        .filter(|&a| a >= SECTOR)
        .ok_or_else(|| footer_err(FooterFault::TooShort { file_size: size }))?;
    let bytes = read_vec(src, "footer", at, FOOTER_LEN, FOOTER_LEN).map_err(|e| match e {
        BoundsError::Io { source, .. } => io_err(name, source),
        other => footer_err(FooterFault::Unreadable(other)),
    })?;
    let sector = |i: u64| {
        let s = usize::try_from(i.saturating_mul(SECTOR)).unwrap_or(usize::MAX);
        bytes.get(s..).unwrap_or_default()
    };
    let marker = Marker::parse(sector(0));
    let header = SparseHeader::parse(sector(1));
    let eos = Marker::parse(sector(2));
    match (marker, header, eos) {
        (Some(m), Some(h), Some(e)) if m.size == 0 && m.kind == MARKER_FOOTER && e.is_eos() => {
            if h.gd_offset == GD_AT_END {
                return Err(footer_err(FooterFault::AlsoAtEnd));
            }
            Ok(h)
        }
        _ => Err(footer_err(FooterFault::Missing)),
    }
}

/// Non-fatal header findings.
fn header_notes(primary: &SparseHeader, h: &SparseHeader, name: &str, size: u64) -> Vec<Finding> {
    let mut notes = Vec::new();
    let unknown = h.flags & !KNOWN_FLAGS;
    if unknown != 0 {
        notes.push(rules::FLAGS.finding(format!(
            "{name}: unknown header flags {unknown:#x} (flags {:#x})",
            h.flags
        )));
    }
    if (h.flags & FLAG_COMPRESSED != 0) != h.compressed() {
        notes.push(rules::FLAGS.finding(format!(
            "{name}: the compressed-grains flag ({}) disagrees with compression algorithm {}",
            h.flags & FLAG_COMPRESSED != 0,
            h.compression
        )));
    }
    if primary.flags & FLAG_NL_DETECT != 0 && primary.check_bytes != NEWLINE_CHECK {
        notes.push(rules::NEWLINE.finding(format!(
            "{name}: newline check bytes are {} instead of \"\\n \\r\\n\"",
            show_bytes(&primary.check_bytes)
        )));
    }
    if primary.unclean_shutdown != 0 {
        notes.push(rules::UNCLEAN_SHUTDOWN.finding(format!(
            "{name}: the unclean-shutdown flag is set ({})",
            primary.unclean_shutdown
        )));
    }
    if size % SECTOR != 0 {
        notes.push(rules::TRUNCATED.finding(format!(
            "{name}: the file is {size} bytes, not a whole number of 512-byte sectors: it is truncated"
        )));
    }
    match sectors_to_bytes(h.overhead) {
        Some(need) if need <= size => {}
        _ => notes.push(rules::TRUNCATED.finding(format!(
            "{name}: file truncated: the header's overhead is {} sectors, so the file needs at least {} bytes, but it has {size}",
            h.overhead,
            h.overhead.saturating_mul(SECTOR)
        ))),
    }
    notes
}

/// An embedded descriptor's text and its `(offset, length)` in the file.
type EmbeddedText = (String, (u64, u64));

/// Reads the embedded descriptor, if the header names one.
fn embedded_descriptor(
    src: &dyn Source,
    h: &SparseHeader,
    name: &str,
) -> Result<Option<EmbeddedText>, Finding> {
    if h.desc_size == 0 {
        return Ok(None);
    }
    let bad = |detail: String| {
        rules::DESCRIPTOR_OFFSET.finding(format!(
            "{name}: embedded descriptor at sector {} of {} sectors: {detail}",
            h.desc_offset, h.desc_size
        ))
    };
    let (Some(off), Some(len)) = (
        sectors_to_bytes(h.desc_offset),
        sectors_to_bytes(h.desc_size),
    ) else {
        return Err(bad("offset or size overflows".to_string()));
    };
    if off == 0 {
        return Err(bad("it would overlap the header".to_string()));
    }
    let bytes = read_vec(src, "embedded descriptor", off, len, MAX_DESCRIPTOR_BYTES)
        .map_err(|e| bad(preflight_disk::error_chain(&e)))?;
    Ok(Some((descriptor::text_of(&bytes), (off, len))))
}

pub(crate) fn bad_line_notes(name: &str, bad: &[BadLine]) -> Vec<Finding> {
    bad.iter()
        .map(|b| {
            rules::DESCRIPTOR.finding(format!("{name}: descriptor line {}: {}", b.line, b.detail))
        })
        .collect()
}
