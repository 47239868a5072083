//! Unit tests' fixture images: made by a script under `fixtures/guest/` (real mkfs tools),
//! in one shared directory so each is built once.

use std::sync::Arc;

use preflight_disk::raw::RawImage;

/// Runs `fixtures/guest/SCRIPT` (it makes what is missing) and opens `IMAGE`, one of the raw
/// disks it makes.
pub(crate) fn fixture_image(script: &str, image: &str) -> RawImage {
    let out = std::env::temp_dir().join("ecs-preflight-guest-fixtures");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/guest")
        .join(script);
    let st = std::process::Command::new("bash")
        .arg(&path)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(st.success(), "{script} failed");
    let src = preflight_disk::FileSource::open(out.join(image))
        .unwrap_or_else(|e| panic!("open {image}: {e}"));
    RawImage::new(Arc::new(src))
}
