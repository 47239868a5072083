//! A FAT directory whose cluster chain loops back to its start (fatfs follows the chain
//! without noticing): the walk, a lookup of a name that is not there and the whole
//! inspection must end, with the files before the loop still read.

mod common;
use common::sh;
use preflight_disk::raw::RawImage;
use preflight_guest::{inspect, read_filesystem_file, walk_filesystem, FsKind};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn le16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A FAT16 volume (512-byte clusters) with `/EFI` holding 40 files over three clusters, the
/// last of which points back to the first and has no end-of-directory slot.
fn looping_volume() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fat-loop");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("fat.img");
    let img_s = img.to_str().unwrap();
    sh("truncate", &["-s", "4M", img_s]);
    sh("mkfs.vfat", &["-F", "16", "-s", "1", img_s]);
    sh("mmd", &["-i", img_s, "::/EFI"]);
    let mut files = Vec::new();
    for i in 1..=40 {
        let f = dir.join(format!("f{i}.txt"));
        std::fs::write(&f, format!("{i}\n")).unwrap();
        files.push(f.to_str().unwrap().to_string());
    }
    let mut args = vec!["-i", img_s];
    args.extend(files.iter().map(String::as_str));
    args.push("::/EFI/");
    sh("mcopy", &args);

    let mut b = std::fs::read(&img).unwrap();
    let bps = le16(&b, 11);
    let reserved = le16(&b, 14);
    let fats = usize::from(b[16]);
    let root_entries = le16(&b, 17);
    let per_fat = le16(&b, 22);
    let fat = reserved * bps;
    let root = (reserved + fats * per_fat) * bps;
    let data = root + root_entries * 32;
    let first = (0..root_entries)
        .map(|i| root + 32 * i)
        .find(|&e| &b[e..e + 11] == b"EFI        ")
        .map(|e| le16(&b, e + 26))
        .unwrap();
    let mut last = first;
    while le16(&b, fat + 2 * last) < 0xfff8 {
        last = le16(&b, fat + 2 * last);
    }
    assert_ne!(last, first, "the directory spans several clusters");
    for copy in 0..fats {
        let at = fat + copy * per_fat * bps + 2 * last;
        b[at..at + 2].copy_from_slice(&u16::try_from(first).unwrap().to_le_bytes());
    }
    // Free slots of the last cluster become copies of its first entry: no end marker.
    let cluster = data + (last - 2) * bps;
    let used: Vec<u8> = b[cluster..cluster + 32].to_vec();
    for slot in (cluster..cluster + bps).step_by(32) {
        if b[slot] == 0 {
            b[slot..slot + 32].copy_from_slice(&used);
        }
    }
    b
}

/// Runs `f` on another thread; a hang fails the test instead of stalling the suite.
fn ends<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(300))
        .unwrap_or_else(|_| panic!("{what} did not end"))
}

#[test]
fn a_looping_directory_chain_ends() {
    let volume = Arc::new(looping_volume());

    let v = Arc::clone(&volume);
    let walked = ends("the walk", move || {
        walk_filesystem(FsKind::Fat, &RawImage::new(v))
    });
    assert!(walked.as_ref().is_ok_and(|&n| n > 40), "{walked:?}");

    let v = Arc::clone(&volume);
    let missing = ends("a lookup", move || {
        read_filesystem_file(
            FsKind::Fat,
            &RawImage::new(v),
            "/EFI/BOOT/BOOTX64.EFI",
            1 << 20,
        )
    });
    assert!(missing.is_err(), "{missing:?}");

    let v = Arc::clone(&volume);
    let found = ends("a read", move || {
        read_filesystem_file(FsKind::Fat, &RawImage::new(v), "/EFI/f1.txt", 1 << 20)
    });
    assert_eq!(found.as_deref(), Ok(&b"1\n"[..]));

    let v = Arc::clone(&volume);
    ends("the inspection", move || inspect(&RawImage::new(v)));
}

/// A FAT12 volume whose four subdirectories' entries were changed to cluster 0, which fatfs
/// opens as the root: each is the root again, so a walk that listed every directory it met
/// listed the root 10,000 times (the entry cap) and cost the fuzzer 0.4 s per input. Each
/// directory's data is listed once: the root's five entries, the aliases counted, not listed.
#[test]
fn directories_that_alias_the_root_are_listed_once() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fat-alias");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("fat.img");
    let img_s = img.to_str().unwrap();
    sh("truncate", &["-s", "1M", img_s]);
    sh("mkfs.vfat", &["-F", "12", img_s]);
    sh("mmd", &["-i", img_s, "::/A", "::/B", "::/C", "::/D"]);
    let file = dir.join("f.txt");
    std::fs::write(&file, "x\n").unwrap();
    sh("mcopy", &["-i", img_s, file.to_str().unwrap(), "::/"]);

    let mut b = std::fs::read(&img).unwrap();
    let walk = |b: &[u8]| walk_filesystem(FsKind::Fat, &RawImage::new(Arc::new(b.to_vec())));
    assert_eq!(walk(&b), Ok(5));
    let bps = le16(&b, 11);
    let root = (le16(&b, 14) + usize::from(b[16]) * le16(&b, 22)) * bps;
    let mut aliased = 0;
    for e in (0..le16(&b, 17)).map(|i| root + 32 * i) {
        if b[e + 11] & 0x10 != 0 && b[e] != 0xe5 {
            b[e + 26..e + 28].fill(0);
            aliased += 1;
        }
    }
    assert_eq!(aliased, 4);
    assert_eq!(walk(&b), Ok(5));
}
