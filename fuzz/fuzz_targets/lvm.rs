//! LVM2 metadata through `check`'s entry point: the input is a whole disk that probes as a
//! physical volume (label, metadata area header, metadata text), inspected by
//! `preflight_guest::inspect`, which follows the linear logical volumes it names. Seeded
//! with a PV made by pvcreate/vgcreate/lvcreate (make-seeds.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let disk = preflight_disk::raw::RawImage::new(Arc::new(data.to_vec()));
    let _ = preflight_guest::inspect(&disk);
});
