//! A small read-only reader for Windows registry hive files (`regf`).
//!
//! Written here because the one maintained Rust crate (nt-hive) is
//! GPL-2.0-or-later. It reads keys (`nk`), subkey lists (`lf`, `lh`, `li`,
//! `ri`), values (`vk`) and big data (`db`); every cell offset is checked
//! against the hive, and list walks are bounded. Transaction logs (.LOG1,
//! .LOG2) are not replayed: a dirty hive is reported by [`Hive::is_dirty`].

/// Offset of the first hive bin: cell offsets count from here.
const HBIN_START: usize = 4096;
/// Most subkeys or values walked in one key (real keys have at most tens of
/// thousands).
const MAX_LIST: usize = 1 << 20;
/// Largest value data read (REG_BINARY blobs in SYSTEM are small; 16 MiB is
/// far above any value we read).
const MAX_VALUE: usize = 16 * 1024 * 1024;
/// Size of one segment of a big-data (`db`) value.
const DB_SEGMENT: usize = 16344;

/// Why a hive cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HiveError {
    /// Not a regf file, or its header is broken.
    #[error("not a registry hive: {0}")]
    BadHeader(String),
    /// A cell offset or length points outside the hive.
    #[error("corrupt hive: {0}")]
    Corrupt(String),
}

/// A hive held in memory.
pub struct Hive<'h> {
    data: &'h [u8],
    root: u32,
    dirty: bool,
}

/// A key (`nk` cell).
#[derive(Clone, Copy)]
pub struct Key<'h> {
    hive: &'h Hive<'h>,
    cell: &'h [u8],
}

/// A value's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// REG_SZ / REG_EXPAND_SZ.
    String(String),
    /// REG_MULTI_SZ.
    MultiString(Vec<String>),
    /// REG_DWORD.
    Dword(u32),
    /// REG_QWORD.
    Qword(u64),
    /// Anything else, raw.
    Binary(u32, Vec<u8>),
}

use crate::bytes::{self, le16, le32};

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks_exact(2).filter_map(|c| le16(c, 0)).collect();
    String::from_utf16_lossy(&units)
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

impl<'h> Hive<'h> {
    /// Checks the base block and finds the root key.
    pub fn new(data: &'h [u8]) -> Result<Self, HiveError> {
        if data.len() < HBIN_START + 32 || !data.starts_with(b"regf") {
            return Err(HiveError::BadHeader(
                "no 'regf' signature or too short".into(),
            ));
        }
        let seq1 = le32(data, 4).unwrap_or(0);
        let seq2 = le32(data, 8).unwrap_or(0);
        let mut x = 0u32;
        for i in 0..127 {
            x ^= le32(data, i * 4).unwrap_or(0);
        }
        let sum = le32(data, 508).unwrap_or(0);
        if x != sum && !(x == 0 && sum == 1) && !(x == u32::MAX && sum == u32::MAX - 1) {
            return Err(HiveError::BadHeader(format!(
                "base block checksum {sum:#x}, computed {x:#x}"
            )));
        }
        if !bytes::magic_at(data, HBIN_START, b"hbin") {
            return Err(HiveError::BadHeader("no 'hbin' at 4096".into()));
        }
        let hive = Hive {
            data,
            root: le32(data, 36).unwrap_or(0),
            dirty: seq1 != seq2,
        };
        hive.root_key()?;
        Ok(hive)
    }

    /// Primary and secondary sequence numbers differ: the hive was not
    /// cleanly written and pending changes sit in its .LOG files.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The cell at `offset` (relative to the first hbin), without its size.
    fn cell(&self, offset: u32) -> Result<&'h [u8], HiveError> {
        let start = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(HBIN_START))
            .ok_or_else(|| {
                HiveError::Corrupt(format!("cell offset {offset:#x} outside the hive"))
            })?;
        let raw = bytes::array(self.data, start)
            .map(i32::from_le_bytes)
            .ok_or_else(|| {
                HiveError::Corrupt(format!("cell offset {offset:#x} outside the hive"))
            })?;
        let size = usize::try_from(raw.unsigned_abs()).unwrap_or(0);
        let body = (size >= 8)
            .then(|| {
                self.data
                    .get(start.checked_add(4)?..start.checked_add(size)?)
            })
            .flatten();
        body.ok_or_else(|| HiveError::Corrupt(format!("cell at {offset:#x} has size {raw}")))
    }

    /// The root key.
    pub fn root_key(&'h self) -> Result<Key<'h>, HiveError> {
        self.key_at(self.root)
    }

    fn key_at(&'h self, offset: u32) -> Result<Key<'h>, HiveError> {
        let cell = self.cell(offset)?;
        if cell.len() < 76 || !cell.starts_with(b"nk") {
            return Err(HiveError::Corrupt(format!("cell {offset:#x} is not a key")));
        }
        Ok(Key { hive: self, cell })
    }
}

impl<'h> Key<'h> {
    /// The key's name.
    pub fn name(&self) -> String {
        let flags = le16(self.cell, 2).unwrap_or(0);
        let len = usize::from(le16(self.cell, 72).unwrap_or(0));
        let raw = self.cell.get(76..76 + len).unwrap_or(&[]);
        if flags & 0x20 != 0 {
            latin1(raw)
        } else {
            utf16(raw)
        }
    }

    /// Subkeys.
    pub fn subkeys(&self) -> Result<Vec<Key<'h>>, HiveError> {
        let count = usize::try_from(le32(self.cell, 20).unwrap_or(0)).unwrap_or(usize::MAX);
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > MAX_LIST {
            return Err(HiveError::Corrupt(format!("{count} subkeys")));
        }
        let mut offsets = Vec::new();
        self.list_offsets(le32(self.cell, 28).unwrap_or(u32::MAX), 0, &mut offsets)?;
        offsets.iter().map(|&o| self.hive.key_at(o)).collect()
    }

    fn list_offsets(&self, offset: u32, depth: u32, out: &mut Vec<u32>) -> Result<(), HiveError> {
        let l = self.hive.cell(offset)?;
        let n = usize::from(le16(l, 2).unwrap_or(0));
        let (step, nested) = match l.get(0..2) {
            Some(b"lf") | Some(b"lh") => (8, false),
            Some(b"li") => (4, false),
            Some(b"ri") if depth == 0 => (4, true),
            _ => {
                return Err(HiveError::Corrupt(format!(
                    "cell {offset:#x} is not a subkey list"
                )))
            }
        };
        for i in 0..n {
            let o = le32(l, 4 + i * step).ok_or_else(|| {
                HiveError::Corrupt(format!("subkey list {offset:#x} is truncated"))
            })?;
            if nested {
                self.list_offsets(o, depth + 1, out)?;
            } else {
                if out.len() >= MAX_LIST {
                    return Err(HiveError::Corrupt("too many subkeys".into()));
                }
                out.push(o);
            }
        }
        Ok(())
    }

    /// The subkey with this name (case-insensitive).
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>, HiveError> {
        Ok(self
            .subkeys()?
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name)))
    }

    /// Follows a `\`-separated path of subkeys.
    pub fn subpath(&self, path: &str) -> Result<Option<Key<'h>>, HiveError> {
        let mut k = *self;
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            match k.subkey(part)? {
                Some(s) => k = s,
                None => return Ok(None),
            }
        }
        Ok(Some(k))
    }

    /// A value by name (case-insensitive; `""` is the default value).
    pub fn value(&self, name: &str) -> Result<Option<Value>, HiveError> {
        let count = usize::try_from(le32(self.cell, 36).unwrap_or(0)).unwrap_or(usize::MAX);
        if count == 0 {
            return Ok(None);
        }
        if count > MAX_LIST {
            return Err(HiveError::Corrupt(format!("{count} values")));
        }
        let list = self.hive.cell(le32(self.cell, 40).unwrap_or(u32::MAX))?;
        for i in 0..count {
            let Some(vo) = le32(list, i * 4) else {
                return Err(HiveError::Corrupt("value list is truncated".into()));
            };
            let vk = self.hive.cell(vo)?;
            if vk.len() < 20 || !vk.starts_with(b"vk") {
                return Err(HiveError::Corrupt(format!("cell {vo:#x} is not a value")));
            }
            let nlen = usize::from(le16(vk, 2).unwrap_or(0));
            let flags = le16(vk, 16).unwrap_or(0);
            let raw = vk.get(20..20 + nlen).unwrap_or(&[]);
            let vname = if flags & 1 != 0 {
                latin1(raw)
            } else {
                utf16(raw)
            };
            if vname.eq_ignore_ascii_case(name) {
                return self.value_data(vk).map(Some);
            }
        }
        Ok(None)
    }

    fn value_data(&self, vk: &[u8]) -> Result<Value, HiveError> {
        let size_raw = le32(vk, 4).unwrap_or(0);
        let data_off = le32(vk, 8).unwrap_or(0);
        let ty = le32(vk, 12).unwrap_or(0);
        let inline = size_raw & 0x8000_0000 != 0;
        let size = usize::try_from(size_raw & 0x7fff_ffff).unwrap_or(usize::MAX);
        if size > MAX_VALUE {
            return Err(HiveError::Corrupt(format!("value of {size} bytes")));
        }
        let data: Vec<u8> = if inline {
            data_off.to_le_bytes().into_iter().take(size).collect()
        } else {
            let cell = self.hive.cell(data_off)?;
            if size > DB_SEGMENT && cell.get(0..2) == Some(b"db") {
                let n = usize::from(le16(cell, 2).unwrap_or(0));
                let segs = self.hive.cell(le32(cell, 4).unwrap_or(u32::MAX))?;
                let mut out = Vec::new();
                for i in 0..n {
                    let so = le32(segs, i * 4)
                        .ok_or_else(|| HiveError::Corrupt("db list truncated".into()))?;
                    let seg = self.hive.cell(so)?;
                    let take = (size - out.len()).min(DB_SEGMENT).min(seg.len());
                    out.extend(seg.iter().take(take));
                    if out.len() >= size {
                        break;
                    }
                }
                out
            } else {
                cell.get(..size)
                    .ok_or_else(|| HiveError::Corrupt("value data past its cell".into()))?
                    .to_vec()
            }
        };
        let text = |d: &[u8]| {
            let s = utf16(d);
            s.trim_end_matches('\0').to_string()
        };
        Ok(match (ty, le32(&data, 0), bytes::le64(&data, 0)) {
            (1 | 2, _, _) => Value::String(text(&data)),
            (7, _, _) => Value::MultiString(
                utf16(&data)
                    .split('\0')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            (4, Some(d), _) => Value::Dword(d),
            (11, _, Some(q)) => Value::Qword(q),
            (t, _, _) => Value::Binary(t, data),
        })
    }

    /// A REG_SZ value.
    pub fn string(&self, name: &str) -> Option<String> {
        match self.value(name).ok()?? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A REG_DWORD value.
    pub fn dword(&self, name: &str) -> Option<u32> {
        match self.value(name).ok()?? {
            Value::Dword(d) => Some(d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A base block, an hbin, and `cells` at the hive's first cell offset; the root key
    /// is at cell offset `root`.
    fn hive(root: u32, cells: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; HBIN_START + 32];
        d[0..4].copy_from_slice(b"regf");
        d[36..40].copy_from_slice(&root.to_le_bytes());
        let x = (0..127).fold(0u32, |x, i| x ^ le32(&d, i * 4).unwrap());
        d[508..512].copy_from_slice(&x.to_le_bytes());
        d[HBIN_START..HBIN_START + 4].copy_from_slice(b"hbin");
        d.truncate(HBIN_START + 32);
        d.extend_from_slice(cells);
        d
    }

    fn corrupt(data: &[u8]) -> bool {
        matches!(Hive::new(data), Err(HiveError::Corrupt(_)))
    }

    #[test]
    fn cells_past_the_end_are_corrupt_not_panics() {
        let mut key = vec![0u8; 80];
        key[0..4].copy_from_slice(&(-80i32).to_le_bytes());
        key[4..6].copy_from_slice(b"nk");
        assert!(Hive::new(&hive(32, &key)).is_ok());
        // The root's size field cut short, past the end, or its body cut short.
        assert!(corrupt(&hive(32 + 78, &key)));
        assert!(corrupt(&hive(u32::MAX, &key)));
        assert!(corrupt(&hive(32, &key[..40])));
        let mut huge = key.clone();
        huge[0..4].copy_from_slice(&i32::MIN.to_le_bytes());
        assert!(corrupt(&hive(32, &huge)));
        // Every cut of the hive is an error, never a panic.
        let whole = hive(32, &key);
        for cut in (0..whole.len()).step_by(7) {
            assert!(Hive::new(&whole[..cut]).is_err(), "cut at {cut}");
        }
    }
}
