//! RAW images: the file is the disk.

use crate::{check_guest_range, BlockRead, DiskImage, Format, ImageInfo, ReadError, Source};
use preflight_report::Finding;
use std::sync::Arc;

/// A RAW image: guest offset N is file offset N.
pub struct RawImage {
    src: Arc<dyn Source>,
    info: ImageInfo,
}

impl RawImage {
    /// Wraps a source as a RAW disk. `allocated_size` is the file size: the
    /// sparse map is the converter's business, not the format's.
    pub fn new(src: Arc<dyn Source>) -> Self {
        let size = src.size();
        let mut info = ImageInfo::new(Format::Raw, size, size);
        info.allocated_size = size;
        RawImage { src, info }
    }
}

impl BlockRead for RawImage {
    fn size(&self) -> u64 {
        self.info.virtual_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        check_guest_range(offset, buf.len(), self.info.virtual_size)?;
        self.src.read_exact_at(offset, buf)?;
        Ok(())
    }

    fn next_data(&self, offset: u64) -> Result<Option<(u64, u64)>, ReadError> {
        Ok(self.src.next_data(offset)?)
    }
}

impl DiskImage for RawImage {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn check(&self) -> Vec<Finding> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_bytes() {
        let data: Vec<u8> = (0..=255u8).collect();
        let img = RawImage::new(Arc::new(data));
        let mut buf = [0u8; 4];
        img.read_at(10, &mut buf).unwrap();
        assert_eq!(buf, [10, 11, 12, 13]);
        assert!(img.read_at(254, &mut buf).is_err());
        assert_eq!(img.info().format.as_str(), "raw");
    }
}
