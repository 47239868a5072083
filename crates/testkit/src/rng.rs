//! xorshift64*: the same numbers on every run and machine, so a failing mutation or
//! generated disk can be reproduced from its seed.

/// A small deterministic PRNG (xorshift64*). The state must not be zero.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)] // Not an iterator: it never ends.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// `len` random bytes from the seed `seed` (any value; zero is made non-zero).
    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        Rng(seed | 1).fill(&mut data);
        data
    }

    /// Writes a file of `len` random bytes from `seed`, 1 MiB at a time (test files may be
    /// larger than one buffer). Incompressible, and each part of an upload differs.
    pub fn write_file(path: &std::path::Path, len: u64, seed: u64) {
        use std::io::Write as _;
        let mut rng = Rng(seed | 1);
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
            let chunk = &mut buf[..n];
            rng.fill(chunk);
            out.write_all(chunk).expect("write");
            left -= n as u64;
        }
        out.flush().expect("flush");
    }

    /// Fills `buf` with random bytes, eight from each number.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_xorshift64_star() {
        // The sequences the tests were written against: a change here changes every
        // generated disk and mutation.
        let mut r = Rng(1);
        assert_eq!(r.next(), 5_180_492_295_206_395_165);
        assert_eq!(r.below(0), 0);
        assert!(r.below(7) < 7);
        let mut buf = [0u8; 11];
        Rng(1).fill(&mut buf);
        assert_eq!(buf[..8], 5_180_492_295_206_395_165u64.to_le_bytes());
    }
}
