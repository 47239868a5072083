//! initramfs: concatenated cpio "newc" archives, each possibly compressed
//! (an uncompressed early archive with CPU microcode, then a gzip, zstd, xz,
//! lzma, lz4-legacy, bzip2 or lzop main archive). We keep only the file names.
//!
//! The cpio reader is ours (newc is a 110-byte ASCII header; ~100 lines);
//! it is a push parser, so every decompressor streams into it and memory
//! stays bounded whatever the archive holds.

mod lzo;
pub mod squashfs;
mod xz;

use std::io::{self, Write};

/// Most bytes an initramfs may unpack to (all its archives together). Real
/// ones unpack to 30-300 MiB; firmware-heavy dracut images stay under 1 GiB.
/// Past this it is treated as a decompression bomb.
pub const MAX_UNPACKED: u64 = 1024 * 1024 * 1024;

/// Longest name in a cpio header (PATH_MAX).
const MAX_NAME: usize = 4096;

/// Most entries kept (a real initramfs has a few thousand).
const MAX_ENTRIES: usize = 200_000;

/// Largest `squash-root.img` (dracut's squash module) kept in memory to list;
/// real ones hold the initramfs's modules compressed, 10-100 MiB.
const MAX_SQUASH: u64 = 512 * 1024 * 1024;

/// The largest LZ4 legacy block (the format fixes 8 MiB).
const LZ4_LEGACY_BLOCK: usize = 8 * 1024 * 1024;

/// What the initramfs holds.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Path names, without a leading `./` or `/`.
    pub names: Vec<String>,
    /// Compression of each archive, in order (`none`, `gzip`, `zstd`…), then
    /// `squashfs` when dracut's squash image was listed too.
    pub layers: Vec<String>,
}

/// Whether `name` is the squashfs dracut's squash module keeps the root in.
fn is_squash_image(name: &str) -> bool {
    name.ends_with("squash-root.img") || name.ends_with("squash/root.img")
}

/// Why an initramfs could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitramfsError {
    /// Unpacked data passed [`MAX_UNPACKED`].
    #[error("unpacks to more than {limit} bytes (stopped at the limit)")]
    TooLarge {
        /// The limit that was hit.
        limit: u64,
    },
    /// A compression we do not decode.
    #[error("compressed with {0}, which is not supported")]
    Unsupported(&'static str),
    /// Neither cpio nor a known compression.
    #[error("unknown data at offset {0}")]
    Unknown(usize),
    /// A broken cpio header or compressed stream.
    #[error("{0}")]
    Corrupt(String),
}

#[derive(Debug)]
enum State {
    /// Between archives: skipping zero padding.
    Gap,
    Header,
    Name {
        namesize: usize,
        filesize: u64,
    },
    Skip(u64),
    /// Keeping a file's data (`left` bytes), then skipping its padding.
    Keep {
        left: u64,
        pad: u64,
    },
}

/// Push parser for concatenated newc archives.
struct Cpio {
    state: State,
    buf: Vec<u8>,
    listing: Listing,
    total: u64,
    limit: u64,
    /// Offset (within what was fed) of the first byte after a trailer, when
    /// `stop_at_trailer` is set.
    stop_at_trailer: bool,
    stopped: Option<usize>,
    /// dracut's squash image, kept to be listed: its name and data.
    squash: Option<(String, Vec<u8>)>,
}

fn hex8(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// The first `n` bytes of `b`, or all of it when it is shorter.
fn up_to(b: &[u8], n: usize) -> &[u8] {
    b.get(..n).unwrap_or(b)
}

fn pad4(n: u64) -> u64 {
    (4 - n % 4) % 4
}

impl Cpio {
    fn new(limit: u64, stop_at_trailer: bool) -> Self {
        Cpio {
            state: State::Gap,
            buf: Vec::new(),
            listing: Listing::default(),
            total: 0,
            limit,
            stop_at_trailer,
            stopped: None,
            squash: None,
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), InitramfsError> {
        self.total = self
            .total
            .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        if self.total > self.limit {
            return Err(InitramfsError::TooLarge { limit: self.limit });
        }
        let mut i = 0usize;
        while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
            if self.stopped.is_some() {
                break;
            }
            match self.state {
                State::Gap => {
                    if rest.first() == Some(&0) {
                        i += 1;
                    } else {
                        self.state = State::Header;
                    }
                }
                State::Header => {
                    let taken = up_to(rest, 110 - self.buf.len());
                    self.buf.extend_from_slice(taken);
                    i += taken.len();
                    if self.buf.len() == 110 {
                        let h: [u8; 110] = std::mem::take(&mut self.buf)
                            .try_into()
                            .map_err(|_| InitramfsError::Corrupt("cpio header size".into()))?;
                        if &h[0..6] != b"070701" && &h[0..6] != b"070702" {
                            return Err(InitramfsError::Corrupt(format!(
                                "bad cpio magic {:?}",
                                String::from_utf8_lossy(&h[0..6])
                            )));
                        }
                        let filesize = hex8(&h[54..62])
                            .ok_or_else(|| InitramfsError::Corrupt("bad cpio file size".into()))?;
                        let namesize = hex8(&h[94..102])
                            .ok_or_else(|| InitramfsError::Corrupt("bad cpio name size".into()))?;
                        let namesize = usize::try_from(namesize).unwrap_or(usize::MAX);
                        if namesize == 0 || namesize > MAX_NAME {
                            return Err(InitramfsError::Corrupt(format!(
                                "cpio name size {namesize} out of range"
                            )));
                        }
                        self.state = State::Name { namesize, filesize };
                    }
                }
                State::Name { namesize, filesize } => {
                    let padded = namesize
                        + usize::try_from(pad4(110 + u64::try_from(namesize).unwrap_or(0)))
                            .unwrap_or(0);
                    let taken = up_to(rest, padded - self.buf.len());
                    self.buf.extend_from_slice(taken);
                    i += taken.len();
                    if self.buf.len() == padded {
                        // namesize counts the name's NUL.
                        let raw = self
                            .buf
                            .get(..namesize - 1)
                            .ok_or_else(|| InitramfsError::Corrupt("cpio name cut short".into()))?;
                        let name = String::from_utf8_lossy(raw).into_owned();
                        self.buf.clear();
                        if name == "TRAILER!!!" {
                            self.state = State::Gap;
                            if self.stop_at_trailer {
                                self.stopped = Some(i);
                            }
                        } else {
                            if self.listing.names.len() < MAX_ENTRIES {
                                let n = name
                                    .trim_start_matches("./")
                                    .trim_start_matches('/')
                                    .to_string();
                                if self.squash.is_none()
                                    && is_squash_image(&n)
                                    && filesize <= MAX_SQUASH
                                {
                                    self.squash = Some((n.clone(), Vec::new()));
                                    self.state = State::Keep {
                                        left: filesize,
                                        pad: pad4(filesize),
                                    };
                                    self.listing.names.push(n);
                                    continue;
                                }
                                self.listing.names.push(n);
                            }
                            self.state = State::Skip(filesize.saturating_add(pad4(filesize)));
                        }
                    }
                }
                State::Keep { left, pad } => {
                    let avail = u64::try_from(rest.len()).unwrap_or(u64::MAX);
                    let take = left.min(avail);
                    let taken = up_to(rest, usize::try_from(take).unwrap_or(0));
                    if let Some((_, kept)) = &mut self.squash {
                        kept.extend_from_slice(taken);
                    }
                    i += taken.len();
                    self.state = if left == take {
                        State::Skip(pad)
                    } else {
                        State::Keep {
                            left: left - take,
                            pad,
                        }
                    };
                }
                State::Skip(n) => {
                    let avail = u64::try_from(rest.len()).unwrap_or(u64::MAX);
                    let take = n.min(avail);
                    i += usize::try_from(take).unwrap_or(0);
                    self.state = if n == take {
                        State::Gap
                    } else {
                        State::Skip(n - take)
                    };
                }
            }
        }
        Ok(())
    }
}

struct CpioWriter<'c> {
    cpio: &'c mut Cpio,
    err: Option<InitramfsError>,
}

impl Write for CpioWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.cpio.feed(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.err = Some(e);
                Err(io::Error::other("cpio"))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn compression(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0x1f, 0x8b]) || b.starts_with(&[0x1f, 0x9e]) {
        Some("gzip")
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if b.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        Some("lz4")
    } else if b.starts_with(b"BZh") {
        Some("bzip2")
    } else if b.starts_with(&[0x89, b'L', b'Z', b'O']) {
        Some("lzo")
    } else if b.starts_with(&[0x5d, 0, 0]) {
        Some("lzma")
    } else {
        None
    }
}

/// Lists an initramfs held in memory, unpacking at most `limit` bytes.
pub fn list(data: &[u8], limit: u64) -> Result<Listing, InitramfsError> {
    let mut pos = 0usize;
    let mut listing = Listing::default();
    let mut unpacked = 0u64;
    let mut squash = None;
    loop {
        while data.get(pos) == Some(&0) {
            pos += 1;
        }
        let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) else {
            break;
        };
        if rest.starts_with(b"0707") {
            let mut cpio = Cpio::new(limit.saturating_sub(unpacked), true);
            cpio.feed(rest)?;
            let used = match cpio.stopped {
                Some(n) => n,
                None => {
                    return Err(InitramfsError::Corrupt(format!(
                        "uncompressed cpio archive at offset {pos} has no trailer"
                    )))
                }
            };
            unpacked = unpacked.saturating_add(u64::try_from(used).unwrap_or(0));
            listing.layers.push("none".into());
            listing.names.extend(cpio.listing.names);
            squash = squash.or(cpio.squash);
            pos += used;
            continue;
        }
        let kind = compression(rest).ok_or(InitramfsError::Unknown(pos))?;
        let mut cpio = Cpio::new(limit.saturating_sub(unpacked), false);
        decompress(kind, rest, &mut cpio)?;
        listing.layers.push(kind.into());
        listing.names.extend(cpio.listing.names);
        squash = squash.or(cpio.squash);
        // The compressed archive is the last one we read: the kernel accepts
        // more after it, but no initramfs builder writes any.
        break;
    }
    // dracut mounts the squash image over the initramfs's root: its paths are
    // root paths, its modules the ones that load.
    if let Some((name, image)) = squash {
        let names = squashfs::list(&image, MAX_ENTRIES)
            .map_err(|e| InitramfsError::Corrupt(format!("{name}: {e}")))?;
        listing.layers.push("squashfs".into());
        listing.names.extend(names);
    }
    Ok(listing)
}

fn io_to(e: io::Error, w: &mut CpioWriter<'_>, what: &str) -> InitramfsError {
    w.err
        .take()
        .unwrap_or_else(|| InitramfsError::Corrupt(format!("{what}: {e}")))
}

fn decompress(kind: &'static str, input: &[u8], cpio: &mut Cpio) -> Result<(), InitramfsError> {
    let limit = cpio.limit;
    let mut w = CpioWriter { cpio, err: None };
    match kind {
        "gzip" => {
            let mut d = flate2::read::MultiGzDecoder::new(input);
            io::copy(&mut d, &mut w).map_err(|e| io_to(e, &mut w, "gzip"))?;
        }
        "zstd" => {
            let mut rest = input;
            while rest.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                let mut d = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                    .map_err(|e| InitramfsError::Corrupt(format!("zstd: {e}")))?;
                io::copy(&mut d, &mut w).map_err(|e| io_to(e, &mut w, "zstd"))?;
                drop(d);
                while let Some((&0, tail)) = rest.split_first() {
                    rest = tail;
                }
            }
        }
        "xz" => {
            // lzma-rs holds a whole block in memory before writing it: refuse a stream whose
            // chunk headers add up to more than the limit before it runs.
            if xz::unpacked_size(input).is_some_and(|n| n > w.cpio.limit) {
                return Err(InitramfsError::TooLarge {
                    limit: w.cpio.limit,
                });
            }
            let mut r = io::BufReader::new(input);
            lzma_rs::xz_decompress(&mut r, &mut w).map_err(|e| {
                w.err
                    .take()
                    .unwrap_or_else(|| InitramfsError::Corrupt(format!("xz: {e}")))
            })?;
        }
        "lzma" => {
            // lzma-rs writes out its dictionary only when it is full (the header's size, up
            // to 4 GiB), so our limit would be checked after the whole stream was unpacked in
            // memory; its own memory limit stops it at ours instead.
            let options = lzma_rs::decompress::Options {
                memlimit: Some(usize::try_from(limit).unwrap_or(usize::MAX)),
                ..Default::default()
            };
            let mut r = io::BufReader::new(input);
            lzma_rs::lzma_decompress_with_options(&mut r, &mut w, &options).map_err(|e| {
                w.err.take().unwrap_or_else(|| match e {
                    lzma_rs::error::Error::LzmaError(m)
                        if m.starts_with("exceeded memory limit") =>
                    {
                        InitramfsError::TooLarge { limit }
                    }
                    e => InitramfsError::Corrupt(format!("lzma: {e}")),
                })
            })?;
        }
        "lz4" => {
            let mut pos = 4usize;
            while let Some(n) = crate::bytes::le32(input, pos) {
                pos += 4;
                if n == 0x184C_2102 {
                    continue;
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let Some(compressed) = crate::bytes::slice(input, pos, n).filter(|_| n != 0) else {
                    break;
                };
                let block = lz4_flex::block::decompress(compressed, LZ4_LEGACY_BLOCK)
                    .map_err(|e| InitramfsError::Corrupt(format!("lz4: {e}")))?;
                w.write_all(&block).map_err(|e| io_to(e, &mut w, "lz4"))?;
                pos += n;
            }
        }
        "bzip2" => {
            // Several bzip2 streams may follow each other (pbzip2, cat).
            let mut d = bzip2::read::MultiBzDecoder::new(input);
            io::copy(&mut d, &mut w).map_err(|e| io_to(e, &mut w, "bzip2"))?;
        }
        "lzo" => {
            lzo::decode_lzop(input, &mut w).map_err(|e| {
                w.err
                    .take()
                    .unwrap_or_else(|| InitramfsError::Corrupt(e.to_string()))
            })?;
        }
        other => return Err(InitramfsError::Unsupported(other)),
    }
    Ok(())
}

/// The module name of an initramfs or module-tree path
/// (`usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko.zst` →
/// `virtio_blk`), with `-` folded to `_` as modprobe does.
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".ko.zst", ".ko.xz", ".ko.gz", ".ko"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn newc(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut all: Vec<(&str, &[u8])> = entries.to_vec();
        all.push(("TRAILER!!!", b""));
        for (i, (name, data)) in all.iter().enumerate() {
            let namesize = name.len() + 1;
            out.extend_from_slice(
                format!(
                    "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                    i, 0o100644, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, namesize, 0
                )
                .as_bytes(),
            );
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out.extend_from_slice(data);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        }
        out
    }

    #[test]
    fn early_plus_gzip_main() {
        let early = newc(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        let main = newc(&[
            (
                "usr/lib/modules/6.1/kernel/drivers/block/virtio_blk.ko",
                b"elf",
            ),
            ("init", b"#!/bin/sh"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&main).unwrap();
        let mut data = early;
        data.extend_from_slice(&[0u8; 512]);
        data.extend_from_slice(&gz.finish().unwrap());
        let l = list(&data, MAX_UNPACKED).unwrap();
        assert_eq!(l.layers, vec!["none", "gzip"]);
        assert!(l
            .names
            .iter()
            .any(|n| module_name(n).as_deref() == Some("virtio_blk")));
        assert!(l
            .names
            .contains(&"kernel/x86/microcode/GenuineIntel.bin".to_string()));
    }

    #[test]
    fn bomb_is_stopped() {
        let big = vec![0u8; 8 * 1024 * 1024];
        let main = newc(&[("a", &big)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&main).unwrap();
        let data = gz.finish().unwrap();
        assert_eq!(
            list(&data, 1024 * 1024).unwrap_err(),
            InitramfsError::TooLarge { limit: 1024 * 1024 }
        );
    }

    #[test]
    fn cpio_fed_a_byte_at_a_time_lists_the_same() {
        let archive = newc(&[("bin/sh", b"elf"), ("etc/hostname", b"guest\n")]);
        let mut whole = Cpio::new(MAX_UNPACKED, false);
        whole.feed(&archive).unwrap();
        let mut bytewise = Cpio::new(MAX_UNPACKED, false);
        for b in archive.chunks(1) {
            bytewise.feed(b).unwrap();
        }
        assert_eq!(whole.listing.names, ["bin/sh", "etc/hostname"]);
        assert_eq!(bytewise.listing.names, whole.listing.names);
    }

    #[test]
    fn truncated_archives_are_errors_not_panics() {
        let archive = newc(&[("init", b"#!/bin/sh")]);
        for cut in 1..archive.len() {
            assert!(list(&archive[..cut], MAX_UNPACKED).is_err(), "cut at {cut}");
        }
        // lz4 legacy: a block length past the end of the input stops the read.
        let mut lz4 = vec![0x02, 0x21, 0x4c, 0x18];
        lz4.extend_from_slice(&1000u32.to_le_bytes());
        lz4.extend_from_slice(&[0; 10]);
        assert!(list(&lz4, MAX_UNPACKED).unwrap().names.is_empty());
        lz4.truncate(6);
        assert!(list(&lz4, MAX_UNPACKED).unwrap().names.is_empty());
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_name("lib/modules/x/virtio-blk.ko.xz").as_deref(),
            Some("virtio_blk")
        );
        assert_eq!(module_name("lib/modules/x/modules.dep"), None);
    }
}
