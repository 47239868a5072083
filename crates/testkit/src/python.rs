//! The Python with Alibaba's official SDKs (`tests/sdk/requirements.txt`), which the
//! conformance tests run against our clients and the emulator.

use std::path::PathBuf;

/// `$PREFLIGHT_PYTHON` when set and not empty, else the workspace's `.venv/bin/python`
/// (made by `fixtures/install-deps.sh`). Panics when it does not exist: a missing SDK fails
/// the test, it never skips it.
pub fn sdk_python() -> PathBuf {
    let python = match std::env::var_os("PREFLIGHT_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    };
    assert!(
        python.exists(),
        "no Python with the Alibaba Cloud SDKs: {} is missing. Run fixtures/install-deps.sh \
         (it makes .venv from tests/sdk/requirements.txt), or set PREFLIGHT_PYTHON",
        python.display()
    );
    python
}
