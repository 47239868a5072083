//! Checked reads of fixed-size fields from untrusted byte buffers: a field
//! that does not fit gives `None`, never a panic (the guest readers parse
//! hostile disk images).

/// `N` bytes at `at`, or `None` when they do not fit in `b`.
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// `len` bytes at `at`, or `None` when they do not fit in `b`.
pub(crate) fn slice(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

/// True when `magic` is found at `at` (false when it would not fit).
pub(crate) fn magic_at(b: &[u8], at: usize, magic: &[u8]) -> bool {
    slice(b, at, magic.len()) == Some(magic)
}

/// Copies the bytes that fit from the start of `src` to the start of `dst`;
/// returns how many.
pub(crate) fn copy_prefix(dst: &mut [u8], src: &[u8]) -> usize {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

/// Little-endian `u16` at `at`.
pub(crate) fn le16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

/// Little-endian `u32` at `at`.
pub(crate) fn le32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

/// Little-endian `u64` at `at`.
pub(crate) fn le64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_past_the_end_are_none() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(le16(&b, 3), Some(0x0504));
        assert_eq!(le16(&b, 4), None);
        assert_eq!(le32(&b, 1), Some(0x0504_0302));
        assert_eq!(le64(&b, 0), None);
        assert_eq!(array::<2>(&b, usize::MAX), None);
        assert_eq!(slice(&b, usize::MAX, 2), None);
        assert_eq!(slice(&b, 5, 0), Some(&[][..]));
        assert!(magic_at(&b, 3, &[4, 5]));
        assert!(!magic_at(&b, 4, &[5, 6]));
    }
}
