//! A real image with a few bytes overwritten and maybe cut short, read without copying
//! the image: thousands of mutations of a multi-MiB base cost only their patches.

use preflight_disk::Source;
use std::io;
use std::sync::Arc;

/// `base` with `patches` (offset, byte) applied, `len` bytes long (at most the base's).
#[derive(Debug, Clone)]
pub struct Mutated {
    /// The unmodified image.
    pub base: Arc<Vec<u8>>,
    /// Bytes overwritten, later ones winning.
    pub patches: Vec<(u64, u8)>,
    /// Length seen by readers: shorter than the base for a truncated file.
    pub len: u64,
}

impl Mutated {
    /// The whole base, unmodified.
    pub fn new(base: Arc<Vec<u8>>) -> Self {
        let len = u64::try_from(base.len()).unwrap_or(u64::MAX);
        Mutated {
            base,
            patches: Vec::new(),
            len,
        }
    }

    /// `len` bytes at `at` with the patches applied (for recomputing a checksum over a
    /// mutated structure). Panics if the range passes the base.
    pub fn bytes(&self, at: usize, len: usize) -> Vec<u8> {
        let mut v = self.base[at..at + len].to_vec();
        self.apply(u64::try_from(at).unwrap_or(u64::MAX), &mut v);
        v
    }

    fn apply(&self, offset: u64, buf: &mut [u8]) {
        for &(at, value) in &self.patches {
            if let Some(i) = at.checked_sub(offset).and_then(|i| usize::try_from(i).ok()) {
                if let Some(b) = buf.get_mut(i) {
                    *b = value;
                }
            }
        }
    }
}

impl Source for Mutated {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = u64::try_from(buf.len())
            .ok()
            .and_then(|n| offset.checked_add(n));
        if end.is_none_or(|e| e > self.len) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past end"));
        }
        self.base.as_slice().read_exact_at(offset, buf)?;
        self.apply(offset, buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_apply_inside_the_read_and_the_length_cuts() {
        let mut m = Mutated::new(Arc::new((0u8..16).collect()));
        m.patches = vec![(3, 0xaa), (10, 0xbb), (3, 0xcc)];
        let mut buf = [0u8; 4];
        m.read_exact_at(2, &mut buf).unwrap();
        assert_eq!(buf, [2, 0xcc, 4, 5]);
        assert_eq!(m.bytes(9, 2), vec![9, 0xbb]);
        m.len = 5;
        assert!(m.read_exact_at(2, &mut buf).is_err());
        assert!(m.read_exact_at(u64::MAX, &mut buf).is_err());
    }
}
