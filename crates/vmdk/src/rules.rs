//! Every check this crate makes, with its stable `VMDK.*` code.

use preflight_report::{Rule, Severity};

const CONVERT: &str = "Convert the disk to a single file: `qemu-img convert -O vmdk -o subformat=streamOptimized in.vmdk out.vmdk`, or `qemu-img convert -O qcow2 in.vmdk out.qcow2`.";

/// The file is neither a sparse extent (`KDMV`) nor a text descriptor.
pub static MAGIC: Rule = Rule::new(
    "VMDK.Magic",
    Severity::Error,
    "A VMDK starts with the sparse magic `KDMV` or is a text descriptor",
    "The file is not a VMDK disk (or not the one you meant): check that the upload is the disk image itself.",
);
/// An ESX `COWD` (vmfsSparse) extent: a snapshot delta.
pub static COWD: Rule = Rule::new(
    "VMDK.Cowd",
    Severity::Error,
    "ESX vmfsSparse (COWD) extents are snapshot deltas and are not supported",
    "Consolidate the snapshots in vSphere (or export the VM as OVF/OVA) and import the resulting disk, or convert it with `qemu-img convert -O qcow2`.",
);
/// The file or one of its structures ends early.
pub static TRUNCATED: Rule = Rule::new(
    "VMDK.Truncated",
    Severity::Error,
    "The file holds the whole header and everything the header says comes before the data",
    "The file is truncated: copy or download it again and compare its size with the original.",
);
/// Header version.
pub static VERSION: Rule = Rule::new(
    "VMDK.Version",
    Severity::Error,
    "The sparse header version is 1, 2 or 3",
    "Only VMDK sparse versions 1 to 3 are understood; re-export the disk from the hypervisor or convert it with qemu-img.",
);
/// Unknown header flag bits.
pub static FLAGS: Rule = Rule::new(
    "VMDK.Flags",
    Severity::Warning,
    "The sparse header sets only known flags",
    "Unknown flag bits may mean a newer or damaged VMDK; convert it with `qemu-img convert -O qcow2` if the import fails.",
);
/// Capacity out of range.
pub static CAPACITY: Rule = Rule::new(
    "VMDK.Capacity",
    Severity::Error,
    "The capacity is at most 1 PiB",
    "The header's capacity is damaged; the image cannot be used as it is.",
);
/// Grain size out of range.
pub static GRAIN_SIZE: Rule = Rule::new(
    "VMDK.GrainSize",
    Severity::Error,
    "The grain size is a power of two above 8 sectors and at most 0x200000 sectors",
    "The header's grain size is damaged; the image cannot be used as it is.",
);
/// Grain table entries per table out of range.
pub static GTES_PER_GT: Rule = Rule::new(
    "VMDK.GtesPerGt",
    Severity::Error,
    "The number of entries per grain table is between 1 and 512",
    "The header's grain table size is damaged; the image cannot be used as it is.",
);
/// Grain directory too large (qemu: `L1 size too big`).
pub static L1_SIZE: Rule = Rule::new(
    "VMDK.L1Size",
    Severity::Error,
    "The grain directory has at most 32M entries (qemu: L1 size too big)",
    "The capacity, grain size or grain table size in the header is damaged.",
);
/// Grain directory outside the file.
pub static GD_OFFSET: Rule = Rule::new(
    "VMDK.GdOffset",
    Severity::Error,
    "The grain directory and its redundant copy lie inside the file",
    "The grain directory offset is damaged or the file is truncated: copy the file again.",
);
/// Embedded descriptor outside the file or too large.
pub static DESCRIPTOR_OFFSET: Rule = Rule::new(
    "VMDK.DescriptorOffset",
    Severity::Error,
    "The embedded descriptor lies inside the file and is at most 1 MiB",
    "The header's descriptor offset or size is damaged.",
);
/// Unknown compression algorithm.
pub static COMPRESSION: Rule = Rule::new(
    "VMDK.Compression",
    Severity::Error,
    "The compression algorithm is 0 (none) or 1 (deflate)",
    "The image uses a compression this tool (and qemu) cannot read; re-export it as streamOptimized or convert it.",
);
/// The newline check bytes were changed: a text-mode transfer.
pub static NEWLINE: Rule = Rule::new(
    "VMDK.Newline",
    Severity::Error,
    "The header's newline check bytes read `\\n \\r\\n`",
    "The file was transferred in text (ASCII) mode, which rewrote line endings and damaged it: copy it again in binary mode (e.g. FTP `binary`).",
);
/// Unclean shutdown flag.
pub static UNCLEAN_SHUTDOWN: Rule = Rule::new(
    "VMDK.UncleanShutdown",
    Severity::Warning,
    "The sparse extent was closed cleanly",
    "The disk was not closed cleanly (the VM or tool was still running or crashed): shut the VM down, or copy the disk while it is not in use.",
);
/// Missing or bad streamOptimized footer or end-of-stream marker.
pub static FOOTER: Rule = Rule::new(
    "VMDK.Footer",
    Severity::Error,
    "A streamOptimized file ends with its footer and an end-of-stream marker",
    "The stream is incomplete (an interrupted export, download or upload): export or copy it again.",
);
/// An inline-GD streamOptimized file without an end-of-stream marker.
/// qemu-img itself writes such files (seen with qemu 10.0.2 when the last
/// grain holds data), and the inline grain directory still locates every
/// grain, so this is a warning, not an error.
pub static NO_END_OF_STREAM: Rule = Rule::new(
    "VMDK.NoEndOfStream",
    Severity::Warning,
    "A streamOptimized file with an inline grain directory has no end-of-stream marker",
    "If the file was copied or downloaded, compare its size with the original; qemu-img writes such files, and `qemu-img convert -O qcow2` gives a format ECS takes without preview.",
);
/// Grain directory entry pointing past the end of the file.
pub static GT_OFFSET: Rule = Rule::new(
    "VMDK.GtOffset",
    Severity::Error,
    "Every grain table lies inside the file",
    "The grain directory is damaged or the file is truncated: copy the file again.",
);
/// Metadata tables overlapping.
pub static TABLE_OVERLAP: Rule = Rule::new(
    "VMDK.TableOverlap",
    Severity::Error,
    "Grain tables do not overlap each other, the header, the descriptor or the grain directories",
    "The image's metadata is damaged; the image cannot be trusted as it is.",
);
/// Grain pointing past the end of the file or into metadata.
pub static GRAIN_OFFSET: Rule = Rule::new(
    "VMDK.GrainOffset",
    Severity::Error,
    "Every grain lies inside the file and outside the metadata",
    "Grain table entries point outside the data: the file is truncated or damaged. Copy it again.",
);
/// Bad compressed-grain marker.
pub static GRAIN_MARKER: Rule = Rule::new(
    "VMDK.GrainMarker",
    Severity::Error,
    "Each compressed grain's marker names its own sector and a size inside the file",
    "The streamOptimized data is truncated or damaged: export or copy it again.",
);
/// Compressed grain that does not inflate to at most one grain.
pub static COMPRESSED_GRAIN: Rule = Rule::new(
    "VMDK.CompressedGrain",
    Severity::Error,
    "Each compressed grain is a valid zlib stream inflating to at most the grain size",
    "The streamOptimized data is damaged: export or copy it again.",
);
/// Grain directory and its redundant copy disagree.
pub static REDUNDANT_GD: Rule = Rule::new(
    "VMDK.RedundantGd",
    Severity::Warning,
    "The grain directory and its redundant copy describe the same grains",
    "One copy of the grain metadata is stale; `qemu-img convert` reads the primary copy. Convert the disk if the import fails.",
);
/// Descriptor syntax or values.
pub static DESCRIPTOR: Rule = Rule::new(
    "VMDK.Descriptor",
    Severity::Error,
    "The descriptor is well-formed: `key=value` lines, extent lines and comments, at most 1 MiB",
    "Fix the named line in the descriptor (it is plain text), or re-export the disk.",
);
/// Unknown createType.
pub static CREATE_TYPE: Rule = Rule::new(
    "VMDK.CreateType",
    Severity::Error,
    "The descriptor's createType is a known VMDK type",
    "Re-export the disk as streamOptimized or monolithicSparse, or convert it with qemu-img.",
);
/// Known but unsupported createType (raw device maps, seSparse, vmfsSparse).
pub static UNSUPPORTED_TYPE: Rule = Rule::new(
    "VMDK.UnsupportedType",
    Severity::Error,
    "The disk is not a raw device mapping, a device, or a snapshot format (seSparse, vmfsSparse)",
    "Such a VMDK does not hold the disk's data in importable files: clone or export the VM's disk to a streamOptimized VMDK (ovftool) or qcow2 first.",
);
/// Extent type or access that cannot be read.
pub static EXTENT_TYPE: Rule = Rule::new(
    "VMDK.ExtentType",
    Severity::Error,
    "Every extent is FLAT, VMFS, SPARSE or ZERO and readable",
    "Clone or export the disk to a streamOptimized VMDK or qcow2 first.",
);
/// A delta (child) disk.
pub static DELTA: Rule = Rule::new(
    "VMDK.Delta",
    Severity::Error,
    "The disk has no parent (parentCID=ffffffff, no parentFileNameHint)",
    "This is a snapshot delta: it holds only changed blocks and is not importable. Consolidate the snapshots (or `qemu-img convert` the child, which reads through the parent) and import the result.",
);
/// Extent name escaping the descriptor's directory.
pub static EXTENT_PATH: Rule = Rule::new(
    "VMDK.ExtentPath",
    Severity::Error,
    "Extent file names are relative, without `..` and without NUL",
    "Edit the descriptor so that extent files are named relative to it and lie beside it.",
);
/// Extent file missing or unreadable.
pub static MISSING_EXTENT: Rule = Rule::new(
    "VMDK.MissingExtent",
    Severity::Error,
    "Every extent file the descriptor names can be opened",
    "Put the named extent files next to the descriptor, or convert the disk to one file with qemu-img where they are.",
);
/// Extent file size disagrees with the descriptor.
pub static EXTENT_SIZE: Rule = Rule::new(
    "VMDK.ExtentSize",
    Severity::Error,
    "Each extent file holds as many sectors as the descriptor says",
    "An extent file is truncated or belongs to another disk: copy the files again.",
);
/// A descriptor plus extent files: not one object.
pub static MULTI_FILE: Rule = Rule::new(
    "VMDK.MultiFile",
    Severity::Error,
    "ECS imports a disk from one object; this VMDK is a descriptor plus extent files",
    CONVERT,
);
/// The file could not be read.
pub static IO: Rule = Rule::new(
    "VMDK.Io",
    Severity::Error,
    "The image files can be read",
    "Check that the file is readable and not being written to.",
);

/// Every rule of this crate, for `ecs-preflight rules`.
pub static RULES: &[&Rule] = &[
    &MAGIC,
    &COWD,
    &TRUNCATED,
    &VERSION,
    &FLAGS,
    &CAPACITY,
    &GRAIN_SIZE,
    &GTES_PER_GT,
    &L1_SIZE,
    &GD_OFFSET,
    &DESCRIPTOR_OFFSET,
    &COMPRESSION,
    &NEWLINE,
    &UNCLEAN_SHUTDOWN,
    &FOOTER,
    &NO_END_OF_STREAM,
    &GT_OFFSET,
    &TABLE_OVERLAP,
    &GRAIN_OFFSET,
    &GRAIN_MARKER,
    &COMPRESSED_GRAIN,
    &REDUNDANT_GD,
    &DESCRIPTOR,
    &CREATE_TYPE,
    &UNSUPPORTED_TYPE,
    &EXTENT_TYPE,
    &DELTA,
    &EXTENT_PATH,
    &MISSING_EXTENT,
    &EXTENT_SIZE,
    &MULTI_FILE,
    &IO,
];

/// The hint for a multi-file disk, naming the user's descriptor.
pub(crate) fn convert_hint(name: &str) -> String {
    format!(
        "Convert the disk to a single file and upload that: `qemu-img convert -O vmdk -o subformat=streamOptimized '{name}' single.vmdk`, or `qemu-img convert -O qcow2 '{name}' disk.qcow2`."
    )
}
