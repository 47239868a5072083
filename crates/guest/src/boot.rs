//! BIOS versus UEFI: MBR boot code, GRUB core in the post-MBR gap, BIOS
//! boot partition, and the EFI System Partition's loaders.

use crate::cache::CachedDisk;
use crate::fs::FsKind;
use crate::part::{GUID_BIOS_BOOT, GUID_ESP};
use crate::{exe, rules, GuestFacts, Sink, Volume};
use serde::Serialize;

/// Largest EFI loader read to learn its architecture (shim and GRUB are
/// 1-3 MiB; Windows' bootmgfw.efi ~2 MiB).
const MAX_LOADER: u64 = 32 * 1024 * 1024;

/// How the disk boots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BootInfo {
    /// The disk can boot with BIOS (boot code in the MBR, and on GPT a BIOS
    /// boot partition).
    pub bios: bool,
    /// The disk can boot with UEFI (an ESP holding an EFI loader).
    pub uefi: bool,
    /// What the MBR boot code is: `grub`, `windows`, `syslinux`, `other`, or
    /// `None` when the first 440 bytes are zero.
    pub mbr_boot_code: Option<String>,
    /// GRUB's core.img follows the MBR (LBA 1).
    pub grub_core_after_mbr: bool,
    /// A GPT BIOS boot partition (bios_grub) exists.
    pub bios_boot_partition: bool,
    /// Partition number of the ESP.
    pub esp_partition: Option<u32>,
    /// EFI loaders found on the ESP (`/EFI/BOOT/BOOTX64.EFI`…).
    pub efi_loaders: Vec<String>,
    /// Architecture of the EFI loaders (PE machine).
    pub efi_arch: Option<String>,
    /// The ESP has the removable-media fallback loader for the guest's architecture
    /// (`/EFI/BOOT/BOOTX64.EFI`, `BOOTAA64.EFI`): the only one UEFI firmware boots on a new
    /// machine, which has no NVRAM boot entry.
    pub efi_fallback_loader: bool,
}

impl BootInfo {
    /// Every ImportImage `BootMode` the disk has a boot loader for: `BIOS`, `UEFI`, or both
    /// (a hybrid disk). arm64 has no BIOS, so an arm64 guest lists at most `UEFI`.
    pub fn modes(&self, architecture: Option<&str>) -> Vec<String> {
        let bios = self.bios && architecture != Some("arm64");
        [(bios, "BIOS"), (self.uefi, "UEFI")]
            .into_iter()
            .filter(|(ok, _)| *ok)
            .map(|(_, m)| m.to_string())
            .collect()
    }
}

fn classify_mbr_code(code: &[u8]) -> Option<String> {
    if code.iter().all(|&b| b == 0) {
        return None;
    }
    let has = |needle: &[u8]| memchr::memmem::find(code, needle).is_some();
    Some(
        if crate::bytes::magic_at(code, 0x180, b"GRUB ") {
            "grub"
        } else if has(b"Invalid partition table") || has(b"Missing operating system") {
            "windows"
        } else if has(b"SYSLINUX") || has(b"MBR") && has(b"Missing OS") {
            "syslinux"
        } else {
            "other"
        }
        .into(),
    )
}

pub(crate) fn inspect(
    cache: &CachedDisk<'_>,
    vols: &mut [Volume<'_>],
    facts: &mut GuestFacts,
    sink: &mut Sink,
) {
    let mut b = BootInfo::default();
    if let Ok(s0) = cache.read_vec(0, 512) {
        // The boot code is what precedes the disk signature at 440.
        b.mbr_boot_code = s0.get(..440).and_then(classify_mbr_code);
        // Skip the check on a GPT disk: LBA 1 is the GPT header.
        if facts.partition_table.kind != "gpt" {
            if let Ok(s1) = cache.read_vec(512, 4) {
                b.grub_core_after_mbr =
                    s1 == [0x52, 0x56, 0xbe, 0x1b] || s1 == [0x52, 0xe8, 0x28, 0x01];
            }
        }
    }
    // FreeBSD's gptboot partition plays the part of GRUB's BIOS boot partition.
    b.bios_boot_partition = facts
        .partitions
        .iter()
        .any(|p| p.type_id == GUID_BIOS_BOOT || p.type_id == crate::foreign::GUID_FREEBSD_BOOT);
    b.bios =
        b.mbr_boot_code.is_some() && (facts.partition_table.kind != "gpt" || b.bios_boot_partition);

    // ESP: GPT type, or MBR type 0xEF; failing that, any FAT holding /EFI.
    let esp_parts: Vec<u32> = facts
        .partitions
        .iter()
        .filter(|p| p.type_id == GUID_ESP || p.type_id == "0xef")
        .map(|p| p.number)
        .collect();
    // ESPs whose FAT was opened; the others were not read.
    let mut esp_read: Vec<u32> = Vec::new();
    for v in vols.iter_mut() {
        let Some(f) = facts.filesystems.get(v.fs_index) else {
            continue;
        };
        if f.kind != FsKind::Fat {
            continue;
        }
        let typed = f.partition.is_some_and(|n| esp_parts.contains(&n));
        let Some(fs) = v.fs.as_mut() else { continue };
        if typed {
            esp_read.extend(f.partition);
        }
        if !typed && !fs.is_dir("/EFI") {
            continue;
        }
        let mut loaders = Vec::new();
        for d in fs.list("/EFI").unwrap_or_default() {
            for n in fs.list(&format!("/EFI/{d}")).unwrap_or_default() {
                let up = n.to_ascii_uppercase();
                let loader = (d.eq_ignore_ascii_case("BOOT")
                    && up.starts_with("BOOT")
                    && up.ends_with(".EFI"))
                    || [
                        "GRUBX64.EFI",
                        "SHIMX64.EFI",
                        "GRUBAA64.EFI",
                        "SHIMAA64.EFI",
                        "GRUBIA32.EFI",
                    ]
                    .contains(&up.as_str());
                if loader {
                    loaders.push(format!("/EFI/{d}/{n}"));
                }
            }
            if d.eq_ignore_ascii_case("Microsoft") {
                let p = format!("/EFI/{d}/Boot/bootmgfw.efi");
                if fs.exists(&p) {
                    loaders.push(p);
                }
            }
        }
        if loaders.is_empty() {
            continue;
        }
        if b.efi_arch.is_none() {
            for l in &loaders {
                if let Ok(data) = fs.read(l, MAX_LOADER) {
                    if let Some(a) = exe::pe_arch(&data) {
                        b.efi_arch = Some(a);
                        break;
                    }
                }
            }
        }
        b.esp_partition = b.esp_partition.or(f.partition);
        b.efi_loaders.extend(loaders);
        b.uefi = true;
    }

    let arch = facts.architecture.clone().or_else(|| b.efi_arch.clone());
    let fallback_name = match arch.as_deref() {
        Some("arm64") => Some("BOOTAA64.EFI"),
        Some("x86_64") => Some("BOOTX64.EFI"),
        Some("i386") => Some("BOOTIA32.EFI"),
        _ => None,
    };
    b.efi_fallback_loader = b.efi_loaders.iter().any(|l| {
        let up = l.to_ascii_uppercase();
        match fallback_name {
            Some(n) => up == format!("/EFI/BOOT/{n}"),
            None => up.starts_with("/EFI/BOOT/BOOT"),
        }
    });
    if b.uefi && !b.efi_fallback_loader {
        sink.push(rules::EFI_NO_FALLBACK.finding(format!(
            "the ESP has {} but no \\EFI\\BOOT\\{}; UEFI firmware with no NVRAM boot entry (a new ECS instance) finds nothing to boot{}",
            b.efi_loaders.join(", "),
            fallback_name.unwrap_or("BOOTX64.EFI"),
            if b.bios { "; the disk still boots with BIOS" } else { "" }
        )));
    }
    facts.boot_mode = if arch.as_deref() == Some("arm64") {
        b.uefi.then(|| "UEFI".to_string())
    } else if b.bios {
        Some("BIOS".into())
    } else if b.uefi {
        Some("UEFI".into())
    } else {
        None
    };
    let esp_unread: Vec<String> = esp_parts
        .iter()
        .filter(|n| !esp_read.contains(n))
        .map(|n| format!("partition {n}"))
        .collect();
    if !esp_unread.is_empty() && !b.uefi {
        // The loader may be there: a missing-loader error would send the user the wrong way.
        sink.push(rules::ESP_UNREADABLE.finding(format!(
            "the EFI System Partition ({}) could not be read as FAT, so its EFI loaders were not checked; {}",
            esp_unread.join(", "),
            if b.bios {
                "the disk boots with BIOS, whether it also boots with UEFI is unknown"
            } else {
                "the boot verdict is incomplete"
            }
        )));
    }
    if facts.boot_mode.is_none() && esp_unread.is_empty() {
        sink.push(rules::NO_BOOT_LOADER.finding(match (&b.mbr_boot_code, facts.partition_table.kind.as_str()) {
            (Some(_), "gpt") => "GPT disk with MBR boot code but no BIOS boot partition, and no ESP with an EFI loader".to_string(),
            _ => "no boot code in the MBR and no ESP with an EFI loader".to_string(),
        }));
    } else if facts.boot_mode.as_deref() == Some("UEFI") && arch.as_deref() != Some("arm64") {
        sink.push(
            rules::BOOT_MODE_UEFI_ONLY
                .finding("the disk boots with UEFI only; import it with BootMode=UEFI"),
        );
    }
    facts.boot = b;
}
