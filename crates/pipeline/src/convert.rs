//! Send only the data: whether to re-pack a disk as qcow2 on the way to OSS, and the upload
//! source that produces that qcow2 on demand, with no temporary file.
//!
//! The map pass ([`preflight_convert::map_clusters`]) finds the clusters that hold non-zero
//! bytes (skipping a sparse file's holes without reading them); the layout it gives is a pure
//! function of that map, so every part of the output can be produced again from its offset,
//! which is what a resumed multipart upload needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use preflight_convert::{map_clusters_with_progress, Qcow2Layout, DEFAULT_CLUSTER_SIZE};
use preflight_disk::DiskImage;
use preflight_oss::upload::checkpoint::FileIdentity;
use preflight_oss::upload::{FileUpload, UploadSource};
use serde::Serialize;

use crate::error::{PipelineError, Result};

/// `auto` converts only when the qcow2 is at least this many percent smaller than the file:
/// below that, the map pass and the format change buy little.
pub const AUTO_MIN_SAVING_PERCENT: u64 = 20;

/// Whether a disk is re-packed as qcow2 for the upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvertMode {
    /// Convert a RAW or fixed-VHD disk when the qcow2 is at least
    /// [`AUTO_MIN_SAVING_PERCENT`] % smaller; leave every other format as it is. The default:
    /// the choice that sends the fewest bytes without asking.
    #[default]
    Auto,
    /// Always convert (any format the engine reads, except a qcow2, which is sent as it is).
    Qcow2,
    /// Never convert: the file goes as it is.
    None,
}

impl std::str::FromStr for ConvertMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(ConvertMode::Auto),
            "qcow2" => Ok(ConvertMode::Qcow2),
            "none" => Ok(ConvertMode::None),
            other => Err(format!("{other:?} is not one of auto, qcow2, none")),
        }
    }
}

/// What a conversion did (or would have done), for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversion {
    /// The disk's own format (`raw`, `vhd`, …).
    pub from: String,
    /// Size of the local file.
    pub file_size: u64,
    /// Bytes of guest data in non-zero clusters.
    pub data_bytes: u64,
    /// Size of the qcow2 that is (or would be) sent.
    pub qcow2_size: u64,
    /// True when the qcow2 is sent; false when `auto` kept the file (saving too small).
    pub converted: bool,
}

/// A disk ready to upload: the bytes to send and their format.
pub struct PreparedUpload {
    /// The bytes to send.
    pub source: Arc<dyn UploadSource>,
    /// Their format, lowercase (`qcow2` after a conversion).
    pub format: String,
    /// Set when a conversion was considered (`auto` or `qcow2` on a convertible disk).
    pub conversion: Option<Conversion>,
}

impl std::fmt::Debug for PreparedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedUpload")
            .field("path", &self.source.path())
            .field("size", &self.source.size())
            .field("format", &self.format)
            .field("conversion", &self.conversion)
            .finish()
    }
}

impl PreparedUpload {
    /// True when the qcow2 made from the disk is sent instead of the file.
    pub fn converted(&self) -> bool {
        self.conversion.as_ref().is_some_and(|c| c.converted)
    }
}

/// Decides how `path` is sent under `mode`, running the map pass when a conversion is
/// possible. `progress` gets the bytes the map pass scans, as it scans them.
pub fn prepare_upload(
    path: &Path,
    mode: ConvertMode,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PreparedUpload> {
    let read_err = |source| PipelineError::Read {
        path: path.to_path_buf(),
        source,
    };
    let as_is = |format: String| -> Result<PreparedUpload> {
        let file = FileUpload::open(path).map_err(|e| PipelineError::Usage(e.to_string()))?;
        Ok(PreparedUpload {
            source: Arc::new(file),
            format,
            conversion: None,
        })
    };
    if mode == ConvertMode::None {
        let detected =
            preflight_formats::inspect(path, preflight_formats::InspectOptions { check: false })
                .map_err(read_err)?
                .detected;
        return as_is(detected);
    }
    let inspection =
        preflight_formats::inspect(path, preflight_formats::InspectOptions { check: false })
            .map_err(read_err)?;
    let detected = inspection.detected.clone();
    let (Some(image), Some(info)) = (inspection.image, inspection.info) else {
        if mode == ConvertMode::Qcow2 {
            return Err(PipelineError::Usage(format!(
                "cannot convert {}: it is {detected}, which cannot be read",
                path.display()
            )));
        }
        return as_is(detected);
    };
    let convertible = match mode {
        ConvertMode::Qcow2 => detected != "qcow2",
        // Only formats that store zeros as zeros gain much; a sparse format is already compact.
        _ => detected == "raw" || (detected == "vhd" && info.subformat.as_deref() == Some("fixed")),
    };
    if !convertible {
        return as_is(detected);
    }
    let map = map_clusters_with_progress(image.as_ref(), DEFAULT_CLUSTER_SIZE, progress)
        .map_err(|e| convert_err(path, &e))?;
    let layout = Qcow2Layout::new(&map).map_err(|e| convert_err(path, &e))?;
    let file_size = inspection.file_size;
    let qcow2_size = layout.file_size();
    let worth_it =
        qcow2_size.saturating_mul(100) <= file_size.saturating_mul(100 - AUTO_MIN_SAVING_PERCENT);
    let converted = mode == ConvertMode::Qcow2 || worth_it;
    let conversion = Conversion {
        from: detected.clone(),
        file_size,
        data_bytes: map.data_bytes(),
        qcow2_size,
        converted,
    };
    if !converted {
        let mut kept = as_is(detected)?;
        kept.conversion = Some(conversion);
        return Ok(kept);
    }
    let file = FileIdentity::of(path).map_err(|e| PipelineError::Usage(e.to_string()))?;
    let identity = FileIdentity {
        size: qcow2_size,
        mtime_ns: file.mtime_ns,
        // Another cluster size or layout version gives other bytes: a checkpoint made for
        // them must not match.
        sample_sha256: format!(
            "{}+qcow2-v{}-c{}",
            file.sample_sha256,
            preflight_convert::LAYOUT_VERSION,
            DEFAULT_CLUSTER_SIZE
        ),
    };
    Ok(PreparedUpload {
        source: Arc::new(Qcow2Stream {
            path: path.to_path_buf(),
            image,
            layout,
            identity,
        }),
        format: "qcow2".into(),
        conversion: Some(conversion),
    })
}

fn convert_err(path: &Path, e: &preflight_convert::ConvertError) -> PipelineError {
    PipelineError::Usage(format!(
        "cannot convert {}: {}",
        path.display(),
        preflight_disk::error_chain(e)
    ))
}

/// The qcow2 of a disk's non-zero clusters, produced on demand from the disk.
struct Qcow2Stream {
    path: PathBuf,
    image: Box<dyn DiskImage>,
    layout: Qcow2Layout,
    identity: FileIdentity,
}

impl UploadSource for Qcow2Stream {
    fn size(&self) -> u64 {
        self.layout.file_size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.layout
            .read_at(self.image.as_ref(), offset, buf)
            .map_err(std::io::Error::other)
    }

    fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// The mode to use for `path` when the caller named its object `given_key`: a key ending in
/// another format's suffix (`.raw`, `.vhd`, …) keeps `auto` from converting, and makes an
/// explicit `qcow2` a usage error (the object would hold a qcow2 under a raw name).
pub fn mode_for_key(
    mode: ConvertMode,
    path: &Path,
    given_key: Option<&str>,
) -> Result<ConvertMode> {
    let other = given_key
        .and_then(|k| {
            Path::new(k)
                .extension()?
                .to_str()
                .map(str::to_ascii_lowercase)
        })
        .filter(|ext| ["raw", "vhd", "vmdk", "vhdx", "img"].contains(&ext.as_str()));
    match (mode, other) {
        (ConvertMode::Qcow2, Some(ext)) => Err(PipelineError::Usage(format!(
            "--convert qcow2 sends {} as qcow2, but its object key ends in .{ext}; \
             name it .qcow2 or leave the key out",
            path.display()
        ))),
        (ConvertMode::Auto, Some(_)) => Ok(ConvertMode::None),
        (mode, _) => Ok(mode),
    }
}

/// The object key for a disk sent as `format`: the file name, its extension replaced by the
/// format's when the disk is converted (`web.raw` → `web.qcow2`).
pub fn default_key(path: &Path, prepared: &PreparedUpload) -> Option<String> {
    let name = Path::new(path.file_name()?);
    let key = if prepared.converted() {
        name.with_extension("qcow2")
    } else {
        name.to_path_buf()
    };
    key.to_str().map(str::to_string)
}
