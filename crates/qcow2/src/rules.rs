//! Every rule this crate can emit, with its stable code.
//!
//! Codes are `QCOW2.<PascalCase>`. The first group makes [`crate::open`] fail
//! (the header cannot be understood, or qemu refuses to open the image); the
//! rest come from [`preflight_disk::DiskImage::check`].

use preflight_report::{Rule, Severity};

const REWRITE: &str = "Rewrite the image with `qemu-img convert -O qcow2 in.qcow2 out.qcow2` \
from a healthy copy, or re-export it from the source hypervisor.";

/// The file is shorter than its own header or than a data cluster it uses.
pub static TRUNCATED: Rule = Rule::new(
    "QCOW2.Truncated",
    Severity::Error,
    "The file is cut short: the header or a data cluster lies past its end",
    "The file is incomplete (interrupted copy, download or upload?). Copy it again from the \
    source and compare checksums, or re-export the disk.",
);

/// Magic is not `QFI\xfb`.
pub static BAD_MAGIC: Rule = Rule::new(
    "QCOW2.BadMagic",
    Severity::Error,
    "The file does not start with the qcow2 magic QFI\\xfb",
    "This is not a qcow2 image. Check the format with `qemu-img info in.img`.",
);

/// Version is not 2 or 3.
pub static UNSUPPORTED_VERSION: Rule = Rule::new(
    "QCOW2.UnsupportedVersion",
    Severity::Error,
    "The qcow2 version must be 2 (compat 0.10) or 3 (compat 1.1)",
    "Convert the image with a tool that reads it, e.g. `qemu-img convert -O qcow2 -o compat=1.1 \
    in.img out.qcow2` (version 1 is the old qcow format: `-f qcow`).",
);

/// cluster_bits out of range.
pub static CLUSTER_BITS: Rule = Rule::new(
    "QCOW2.ClusterBits",
    Severity::Error,
    "cluster_bits must be 9 to 21 (512 B to 2 MiB clusters); 14 or more with extended L2",
    REWRITE,
);

/// header_length out of range.
pub static HEADER_LENGTH: Rule = Rule::new(
    "QCOW2.HeaderLength",
    Severity::Error,
    "A v3 header_length must be at least 104 and fit in the first cluster",
    REWRITE,
);

/// Unknown incompatible feature bit.
pub static UNKNOWN_INCOMPATIBLE_FEATURE: Rule = Rule::new(
    "QCOW2.UnknownIncompatibleFeature",
    Severity::Error,
    "The header sets incompatible feature bits that no reader may ignore",
    "The image was written by a newer or foreign tool. Convert it with that tool to a plain \
    qcow2 (`qemu-img convert -O qcow2 in.qcow2 out.qcow2`) or to raw.",
);

/// Bad compression type or compression feature bit.
pub static COMPRESSION_TYPE: Rule = Rule::new(
    "QCOW2.CompressionType",
    Severity::Error,
    "compression_type must be 0 (zlib) or 1 (zstd), with the compression feature bit set \
    iff it is not zlib",
    REWRITE,
);

/// refcount_order > 6.
pub static REFCOUNT_ORDER: Rule = Rule::new(
    "QCOW2.RefcountOrder",
    Severity::Error,
    "refcount_order must be at most 6 (64-bit reference counts)",
    REWRITE,
);

/// crypt_method not 0, 1 or 2.
pub static ENCRYPTION_METHOD: Rule = Rule::new(
    "QCOW2.EncryptionMethod",
    Severity::Error,
    "crypt_method must be 0 (none), 1 (AES) or 2 (LUKS)",
    "The image uses an unknown encryption scheme; decrypt it with the tool that made it and \
    convert it to an unencrypted qcow2 or raw image.",
);

/// Virtual size too big for the cluster size.
pub static TOO_BIG: Rule = Rule::new(
    "QCOW2.TooBig",
    Severity::Error,
    "The virtual size needs more L1 entries than qemu supports",
    "The size field is corrupt or the image too big for its cluster size. Check `qemu-img info`; \
    convert with a bigger cluster size (`-o cluster_size=2M`) if the size is genuine.",
);

/// L1 table too small for the virtual size.
pub static L1_TOO_SMALL: Rule = Rule::new(
    "QCOW2.L1TooSmall",
    Severity::Error,
    "The L1 table must have enough entries to map the whole virtual size",
    REWRITE,
);

/// L1 table over qemu's 32 MiB limit.
pub static L1_TOO_LARGE: Rule = Rule::new(
    "QCOW2.L1TooLarge",
    Severity::Error,
    "The active L1 table must be at most 32 MiB (4194304 entries)",
    REWRITE,
);

/// L1 table offset not cluster aligned.
pub static L1_UNALIGNED: Rule = Rule::new(
    "QCOW2.L1Unaligned",
    Severity::Error,
    "The active L1 table offset must be cluster aligned",
    REWRITE,
);

/// Refcount table header fields or entries invalid.
pub static REFCOUNT_TABLE: Rule = Rule::new(
    "QCOW2.RefcountTable",
    Severity::Error,
    "The refcount table must exist, be cluster aligned, at most 8 MiB, with valid entries",
    "Repair the reference counts with `qemu-img check -r all in.qcow2` (on a copy), then \
    rewrite with `qemu-img convert -O qcow2 in.qcow2 out.qcow2`.",
);

/// Snapshot table invalid.
pub static SNAPSHOT_TABLE: Rule = Rule::new(
    "QCOW2.SnapshotTable",
    Severity::Error,
    "The snapshot table and each snapshot's L1 table must be aligned, complete and within limits",
    "Delete the broken snapshots (`qemu-img snapshot -l` / `-d`), or copy only the current \
    state with `qemu-img convert -O qcow2 in.qcow2 out.qcow2`.",
);

/// Backing file name field invalid.
pub static BACKING_FILE_NAME: Rule = Rule::new(
    "QCOW2.BackingFileName",
    Severity::Error,
    "The backing file name must lie in the first cluster and be at most 1023 bytes",
    REWRITE,
);

/// A header extension is malformed.
pub static HEADER_EXTENSION: Rule = Rule::new(
    "QCOW2.HeaderExtension",
    Severity::Error,
    "Header extensions must fit in the first cluster and have valid contents",
    REWRITE,
);

/// External data file.
pub static EXTERNAL_DATA_FILE: Rule = Rule::new(
    "QCOW2.ExternalDataFile",
    Severity::Error,
    "The guest data live in an external data file, not in this file",
    "Upload a self-contained image: `qemu-img convert -O qcow2 in.qcow2 out.qcow2` (qemu reads \
    the data file named in the image).",
);

/// Backing file: the image is an overlay.
pub static BACKING_FILE: Rule = Rule::new(
    "QCOW2.BackingFile",
    Severity::Error,
    "The image has a backing file: it holds only the changes made on top of another image",
    "Flatten the backing chain into one file: `qemu-img convert -O qcow2 overlay.qcow2 \
    flat.qcow2`.",
);

/// Encrypted image.
pub static ENCRYPTED: Rule = Rule::new(
    "QCOW2.Encrypted",
    Severity::Error,
    "The image is encrypted; ECS cannot import encrypted qcow2 images",
    "Decrypt it: `qemu-img convert --object secret,id=sec0,data=PASSPHRASE --image-opts \
    driver=qcow2,file.filename=in.qcow2,encrypt.key-secret=sec0 -O qcow2 out.qcow2`.",
);

/// Dirty bit set.
pub static DIRTY: Rule = Rule::new(
    "QCOW2.Dirty",
    Severity::Error,
    "The dirty bit is set: the image was not closed cleanly and its refcounts may be stale",
    "Let qemu repair it (on a copy): `qemu-img check -r all in.qcow2`, which clears the bit.",
);

/// Corrupt bit set.
pub static CORRUPT: Rule = Rule::new(
    "QCOW2.Corrupt",
    Severity::Error,
    "The corrupt bit is set: qemu found corruption in the metadata",
    "Repair a copy with `qemu-img check -r all in.qcow2`, verify the guest, then rewrite it with \
    `qemu-img convert -O qcow2 in.qcow2 out.qcow2`.",
);

/// A table lies (partly) past the end of the file.
pub static TABLE_OUT_OF_BOUNDS: Rule = Rule::new(
    "QCOW2.TableOutOfBounds",
    Severity::Error,
    "Metadata tables (L1, L2, refcount, snapshot, bitmap) must lie inside the file",
    "The file is truncated or its metadata corrupt. Copy it again from the source; if the source \
    is also damaged, try `qemu-img check -r all` on a copy.",
);

/// Bad L1 entry.
pub static L1_ENTRY: Rule = Rule::new(
    "QCOW2.L1Entry",
    Severity::Error,
    "L1 entries must have no reserved bits, cluster-aligned L2 offsets, and distinct L2 tables",
    REWRITE,
);

/// Bad L2 entry.
pub static L2_ENTRY: Rule = Rule::new(
    "QCOW2.L2Entry",
    Severity::Error,
    "L2 entries must have no reserved bits, aligned offsets inside the file and valid \
    subcluster bitmaps",
    REWRITE,
);

/// Two metadata structures share a cluster.
pub static OVERLAPPING_METADATA: Rule = Rule::new(
    "QCOW2.OverlappingMetadata",
    Severity::Error,
    "Metadata structures must not overlap each other, the header or guest data",
    REWRITE,
);

/// refcount lower than the references.
pub static REFCOUNT_MISMATCH: Rule = Rule::new(
    "QCOW2.RefcountMismatch",
    Severity::Error,
    "A cluster's reference count is lower than the number of references to it",
    "The image is corrupt (a write could overwrite live data). Repair a copy with \
    `qemu-img check -r all in.qcow2` and verify the guest before importing.",
);

/// References exceed what the refcount width can hold.
pub static REFCOUNT_OVERFLOW: Rule = Rule::new(
    "QCOW2.RefcountOverflow",
    Severity::Error,
    "A cluster has more references than refcount_bits can count",
    "Rewrite with wider refcounts: `qemu-img convert -O qcow2 -o refcount_bits=16 in.qcow2 \
    out.qcow2`.",
);

/// COPIED flag disagrees with refcount == 1.
pub static COPIED_FLAG: Rule = Rule::new(
    "QCOW2.CopiedFlag",
    Severity::Error,
    "The COPIED flag of active L1/L2 entries must be set exactly when the refcount is 1",
    "Repair a copy with `qemu-img check -r all in.qcow2`.",
);

/// Persistent bitmap metadata invalid.
pub static BITMAPS: Rule = Rule::new(
    "QCOW2.Bitmaps",
    Severity::Error,
    "The persistent dirty bitmap directory and tables must be valid",
    "Remove the bitmaps (`qemu-img bitmap --remove in.qcow2 NAME`) or rewrite the image with \
    `qemu-img convert -O qcow2 in.qcow2 out.qcow2`.",
);

/// I/O error while reading metadata.
pub static IO: Rule = Rule::new(
    "QCOW2.Io",
    Severity::Error,
    "The image file could not be read",
    "Check that the file is readable and the disk healthy, then run the check again.",
);

/// Leaked clusters.
pub static LEAKED_CLUSTERS: Rule = Rule::new(
    "QCOW2.LeakedClusters",
    Severity::Warning,
    "Some clusters have a reference count but nothing uses them (wasted space, no harm to data)",
    "Reclaim the space with `qemu-img check -r leaks in.qcow2`, or rewrite with \
    `qemu-img convert -O qcow2 in.qcow2 out.qcow2`.",
);

/// The check stopped early on a resource limit.
pub static CHECK_LIMIT: Rule = Rule::new(
    "QCOW2.CheckLimit",
    Severity::Warning,
    "The metadata check stopped early because the image's metadata is larger than expected",
    "Run `qemu-img check in.qcow2` to check the image fully.",
);

/// zstd-compressed clusters: newer than the qcow2 readers ECS is documented to use.
pub static ZSTD_COMPRESSION: Rule = Rule::new(
    "QCOW2.ZstdCompression",
    Severity::Warning,
    "The image's compressed clusters use zstd (compression_type 1), which qemu added in 5.1; \
    whether ECS's import reads it is not documented",
    "Rewrite it with zlib or uncompressed: `qemu-img convert -O qcow2 -o compression_type=zlib \
    in.qcow2 out.qcow2` (or without -c to store clusters uncompressed).",
);

/// Extended L2 entries (subclusters).
pub static EXTENDED_L2: Rule = Rule::new(
    "QCOW2.ExtendedL2",
    Severity::Warning,
    "The image uses extended L2 entries (subclusters), which qemu added in 5.2; whether ECS's \
    import reads them is not documented",
    "Rewrite it without them: `qemu-img convert -O qcow2 -o extended_l2=off in.qcow2 out.qcow2`.",
);

/// The image carries internal snapshots.
pub static SNAPSHOTS: Rule = Rule::new(
    "QCOW2.Snapshots",
    Severity::Info,
    "The image holds internal snapshots; only the current state is imported",
    "Nothing to fix. To drop them and shrink the upload: `qemu-img convert -O qcow2 \
    in.qcow2 out.qcow2`.",
);

/// Every rule of this crate, for the catalogue.
pub static RULES: &[&Rule] = &[
    &TRUNCATED,
    &BAD_MAGIC,
    &UNSUPPORTED_VERSION,
    &CLUSTER_BITS,
    &HEADER_LENGTH,
    &UNKNOWN_INCOMPATIBLE_FEATURE,
    &COMPRESSION_TYPE,
    &REFCOUNT_ORDER,
    &ENCRYPTION_METHOD,
    &TOO_BIG,
    &L1_TOO_SMALL,
    &L1_TOO_LARGE,
    &L1_UNALIGNED,
    &REFCOUNT_TABLE,
    &SNAPSHOT_TABLE,
    &BACKING_FILE_NAME,
    &HEADER_EXTENSION,
    &EXTERNAL_DATA_FILE,
    &BACKING_FILE,
    &ENCRYPTED,
    &DIRTY,
    &CORRUPT,
    &TABLE_OUT_OF_BOUNDS,
    &L1_ENTRY,
    &L2_ENTRY,
    &OVERLAPPING_METADATA,
    &REFCOUNT_MISMATCH,
    &REFCOUNT_OVERFLOW,
    &COPIED_FLAG,
    &BITMAPS,
    &IO,
    &LEAKED_CLUSTERS,
    &CHECK_LIMIT,
    &SNAPSHOTS,
    &ZSTD_COMPRESSION,
    &EXTENDED_L2,
];
