//! Rules comparing what the user declared with what guest inspection found.
//! Guest inspection comes in its own issue; these rules are ready for it.

use crate::input::{GuestFacts, ImportParams};
use preflight_report::{Finding, Rule, Severity};

/// `--architecture` differs from the guest's.
pub static ARCHITECTURE: Rule = Rule::new(
    "GuestMismatch.Architecture",
    Severity::Error,
    "The given Architecture differs from the architecture of the OS found in the image",
    "Pass the architecture the guest was built for, or leave --architecture out to use the detected one.",
);

/// `--os-type` differs from the guest's.
pub static OS_TYPE: Rule = Rule::new(
    "GuestMismatch.OSType",
    Severity::Error,
    "The given OSType differs from the OS found in the image",
    "Pass the guest's OS type, or leave --os-type out to use the detected one.",
);

/// `--platform` differs from the guest's.
pub static PLATFORM: Rule = Rule::new(
    "GuestMismatch.Platform",
    Severity::Warning,
    "The given Platform differs from the distribution found in the image",
    "Pass the guest's platform, or leave --platform out to use the detected one.",
);

/// `--boot-mode` differs from how the disk can boot.
pub static BOOT_MODE: Rule = Rule::new(
    "GuestMismatch.BootMode",
    Severity::Error,
    "The given BootMode is not how the disk boots: instances would fail to start",
    "Pass the boot mode the disk has a boot loader for, or leave --boot-mode out to use the detected one.",
);

/// `--nvme-support` differs from the guest's drivers.
pub static NVME_SUPPORT: Rule = Rule::new(
    "GuestMismatch.NvmeSupport",
    Severity::Warning,
    "The given NvmeSupport differs from the NVMe driver support found in the guest",
    "Pass --nvme-support supported only when the guest's initramfs has the nvme driver.",
);

/// `--nvme-support supported` for a guest whose boot kernel cannot reach an NVMe disk.
pub static NVME_DRIVER_MISSING: Rule = Rule::new(
    "GuestMismatch.NvmeDriverMissing",
    Severity::Error,
    "NvmeSupport=supported is given only for a guest that can boot from an NVMe disk",
    "Add nvme to the initramfs (dracut add_drivers+=\" nvme \", or /etc/initramfs-tools/modules) and rebuild it, or import with NvmeSupport=unsupported.",
);

/// A finding for each value both given and detected that differ.
pub(crate) fn check(params: &ImportParams, guest: &GuestFacts) -> Vec<Finding> {
    let pairs: [(&Rule, &str, &Option<String>, &Option<String>); 5] = [
        (
            &ARCHITECTURE,
            "architecture",
            &params.architecture,
            &guest.architecture,
        ),
        (&OS_TYPE, "OS type", &params.os_type, &guest.os_type),
        (&PLATFORM, "platform", &params.platform, &guest.platform),
        (&BOOT_MODE, "boot mode", &params.boot_mode, &guest.boot_mode),
        (
            &NVME_SUPPORT,
            "NVMe support",
            &params.nvme_support,
            &guest.nvme_support,
        ),
    ];
    let fallback = (params.boot_mode.as_deref() == Some("UEFI") && guest.uefi_without_fallback)
        .then(|| {
            BOOT_MODE.finding(
                "boot mode \"UEFI\" was given but the ESP has no fallback loader (\\EFI\\BOOT\\BOOTX64.EFI): a new instance's firmware has no NVRAM entry and finds nothing to boot",
            )
        });
    pairs
        .into_iter()
        .filter_map(|(rule, what, given, found)| match (given, found) {
            // A disk that boots both ways takes either.
            (Some(g), Some(_)) if rule == &BOOT_MODE && guest.boot_modes.contains(g) => None,
            // Declaring NVMe for a guest without the driver is worse than a mismatch: NVMe
            // instances cannot find their system disk.
            (Some(g), Some(f)) if rule == &NVME_SUPPORT && g == "supported" && f == "unsupported" => {
                Some(NVME_DRIVER_MISSING.finding(
                    "NvmeSupport \"supported\" was given but the guest's boot kernel has no nvme driver at boot (built in or in its initramfs): instances with an NVMe system disk would not boot",
                ))
            }
            (Some(g), Some(f)) if g != f => {
                Some(rule.finding(format!("{what} {g:?} was given but the guest is {f:?}")))
            }
            _ => None,
        })
        .chain(fallback)
        .collect()
}
