//! CRC-64 as OSS computes it (`x-oss-hash-crc64ecma`): CRC-64/XZ (ECMA-182 polynomial,
//! reflected, init and xorout all ones), and combining part CRCs into the object's.

use crc_fast::CrcAlgorithm;

/// CRC-64/XZ of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Xz, data)
}

/// An incremental CRC-64/XZ.
pub struct Crc64(crc_fast::Digest);

impl Crc64 {
    /// Empty state.
    pub fn new() -> Self {
        Crc64(crc_fast::Digest::new(CrcAlgorithm::Crc64Xz))
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The CRC so far.
    pub fn finish(&self) -> u64 {
        self.0.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

/// The CRC of `a ‖ b` from `crc(a)`, `crc(b)` and `len(b)`. Because init equals xorout, the
/// final values combine directly and 0 is the identity (the CRC of nothing).
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Xz, crc_a, crc_b, len_b)
}

/// The CRC of the parts laid end to end: `(crc, len)` in part order.
pub fn combine_all(parts: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    parts
        .into_iter()
        .fold(0, |acc, (crc, len)| combine(acc, crc, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        assert_eq!(crc64(b""), 0);
        assert_eq!(crc64(b"123456789"), 11051210869376104954);
        assert_eq!(crc64(b"hello world!"), 0x8483c0fa32607d61);
        assert_eq!(crc64(b"hi oss"), 8707180448768400016);
        assert_eq!(crc64(b"upload part 1"), 6571598172666981661);
        assert_eq!(crc64(&[0u8; 1024]), 14085117335336199948);
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(crc64(&all), 8232944260754389680);
        assert_eq!(
            combine(crc64(b"12345"), crc64(b"67890"), 5),
            12811388247244714686
        );
        let mut c = Crc64::new();
        c.update(b"hello ");
        c.update(b"world");
        assert_eq!(c.finish(), 5981764153023615706);
    }

    #[test]
    fn multipart_combine_vector() {
        let p1: Vec<u8> = (0..102400u32)
            .map(|i| (i * 7 + 3).to_le_bytes()[0])
            .collect();
        let p2: Vec<u8> = (0..102400u32)
            .map(|i| (i * 13 + 1).to_le_bytes()[0])
            .collect();
        let parts = [
            (crc64(&p1), 102400),
            (crc64(&p2), 102400),
            (crc64(b"tail"), 4),
        ];
        assert_eq!(parts[0].0, 1890614950568534879);
        assert_eq!(parts[1].0, 17882848251152330227);
        assert_eq!(parts[2].0, 1564134088860173973);
        assert_eq!(combine_all(parts), 1719664958040220306);
        assert_eq!(combine_all([]), 0);
    }
}
