//! LZO: the lzop container the kernel accepts for an initramfs, and the
//! LZO1X block format inside it.
//!
//! Hand-written because the crates that decode LZO1X are either GPL (lzo1x,
//! rust-lzo, minilzo bindings) or index back-references without checking them
//! (lzokay-native panics on a distance past the start of its output). This
//! decoder checks every length and distance against the block's declared size,
//! so hostile input gives an error and memory stays bounded.

use std::io::Write;

/// The lzop file magic.
pub const MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0, 0x0d, 0x0a, 0x1a, 0x0a];

/// Largest block lzop writes is 256 KiB; we accept up to 64 MiB (its own limit).
const MAX_BLOCK: usize = 64 * 1024 * 1024;

const F_ADLER32_D: u32 = 0x1;
const F_ADLER32_C: u32 = 0x2;
const F_H_EXTRA_FIELD: u32 = 0x40;
const F_CRC32_D: u32 = 0x100;
const F_CRC32_C: u32 = 0x200;
const F_H_FILTER: u32 = 0x800;

/// Why LZO data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LzoError {
    /// The data ends before a header, block or instruction does.
    #[error("lzo: truncated at offset {0}")]
    Truncated(usize),
    /// A header or block field is out of range.
    #[error("lzo: {0}")]
    Invalid(String),
    /// Where the decoded data went refused it.
    #[error("lzo: output refused")]
    Output,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LzoError> {
        let end = self.pos.checked_add(n);
        let s = end
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or(LzoError::Truncated(self.pos))?;
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], LzoError> {
        let at = self.pos;
        self.take(N)?
            .try_into()
            .map_err(|_| LzoError::Truncated(at))
    }
    fn u8(&mut self) -> Result<u8, LzoError> {
        let [b] = self.array()?;
        Ok(b)
    }
    fn be16(&mut self) -> Result<u16, LzoError> {
        self.array().map(u16::from_be_bytes)
    }
    fn be32(&mut self) -> Result<u32, LzoError> {
        self.array().map(u32::from_be_bytes)
    }
    fn le16(&mut self) -> Result<u16, LzoError> {
        self.array().map(u16::from_le_bytes)
    }
    /// A run length: zero bytes each add 255, then a non-zero byte.
    fn run(&mut self, base: usize) -> Result<usize, LzoError> {
        let mut n = base;
        loop {
            let b = self.u8()?;
            if b != 0 {
                return Ok(n + usize::from(b));
            }
            // Bounded by the input: each zero byte is consumed.
            n = n.saturating_add(255);
        }
    }
}

/// Decodes an lzop file (as `lzop -c` writes it) into `out`, block by block.
pub fn decode_lzop(data: &[u8], out: &mut dyn Write) -> Result<(), LzoError> {
    let mut c = Cursor { data, pos: 0 };
    if c.take(MAGIC.len())? != MAGIC {
        return Err(LzoError::Invalid("not an lzop file".into()));
    }
    let version = c.be16()?;
    let _lib_version = c.be16()?;
    if version >= 0x0940 {
        let _needed = c.be16()?;
    }
    let method = c.u8()?;
    if !(1..=3).contains(&method) {
        return Err(LzoError::Invalid(format!(
            "method {method} is not LZO1X (1, 2 or 3)"
        )));
    }
    if version >= 0x0940 {
        let _level = c.u8()?;
    }
    let flags = c.be32()?;
    if flags & F_H_FILTER != 0 {
        return Err(LzoError::Invalid("filtered lzop data".into()));
    }
    let _mode = c.be32()?;
    let _mtime = c.be32()?;
    if version >= 0x0940 {
        let _mtime_high = c.be32()?;
    }
    let name_len = c.u8()?;
    c.take(usize::from(name_len))?;
    let _header_check = c.be32()?;
    if flags & F_H_EXTRA_FIELD != 0 {
        let n = c.be32()?;
        c.take(usize::try_from(n).unwrap_or(usize::MAX))?;
        let _extra_check = c.be32()?;
    }
    loop {
        let dst_len = usize::try_from(c.be32()?).unwrap_or(usize::MAX);
        if dst_len == 0 {
            return Ok(());
        }
        if dst_len > MAX_BLOCK {
            return Err(LzoError::Invalid(format!(
                "block of {dst_len} bytes (most is {MAX_BLOCK})"
            )));
        }
        let src_len = usize::try_from(c.be32()?).unwrap_or(usize::MAX);
        if src_len > dst_len {
            return Err(LzoError::Invalid(format!(
                "block of {src_len} compressed bytes for {dst_len}"
            )));
        }
        for flag in [F_ADLER32_D, F_CRC32_D] {
            if flags & flag != 0 {
                c.be32()?;
            }
        }
        if src_len < dst_len {
            for flag in [F_ADLER32_C, F_CRC32_C] {
                if flags & flag != 0 {
                    c.be32()?;
                }
            }
        }
        let src = c.take(src_len)?;
        if src_len == dst_len {
            out.write_all(src).map_err(|_| LzoError::Output)?;
        } else {
            let block = decompress_lzo1x(src, dst_len)?;
            if block.len() != dst_len {
                return Err(LzoError::Invalid(format!(
                    "block decoded to {} bytes, not {dst_len}",
                    block.len()
                )));
            }
            out.write_all(&block).map_err(|_| LzoError::Output)?;
        }
    }
}

/// Decodes one LZO1X block of at most `max_out` bytes.
pub fn decompress_lzo1x(src: &[u8], max_out: usize) -> Result<Vec<u8>, LzoError> {
    let mut c = Cursor { data: src, pos: 0 };
    let mut out: Vec<u8> = Vec::with_capacity(max_out.min(src.len().saturating_mul(4)));
    let literal = |c: &mut Cursor<'_>, out: &mut Vec<u8>, n: usize| -> Result<(), LzoError> {
        if out.len() + n > max_out {
            return Err(LzoError::Invalid("literals run past the block".into()));
        }
        out.extend_from_slice(c.take(n)?);
        Ok(())
    };
    // `state`: how many literals the previous instruction copied (4 = a run).
    let mut state: usize = 0;
    match src.first() {
        Some(&b) if b >= 22 => {
            c.pos = 1;
            literal(&mut c, &mut out, usize::from(b) - 17)?;
            state = 4;
        }
        Some(&b) if b >= 18 => {
            c.pos = 1;
            state = usize::from(b) - 17;
            literal(&mut c, &mut out, state)?;
        }
        Some(&17) => return Err(LzoError::Invalid("LZO-RLE stream".into())),
        _ => {}
    }
    loop {
        let inst = usize::from(c.u8()?);
        let (distance, length, next_state);
        if inst >= 128 {
            let h = usize::from(c.u8()?);
            length = 5 + ((inst >> 5) & 3);
            distance = (h << 3) + ((inst >> 2) & 7) + 1;
            next_state = inst & 3;
        } else if inst >= 64 {
            let h = usize::from(c.u8()?);
            length = 3 + ((inst >> 5) & 1);
            distance = (h << 3) + ((inst >> 2) & 7) + 1;
            next_state = inst & 3;
        } else if inst >= 32 {
            length = 2 + match inst & 31 {
                0 => c.run(31)?,
                l => l,
            };
            let d = usize::from(c.le16()?);
            distance = (d >> 2) + 1;
            next_state = d & 3;
        } else if inst >= 16 {
            length = 2 + match inst & 7 {
                0 => c.run(7)?,
                l => l,
            };
            let d = usize::from(c.le16()?);
            let far = ((inst >> 3) & 1) << 14;
            if far == 0 && d >> 2 == 0 {
                // End of stream.
                return Ok(out);
            }
            distance = 16384 + far + (d >> 2);
            next_state = d & 3;
        } else if state == 0 {
            let n = 3 + match inst {
                0 => c.run(15)?,
                l => l,
            };
            literal(&mut c, &mut out, n)?;
            state = 4;
            continue;
        } else {
            let h = usize::from(c.u8()?);
            if state == 4 {
                length = 3;
                distance = (h << 2) + (inst >> 2) + 2049;
            } else {
                length = 2;
                distance = (h << 2) + (inst >> 2) + 1;
            }
            next_state = inst & 3;
        }
        if distance > out.len() {
            return Err(LzoError::Invalid(format!(
                "back-reference {distance} bytes behind {} bytes of output",
                out.len()
            )));
        }
        if out.len() + length > max_out {
            return Err(LzoError::Invalid("match runs past the block".into()));
        }
        // Byte by byte: a match may overlap what it produces.
        let start = out.len() - distance;
        for i in start..start + length {
            // Each byte pushed makes the next one readable (distance >= 1).
            let b = *out
                .get(i)
                .ok_or_else(|| LzoError::Invalid("back-reference past the output".into()))?;
            out.push(b);
        }
        literal(&mut c, &mut out, next_state)?;
        state = next_state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_blocks_are_errors() {
        // A back-reference before the start of the output.
        assert!(decompress_lzo1x(&[0x80, 0xff], 100).is_err());
        // A literal run longer than the block.
        assert!(decompress_lzo1x(&[0xff, 1, 2], 4).is_err());
        // Truncated and empty input.
        assert!(decompress_lzo1x(&[], 10).is_err());
        assert!(decompress_lzo1x(&[0, 0, 0], 1 << 20).is_err());
        // A long run of zeros is bounded by the input.
        let mut zeros = vec![0u8; 10_000];
        zeros.push(1);
        assert!(decompress_lzo1x(&zeros, 1 << 20).is_err());
        assert!(decode_lzop(b"\x89LZO\0\r\n\x1a\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn literal_then_end_marker() {
        // 22 = five literals "abcde", then M4 with distance 16384: end of stream.
        let block = [22, b'a', b'b', b'c', b'd', b'e', 0x11, 0, 0];
        assert_eq!(decompress_lzo1x(&block, 5).unwrap(), b"abcde");
    }

    #[test]
    fn truncated_lzop_headers_are_errors() {
        // lzop 1.03's header: version, library version, version needed, method 1,
        // level 5, no flags, an empty name; then the end-of-data block.
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&[0x10, 0x30, 0x20, 0x80, 0x09, 0x40, 1, 5]);
        file.extend_from_slice(&[0; 16]); // flags, mode, mtime, mtime high
        file.push(0); // name length
        file.extend_from_slice(&[0; 4]); // header checksum
        file.extend_from_slice(&[0; 4]); // block of 0 bytes: the end
        assert_eq!(decode_lzop(&file, &mut Vec::new()), Ok(()));
        for cut in 0..file.len() {
            assert!(
                decode_lzop(&file[..cut], &mut Vec::new()).is_err(),
                "cut at {cut}"
            );
        }
    }
}
