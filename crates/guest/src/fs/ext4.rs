//! ext2/3/4 through the `ext4-view` crate, plus our own superblock reading
//! (features, size) and a minimal inode lookup for flags (`chattr +i`),
//! which ext4-view does not expose.
//!
//! `ext4-view` takes a `Box<dyn Ext4Read>` that must be `'static`, but our
//! disk is borrowed. So its reader answers from a store of disk chunks that we
//! own and share with it: a read the store cannot answer is recorded and
//! fails, we copy those chunks in from the disk and run the call again. A
//! call starts over at most once per chunk it needs, and the store keeps what
//! it read, so a walk costs a handful of retries. (It used to run on a worker
//! thread that asked this side for every read over channels: on small
//! filesystems, starting that thread and the two context switches per read
//! cost more than ext4-view's own work.)
//!
//! A filesystem that needs recovery with a journal ext4-view cannot replay
//! (no CSUM_V3: every ext3/ext4 before metadata_csum) is replayed by
//! [`super::jbd2`] into an overlay that every read goes through.

use super::jbd2::{self, JournalSuper, Overlay};
use super::{components, uuid_string, FsError, FsInfo, UnreadLog};
use crate::cache::View;
use crate::rules;
use ext4_view::{Ext4, Ext4Error, Ext4Read};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Largest single read ext4-view may ask for (it reads blocks and runs of at
/// most 32 KiB or one 64 KiB block; 1 MiB is far above that).
const MAX_EXT4_READ: usize = 1024 * 1024;

/// The store's granule: the disk is copied in chunks of this size.
const STORE_CHUNK: u64 = 64 * 1024;

/// Chunks kept (16 MiB): far more than one lookup needs; a long file read
/// streams through it. A lookup that needs more at once is not read
/// ([`FsError::NotRead`]): that is our limit, not a fault of the filesystem.
const STORE_CHUNKS: usize = 256;

/// Chunks copied in after the one a read missed (1 MiB in all): file data and
/// directory blocks are mostly read in order.
const READ_AHEAD_CHUNKS: u64 = 15;

/// Most times one call may start over, per chunk the store keeps. Each start
/// fills at least one chunk, so only a call that needs more than the whole
/// store at once (thrashing it) comes near this.
const RETRIES_PER_CHUNK: usize = 2;

/// Largest directory read by the inode-flag lookup (a huge /etc is not
/// normal; 4 MiB is about 100k entries).
const MAX_DIR_BYTES: u64 = 4 * 1024 * 1024;

/// The bytes of the filesystem that ext4-view may read, copied in on demand.
struct Store {
    /// The volume's length: reads past it fail at once.
    len: u64,
    /// Chunks kept at most ([`STORE_CHUNKS`]; smaller in tests).
    max_chunks: usize,
    chunks: HashMap<u64, Vec<u8>>,
    /// Chunk indexes, oldest first.
    order: VecDeque<u64>,
    /// The first read the store could not answer since the last look.
    miss: Option<(u64, usize)>,
    /// Reads ext4-view asked for, answered or not: the cost of a lookup, for tests.
    #[cfg(test)]
    reads: u64,
}

impl Store {
    /// Copies `dst.len()` bytes at `start` out of the chunks, or records the miss.
    fn read(&mut self, start: u64, dst: &mut [u8]) -> Result<(), String> {
        #[cfg(test)]
        {
            self.reads += 1;
        }
        let len = u64::try_from(dst.len()).unwrap_or(u64::MAX);
        if dst.len() > MAX_EXT4_READ {
            return Err(format!("read of {len} bytes is over the limit"));
        }
        match start.checked_add(len) {
            Some(end) if end <= self.len => {}
            _ => {
                return Err(format!(
                    "read of {len} bytes at {start} is past the end of the volume ({} bytes)",
                    self.len
                ))
            }
        }
        let mut done = 0usize;
        while done < dst.len() {
            let pos = start + u64::try_from(done).unwrap_or(u64::MAX);
            let Some(chunk) = self.chunks.get(&(pos / STORE_CHUNK)) else {
                self.miss.get_or_insert((start, dst.len()));
                return Err("not read yet".into());
            };
            let within = usize::try_from(pos % STORE_CHUNK).unwrap_or(usize::MAX);
            let avail = chunk.len().saturating_sub(within);
            if avail == 0 {
                return Err(format!("read at {pos} is past the end of the volume"));
            }
            let n = avail.min(dst.len() - done);
            match (dst.get_mut(done..done + n), chunk.get(within..within + n)) {
                (Some(to), Some(from)) => to.copy_from_slice(from),
                _ => return Err(format!("read at {pos} does not fit the store's chunk")),
            }
            done += n;
        }
        Ok(())
    }
}

/// ext4-view's side of the [`Store`].
struct StoreReader(Rc<RefCell<Store>>);

impl Ext4Read for StoreReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.0.borrow_mut().read(start_byte, dst)?)
    }
}

fn map_err(e: Ext4Error) -> FsError {
    match e {
        // A symlink loop is legal (Linux answers ELOOP): the path does not resolve.
        Ext4Error::NotFound | Ext4Error::TooManySymlinks => FsError::NotFound,
        other => FsError::Corrupt(format!("ext4: {other}")),
    }
}

/// The disk and the store ext4-view reads from.
struct Feed<'v, 'a> {
    view: View<'v, 'a>,
    /// The replayed journal (or just the cleared `needs_recovery`).
    overlay: Option<Overlay>,
    store: Rc<RefCell<Store>>,
}

impl<'v, 'a> Feed<'v, 'a> {
    fn disk(&self) -> Disk<'_, 'v, 'a> {
        Disk {
            view: &self.view,
            overlay: self.overlay.as_ref(),
        }
    }

    /// The read that missed since the last look, if any.
    fn take_miss(&self) -> Option<(u64, usize)> {
        self.store.borrow_mut().miss.take()
    }

    /// Copies the chunks that hold `len` bytes at `start`, and those after
    /// them, from the disk into the store.
    fn fill(&self, start: u64, len: usize) -> Result<(), FsError> {
        let vol = self.view.len;
        let first = start / STORE_CHUNK;
        let end = start.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
        let mut store = self.store.borrow_mut();
        // Read ahead into half the store at most, so the chunk that missed stays.
        let ahead = READ_AHEAD_CHUNKS.min(u64::try_from(store.max_chunks / 2).unwrap_or(0));
        let last = (end.saturating_sub(1) / STORE_CHUNK).saturating_add(ahead);
        for index in first..=last {
            let at = index.saturating_mul(STORE_CHUNK);
            if at >= vol {
                break;
            }
            if store.chunks.contains_key(&index) {
                continue;
            }
            let n = usize::try_from(STORE_CHUNK.min(vol - at)).unwrap_or(0);
            let bytes = self
                .disk()
                .read_vec(at, n)
                .map_err(|e| FsError::Corrupt(format!("ext4: reading {n} bytes at {at}: {e}")))?;
            if store.order.len() >= store.max_chunks {
                if let Some(old) = store.order.pop_front() {
                    store.chunks.remove(&old);
                }
            }
            store.order.push_back(index);
            store.chunks.insert(index, bytes);
        }
        Ok(())
    }

    /// Most times one call may start over.
    fn max_retries(&self) -> usize {
        self.store
            .borrow()
            .max_chunks
            .saturating_mul(RETRIES_PER_CHUNK)
    }

    /// Runs `call` (a lookup of `path`) until it no longer misses the store.
    fn retry<T>(
        &self,
        path: &str,
        mut call: impl FnMut() -> Result<T, Ext4Error>,
    ) -> Result<T, FsError> {
        for _ in 0..self.max_retries() {
            let result = call();
            match self.take_miss() {
                Some((start, len)) => self.fill(start, len)?,
                None => return result.map_err(map_err),
            }
        }
        Err(self.too_scattered(path))
    }

    /// `path` needs more of the disk at once than the store keeps.
    fn too_scattered(&self, path: &str) -> FsError {
        let bytes = u64::try_from(self.store.borrow().max_chunks)
            .unwrap_or(u64::MAX)
            .saturating_mul(STORE_CHUNK);
        let limit = if bytes >= 1024 * 1024 {
            format!("{} MiB", bytes / (1024 * 1024))
        } else {
            format!("{} KiB", bytes / 1024)
        };
        FsError::NotRead {
            path: path.to_string(),
            limit: format!("reading it needs more than {limit} of scattered ext4 metadata at once"),
        }
    }
}

/// What a directory entry is, as far as a listing says.
enum Kind {
    /// Whether it is a directory.
    Dir(bool),
    /// A symlink, to follow.
    Symlink(ext4_view::PathBuf),
}

/// An ext2/3/4 filesystem.
pub(crate) struct Ext4Fs<'v, 'a> {
    feed: Feed<'v, 'a>,
    fs: Ext4,
    sb: Super,
    /// What the caller should be told about the journal.
    notes: Vec<String>,
    /// Paths over the store's limit.
    unread: UnreadLog,
}

/// The filesystem's bytes, with the replayed journal on top.
struct Disk<'d, 'v, 'a> {
    view: &'d View<'v, 'a>,
    overlay: Option<&'d Overlay>,
}

impl Disk<'_, '_, '_> {
    fn read_vec(&self, off: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut buf = self.view.read_vec(off, len).map_err(|e| e.to_string())?;
        if let Some(o) = self.overlay {
            let raw = |at: u64, n: usize| self.view.read_vec(at, n).map_err(|e| e.to_string());
            o.apply(off, &mut buf, &raw)?;
        }
        Ok(buf)
    }
}

impl<'v, 'a> Ext4Fs<'v, 'a> {
    pub(crate) fn open(view: View<'v, 'a>) -> Result<(Self, FsInfo), FsError> {
        Self::open_with_store(view, store_chunks())
    }

    /// [`Ext4Fs::open`] with a store of at most `max_chunks` chunks.
    fn open_with_store(view: View<'v, 'a>, max_chunks: usize) -> Result<(Self, FsInfo), FsError> {
        let raw = view
            .read_vec(1024, 1024)
            .map_err(|e| FsError::Corrupt(format!("ext4 superblock: {e}")))?;
        let sb = Super::parse(&raw)?;
        let info = sb.info();
        let (overlay, notes) = journal_overlay(&view, &sb);
        let store = Rc::new(RefCell::new(Store {
            len: view.len,
            max_chunks: max_chunks.max(1),
            chunks: HashMap::new(),
            order: VecDeque::new(),
            miss: None,
            #[cfg(test)]
            reads: 0,
        }));
        let feed = Feed {
            view,
            overlay,
            store,
        };
        let fs = feed.retry("/", || {
            Ext4::load(Box::new(StoreReader(Rc::clone(&feed.store))))
        })?;
        Ok((
            Ext4Fs {
                feed,
                fs,
                sb,
                notes,
                unread: UnreadLog::default(),
            },
            info,
        ))
    }

    /// Inode flags of a file, by our own lookup (`None` if it cannot be
    /// found this simple way: inline-data or deeply mapped directories).
    pub(crate) fn inode_flags(&self, path: &str) -> Option<u32> {
        let disk = self.feed.disk();
        let mut ino = 2u64;
        for name in components(path) {
            let inode = self.sb.read_inode(&disk, ino)?;
            if inode.mode & 0xF000 != 0x4000 {
                return None;
            }
            ino = self.sb.dir_lookup(&disk, &inode, name.as_bytes())?;
        }
        self.sb.read_inode(&disk, ino).map(|i| i.flags)
    }

    /// The entries of a directory, each with whether it is a directory, or (a
    /// symlink) the path to follow to know.
    fn entries(&self, path: &str) -> Result<Vec<(String, Kind)>, Ext4Error> {
        let mut names = Vec::new();
        for entry in self.fs.read_dir(path)? {
            let e = entry?;
            let n = e.file_name();
            let s = String::from_utf8_lossy(n.as_ref()).into_owned();
            if s == "." || s == ".." {
                continue;
            }
            // The type is in the entry; only a symlink needs a lookup.
            let kind = match e.file_type() {
                Ok(t) if t.is_symlink() => Kind::Symlink(e.path()),
                Ok(t) => Kind::Dir(t.is_dir()),
                Err(_) => Kind::Dir(false),
            };
            names.push((s, kind));
        }
        Ok(names)
    }
}

impl Ext4Fs<'_, '_> {
    /// [`super::Fs::read`], without noting what was not read.
    fn read_file(&self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let mut file = self.feed.retry(path, || self.fs.open(path))?;
        let len = file.metadata().len();
        if len > limit {
            return Err(FsError::TooLarge(len));
        }
        // Grown as data comes, not sized from the inode up front.
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut misses = 0usize;
        loop {
            let at = file.position();
            let got = file.read_bytes(&mut buf);
            if let Some((start, n)) = self.feed.take_miss() {
                misses += 1;
                if misses
                    > self
                        .feed
                        .max_retries()
                        .saturating_add(usize::try_from(len / STORE_CHUNK).unwrap_or(usize::MAX))
                {
                    return Err(self.feed.too_scattered(path));
                }
                self.feed.fill(start, n)?;
                // The block iterator may have stopped at the miss: start it again.
                self.feed.retry(path, || file.seek_to(at))?;
                continue;
            }
            match got.map_err(map_err)? {
                0 => return Ok(out),
                n => out.extend_from_slice(buf.get(..n).ok_or_else(|| {
                    FsError::Corrupt(format!("ext4: {path}: read of {n} bytes into 64 KiB"))
                })?),
            }
        }
    }
}

impl super::Fs for Ext4Fs<'_, '_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let r = self.read_file(path, limit);
        self.unread.note("ext4", r)
    }
    fn list(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        Ok(self.list_typed(path)?.into_iter().map(|(n, _)| n).collect())
    }
    fn list_typed(&mut self, path: &str) -> Result<Vec<(String, bool)>, FsError> {
        let r = self.feed.retry(path, || self.entries(path));
        let entries = self.unread.note("ext4", r)?;
        let mut out = Vec::with_capacity(entries.len());
        for (name, kind) in entries {
            let is_dir = match kind {
                Kind::Dir(d) => d,
                // Each symlink is followed in a call of its own: a store miss then starts
                // over only this lookup, not the whole listing (which made a directory of
                // symlinks to scattered inodes cost quadratic time).
                Kind::Symlink(p) => match self.feed.retry(path, || self.fs.metadata(&p)) {
                    Ok(m) => m.file_type().is_dir(),
                    // The listing needs it: the directory was not read.
                    Err(e @ FsError::NotRead { .. }) => return self.unread.note("ext4", Err(e)),
                    Err(_) => false,
                },
            };
            out.push((name, is_dir));
        }
        Ok(out)
    }
    fn exists(&mut self, path: &str) -> bool {
        let r = self.feed.retry(path, || self.fs.exists(path));
        self.unread.note("ext4", r).unwrap_or(false)
    }
    fn immutable(&mut self, path: &str) -> Option<bool> {
        self.inode_flags(path).map(|f| f & 0x10 != 0)
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
}

#[cfg(test)]
thread_local! {
    /// The store's size for inspections on this thread, so a test need not make a
    /// filesystem whose lookups need more than 16 MiB at once.
    pub(crate) static TEST_STORE_CHUNKS: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

/// Chunks the store keeps.
fn store_chunks() -> usize {
    #[cfg(test)]
    if let Some(n) = TEST_STORE_CHUNKS.with(std::cell::Cell::get) {
        return n;
    }
    STORE_CHUNKS
}

/// `needs_recovery` in the incompatible features.
const INCOMPAT_RECOVER: u32 = 0x4;
/// `has_journal` in the compatible features.
const COMPAT_HAS_JOURNAL: u32 = 0x4;
/// `metadata_csum` in the read-only compatible features.
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// For a filesystem that needs recovery: the journal replayed in memory
/// (or, when it cannot be, an overlay that only clears `needs_recovery`),
/// and what to tell the user. `None` when ext4-view replays it itself
/// (CSUM_V3 journals) or nothing needs replaying.
fn journal_overlay(view: &View<'_, '_>, sb: &Super) -> (Option<Overlay>, Vec<String>) {
    if sb.incompat & INCOMPAT_RECOVER == 0 || sb.compat & COMPAT_HAS_JOURNAL == 0 {
        return (None, Vec::new());
    }
    let csum = sb.ro_compat & RO_COMPAT_METADATA_CSUM != 0;
    let dirty = "was not cleanly unmounted (the image looks copied from a running system)";
    match read_journal(view, sb, csum) {
        Ok(None) => (None, Vec::new()),
        Ok(Some(o)) => {
            let note = format!(
                "ext4 {dirty}; its journal was replayed in memory for this check ({} committed transaction(s), {} block(s))",
                o.transactions,
                o.len()
            );
            (Some(o), vec![note])
        }
        Err(why) => (
            Some(Overlay::unreplayed(sb.block_size, csum)),
            vec![format!(
                "ext4 {dirty} and its journal was not replayed ({why}); files were read as they are on the disk, and recent changes may be missing: the verdict is incomplete"
            )],
        ),
    }
}

/// Reads and replays the internal journal; `Ok(None)` for a CSUM_V3 journal
/// (ext4-view's own replay, which checks the checksums).
fn read_journal(
    view: &View<'_, '_>,
    sb: &Super,
    metadata_csum: bool,
) -> Result<Option<Overlay>, String> {
    let raw = Disk {
        view,
        overlay: None,
    };
    if sb.journal_inum == 0 {
        return Err("the journal is on an external device".into());
    }
    let inode = sb
        .read_inode(&raw, u64::from(sb.journal_inum))
        .ok_or("the journal inode cannot be read")?;
    let blocks = (inode.size / sb.block_size).min(jbd2::MAX_JOURNAL_BLOCKS);
    let map = sb
        .file_blocks(&raw, &inode, blocks)
        .ok_or("the journal's block map cannot be read")?;
    let first = *map.first().ok_or("the journal is empty")?;
    let bs = usize::try_from(sb.block_size).map_err(|_| "block size")?;
    let head = raw.read_vec(
        first
            .checked_mul(sb.block_size)
            .ok_or("journal block out of range")?,
        bs,
    )?;
    let js = JournalSuper::parse(&head)?;
    if js.incompat & jbd2::INCOMPAT_CSUM_V3 != 0 {
        return Ok(None);
    }
    let used = usize::try_from(u64::from(js.maxlen).min(map.len() as u64)).unwrap_or(0);
    if map.iter().take(used).any(|&b| b == 0) {
        return Err("the journal file has holes".into());
    }
    let read = |at: u64, n: usize| raw.read_vec(at, n);
    jbd2::replay(&js, sb.block_size, metadata_csum, &map, &read).map(Some)
}

/// The little-endian `u16` at `o`, if `b` holds it.
fn le16(b: &[u8], o: usize) -> Option<u16> {
    let w = b.get(o..o.checked_add(2)?)?;
    Some(u16::from_le_bytes(w.try_into().ok()?))
}
/// The little-endian `u32` at `o`, if `b` holds it.
fn le32(b: &[u8], o: usize) -> Option<u32> {
    let w = b.get(o..o.checked_add(4)?)?;
    Some(u32::from_le_bytes(w.try_into().ok()?))
}

const COMPAT: &[(u32, &str)] = &[
    (0x1, "dir_prealloc"),
    (0x4, "has_journal"),
    (0x8, "ext_attr"),
    (0x10, "resize_inode"),
    (0x20, "dir_index"),
    (0x200, "sparse_super2"),
    (0x400, "fast_commit"),
    (0x1000, "orphan_file"),
];
const INCOMPAT: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
const RO_COMPAT: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

/// The superblock fields we use.
#[derive(Debug, Clone)]
pub(crate) struct Super {
    block_size: u64,
    blocks: u64,
    first_data_block: u64,
    inodes_per_group: u64,
    inode_size: u64,
    desc_size: u64,
    compat: u32,
    incompat: u32,
    ro_compat: u32,
    uuid: [u8; 16],
    label: String,
    journal_inum: u32,
}

struct Inode {
    mode: u16,
    flags: u32,
    size: u64,
    block: [u8; 60],
}

impl Super {
    pub(crate) fn parse(b: &[u8]) -> Result<Super, FsError> {
        if b.len() < 1024 || le16(b, 56) != Some(0xEF53) {
            return Err(FsError::Corrupt("ext4: bad superblock magic".into()));
        }
        let truncated = || FsError::Corrupt("ext4: superblock is truncated".into());
        let le16 = |o| le16(b, o).ok_or_else(truncated);
        let le32 = |o| le32(b, o).ok_or_else(truncated);
        let log = le32(24)?;
        if log > 6 {
            return Err(FsError::Corrupt(format!(
                "ext4: block size 1024<<{log} is invalid"
            )));
        }
        let incompat = le32(96)?;
        let hi = if incompat & 0x80 != 0 {
            u64::from(le32(0x150)?)
        } else {
            0
        };
        let rev = le32(76)?;
        let inode_size = if rev == 0 { 128 } else { u64::from(le16(88)?) };
        let desc_size = if incompat & 0x80 != 0 {
            u64::from(le16(254)?).max(32)
        } else {
            32
        };
        let uuid: [u8; 16] = b
            .get(104..120)
            .and_then(|u| u.try_into().ok())
            .ok_or_else(truncated)?;
        let label_bytes: Vec<u8> = b
            .get(120..136)
            .ok_or_else(truncated)?
            .iter()
            .copied()
            .take_while(|&c| c != 0)
            .collect();
        Ok(Super {
            block_size: 1024u64 << log,
            blocks: (hi << 32) | u64::from(le32(4)?),
            first_data_block: u64::from(le32(20)?),
            inodes_per_group: u64::from(le32(40)?),
            inode_size,
            desc_size,
            compat: le32(92)?,
            incompat,
            ro_compat: le32(100)?,
            uuid,
            label: String::from_utf8_lossy(&label_bytes).into_owned(),
            journal_inum: le32(0xE0)?,
        })
    }

    fn features(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (set, table) in [
            (self.compat, COMPAT),
            (self.incompat, INCOMPAT),
            (self.ro_compat, RO_COMPAT),
        ] {
            for (bit, name) in table {
                if set & bit != 0 {
                    v.push((*name).to_string());
                }
            }
        }
        v
    }

    pub(crate) fn info(&self) -> FsInfo {
        let fs_type = if self.incompat & 0x2C0 != 0 || self.ro_compat & 0x448 != 0 {
            "ext4"
        } else if self.compat & 0x4 != 0 {
            "ext3"
        } else {
            "ext2"
        };
        FsInfo {
            fs_type: fs_type.into(),
            uuid: Some(uuid_string(&self.uuid)),
            label: (!self.label.is_empty()).then(|| self.label.clone()),
            declared_size: self.blocks.checked_mul(self.block_size),
            features: self.features(),
        }
    }

    fn read_inode(&self, disk: &Disk<'_, '_, '_>, ino: u64) -> Option<Inode> {
        if ino == 0 || self.inodes_per_group == 0 || self.inode_size < 128 {
            return None;
        }
        let group = (ino - 1) / self.inodes_per_group;
        let index = (ino - 1) % self.inodes_per_group;
        let gdt = (self.first_data_block + 1).checked_mul(self.block_size)?;
        let desc_off = gdt.checked_add(group.checked_mul(self.desc_size)?)?;
        let d = disk
            .read_vec(desc_off, usize::try_from(self.desc_size).ok()?)
            .ok()?;
        let mut table = u64::from(le32(&d, 8)?);
        if self.desc_size >= 64 {
            table |= u64::from(le32(&d, 0x28)?) << 32;
        }
        let off = table
            .checked_mul(self.block_size)?
            .checked_add(index.checked_mul(self.inode_size)?)?;
        let r = disk.read_vec(off, 128).ok()?;
        let block: [u8; 60] = r.get(40..100)?.try_into().ok()?;
        Some(Inode {
            mode: le16(&r, 0)?,
            flags: le32(&r, 32)?,
            size: u64::from(le32(&r, 4)?) | (u64::from(le32(&r, 108)?) << 32),
            block,
        })
    }

    /// Physical blocks of the first `want` blocks of a file, in file order
    /// (0 for a hole): extents of any depth, or the block map of ext2/3
    /// (direct, indirect, double and triple indirect blocks).
    fn file_blocks(&self, disk: &Disk<'_, '_, '_>, inode: &Inode, want: u64) -> Option<Vec<u64>> {
        let mut out = Vec::new();
        if inode.flags & 0x80000 != 0 {
            self.extent_node(disk, &inode.block, 0, &mut out, want)?;
        } else if inode.flags & 0x1000_0000 != 0 {
            return None; // inline data
        } else {
            for i in 0..12 {
                if out.len() as u64 >= want {
                    break;
                }
                out.push(u64::from(le32(&inode.block, i * 4)?));
            }
            for (slot, depth) in [(12usize, 1u32), (13, 2), (14, 3)] {
                let b = u64::from(le32(&inode.block, slot * 4)?);
                self.indirect(disk, b, depth, &mut out, want)?;
            }
        }
        while (out.len() as u64) < want {
            out.push(0);
        }
        Some(out)
    }

    /// Appends the blocks an indirect block of `depth` maps (depth 1 lists
    /// data blocks). A hole covers everything below it.
    fn indirect(
        &self,
        disk: &Disk<'_, '_, '_>,
        block: u64,
        depth: u32,
        out: &mut Vec<u64>,
        want: u64,
    ) -> Option<()> {
        if out.len() as u64 >= want {
            return Some(());
        }
        let per = self.block_size / 4;
        if block == 0 {
            let covered = per.checked_pow(depth)?;
            let fill = covered.min(want - out.len() as u64);
            out.resize(out.len() + usize::try_from(fill).ok()?, 0);
            return Some(());
        }
        let raw = disk
            .read_vec(
                block.checked_mul(self.block_size)?,
                usize::try_from(self.block_size).ok()?,
            )
            .ok()?;
        for i in 0..usize::try_from(per).ok()? {
            if out.len() as u64 >= want {
                break;
            }
            let b = u64::from(le32(&raw, i * 4)?);
            if depth == 1 {
                out.push(b);
            } else {
                self.indirect(disk, b, depth - 1, out, want)?;
            }
        }
        Some(())
    }

    fn extent_node(
        &self,
        disk: &Disk<'_, '_, '_>,
        node: &[u8],
        level: u32,
        out: &mut Vec<u64>,
        want: u64,
    ) -> Option<()> {
        if level > 5 || le16(node, 0)? != 0xF30A {
            return None;
        }
        let entries = usize::from(le16(node, 2)?);
        let depth = le16(node, 6)?;
        for i in 0..entries {
            let e = 12 + i * 12;
            if e + 12 > node.len() {
                return None;
            }
            if out.len() as u64 >= want {
                return Some(());
            }
            if depth == 0 {
                let logical = u64::from(le32(node, e)?);
                // Above 32768 the length marks an unwritten extent.
                let raw_len = u64::from(le16(node, e + 4)?);
                let len = if raw_len > 32768 {
                    raw_len - 32768
                } else {
                    raw_len
                };
                let start = (u64::from(le16(node, e + 6)?) << 32) | u64::from(le32(node, e + 8)?);
                while (out.len() as u64) < logical.min(want) {
                    out.push(0);
                }
                for k in 0..len {
                    if out.len() as u64 >= want {
                        return Some(());
                    }
                    out.push(start.checked_add(k)?);
                }
            } else {
                let leaf = (u64::from(le16(node, e + 8)?) << 32) | u64::from(le32(node, e + 4)?);
                let child = disk
                    .read_vec(
                        leaf.checked_mul(self.block_size)?,
                        usize::try_from(self.block_size).ok()?,
                    )
                    .ok()?;
                self.extent_node(disk, &child, level + 1, out, want)?;
            }
        }
        Some(())
    }

    fn dir_lookup(&self, disk: &Disk<'_, '_, '_>, dir: &Inode, name: &[u8]) -> Option<u64> {
        if dir.size > MAX_DIR_BYTES {
            return None;
        }
        let bs = usize::try_from(self.block_size).ok()?;
        let want = dir.size.div_ceil(self.block_size);
        for b in self.file_blocks(disk, dir, want)? {
            if b == 0 {
                continue;
            }
            let blk = disk.read_vec(b.checked_mul(self.block_size)?, bs).ok()?;
            let mut o = 0usize;
            while o + 8 <= bs {
                let ino = le32(&blk, o)?;
                let rec = usize::from(le16(&blk, o + 4)?);
                let nlen = usize::from(*blk.get(o + 6)?);
                if rec < 8 {
                    break;
                }
                if ino != 0 && blk.get(o + 8..o + 8 + nlen) == Some(name) {
                    return Some(u64::from(ino));
                }
                o += rec;
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fs::Fs;

    /// Listing a directory of symlinks whose inodes are spread over the disk
    /// (fixtures/guest/build-ext4-scattered.sh: 800 in 50 block groups) costs fewer
    /// reads than it has entries: a store miss starts over one symlink's lookup, not the
    /// whole listing.
    #[test]
    fn listing_scattered_symlinks_costs_reads_linear_in_the_entries() {
        let img =
            crate::test_fixtures::fixture_image("build-ext4-scattered.sh", "fs-ext4-scattered.raw");
        let cache = crate::cache::CachedDisk::new(&img);
        // The partition starts at sector 2048.
        let view = View::new(&cache, 1 << 20, cache.size() - (1 << 20));
        let (mut fs, _) = Ext4Fs::open(view).expect("open");
        let before = fs.feed.store.borrow().reads;
        let entries = fs.list_typed("/etc").expect("list /etc");
        let reads = fs.feed.store.borrow().reads - before;
        assert_eq!(entries.len(), 802, "{entries:?}");
        assert!(entries
            .iter()
            .all(|(n, d)| !d && (n.starts_with("alt-") || n == "os-release" || n == "fstab")));
        // Each inode table block is read once; ext4-view's block cache answers the rest.
        // (Restarting the whole listing at each miss made 10,002 reads here.)
        assert!(reads < 800, "{reads} reads to list 800 symlinks");
    }
}
