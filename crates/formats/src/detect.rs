//! Content-based format detection.

use crate::UNSUPPORTED_FORMAT;
use preflight_disk::{Format, Source};
use preflight_report::Finding;
use std::io;

/// Bytes read from the start of the file for detection: enough for a tar
/// header, a VDI pre-header and a VMDK descriptor's first lines.
const HEAD_LEN: usize = 4096;

/// ISO 9660's first volume descriptor: sector 16 of 2048 bytes, `CD001` at
/// byte 1 of it.
const ISO9660_MAGIC_OFFSET: u64 = 16 * 2048 + 1;

/// The result of [`detect`].
#[derive(Debug)]
pub enum Detected {
    /// A format we read.
    Format(Format),
    /// A format ECS cannot import; named, with what to do instead.
    Refused(Refusal),
    /// A zero-length file.
    Empty,
}

/// A recognised format that ECS does not take.
#[derive(Debug)]
pub struct Refusal {
    /// Short name of the format (`vdi`, `gzip`, …).
    pub name: &'static str,
    /// The error finding, with a hint naming the command that fixes it.
    pub finding: Finding,
}

fn refuse(name: &'static str, what: &str, hint: &str) -> Detected {
    Detected::Refused(Refusal {
        name,
        finding: UNSUPPORTED_FORMAT.finding_with_hint(
            format!("the file is {what}, which ECS ImportImage does not accept"),
            hint,
        ),
    })
}

const CONVERT_HINT: &str = "Convert it to qcow2: `qemu-img convert -O qcow2 IN OUT.qcow2`.";

/// A Bochs growing or undoable disk: its header opens with this string
/// (NUL-padded to 32 bytes), then the type `Redolog`.
const BOCHS_MAGIC: &[u8] = b"Bochs Virtual HD Image\0";
const BOCHS_TYPE: &[u8] = b"Redolog\0";

/// A cloop (compressed loop) image opens with this shell preamble, which
/// qemu-img compares whole when probing.
const CLOOP_MAGIC: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

/// Detects the format of `src` from its content. Only I/O errors fail.
pub fn detect(src: &dyn Source) -> io::Result<Detected> {
    let size = src.size();
    if size == 0 {
        return Ok(Detected::Empty);
    }
    let head_len =
        usize::try_from(size.min(u64::try_from(HEAD_LEN).unwrap_or(u64::MAX))).unwrap_or(HEAD_LEN);
    let mut head = vec![0u8; head_len];
    src.read_exact_at(0, &mut head)?;
    let starts = |magic: &[u8]| head.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| {
        head.get(offset..offset.saturating_add(magic.len()))
            .is_some_and(|bytes| bytes == magic)
    };

    if starts(b"QFI\xfb") {
        let version = head
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if version == Some(1) {
            return Ok(refuse(
                "qcow",
                "a qcow version 1 image",
                "Convert it to qcow2: `qemu-img convert -f qcow -O qcow2 IN OUT.qcow2`.",
            ));
        }
        return Ok(Detected::Format(Format::Qcow2));
    }
    if starts(b"vhdxfile") {
        return Ok(Detected::Format(Format::Vhdx));
    }
    if starts(b"conectix") {
        return Ok(Detected::Format(Format::Vhd));
    }
    if starts(b"KDMV") {
        return Ok(Detected::Format(Format::Vmdk));
    }
    if starts(b"COWD") {
        return Ok(refuse(
            "vmdk-cowd",
            "an ESX vmfsSparse (COWD) VMDK delta",
            "Export the disk as a single file first (`vmkfstools -i IN.vmdk -d thin OUT.vmdk`), then `qemu-img convert -O qcow2 OUT.vmdk OUT.qcow2`.",
        ));
    }
    if starts(b"QED\0") {
        return Ok(refuse("qed", "a QED image", CONVERT_HINT));
    }
    if at(0x40, &[0x7f, 0x10, 0xda, 0xbe]) {
        return Ok(refuse("vdi", "a VirtualBox VDI image", "Convert it: `qemu-img convert -f vdi -O qcow2 IN.vdi OUT.qcow2` (or `VBoxManage clonemedium IN.vdi OUT.vhd --format VHD`)."));
    }
    if starts(b"LUKS\xba\xbe") {
        return Ok(refuse(
            "luks",
            "a LUKS-encrypted volume",
            "ECS cannot import encrypted images: decrypt it, e.g. `qemu-img convert --object secret,id=s,file=KEYFILE --image-opts driver=luks,key-secret=s,file.filename=IN -O qcow2 OUT.qcow2`.",
        ));
    }
    if starts(b"WithoutFreeSpace") || starts(b"WithouFreSpacExt") {
        return Ok(refuse("parallels", "a Parallels image", CONVERT_HINT));
    }
    if starts(BOCHS_MAGIC) && at(32, BOCHS_TYPE) {
        return Ok(refuse(
            "bochs",
            "a Bochs disk image",
            "Convert it to qcow2: `qemu-img convert -f bochs -O qcow2 IN OUT.qcow2`.",
        ));
    }
    if starts(CLOOP_MAGIC) {
        return Ok(refuse(
            "cloop",
            "a cloop compressed image",
            "Convert it to qcow2: `qemu-img convert -f cloop -O qcow2 IN OUT.qcow2`.",
        ));
    }
    if starts(&[0x1f, 0x8b]) {
        return Ok(refuse(
            "gzip",
            "gzip-compressed",
            "Decompress it first: `gunzip -k FILE`.",
        ));
    }
    if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(refuse(
            "xz",
            "xz-compressed",
            "Decompress it first: `unxz -k FILE`.",
        ));
    }
    if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(refuse(
            "zstd",
            "zstd-compressed",
            "Decompress it first: `unzstd FILE`.",
        ));
    }
    if starts(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) && at(4, b"1AY&SY")
    {
        return Ok(refuse(
            "bzip2",
            "bzip2-compressed",
            "Decompress it first: `bunzip2 -k FILE`.",
        ));
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return Ok(refuse(
            "zip",
            "a zip archive",
            "Extract the disk image first: `unzip FILE`.",
        ));
    }
    if starts(b"7z\xbc\xaf\x27\x1c") {
        return Ok(refuse(
            "7z",
            "a 7-Zip archive",
            "Extract the disk image first: `7z x FILE`.",
        ));
    }
    if at(257, b"ustar") {
        let first_name = head.get(..100).unwrap_or(&[]);
        let name_end = first_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(first_name.len());
        let name = String::from_utf8_lossy(&first_name[..name_end]);
        if name.to_ascii_lowercase().ends_with(".ovf") {
            return Ok(refuse(
                "ova",
                "an OVA appliance (a tar holding an OVF descriptor and its disks)",
                "Extract it (`tar xf FILE.ova`) and check the .vmdk disk inside, or convert it: `qemu-img convert -O qcow2 DISK.vmdk OUT.qcow2`.",
            ));
        }
        return Ok(refuse(
            "tar",
            "a tar archive",
            "Extract the disk image first: `tar xf FILE`.",
        ));
    }
    if preflight_vmdk::is_descriptor(&head) {
        return Ok(Detected::Format(Format::Vmdk));
    }
    if let Some(tail_at) = size.checked_sub(512) {
        let mut tail = [0u8; 512];
        src.read_exact_at(tail_at, &mut tail)?;
        if tail.starts_with(b"conectix") {
            return Ok(Detected::Format(Format::Vhd));
        }
        if tail.starts_with(b"koly") {
            return Ok(refuse(
                "dmg",
                "an Apple disk image (DMG)",
                "Convert it to qcow2: `qemu-img convert -f dmg -O qcow2 IN OUT.qcow2` (qemu-img takes a DMG only by its .dmg name or -f dmg).",
            ));
        }
    }
    if size >= ISO9660_MAGIC_OFFSET + 5 {
        let mut magic = [0u8; 5];
        src.read_exact_at(ISO9660_MAGIC_OFFSET, &mut magic)?;
        // A hybrid ISO (isohybrid) also carries an MBR and could boot as a
        // disk, but ECS documents no ISO import: refuse both.
        if &magic == b"CD001" {
            return Ok(refuse(
                "iso",
                "an ISO 9660 CD/DVD image",
                "ECS imports disk images, not installer media: install the OS onto a disk (e.g. with virt-install or Packer) and import that disk.",
            ));
        }
    }
    Ok(Detected::Format(Format::Raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_bytes(bytes: Vec<u8>) -> String {
        match detect(&bytes).unwrap() {
            Detected::Format(f) => f.as_str().to_string(),
            Detected::Refused(r) => format!("refused:{}", r.name),
            Detected::Empty => "empty".to_string(),
        }
    }

    fn with_prefix(prefix: &[u8], len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[..prefix.len()].copy_from_slice(prefix);
        v
    }

    #[test]
    fn magics() {
        assert_eq!(
            detect_bytes(with_prefix(b"QFI\xfb\0\0\0\x03", 4096)),
            "qcow2"
        );
        assert_eq!(
            detect_bytes(with_prefix(b"QFI\xfb\0\0\0\x01", 4096)),
            "refused:qcow"
        );
        assert_eq!(detect_bytes(with_prefix(b"vhdxfile", 4096)), "vhdx");
        assert_eq!(detect_bytes(with_prefix(b"KDMV", 4096)), "vmdk");
        assert_eq!(
            detect_bytes(with_prefix(b"COWD", 4096)),
            "refused:vmdk-cowd"
        );
        assert_eq!(detect_bytes(with_prefix(b"QED\0", 4096)), "refused:qed");
        assert_eq!(
            detect_bytes(with_prefix(b"LUKS\xba\xbe", 4096)),
            "refused:luks"
        );
        assert_eq!(
            detect_bytes(with_prefix(&[0x1f, 0x8b, 8], 100)),
            "refused:gzip"
        );
        assert_eq!(
            detect_bytes(with_prefix(&[0xfd, b'7', b'z', b'X', b'Z', 0], 100)),
            "refused:xz"
        );
        assert_eq!(
            detect_bytes(with_prefix(&[0x28, 0xb5, 0x2f, 0xfd], 100)),
            "refused:zstd"
        );
        assert_eq!(
            detect_bytes(with_prefix(b"BZh91AY&SY", 100)),
            "refused:bzip2"
        );
        assert_eq!(detect_bytes(with_prefix(b"PK\x03\x04", 100)), "refused:zip");
        assert_eq!(detect_bytes(Vec::new()), "empty");
        assert_eq!(detect_bytes(vec![0u8; 1 << 20]), "raw");
    }

    #[test]
    fn vdi_signature_at_0x40() {
        let mut v = with_prefix(b"<<< Oracle VM VirtualBox Disk Image >>>\n", 4096);
        v[0x40..0x44].copy_from_slice(&[0x7f, 0x10, 0xda, 0xbe]);
        assert_eq!(detect_bytes(v), "refused:vdi");
    }

    #[test]
    fn fixed_vhd_by_footer_only() {
        let mut v = vec![0u8; 8192 + 512];
        v[8192..8200].copy_from_slice(b"conectix");
        assert_eq!(detect_bytes(v), "vhd");
    }

    #[test]
    fn tar_and_ova() {
        let mut tar = vec![0u8; 4096];
        tar[..8].copy_from_slice(b"disk.img");
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect_bytes(tar.clone()), "refused:tar");
        tar[..8].copy_from_slice(b"appl.ovf");
        assert_eq!(detect_bytes(tar), "refused:ova");
    }

    /// Hand-made headers of the formats qemu-img reads but cannot write.
    #[test]
    fn bochs_cloop_and_dmg_are_refused() {
        let mut bochs = with_prefix(b"Bochs Virtual HD Image", 512);
        bochs[32..39].copy_from_slice(b"Redolog");
        bochs[48..55].copy_from_slice(b"Growing");
        bochs[64..68].copy_from_slice(&0x0002_0000u32.to_le_bytes());
        assert_eq!(detect_bytes(bochs), "refused:bochs");
        // The magic without the Redolog type is not a Bochs image.
        assert_eq!(
            detect_bytes(with_prefix(b"Bochs Virtual HD Image", 512)),
            "raw"
        );
        let mut cloop = with_prefix(CLOOP_MAGIC, 4096);
        cloop[128..132].copy_from_slice(&65536u32.to_be_bytes());
        assert_eq!(detect_bytes(cloop), "refused:cloop");
        let mut dmg = vec![0u8; 8192];
        dmg[8192 - 512..8192 - 508].copy_from_slice(b"koly");
        assert_eq!(detect_bytes(dmg), "refused:dmg");
    }

    #[test]
    fn iso() {
        let mut v = vec![0u8; 64 * 1024];
        v[32769..32774].copy_from_slice(b"CD001");
        assert_eq!(detect_bytes(v), "refused:iso");
    }

    #[test]
    fn short_files_do_not_panic() {
        for len in 1..600 {
            let _ = detect_bytes(vec![0x51; len]);
            let _ = detect_bytes(with_prefix(b"QFI", len.max(3)));
        }
    }
}
