//! qemu-img and qemu-io, the reference every parser is compared with. The suite
//! installs them (`fixtures/install-deps.sh`); a missing tool fails the test, never
//! skips it.

use preflight_disk::DiskImage;
use std::path::Path;
use std::process::{Command, Output};

const MISSING: &str = "qemu-utils must be installed (fixtures/install-deps.sh)";

/// Runs `qemu-img ARGS` and returns its stdout; panics with its stderr if it fails.
pub fn qemu_img(args: &[&str]) -> String {
    let out = run("qemu-img", args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `qemu-img ARGS` when failing is an answer (`check` of a corrupt image):
/// whether it succeeded, and its stdout followed by its stderr.
pub fn qemu_img_status(args: &[&str]) -> (bool, String) {
    let out = run("qemu-img", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs qemu-io commands (`-c CMD` each) on an image of `format`; panics if one fails.
pub fn qemu_io(format: &str, path: &Path, cmds: &[&str]) {
    let mut args = vec!["-f", format];
    for cmd in cmds {
        args.extend(["-c", cmd]);
    }
    args.push(utf8(path));
    let out = run("qemu-io", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    // qemu-io reports failed commands on stdout and may still exit 0.
    assert!(
        out.status.success() && !text.contains("error") && !text.contains("failed"),
        "qemu-io {cmds:?} failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exit code of `qemu-img check -f FORMAT PATH`: 0 clean, 1 corrupt, 2 leaked
/// clusters, 3 both (qemu's documented codes).
pub fn check_code(format: &str, path: &Path) -> i32 {
    let out = run("qemu-img", &["check", "-f", format, utf8(path)]);
    out.status.code().unwrap_or(-1)
}

/// `qemu-img create -q -f FORMAT PATH SIZE` (a sparse, empty image).
pub fn create(format: &str, path: &Path, size: &str) {
    qemu_img(&["create", "-q", "-f", format, utf8(path), size]);
}

/// `qemu-img convert -f raw -O FORMAT [OPTIONS] RAW OUT`.
pub fn convert_raw(raw: &Path, format: &str, options: &[&str], out: &Path) {
    let mut args = vec!["convert", "-f", "raw", "-O", format];
    args.extend_from_slice(options);
    args.extend([utf8(raw), utf8(out)]);
    qemu_img(&args);
}

/// `qemu-img info -f FORMAT --output=json PATH`, parsed.
pub fn info(format: &str, path: &Path) -> serde_json::Value {
    let json = qemu_img(&["info", "-f", format, "--output=json", utf8(path)]);
    serde_json::from_str(&json).expect("qemu-img info prints JSON")
}

/// The `virtual-size` qemu-img gives an image of `format`.
pub fn virtual_size(format: &str, path: &Path) -> u64 {
    let info = info(format, path);
    info["virtual-size"]
        .as_u64()
        .unwrap_or_else(|| panic!("no virtual-size in {info}"))
}

/// The guest disk as qemu-img reads it: `qemu-img convert -f FORMAT -O raw` into `dir`,
/// read back, and removed.
pub fn read_as_raw(format: &str, path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu-img-reference.raw");
    qemu_img(&["convert", "-f", format, "-O", "raw", utf8(path), utf8(&out)]);
    let data = std::fs::read(&out).expect("read qemu-img's raw output");
    std::fs::remove_file(&out).expect("remove qemu-img's raw output");
    data
}

/// Asserts that `img`, opened from the `format` image at `path`, is of `subformat`, has
/// the virtual size qemu-img gives it, and reads, in pieces of each of `chunks` bytes, the
/// disk `qemu-img convert -O raw` makes (in `dir`, removed after).
pub fn assert_matches_qemu(
    img: &dyn DiskImage,
    format: &str,
    path: &Path,
    dir: &Path,
    subformat: &str,
    chunks: &[usize],
) {
    assert_eq!(
        img.info().subformat.as_deref(),
        Some(subformat),
        "subformat of {}",
        path.display()
    );
    let size = img.size();
    assert_eq!(
        size,
        virtual_size(format, path),
        "virtual size of {}",
        path.display()
    );
    let want = read_as_raw(format, path, dir);
    for &chunk in chunks {
        assert!(chunk > 0, "a read of 0 bytes never ends the disk");
        let mut buf = vec![0u8; chunk];
        let mut offset = 0u64;
        while offset < size {
            let n = usize::try_from((size - offset).min(chunk as u64)).expect("n <= chunk");
            img.read_at(offset, &mut buf[..n])
                .unwrap_or_else(|e| panic!("{}: read_at({offset}, {n}): {e}", path.display()));
            let at = usize::try_from(offset).expect("a test disk fits in memory");
            let qemu = want.get(at..at + n).unwrap_or_default();
            if let Some(i) = (0..n).find(|&i| qemu.get(i) != Some(&buf[i])) {
                panic!(
                    "{} in {chunk}-byte reads: guest byte {} differs from qemu-img's",
                    path.display(),
                    offset + i as u64
                );
            }
            offset += n as u64;
        }
    }
}

/// The path as UTF-8 (test paths are).
fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {MISSING}"))
}
