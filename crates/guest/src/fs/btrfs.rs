//! btrfs, read-only, by our own bounded reader.
//!
//! No crate fits: `btrfs-disk` parses structures but needs bindgen (libclang)
//! to build and has no path lookup or file reading; `btrfs-core` reads only
//! one-leaf trees from a whole image in memory and has no subvolumes. So this
//! reads what an inspection needs and nothing more: the superblock (crc32c
//! checked), the chunk map (sys_chunk_array, then the chunk tree) for single,
//! DUP and mirrored profiles on this device, the root tree, the subvolume
//! (fs) trees, directories (DIR_ITEM by name hash, DIR_INDEX to list),
//! inodes, file extents (inline, regular, prealloc; zlib and zstd; LZO is
//! refused by name) and symlinks. Subvolumes are crossed like the kernel
//! does, and mounted by fstab's `subvol=` / `subvolid=` or as the default
//! subvolume.
//!
//! Every tree walk has a depth limit (the format's 8 levels) and a budget of
//! nodes; every count and length is checked against what is left in its node
//! or item; no allocation comes from an unchecked field.

use super::{components, uuid_string, FsError, FsInfo, UnreadLog};
use crate::cache::View;
use crate::rules;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

/// Where the primary superblock is.
const SUPER_OFFSET: u64 = 0x10000;
const SUPER_SIZE: usize = 4096;
const MAGIC: &[u8; 8] = b"_BHRfS_M";
/// Tree block header size; items (leaf) or key pointers (node) follow.
const HEADER: usize = 0x65;
const ITEM: usize = 25;
const KEY_PTR: usize = 33;
/// The format's deepest tree (levels 0..=7).
const MAX_LEVEL: u8 = 7;
/// Tree blocks read by one search (a real lookup reads a handful).
const MAX_NODES_PER_SEARCH: usize = 4096;
/// Tree blocks kept decoded.
const NODE_CACHE: usize = 256;
/// Chunks mapped (a 1 TiB filesystem has about a thousand).
const MAX_CHUNKS: usize = 65_536;
/// Stripes per chunk.
const MAX_STRIPES: usize = 16;
/// Entries listed from one directory; a longer one is not read ([`FsError::NotRead`]).
const MAX_DIR_ENTRIES: usize = 100_000;

#[cfg(test)]
thread_local! {
    /// [`MAX_DIR_ENTRIES`] for this thread, so a test need not make 100,000 files.
    pub(crate) static TEST_MAX_DIR_ENTRIES: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

/// Entries listed from one directory at most.
fn max_dir_entries() -> usize {
    #[cfg(test)]
    if let Some(n) = TEST_MAX_DIR_ENTRIES.with(std::cell::Cell::get) {
        return n;
    }
    MAX_DIR_ENTRIES
}
/// Symlinks followed while resolving one path (Linux's limit).
const MAX_SYMLINK_HOPS: u32 = 40;
/// Largest extent we decompress (btrfs compresses 128 KiB at a time).
const MAX_COMPRESSED_RAM: u64 = 128 * 1024;
/// Largest inline extent (bounded by the node size, at most 64 KiB).
const MAX_INLINE_RAM: u64 = 64 * 1024;
/// Bytes of EXTENT_DATA items gathered for one file (a real file's are
/// a few KiB; inline data is at most a node).
const MAX_EXTENT_ITEM_BYTES: usize = 16 * 1024 * 1024;
/// Subvolumes looked at when searching for a root in the top level.
const MAX_ROOT_CANDIDATES: usize = 64;

const FS_TREE: u64 = 5;
const FIRST_CHUNK_TREE: u64 = 256;

const INODE_ITEM: u8 = 1;
const DIR_ITEM: u8 = 84;
const DIR_INDEX: u8 = 96;
const EXTENT_DATA: u8 = 108;
const ROOT_ITEM: u8 = 132;
const CHUNK_ITEM: u8 = 228;

/// Block group profiles we cannot map from one device.
const STRIPED: u64 = 0x8 | 0x40 | 0x80 | 0x100; // RAID0, RAID10, RAID5, RAID6
/// `BTRFS_INODE_IMMUTABLE`.
const INODE_IMMUTABLE: u64 = 1 << 6;

/// The `N` bytes at `o` of a structure; `Corrupt` if it is shorter.
fn field<const N: usize>(b: &[u8], o: usize) -> Result<[u8; N], FsError> {
    o.checked_add(N)
        .and_then(|end| b.get(o..end))
        .and_then(|w| w.try_into().ok())
        .ok_or_else(|| truncated(b, o))
}
fn truncated(b: &[u8], o: usize) -> FsError {
    corrupt(format!(
        "a field at {o} is past the end of a {}-byte structure",
        b.len()
    ))
}
fn byte(b: &[u8], o: usize) -> Result<u8, FsError> {
    b.get(o).copied().ok_or_else(|| truncated(b, o))
}
fn bytes(b: &[u8], r: std::ops::Range<usize>) -> Result<&[u8], FsError> {
    let at = r.start;
    b.get(r).ok_or_else(|| truncated(b, at))
}
fn le16(b: &[u8], o: usize) -> Result<u16, FsError> {
    field(b, o).map(u16::from_le_bytes)
}
fn le32(b: &[u8], o: usize) -> Result<u32, FsError> {
    field(b, o).map(u32::from_le_bytes)
}
fn le64(b: &[u8], o: usize) -> Result<u64, FsError> {
    field(b, o).map(u64::from_le_bytes)
}

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The kernel's `crc32c(seed, data)` (no final inversion).
fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    let mut d = CRC32C.digest_with_initial(seed.reverse_bits());
    d.update(data);
    d.finalize() ^ !0
}

/// `btrfs_name_hash`: the DIR_ITEM key offset of a name.
fn name_hash(name: &[u8]) -> u64 {
    u64::from(crc32c_raw(!1, name))
}

fn corrupt(msg: impl Into<String>) -> FsError {
    FsError::Corrupt(format!("btrfs: {}", msg.into()))
}

/// An item key: (objectid, type, offset), ordered in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    objectid: u64,
    kind: u8,
    offset: u64,
}

impl Key {
    fn parse(b: &[u8], o: usize) -> Result<Key, FsError> {
        Ok(Key {
            objectid: le64(b, o)?,
            kind: byte(b, o + 8)?,
            offset: le64(b, o + 9)?,
        })
    }
    fn new(objectid: u64, kind: u8, offset: u64) -> Key {
        Key {
            objectid,
            kind,
            offset,
        }
    }
}

/// One chunk: a logical range and where its copies are.
#[derive(Debug, Clone)]
struct Chunk {
    logical: u64,
    length: u64,
    kind: u64,
    /// (device id, physical offset)
    stripes: Vec<(u64, u64)>,
}

/// Parses a chunk item at `o` of `b`, bounded by `end`; returns it and its size.
fn parse_chunk(b: &[u8], o: usize, end: usize, logical: u64) -> Result<(Chunk, usize), FsError> {
    if o + 48 > end {
        return Err(corrupt("chunk item is truncated"));
    }
    let n = usize::from(le16(b, o + 44)?);
    if n == 0 || n > MAX_STRIPES || o + 48 + n * 32 > end {
        return Err(corrupt(format!("chunk at {logical} has {n} stripes")));
    }
    let stripes = (0..n)
        .map(|i| Ok((le64(b, o + 48 + i * 32)?, le64(b, o + 48 + i * 32 + 8)?)))
        .collect::<Result<_, FsError>>()?;
    Ok((
        Chunk {
            logical,
            length: le64(b, o)?,
            kind: le64(b, o + 24)?,
            stripes,
        },
        48 + n * 32,
    ))
}

/// A place in the filesystem: an inode of a subvolume tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    tree: u64,
    ino: u64,
}

struct InodeItem {
    size: u64,
    mode: u32,
    flags: u64,
}

impl InodeItem {
    fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
    fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }
}

/// A btrfs filesystem.
pub(crate) struct BtrfsFs<'v, 'a> {
    view: View<'v, 'a>,
    nodesize: u32,
    verify_csum: bool,
    devid: u64,
    /// The root tree's directory (holds `default`).
    root_dir: u64,
    chunks: Vec<Chunk>,
    root_tree: (u64, u8),
    /// Tree id -> (root block, level, root directory inode).
    trees: HashMap<u64, (u64, u8, u64)>,
    nodes: HashMap<u64, Rc<Vec<u8>>>,
    /// The subvolume mounted at `/`.
    root: Loc,
    /// Other subvolumes mounted inside, longest mount point first.
    binds: Vec<(String, Loc)>,
    notes: Vec<String>,
    /// Paths over our limits.
    unread: UnreadLog,
}

impl<'v, 'a> BtrfsFs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        let sb = view
            .read_vec(SUPER_OFFSET, SUPER_SIZE)
            .map_err(|e| corrupt(format!("superblock: {e}")))?;
        if bytes(&sb, 0x40..0x48)? != MAGIC {
            return Err(corrupt("no superblock magic"));
        }
        let csum_type = le16(&sb, 0xC4)?;
        // Under the fuzzer checksums are not checked, so it reaches the parsers.
        let verify_csum = csum_type == 0 && !cfg!(fuzzing);
        if verify_csum && CRC32C.checksum(bytes(&sb, 0x20..sb.len())?) != le32(&sb, 0)? {
            return Err(corrupt("superblock checksum mismatch"));
        }
        let sectorsize = le32(&sb, 0x90)?;
        let nodesize = le32(&sb, 0x94)?;
        if !(4096..=65536).contains(&nodesize) || !nodesize.is_power_of_two() {
            return Err(corrupt(format!("node size {nodesize} is invalid")));
        }
        if !(512..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() {
            return Err(corrupt(format!("sector size {sectorsize} is invalid")));
        }
        let label: Vec<u8> = bytes(&sb, 0x12B..0x22B)?
            .iter()
            .copied()
            .take_while(|&c| c != 0)
            .collect();
        let info = FsInfo {
            fs_type: "btrfs".into(),
            uuid: Some(uuid_string(bytes(&sb, 0x20..0x30)?)),
            label: (!label.is_empty()).then(|| String::from_utf8_lossy(&label).into_owned()),
            // This device's size (dev_item.total_bytes): what must fit the partition.
            declared_size: Some(le64(&sb, 0xC9 + 8)?),
            features: Vec::new(),
        };
        let mut fs = BtrfsFs {
            view,
            nodesize,
            verify_csum,
            devid: le64(&sb, 0xC9)?,
            root_dir: le64(&sb, 0x80)?,
            chunks: Vec::new(),
            root_tree: (le64(&sb, 0x50)?, byte(&sb, 0xC6)?),
            trees: HashMap::new(),
            nodes: HashMap::new(),
            root: Loc {
                tree: FS_TREE,
                ino: 256,
            },
            binds: Vec::new(),
            notes: Vec::new(),
            unread: UnreadLog::default(),
        };
        // Bootstrap: the system chunks in the superblock.
        let n = usize::try_from(le32(&sb, 0xA0)?).unwrap_or(usize::MAX);
        if n > 2048 {
            return Err(corrupt(format!("sys_chunk_array of {n} bytes")));
        }
        let arr = bytes(&sb, 0x32B..0x32B + n)?;
        let mut o = 0usize;
        while o + 17 <= arr.len() {
            let key = Key::parse(arr, o)?;
            o += 17;
            if key.kind != CHUNK_ITEM {
                return Err(corrupt("sys_chunk_array holds a non-chunk item"));
            }
            let (c, used) = parse_chunk(arr, o, arr.len(), key.offset)?;
            fs.chunks.push(c);
            o += used;
        }
        // Then the whole chunk tree.
        let (chunk_root, chunk_level) = (le64(&sb, 0x58)?, byte(&sb, 0xC7)?);
        let mut found = Vec::new();
        fs.search(
            (chunk_root, chunk_level),
            Key::new(FIRST_CHUNK_TREE, CHUNK_ITEM, 0),
            Key::new(FIRST_CHUNK_TREE, CHUNK_ITEM, u64::MAX),
            &mut |k, d| {
                if found.len() >= MAX_CHUNKS {
                    return false;
                }
                if let Ok((c, _)) = parse_chunk(d, 0, d.len(), k.offset) {
                    found.push(c);
                }
                true
            },
        )?;
        if found.is_empty() {
            return Err(corrupt("the chunk tree has no chunks"));
        }
        fs.chunks = found;
        fs.nodes.clear();
        if le64(&sb, 0x60)? != 0 {
            fs.notes.push(
                "btrfs has a log tree (fsync'd writes after the last commit: the image looks copied from a running system), which was not replayed; files were read as of the last commit".into(),
            );
        }
        let default = fs.default_subvolume()?;
        fs.root = default;
        if !fs.looks_like_root(default) {
            if let Some(r) = fs.root_subvolume_candidate() {
                fs.root = r;
            }
        }
        Ok((fs, info))
    }

    /// The default subvolume's root (DIR_ITEM `default` in the root tree's
    /// directory), or the top level.
    fn default_subvolume(&mut self) -> Result<Loc, FsError> {
        let mut tree = FS_TREE;
        let key = Key::new(self.root_dir, DIR_ITEM, name_hash(b"default"));
        let root = self.root_tree;
        self.search(root, key, key, &mut |_, d| {
            if let Some((loc, _)) = dir_entries(d).find(|(_, n)| *n == b"default") {
                tree = loc.objectid;
            }
            false
        })?;
        self.subvolume_root(tree)
    }

    /// The root directory of subvolume `tree`.
    fn subvolume_root(&mut self, tree: u64) -> Result<Loc, FsError> {
        let (_, _, dirid) = self.tree(tree)?;
        Ok(Loc { tree, ino: dirid })
    }

    fn looks_like_root(&mut self, at: Loc) -> bool {
        let etc = self.lookup(at, b"etc").ok().flatten();
        etc.is_some_and(|e| {
            self.lookup(e, b"fstab").ok().flatten().is_some()
                || self.lookup(e, b"os-release").ok().flatten().is_some()
        })
    }

    /// A subvolume right under the top level that holds a Linux root (`@`,
    /// `root`, `@rootfs`…), for a default subvolume that is not one.
    fn root_subvolume_candidate(&mut self) -> Option<Loc> {
        let top = self.subvolume_root(FS_TREE).ok()?;
        let mut subvols = Vec::new();
        self.dir_index(top, &mut |loc, _| {
            if loc.kind == ROOT_ITEM {
                subvols.push(loc.objectid);
            }
            subvols.len() < MAX_ROOT_CANDIDATES
        })
        .ok()?;
        subvols.into_iter().find_map(|t| {
            let r = self.subvolume_root(t).ok()?;
            self.looks_like_root(r).then_some(r)
        })
    }

    /// Maps a logical range inside one chunk to a physical offset on this
    /// device, trying each copy in turn.
    fn physical(&self, logical: u64, len: u64) -> Result<Vec<u64>, FsError> {
        let c = self
            .chunks
            .iter()
            .find(|c| logical >= c.logical && logical - c.logical < c.length)
            .ok_or_else(|| corrupt(format!("logical address {logical} is in no chunk")))?;
        // Valid layouts this reader does not map: not read, not corrupt.
        if c.kind & STRIPED != 0 {
            return Err(FsError::NotRead {
                path: String::new(),
                limit: format!(
                    "btrfs chunk at {} uses a striped RAID profile (type {:#x}), which the reader does not map",
                    c.logical, c.kind
                ),
            });
        }
        let within = logical - c.logical;
        if len > c.length - within {
            return Err(corrupt(format!("read at {logical} crosses its chunk")));
        }
        let copies: Vec<u64> = c
            .stripes
            .iter()
            .filter(|(dev, _)| *dev == self.devid)
            .filter_map(|(_, off)| off.checked_add(within))
            .collect();
        if copies.is_empty() {
            return Err(FsError::NotRead {
                path: String::new(),
                limit: format!(
                    "btrfs chunk at {} has no copy on this device (a multi-device filesystem), and only this disk is read",
                    c.logical
                ),
            });
        }
        Ok(copies)
    }

    /// Reads `len` bytes at a logical address (possibly across chunks).
    fn read_logical(&self, logical: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let mut pos = logical;
        while out.len() < len {
            let c = self
                .chunks
                .iter()
                .find(|c| pos >= c.logical && pos - c.logical < c.length)
                .ok_or_else(|| corrupt(format!("logical address {pos} is in no chunk")))?;
            let left = c.length - (pos - c.logical);
            let n = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(len - out.len());
            let phys = self.physical(pos, n as u64)?;
            let first = *phys
                .first()
                .ok_or_else(|| corrupt(format!("logical address {pos} has no copy")))?;
            let b = self
                .view
                .read_vec(first, n)
                .map_err(|e| corrupt(format!("read at {pos}: {e}")))?;
            out.extend_from_slice(&b);
            pos = pos
                .checked_add(n as u64)
                .ok_or_else(|| corrupt("address overflow"))?;
        }
        Ok(out)
    }

    /// A tree block, checked: checksum, its own address and its level.
    fn node(&mut self, logical: u64, level: u8) -> Result<Rc<Vec<u8>>, FsError> {
        if let Some(n) = self.nodes.get(&logical) {
            if n.get(0x64) == Some(&level) {
                return Ok(n.clone());
            }
        }
        let size = usize::try_from(self.nodesize).unwrap_or(4096);
        let mut last = corrupt(format!("tree block {logical} unreadable"));
        for phys in self.physical(logical, u64::from(self.nodesize))? {
            let b = match self.view.read_vec(phys, size) {
                Ok(b) => b,
                Err(e) => {
                    last = corrupt(format!("tree block {logical}: {e}"));
                    continue;
                }
            };
            if self.verify_csum && CRC32C.checksum(bytes(&b, 0x20..b.len())?) != le32(&b, 0)? {
                last = corrupt(format!("tree block {logical}: checksum mismatch"));
                continue;
            }
            if le64(&b, 0x30)? != logical {
                last = corrupt(format!(
                    "tree block {logical} says it is at {}",
                    le64(&b, 0x30)?
                ));
                continue;
            }
            let found = byte(&b, 0x64)?;
            if found != level {
                last = corrupt(format!(
                    "tree block {logical} has level {found} where {level} was expected"
                ));
                continue;
            }
            let n = usize::try_from(le32(&b, 0x60)?).unwrap_or(usize::MAX);
            let per = if level == 0 { ITEM } else { KEY_PTR };
            if n > (size - HEADER) / per {
                last = corrupt(format!("tree block {logical} claims {n} items"));
                continue;
            }
            if self.nodes.len() >= NODE_CACHE {
                self.nodes.clear();
            }
            let rc = Rc::new(b);
            self.nodes.insert(logical, rc.clone());
            return Ok(rc);
        }
        Err(last)
    }

    /// Calls `visit` on every item with a key in `lo..=hi`, in key order,
    /// until it returns false.
    fn search(
        &mut self,
        root: (u64, u8),
        lo: Key,
        hi: Key,
        visit: &mut dyn FnMut(Key, &[u8]) -> bool,
    ) -> Result<(), FsError> {
        if root.1 > MAX_LEVEL {
            return Err(corrupt(format!("tree of level {}", root.1)));
        }
        // A block seen twice is a loop (the input's fault); a search that needs more
        // blocks than the budget is over our limit.
        let mut seen = HashSet::new();
        // Depth-first with an explicit stack of (block, level), right
        // children pushed first so items come out in order.
        let mut stack = vec![root];
        while let Some((at, level)) = stack.pop() {
            if !seen.insert(at) {
                return Err(corrupt(format!(
                    "tree block {at} is reached twice (a loop)"
                )));
            }
            if seen.len() > MAX_NODES_PER_SEARCH {
                return Err(FsError::NotRead {
                    path: String::new(),
                    limit: format!(
                        "one tree search needs more than {MAX_NODES_PER_SEARCH} btrfs tree blocks"
                    ),
                });
            }
            let node = self.node(at, level)?;
            let n = usize::try_from(le32(&node, 0x60)?).unwrap_or(0);
            if level == 0 {
                let data_area = node.len() - HEADER;
                for i in 0..n {
                    let o = HEADER + i * ITEM;
                    let key = Key::parse(&node, o)?;
                    if key < lo {
                        continue;
                    }
                    if key > hi {
                        return Ok(());
                    }
                    let off = usize::try_from(le32(&node, o + 17)?).unwrap_or(usize::MAX);
                    let size = usize::try_from(le32(&node, o + 21)?).unwrap_or(usize::MAX);
                    if off > data_area || size > data_area - off {
                        return Err(corrupt(format!(
                            "item {i} of tree block {at} is out of its block"
                        )));
                    }
                    if !visit(key, bytes(&node, HEADER + off..HEADER + off + size)?) {
                        return Ok(());
                    }
                }
            } else {
                let mut children = Vec::new();
                for i in 0..n {
                    let o = HEADER + i * KEY_PTR;
                    let key = Key::parse(&node, o)?;
                    let next = if i + 1 < n {
                        Some(Key::parse(&node, o + KEY_PTR)?)
                    } else {
                        None
                    };
                    // Child i holds keys from its key up to the next one.
                    if key > hi {
                        break;
                    }
                    if next.is_some_and(|nk| nk <= lo) {
                        continue;
                    }
                    children.push((le64(&node, o + 17)?, level - 1));
                }
                stack.extend(children.into_iter().rev());
            }
        }
        Ok(())
    }

    /// Root block, level and root directory of a tree, from its ROOT_ITEM.
    fn tree(&mut self, id: u64) -> Result<(u64, u8, u64), FsError> {
        if let Some(t) = self.trees.get(&id) {
            return Ok(*t);
        }
        let mut found = None;
        let root = self.root_tree;
        self.search(
            root,
            Key::new(id, ROOT_ITEM, 0),
            Key::new(id, ROOT_ITEM, u64::MAX),
            &mut |_, d| {
                // A short item stays unfound: "has no root item".
                if let (Ok(block), Ok(level), Ok(dir)) = (le64(d, 176), byte(d, 238), le64(d, 168))
                {
                    found = Some((block, level, dir));
                }
                false
            },
        )?;
        let t = found.ok_or_else(|| corrupt(format!("subvolume {id} has no root item")))?;
        if self.trees.len() < 4096 {
            self.trees.insert(id, t);
        }
        Ok(t)
    }

    fn inode(&mut self, at: Loc) -> Result<InodeItem, FsError> {
        let (block, level, _) = self.tree(at.tree)?;
        let key = Key::new(at.ino, INODE_ITEM, 0);
        let mut found = None;
        self.search((block, level), key, key, &mut |_, d| {
            // A short item stays unfound: "is missing".
            if let (Ok(size), Ok(mode), Ok(flags)) = (le64(d, 16), le32(d, 52), le64(d, 64)) {
                found = Some(InodeItem { size, mode, flags });
            }
            false
        })?;
        found.ok_or_else(|| {
            corrupt(format!(
                "inode {} of subvolume {} is missing",
                at.ino, at.tree
            ))
        })
    }

    /// Where a directory entry points: an inode of the same tree, or the
    /// root of another subvolume.
    fn target(&mut self, dir: Loc, loc: Key) -> Result<Loc, FsError> {
        match loc.kind {
            INODE_ITEM => Ok(Loc {
                tree: dir.tree,
                ino: loc.objectid,
            }),
            ROOT_ITEM => self.subvolume_root(loc.objectid),
            k => Err(corrupt(format!(
                "directory entry points at an item of type {k}"
            ))),
        }
    }

    fn lookup(&mut self, dir: Loc, name: &[u8]) -> Result<Option<Loc>, FsError> {
        let (block, level, _) = self.tree(dir.tree)?;
        let key = Key::new(dir.ino, DIR_ITEM, name_hash(name));
        let mut found = None;
        self.search((block, level), key, key, &mut |_, d| {
            found = dir_entries(d).find(|(_, n)| *n == name).map(|(l, _)| l);
            false
        })?;
        match found {
            Some(loc) => self.target(dir, loc).map(Some),
            None => Ok(None),
        }
    }

    /// Every DIR_INDEX entry of a directory, until `visit` says stop. True when the
    /// directory has more than [`max_dir_entries`] entries: the rest were not visited.
    fn dir_index(
        &mut self,
        dir: Loc,
        visit: &mut dyn FnMut(Key, &[u8]) -> bool,
    ) -> Result<bool, FsError> {
        let (block, level, _) = self.tree(dir.tree)?;
        let cap = max_dir_entries();
        let mut count = 0usize;
        let mut over = false;
        self.search(
            (block, level),
            Key::new(dir.ino, DIR_INDEX, 0),
            Key::new(dir.ino, DIR_INDEX, u64::MAX),
            &mut |_, d| {
                count += 1;
                over = count > cap;
                match dir_entries(d).next() {
                    _ if over => false,
                    Some((loc, name)) => visit(loc, name),
                    None => true,
                }
            },
        )?;
        Ok(over)
    }

    /// The subvolume mounted where `path` is, and the path inside it.
    fn start(&self, path: &str) -> (Loc, String) {
        for (mp, loc) in &self.binds {
            if path == mp {
                return (*loc, "/".into());
            }
            if let Some(rest) = path.strip_prefix(mp.as_str()) {
                if rest.starts_with('/') {
                    return (*loc, rest.to_string());
                }
            }
        }
        (self.root, path.to_string())
    }

    /// Resolves a path (from the mounts) to an inode, following symlinks.
    fn resolve(&mut self, path: &str) -> Result<Loc, FsError> {
        let (start, rest) = self.start(path);
        self.resolve_from(start, &rest)
    }

    fn resolve_from(&mut self, start: Loc, path: &str) -> Result<Loc, FsError> {
        let mut stack = vec![start];
        let mut todo: std::collections::VecDeque<Vec<u8>> =
            components(path).map(|c| c.as_bytes().to_vec()).collect();
        let mut hops = 0u32;
        while let Some(c) = todo.pop_front() {
            let here = *stack.last().unwrap_or(&start);
            if c == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            if !self.inode(here)?.is_dir() {
                return Err(FsError::NotFound);
            }
            let next = self.lookup(here, &c)?.ok_or(FsError::NotFound)?;
            let ino = self.inode(next)?;
            if ino.is_symlink() {
                hops += 1;
                // A loop (`ln -s a b; ln -s b a`) is legal on a sound filesystem: Linux
                // answers ELOOP, the path does not resolve. Not corruption.
                if hops > MAX_SYMLINK_HOPS {
                    return Err(FsError::NotFound);
                }
                let target = self.file_bytes(next, &ino, 4096)?;
                if target.first() == Some(&b'/') {
                    // Absolute links resolve from the mounted root.
                    let t = String::from_utf8_lossy(&target).into_owned();
                    let (s, within) = self.start(&t);
                    stack = vec![s];
                    let mut new: std::collections::VecDeque<Vec<u8>> =
                        components(&within).map(|c| c.as_bytes().to_vec()).collect();
                    new.extend(todo.drain(..));
                    todo = new;
                } else {
                    let t = String::from_utf8_lossy(&target).into_owned();
                    for comp in components(&t).rev() {
                        todo.push_front(comp.as_bytes().to_vec());
                    }
                }
            } else {
                stack.push(next);
            }
        }
        Ok(*stack.last().unwrap_or(&start))
    }

    /// The contents of a regular file (or symlink), `limit` bytes at most.
    fn file_bytes(&mut self, at: Loc, ino: &InodeItem, limit: u64) -> Result<Vec<u8>, FsError> {
        if ino.size > limit {
            return Err(FsError::TooLarge(ino.size));
        }
        let size = usize::try_from(ino.size).map_err(|_| FsError::TooLarge(ino.size))?;
        let mut out = vec![0u8; size];
        let (block, level, _) = self.tree(at.tree)?;
        let mut extents: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut item_bytes = 0usize;
        let mut too_many = false;
        self.search(
            (block, level),
            Key::new(at.ino, EXTENT_DATA, 0),
            Key::new(at.ino, EXTENT_DATA, ino.size.saturating_sub(1)),
            &mut |k, d| {
                item_bytes += d.len();
                too_many = item_bytes > MAX_EXTENT_ITEM_BYTES;
                if !too_many {
                    extents.push((k.offset, d.to_vec()));
                }
                !too_many
            },
        )?;
        if too_many {
            return Err(FsError::NotRead {
                path: String::new(),
                limit: format!(
                    "inode {} of subvolume {} has more than {MAX_EXTENT_ITEM_BYTES} bytes of extent items",
                    at.ino, at.tree
                ),
            });
        }
        for (file_off, item) in extents {
            let Ok(start) = usize::try_from(file_off) else {
                continue;
            };
            if start >= size {
                continue;
            }
            let Some(data) = self.extent_bytes(&item, size - start)? else {
                continue;
            };
            let n = data.len().min(size - start);
            match (out.get_mut(start..start + n), data.get(..n)) {
                (Some(to), Some(from)) => to.copy_from_slice(from),
                _ => return Err(corrupt("file extent does not fit the file")),
            }
        }
        Ok(out)
    }

    /// What one EXTENT_DATA item holds (`None`: a hole or preallocated
    /// space, zeros).
    fn extent_bytes(&self, d: &[u8], want: usize) -> Result<Option<Vec<u8>>, FsError> {
        if d.len() < 21 {
            return Err(corrupt("file extent item is truncated"));
        }
        let ram = le64(d, 8)?;
        let compression = byte(d, 16)?;
        if byte(d, 17)? != 0 || le16(d, 18)? != 0 {
            return Err(corrupt("encrypted or encoded file extent"));
        }
        let kind = byte(d, 20)?;
        match kind {
            0 => {
                if ram > MAX_INLINE_RAM {
                    return Err(corrupt(format!("inline extent of {ram} bytes")));
                }
                decompress(compression, bytes(d, 21..d.len())?, ram).map(Some)
            }
            1 | 2 => {
                if d.len() < 53 {
                    return Err(corrupt("file extent item is truncated"));
                }
                let (bytenr, disk_len, offset, len) =
                    (le64(d, 21)?, le64(d, 29)?, le64(d, 37)?, le64(d, 45)?);
                if kind == 2 || bytenr == 0 {
                    return Ok(None);
                }
                if compression == 0 {
                    let n = usize::try_from(len).unwrap_or(usize::MAX).min(want);
                    let at = bytenr
                        .checked_add(offset)
                        .ok_or_else(|| corrupt("extent address overflow"))?;
                    return self.read_logical(at, n).map(Some);
                }
                if ram > MAX_COMPRESSED_RAM || disk_len > MAX_COMPRESSED_RAM {
                    return Err(corrupt(format!(
                        "compressed extent of {disk_len} -> {ram} bytes is over the limit"
                    )));
                }
                let raw = self.read_logical(bytenr, usize::try_from(disk_len).unwrap_or(0))?;
                let full = decompress(compression, &raw, ram)?;
                let from = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(full.len());
                let to = from
                    .saturating_add(usize::try_from(len).unwrap_or(0))
                    .min(full.len());
                Ok(Some(bytes(&full, from..to)?.to_vec()))
            }
            t => Err(corrupt(format!("file extent of type {t}"))),
        }
    }
}

/// Decompresses one extent to at most `ram` bytes.
fn decompress(kind: u8, data: &[u8], ram: u64) -> Result<Vec<u8>, FsError> {
    let mut out = Vec::new();
    let r = match kind {
        0 => {
            let n = usize::try_from(ram).unwrap_or(0).min(data.len());
            return Ok(bytes(data, 0..n)?.to_vec());
        }
        1 => flate2::read::ZlibDecoder::new(data)
            .take(ram)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string()),
        // Valid data we cannot decode: not read, not corrupt.
        2 => {
            return Err(FsError::NotRead {
                path: String::new(),
                limit: "it is LZO-compressed and the btrfs reader has no LZO decoder".into(),
            })
        }
        3 => {
            let mut input = data;
            match ruzstd::decoding::StreamingDecoder::new(&mut input) {
                Ok(d) => d.take(ram).read_to_end(&mut out).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        k => return Err(corrupt(format!("compression type {k} is unknown"))),
    };
    r.map_err(|e| corrupt(format!("compressed extent: {e}")))?;
    Ok(out)
}

/// The (location, name) entries packed in a DIR_ITEM or DIR_INDEX item.
fn dir_entries(d: &[u8]) -> impl Iterator<Item = (Key, &[u8])> {
    let mut o = 0usize;
    std::iter::from_fn(move || {
        if o + 30 > d.len() {
            return None;
        }
        let loc = Key::parse(d, o).ok()?;
        let data_len = usize::from(le16(d, o + 25).ok()?);
        let name_len = usize::from(le16(d, o + 27).ok()?);
        let name_at = o + 30;
        if name_at + name_len + data_len > d.len() {
            return None;
        }
        o = name_at + name_len + data_len;
        Some((loc, d.get(name_at..name_at + name_len)?))
    })
}

/// The subvolume named by mount options: `subvolid=` or `subvol=`.
enum Subvol<'o> {
    Id(u64),
    Path(&'o str),
    Default,
}

fn subvol_option(options: &str) -> Subvol<'_> {
    let mut out = Subvol::Default;
    for o in options.split(',') {
        if let Some(id) = o.strip_prefix("subvolid=") {
            if let Ok(id) = id.parse() {
                return Subvol::Id(id);
            }
        }
        if let Some(p) = o.strip_prefix("subvol=") {
            out = Subvol::Path(p);
        }
    }
    out
}

impl BtrfsFs<'_, '_> {
    /// [`super::Fs::read`], without noting what was not read.
    fn read_file(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let at = self.resolve(path)?;
        let ino = self.inode(at)?;
        if ino.is_dir() {
            return Err(FsError::NotFound);
        }
        self.file_bytes(at, &ino, limit)
    }

    /// [`super::Fs::list`], without noting what was not read.
    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let at = self.resolve(path)?;
        if !self.inode(at)?.is_dir() {
            return Err(FsError::NotFound);
        }
        let mut names = Vec::new();
        let over = self.dir_index(at, &mut |_, n| {
            names.push(String::from_utf8_lossy(n).into_owned());
            true
        })?;
        // A list cut short would read as a directory without the rest: say so instead.
        if over {
            return Err(FsError::NotRead {
                path: String::new(),
                limit: format!(
                    "the directory has more than {} entries, the most the btrfs reader lists",
                    max_dir_entries()
                ),
            });
        }
        Ok(names)
    }
}

impl super::Fs for BtrfsFs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let r = self.read_file(path, limit).map_err(|e| e.at_path(path));
        self.unread.note("btrfs", r)
    }
    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let r = self.list_dir(path).map_err(|e| e.at_path(path));
        self.unread.note("btrfs", r)
    }
    fn exists(&mut self, path: &str) -> bool {
        let r = self.resolve(path).map_err(|e| e.at_path(path));
        self.unread.note("btrfs", r).is_ok()
    }
    fn immutable(&mut self, path: &str) -> Option<bool> {
        let at = self.resolve(path).ok()?;
        self.inode(at).ok().map(|i| i.flags & INODE_IMMUTABLE != 0)
    }
    fn notes(&mut self) -> Vec<(&'static preflight_report::Rule, String)> {
        let mut notes: Vec<_> = self
            .notes
            .drain(..)
            .map(|n| (&rules::FS_NEEDS_RECOVERY, n))
            .collect();
        notes.extend(self.unread.take());
        notes
    }
    fn mount_subvolume(&mut self, at: &str, options: &str) -> Result<bool, FsError> {
        self.mount(at, options)
            .map_err(|e| e.at_path(&format!("the subvolume of {options}")))
    }
}

impl BtrfsFs<'_, '_> {
    /// [`super::Fs::mount_subvolume`].
    fn mount(&mut self, at: &str, options: &str) -> Result<bool, FsError> {
        let loc = match subvol_option(options) {
            Subvol::Id(id) => self.subvolume_root(id)?,
            Subvol::Path(p) => {
                let top = self.subvolume_root(FS_TREE)?;
                let loc = self.resolve_from(top, p)?;
                if !self.inode(loc)?.is_dir() {
                    return Err(corrupt(format!("subvolume {p} is not a directory")));
                }
                loc
            }
            // `/` stays where the boot loader's rootflags (or our search) put it.
            Subvol::Default if at == "/" => return Ok(true),
            Subvol::Default => self.default_subvolume()?,
        };
        let at = at.trim_end_matches('/');
        if at.is_empty() {
            self.root = loc;
        } else {
            self.binds.retain(|(m, _)| m != at);
            self.binds.push((at.to_string(), loc));
            self.binds.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        }
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fs::Fs;

    /// A directory over the entry cap is not read (a `GUEST.ReadLimit` note naming it),
    /// never a list cut short; one under the cap lists whole. The volume is made by
    /// mkfs.btrfs --rootdir (fixtures/guest/build-limits.sh); the cap is lowered to 100.
    #[test]
    fn a_directory_over_the_entry_cap_is_not_read_not_cut_short() {
        let img = crate::test_fixtures::fixture_image("build-limits.sh", "limits-btrfs-bigdir.raw");
        let cache = crate::cache::CachedDisk::new(&img);
        let (mut fs, _) = BtrfsFs::open(View::new(&cache, 0, cache.size())).expect("open");

        TEST_MAX_DIR_ENTRIES.with(|c| c.set(Some(100)));
        let many = fs.list("/many");
        let few = fs.list("/few");
        TEST_MAX_DIR_ENTRIES.with(|c| c.set(None));
        assert!(
            matches!(&many, Err(FsError::NotRead { path, limit })
                if path == "/many" && limit.contains("more than 100 entries")),
            "{many:?}"
        );
        assert_eq!(few.expect("/few").len(), 3);
        let notes = fs.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0.code, "GUEST.ReadLimit");
        assert!(
            notes[0]
                .1
                .starts_with("btrfs: /many was not read: the directory has more than 100 entries"),
            "{}",
            notes[0].1
        );
        // Under the real cap the same directory lists whole.
        assert_eq!(fs.list("/many").expect("/many").len(), 300);
    }

    #[test]
    fn options_and_entries() {
        assert!(matches!(
            subvol_option("rw,subvol=/@,compress=zstd"),
            Subvol::Path("/@")
        ));
        assert!(matches!(
            subvol_option("subvol=@,subvolid=256"),
            Subvol::Id(256)
        ));
        assert!(matches!(subvol_option("defaults"), Subvol::Default));
        let mut d = vec![0u8; 30];
        d[8] = INODE_ITEM;
        d[27] = 3;
        d.extend_from_slice(b"abc");
        let e: Vec<_> = dir_entries(&d).collect();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1, b"abc");
        // A name longer than the item is not read.
        d[27] = 4;
        assert_eq!(dir_entries(&d).count(), 0);
    }
}
