//! The size an xz stream unpacks to, read from its LZMA2 chunk headers without decoding.
//!
//! lzma-rs (0.3) unpacks each xz block whole into memory before it writes any of it, with no
//! memory limit, so our unpack limit would be checked only after a hostile block had taken
//! its full size (256 MiB of zeros is 39 KB as `xz -0`). Every LZMA2 chunk header states how
//! many bytes the chunk unpacks to (at most 2 MiB) and how many it takes, so summing them is
//! cheap and bounded by the input; a stream over the limit is refused before lzma-rs runs.
//! Formats: <https://tukaani.org/xz/xz-file-format.txt> (container) and liblzma's
//! `lzma2_decoder.c` (chunk control bytes).

const STREAM_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
const STREAM_HEADER_LEN: usize = 12;

/// The bytes the first xz stream in `input` unpacks to, the sum of its blocks' LZMA2 chunk
/// sizes (saturating). `None` when the structure cannot be followed (truncated, not xz, an
/// invalid control byte): the decoder then reports what is wrong.
pub(crate) fn unpacked_size(input: &[u8]) -> Option<u64> {
    if input.get(..STREAM_MAGIC.len())? != STREAM_MAGIC {
        return None;
    }
    let check_len = check_size(*input.get(7)? & 0x0F);
    let mut at = STREAM_HEADER_LEN;
    let mut total = 0u64;
    loop {
        let header_byte = *input.get(at)?;
        if header_byte == 0 {
            return Some(total); // the index: no more blocks
        }
        let block_start = at;
        at = at.checked_add((usize::from(header_byte) + 1) * 4)?;
        let (unpacked, end) = lzma2_chunks(input, at)?;
        total = total.saturating_add(unpacked);
        // Block padding to a multiple of four bytes, then the check.
        let padded = block_start + (end - block_start).next_multiple_of(4);
        at = padded.checked_add(check_len)?;
    }
}

/// Sums the LZMA2 chunks from `at` to the end marker: (unpacked bytes, offset after it).
fn lzma2_chunks(input: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut total = 0u64;
    loop {
        let control = *input.get(at)?;
        // A two-byte big-endian field at `at + i`, stored as the value minus one.
        let field = |i: usize| -> Option<u64> {
            let bytes = <[u8; 2]>::try_from(input.get(at + i..at + i + 2)?).ok()?;
            Some(u64::from(u16::from_be_bytes(bytes)) + 1)
        };
        match control {
            0x00 => return Some((total, at + 1)),
            // Uncompressed chunk: its size, then that many bytes.
            0x01 | 0x02 => {
                let size = field(1)?;
                total = total.saturating_add(size);
                at = at
                    .checked_add(3)?
                    .checked_add(usize::try_from(size).ok()?)?;
            }
            0x80..=0xFF => {
                let unpacked = (u64::from(control & 0x1F) << 16) + field(1)?;
                let packed = field(3)?;
                // A state reset with new properties (control bits 5-6 at 2 or 3) adds a byte.
                let props = usize::from((control >> 5) & 0x03 >= 2);
                total = total.saturating_add(unpacked);
                at = at
                    .checked_add(5 + props)?
                    .checked_add(usize::try_from(packed).ok()?)?;
            }
            _ => return None,
        }
    }
}

/// Bytes of a block's check for the stream's check type (the spec's table by ranges).
fn check_size(check_type: u8) -> usize {
    match check_type {
        0x00 => 0,
        0x01..=0x03 => 4,
        0x04..=0x06 => 8,
        0x07..=0x09 => 16,
        0x0A..=0x0C => 32,
        _ => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(data: &[u8], level: &str) -> Vec<u8> {
        let mut child = std::process::Command::new("xz")
            .args([level, "--stdout", "--check=crc64"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("xz (xz-utils) is installed by fixtures/install-deps.sh");
        let mut stdin = child.stdin.take().unwrap();
        let input = data.to_vec();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    /// The sizes xz itself wrote, for data that compresses (LZMA chunks), data that does not
    /// (uncompressed chunks) and several blocks (`--block-size`).
    #[test]
    fn sums_match_what_xz_packed() {
        let zeros = vec![0u8; 5 << 20];
        assert_eq!(unpacked_size(&xz(&zeros, "-0")), Some(5 << 20));
        let mut noise = vec![0u8; 300_000];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
        assert_eq!(unpacked_size(&xz(&noise, "-6")), Some(300_000));
        let mut child = std::process::Command::new("xz")
            .args(["-1", "--stdout", "--block-size=1MiB"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let blocks = vec![7u8; 3_500_000];
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &blocks));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(unpacked_size(&out.stdout), Some(3_500_000));
    }

    #[test]
    fn truncated_or_foreign_input_is_not_sized() {
        let packed = xz(&[1u8; 100_000], "-0");
        assert_eq!(unpacked_size(&packed[..packed.len() / 2]), None);
        assert_eq!(unpacked_size(b"\x1f\x8b\x08\x00 gzip"), None);
        assert_eq!(unpacked_size(&STREAM_MAGIC), None);
    }
}
