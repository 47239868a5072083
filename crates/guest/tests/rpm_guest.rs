//! A guest without dpkg (a Rocky-like XFS root made by mkfs.xfs -p protofile): cloud-init's
//! version comes from its Python package, as RPM distributions install it.

use preflight_disk::raw::RawImage;
use preflight_disk::FileSource;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn mkfs_with(dir: &Path, name: &str, version_py: &str) -> std::path::PathBuf {
    let files = [
        (
            "os-release",
            "NAME=\"Rocky Linux\"\nID=rocky\nVERSION_ID=9.4\n",
        ),
        ("version.py", version_py),
        ("cloud-init", "#!/usr/bin/python3\n"),
    ];
    for (f, body) in files {
        std::fs::write(dir.join(f), body).unwrap();
    }
    let f = |n: &str| dir.join(n).display().to_string();
    let proto = format!(
        "/dev/null\n0 0\nd--755 0 0\n\
         etc d--755 0 0\nos-release ---644 0 0 {}\n$\n\
         usr d--755 0 0\n\
         bin d--755 0 0\ncloud-init ---755 0 0 {}\n$\n\
         lib d--755 0 0\npython3.9 d--755 0 0\nsite-packages d--755 0 0\n\
         cloudinit d--755 0 0\nversion.py ---644 0 0 {}\n$\n$\n$\n$\n$\n$\n",
        f("os-release"),
        f("cloud-init"),
        f("version.py")
    );
    let proto_path = dir.join(format!("{name}.proto"));
    std::fs::write(&proto_path, proto).unwrap();
    let img = dir.join(format!("{name}.xfs"));
    let _ = std::fs::remove_file(&img);
    for (cmd, args) in [
        ("truncate", vec!["-s", "300M", img.to_str().unwrap()]),
        (
            "mkfs.xfs",
            vec![
                "-q",
                "-f",
                "-p",
                proto_path.to_str().unwrap(),
                img.to_str().unwrap(),
            ],
        ),
    ] {
        let out = Command::new(cmd).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    img
}

fn cloud_init(img: &Path) -> Option<String> {
    let disk = RawImage::new(Arc::new(FileSource::open(img).unwrap()));
    let r = preflight_guest::inspect(&disk);
    r.facts
        .linux
        .as_ref()
        .expect("a Linux root")
        .cloud_init
        .clone()
}

#[test]
fn cloud_init_version_without_dpkg() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpm-guest");
    std::fs::create_dir_all(&dir).unwrap();
    // As RHEL's package writes it: the packaged version replaces the placeholder.
    let img = mkfs_with(
        &dir,
        "packaged",
        "__VERSION__ = \"23.4\"\n_PACKAGED_VERSION = \"23.4-7.el9_4\"\n",
    );
    assert_eq!(cloud_init(&img).as_deref(), Some("23.4-7.el9_4"));
    // Upstream's file, placeholder left: the plain version.
    let img = mkfs_with(
        &dir,
        "upstream",
        "__VERSION__ = '24.1.3'\n_PACKAGED_VERSION = '@@PACKAGED_VERSION@@'\n",
    );
    assert_eq!(cloud_init(&img).as_deref(), Some("24.1.3"));
    std::fs::remove_dir_all(&dir).unwrap();
}
