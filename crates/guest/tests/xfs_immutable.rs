//! The immutable flag on an XFS root: set by xfs_db on a filesystem made by
//! mkfs.xfs -p protofile, read back by inspection (lamxfs does not expose inode flags).

mod common;
use common::sh;
use preflight_disk::raw::RawImage;
use preflight_disk::FileSource;
use std::path::Path;
use std::sync::Arc;

/// A whole-disk XFS holding /usr/bin, /etc/os-release and /etc/shadow; `immutable` sets the flag.
fn xfs_root(dir: &Path, name: &str, immutable: bool) -> std::path::PathBuf {
    let os = dir.join("os-release");
    let shadow = dir.join("shadow");
    std::fs::write(&os, "NAME=\"Rocky Linux\"\nID=rocky\nVERSION_ID=9.4\n").unwrap();
    std::fs::write(&shadow, "root:*:19000:0:99999:7:::\n").unwrap();
    let proto = dir.join(format!("{name}.proto"));
    std::fs::write(
        &proto,
        format!(
            "/dev/null\n0 0\nd--755 0 0\nusr d--755 0 0\nbin d--755 0 0\n$\n$\netc d--755 0 0\nos-release ---644 0 0 {}\nshadow ---640 0 0 {}\n$\n$\n",
            os.display(),
            shadow.display()
        ),
    )
    .unwrap();
    let img = dir.join(format!("{name}.xfs"));
    let _ = std::fs::remove_file(&img);
    sh("truncate", &["-s", "300M", img.to_str().unwrap()]);
    sh(
        "mkfs.xfs",
        &[
            "-q",
            "-f",
            "-p",
            proto.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    if immutable {
        let printed = sh(
            "xfs_db",
            &[
                "-x",
                "-c",
                "path /etc/shadow",
                "-c",
                "write core.immutable 1",
                img.to_str().unwrap(),
            ],
        );
        assert!(printed.contains("core.immutable = 1"), "{printed}");
    }
    img
}

#[test]
fn immutable_shadow_is_read_on_xfs() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xfs-immutable");
    std::fs::create_dir_all(&dir).unwrap();
    for immutable in [true, false] {
        let img = xfs_root(&dir, &format!("root-{immutable}"), immutable);
        let disk = RawImage::new(Arc::new(FileSource::open(&img).unwrap()));
        let r = preflight_guest::inspect(&disk);
        let linux = r.facts.linux.as_ref().expect("a Linux root");
        assert_eq!(linux.shadow_immutable, Some(immutable), "{:?}", r.findings);
        assert_eq!(
            r.findings.iter().any(|f| f.code == "GUEST.ShadowImmutable"),
            immutable
        );
        // xfs_db reads the same flag.
        let printed = sh(
            "xfs_db",
            &[
                "-r",
                "-c",
                "path /etc/shadow",
                "-c",
                "print core.immutable",
                img.to_str().unwrap(),
            ],
        );
        assert!(printed.contains(&format!("core.immutable = {}", u8::from(immutable))));
        std::fs::remove_file(&img).unwrap();
    }
}
