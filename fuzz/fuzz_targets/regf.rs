//! The registry hive reader: base block, hbins, nk/vk/lf/lh/li/ri cells.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(hive) = preflight_guest::regf::Hive::new(data) else {
        return;
    };
    let _ = hive.is_dirty();
    let Ok(root) = hive.root_key() else {
        return;
    };
    let _ = root.name();
    if let Ok(keys) = root.subkeys() {
        for key in keys.iter().take(16) {
            let _ = key.name();
            let _ = key.value("Start");
            let _ = key.subkeys();
        }
    }
    let _ = root.subpath("ControlSet001\\Services\\viostor");
});
