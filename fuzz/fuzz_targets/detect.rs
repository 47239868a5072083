//! Detection and the whole inspection path over arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight_disk::Source;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn Source> = Arc::new(data.to_vec());
    let no_extents = |_: &str| -> std::io::Result<Arc<dyn Source>> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let options = preflight_formats::InspectOptions { check: true };
    if let Ok(inspection) = preflight_formats::inspect_source(src, &no_extents, options) {
        if let Some(image) = inspection.image {
            let size = image.size();
            let mut buf = vec![0u8; 4096];
            for offset in [0, size / 2, size.saturating_sub(4096)] {
                let _ = image.read_at(offset, &mut buf);
            }
        }
    }
});
