//! Every check the guest inspector makes, with its stable code.

use preflight_report::{Rule, Severity};

/// A read of the guest disk failed.
pub static READ_ERROR: Rule = Rule::new(
    "GUEST.ReadError",
    Severity::Error,
    "the guest disk could be read where its structures point",
    "Check the image with `qemu-img check`; the container may be truncated or corrupt.",
);
/// MBR or GPT structures are invalid.
pub static PARTITION_TABLE_CORRUPT: Rule = Rule::new(
    "GUEST.PartitionTableCorrupt",
    Severity::Error,
    "the partition table (MBR, GPT header, GPT entries) is valid",
    "Repair the partition table in the source VM (gdisk/sgdisk, fdisk) and export the image again.",
);
/// GPT backup header missing or different.
pub static GPT_BACKUP: Rule = Rule::new("GUEST.GptBackupHeader", Severity::Warning, "the GPT backup header at the end of the disk is present and matches the primary", "Run `sgdisk -e` (move the backup header to the end) or `gdisk` verify/repair in the source VM.");
/// A hybrid MBR.
pub static HYBRID_MBR: Rule = Rule::new("GUEST.HybridMbr", Severity::Warning, "a GPT disk has a plain protective MBR, not a hybrid one", "Convert the hybrid MBR to a protective MBR (`sgdisk -z` is destructive; use gdisk's 'n' in the recovery menu).");
/// A partition reaches past the disk or overlaps another.
pub static PARTITION_GEOMETRY: Rule = Rule::new(
    "GUEST.PartitionGeometry",
    Severity::Error,
    "partitions lie inside the disk and do not overlap",
    "Fix the partition table; the image may have been truncated when it was exported.",
);
/// A filesystem declares more blocks than its partition holds.
pub static FS_LARGER_THAN_PARTITION: Rule = Rule::new("GUEST.FilesystemLargerThanPartition", Severity::Error, "each filesystem fits inside its partition", "Shrink the filesystem (resize2fs) or grow the partition before exporting; the kernel refuses such a filesystem.");
/// A filesystem could not be read.
pub static FS_CORRUPT: Rule = Rule::new(
    "GUEST.FilesystemCorrupt",
    Severity::Error,
    "each filesystem's metadata can be read",
    "Run fsck on the filesystem in the source VM and export the image again.",
);
/// A filesystem or volume manager this inspector does not read.
pub static FS_UNSUPPORTED: Rule = Rule::new("GUEST.FilesystemNotInspected", Severity::Warning, "every volume can be inspected offline (LUKS, exFAT, LVM2 volumes not linear on this disk, unknown contents are not)", "Checks that need files on this volume were skipped; verify them in the source VM.");
/// A journaled filesystem was not cleanly unmounted.
pub static FS_NEEDS_RECOVERY: Rule = Rule::new("GUEST.FilesystemNeedsRecovery", Severity::Warning, "each filesystem was cleanly unmounted (its journal holds nothing to replay)", "The image looks copied from a running VM: shut it down (or freeze its filesystems) before exporting, so no write is lost. The kernel replays the journal at the first boot.");
/// LVM2 physical volume found.
pub static LVM: Rule = Rule::new("GUEST.Lvm", Severity::Warning, "the system disk holds plain partitions, not LVM2 physical volumes", "LVM roots import, but Alibaba's image check flags them and offline checks of the root cannot run; prefer a plain root partition.");
/// No operating system found.
pub static NO_OS: Rule = Rule::new(
    "GUEST.NoOperatingSystem",
    Severity::Error,
    "a Linux or Windows root filesystem is found on the system disk",
    "Import the system disk (the one holding / or C:\\), not a data disk.",
);
/// No root among the volumes read, but some could not be read.
pub static INCOMPLETE: Rule = Rule::new("GUEST.InspectionIncomplete", Severity::Warning, "every volume that could hold the operating system root can be read", "The guest checks (OS, drivers, boot) did not run on the volumes named; repair them (fsck, chkdsk) in the source VM and export again, or verify the guest there.");
/// More than one root filesystem.
pub static MULTIPLE_ROOTS: Rule = Rule::new("GUEST.MultipleRoots", Severity::Error, "the system disk holds exactly one operating system root", "ECS supports one root partition on the system disk; remove the other OS or import it separately.");
/// The root's fstab names a / that is not in the image.
pub static ROOT_NOT_ON_DISK: Rule = Rule::new(
    "GUEST.RootNotOnSystemDisk",
    Severity::Error,
    "the root filesystem named by /etc/fstab is on this disk",
    "Import the disk that holds the root filesystem as the system disk.",
);
/// A kernel without a virtio block driver reachable at boot.
pub static NO_VIRTIO_BLK: Rule = Rule::new("GUEST.NoVirtioBlockDriver", Severity::Error, "the boot kernel can reach an ECS system disk (virtio-blk): virtio_blk and virtio_pci, with the modules they need, built in or inside its initramfs (virtio_scsi alone does not)", "Add virtio_blk virtio_pci virtio_ring virtio to /etc/initramfs-tools/modules (Debian/Ubuntu) or dracut add_drivers (RHEL family) and rebuild the initramfs (update-initramfs -u -k all / dracut -f --regenerate-all).");
/// Another installed kernel lacks the virtio block driver.
pub static OTHER_KERNEL_NO_VIRTIO: Rule = Rule::new("GUEST.KernelWithoutVirtio", Severity::Warning, "every installed kernel can reach a virtio disk at boot", "Rebuild the initramfs of every kernel with the virtio drivers, or remove the kernels that lack them.");
/// No virtio_net.
pub static NO_VIRTIO_NET: Rule = Rule::new(
    "GUEST.NoVirtioNetDriver",
    Severity::Warning,
    "the boot kernel has virtio_net (built in or as a module)",
    "Install a kernel with virtio_net; without it the instance boots with no network.",
);
/// NVMe requested; the guest reaches an NVMe disk but not a virtio-blk one.
pub static NVME_ONLY_STORAGE: Rule = Rule::new("GUEST.NvmeOnlyStorage", Severity::Warning, "with --nvme-support supported, the guest reaches a virtio-blk system disk as well as an NVMe one (Linux: virtio_blk and nvme at boot; Windows: viostor and stornvme boot-start)", "Instance types without NVMe give the system disk as virtio-blk: add virtio_blk (Linux initramfs) or viostor (Windows, boot-start) so the image boots on every type.");
/// NVMe not reachable at boot.
pub static NO_NVME: Rule = Rule::new("GUEST.NoNvmeDriver", Severity::Info, "the boot kernel can reach an NVMe disk at boot (nvme built in or in the initramfs)", "Instance types with NVMe system disks (e.g. g7se, g8i) need nvme in the initramfs; leave NvmeSupport=unsupported otherwise.");
/// No kernel found.
pub static NO_KERNEL: Rule = Rule::new(
    "GUEST.NoKernel",
    Severity::Error,
    "a Linux root has a kernel in /boot",
    "Install a kernel package; the image cannot boot without one.",
);
/// The initramfs is missing.
pub static INITRAMFS_MISSING: Rule = Rule::new(
    "GUEST.InitramfsMissing",
    Severity::Warning,
    "each kernel has an initramfs in /boot",
    "Rebuild it: update-initramfs -c -k <version> or dracut -f --kver <version>.",
);
/// The initramfs could not be read.
pub static INITRAMFS_UNREADABLE: Rule = Rule::new("GUEST.InitramfsUnreadable", Severity::Warning, "each initramfs can be unpacked (cpio newc; gzip, zstd, xz, lzma, lz4, bzip2, lzop; dracut's squash-root.img squashfs)", "The drivers inside it could not be checked; verify with lsinitramfs/lsinitrd in the source VM.");
/// The initramfs holds modules of another kernel version.
pub static INITRAMFS_KERNEL_MISMATCH: Rule = Rule::new("GUEST.InitramfsKernelMismatch", Severity::Warning, "each initramfs holds the modules of the kernel it belongs to (lib/modules/<version>/)", "Rebuild the initramfs for its kernel: update-initramfs -u -k <version> or dracut -f --kver <version>; modules of another version do not load.");
/// Decompression stopped at its limit.
pub static DECOMPRESSION_LIMIT: Rule = Rule::new("GUEST.DecompressionLimit", Severity::Warning, "an unpacked initramfs stays under the inspector's size limit", "The file unpacks to more than the limit (a decompression bomb, or a huge initramfs); inspect it in the source VM.");
/// A path the checks need is over one of the inspector's own limits.
pub static READ_LIMIT: Rule = Rule::new("GUEST.ReadLimit", Severity::Warning, "every file and directory the checks need can be read within the inspector's limits", "The named path was not read because it is over one of ecs-preflight's limits, not because the filesystem is damaged: the checks that need it did not run, so the verdict is incomplete. Verify them in the source VM.");
/// fstab names a device by kernel name.
pub static FSTAB_DEVICE_NAME: Rule = Rule::new("GUEST.FstabDeviceName", Severity::Warning, "/etc/fstab names filesystems by UUID or LABEL, not by /dev/sdX, /dev/vdX or /dev/xvdX", "Device names change on ECS (disks are /dev/vdX or /dev/nvmeXnY); use UUID= from blkid in /etc/fstab.");
/// fstab names a UUID/LABEL no filesystem has.
pub static FSTAB_UNKNOWN: Rule = Rule::new("GUEST.FstabUnknownDevice", Severity::Error, "each UUID= or LABEL= in /etc/fstab names a filesystem in the image", "Fix the entry, or add `nofail` for a data disk that is imported separately; a missing device stops the boot in emergency mode.");
/// GRUB passes root=/dev/sdX.
pub static GRUB_ROOT_DEVICE: Rule = Rule::new(
    "GUEST.GrubRootDeviceName",
    Severity::Warning,
    "the GRUB kernel command line names root by UUID, not root=/dev/sdX",
    "Set root=UUID=<uuid> (GRUB_DISABLE_LINUX_UUID=false, then update-grub / grub2-mkconfig).",
);
/// cloud-init not installed.
pub static NO_CLOUD_INIT: Rule = Rule::new(
    "GUEST.CloudInitMissing",
    Severity::Warning,
    "cloud-init is installed, so ECS can set the hostname, password, keys and network",
    "Install cloud-init (Alibaba Cloud's build for old systems).",
);
/// qemu-guest-agent installed.
pub static QEMU_GA: Rule = Rule::new("GUEST.QemuGuestAgent", Severity::Warning, "qemu-guest-agent is not installed (Alibaba's import requirements)", "Uninstall qemu-guest-agent (apt remove / yum remove qemu-guest-agent); it conflicts with the ECS agent.");
/// SELinux enforcing.
pub static SELINUX: Rule = Rule::new(
    "GUEST.SelinuxEnforcing",
    Severity::Warning,
    "SELinux is not enforcing in /etc/selinux/config",
    "Set SELINUX=disabled or permissive; ECS initialisation may be blocked otherwise.",
);
/// /etc/shadow immutable.
pub static SHADOW_IMMUTABLE: Rule = Rule::new(
    "GUEST.ShadowImmutable",
    Severity::Error,
    "/etc/shadow is not immutable (chattr +i)",
    "Run `chattr -i /etc/shadow`; ECS cannot set the root password otherwise.",
);
/// ext4 64bit feature.
pub static EXT4_64BIT: Rule = Rule::new("GUEST.Ext4Feature64bit", Severity::Warning, "ext4 filesystems do not use the 64bit feature (Alibaba's import rules)", "Older ECS import pipelines refuse 64bit ext4; recreate the filesystem with `mkfs.ext4 -O ^64bit` or `resize2fs -s` if the import fails.");
/// ext4 project + quota.
pub static EXT4_PROJECT_QUOTA: Rule = Rule::new(
    "GUEST.Ext4ProjectQuota",
    Severity::Error,
    "ext4 filesystems do not have both the project and quota features",
    "Remove one: `tune2fs -O ^project` (Alibaba's import rules refuse both together).",
);
/// CONFIG_FW_CFG_SYSFS missing.
pub static FW_CFG: Rule = Rule::new("GUEST.FwCfgSysfs", Severity::Warning, "the kernel has CONFIG_FW_CFG_SYSFS (needed on arm64, CentOS Stream, Anolis, AlmaLinux, UOS, Kylin, Rocky Linux)", "Use a kernel with CONFIG_FW_CFG_SYSFS=y (Linux > 4.6, CentOS > 3.10.0-826.el7) so ECS can set passwords and keys.");
/// RTC not UTC on arm64.
pub static RTC_LOCAL: Rule = Rule::new(
    "GUEST.RtcNotUtc",
    Severity::Warning,
    "arm64 guests keep the RTC in UTC (/etc/adjtime)",
    "Run `timedatectl set-local-rtc 0` in the source VM.",
);
/// No boot loader.
pub static NO_BOOT_LOADER: Rule = Rule::new(
    "GUEST.NoBootLoader",
    Severity::Error,
    "the disk can boot: BIOS boot code in the MBR, or an ESP with an EFI loader",
    "Install GRUB to the disk (grub-install) or an EFI loader to the ESP before exporting.",
);
/// An ESP that could not be read.
pub static ESP_UNREADABLE: Rule = Rule::new("GUEST.EspUnreadable", Severity::Warning, "every EFI System Partition can be read (FAT12/16/32) to look for its EFI loaders", "The boot loader was not checked: run fsck.vfat on the ESP in the source VM (or check that \\EFI\\BOOT\\BOOTX64.EFI is there) and export again.");
/// UEFI-only image and arch mismatch etc.
pub static BOOT_MODE_UEFI_ONLY: Rule = Rule::new(
    "GUEST.UefiOnly",
    Severity::Info,
    "the image boots with BIOS, or is imported with BootMode=UEFI",
    "Import with BootMode=UEFI; choose an instance type that supports UEFI.",
);
/// An ESP without the removable-media fallback loader.
pub static EFI_NO_FALLBACK: Rule = Rule::new("GUEST.EfiNoFallbackLoader", Severity::Warning, "the ESP has the fallback loader \\EFI\\BOOT\\BOOTX64.EFI (BOOTAA64.EFI on arm64), which UEFI firmware boots without an NVRAM entry", "A new ECS instance has no NVRAM boot entry: copy the loader to the fallback path in the source VM (e.g. grub-install --removable, or cp shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI with fbx64.efi beside it).");
/// The primary interface has a static address.
pub static NETWORK_STATIC: Rule = Rule::new("GUEST.NetworkStatic", Severity::Warning, "the primary network interface gets its address by DHCP", "ECS assigns the address by DHCP; a static address from the source network leaves the instance unreachable. Configure the interface for DHCP.");
/// The network configuration is pinned to a MAC address.
pub static NETWORK_MAC_PINNED: Rule = Rule::new("GUEST.NetworkMacPinned", Severity::Warning, "no network configuration is bound to the source VM's MAC address", "The ECS NIC has another MAC address: remove HWADDR/MACADDR, netplan macaddress/match, [Match] MACAddress= and /etc/udev/rules.d/70-persistent-net.rules.");
/// No configuration for the first NIC.
pub static NETWORK_NOT_CONFIGURED: Rule = Rule::new("GUEST.NetworkNotConfigured", Severity::Warning, "the first network interface is configured (DHCP), or cloud-init configures it", "Configure eth0 (or the predictable name) for DHCP, or install cloud-init; without it the instance has no network.");
/// Windows without viostor.
pub static WIN_NO_VIOSTOR: Rule = Rule::new("GUEST.WindowsNoVirtioStorage", Severity::Error, "Windows has the viostor service (virtio-blk, the ECS system disk) as a boot-start driver (Start=0) with its .sys file; vioscsi alone does not reach the disk", "Install the virtio-win drivers (viostor) in the source VM, or inject them offline with virt-v2v-in-place, before exporting.");
/// Windows without netkvm.
pub static WIN_NO_NETKVM: Rule = Rule::new(
    "GUEST.WindowsNoVirtioNet",
    Severity::Warning,
    "Windows has the netkvm (virtio network) service and driver file",
    "Install the virtio-win network driver (netkvm) in the source VM.",
);
/// A registry hive cannot be read.
pub static HIVE_CORRUPT: Rule = Rule::new(
    "GUEST.RegistryHiveCorrupt",
    Severity::Error,
    "the SYSTEM and SOFTWARE registry hives can be read",
    "Boot the source VM cleanly and shut it down before exporting the disk.",
);
/// A dirty hive.
pub static HIVE_DIRTY: Rule = Rule::new("GUEST.RegistryHiveDirty", Severity::Warning, "the registry hives were cleanly written (primary and secondary sequence numbers match)", "Shut Windows down cleanly (not hibernate, fast startup off) before exporting; pending .LOG1/.LOG2 changes were not read.");
/// Architecture not determined.
pub static ARCH_UNKNOWN: Rule = Rule::new(
    "GUEST.ArchitectureUnknown",
    Severity::Warning,
    "the guest architecture can be read from its binaries",
    "Pass the architecture explicitly when importing.",
);
/// The OS is not an ECS platform.
pub static PLATFORM_OTHER: Rule = Rule::new(
    "GUEST.PlatformNotListed",
    Severity::Info,
    "the guest OS maps to a named ECS platform",
    "The image is imported as 'Others Linux' / 'Other Windows'; ECS configures it less.",
);
/// `/` or `/boot` (fstab, or the kernel's root=) named by a device name ECS changes.
pub static BOOT_DEVICE_NAME: Rule = Rule::new("GUEST.BootDeviceName", Severity::Error, "/ and /boot are not named in /etc/fstab or root= by a device name no ECS system disk has (/dev/sdX, /dev/hdX, /dev/xvdX, /dev/vdb…; only vda and nvme0n1 exist)", "ECS system disks are /dev/vda (virtio) or /dev/nvme0n1: the name does not exist there and the boot stops. Use UUID= (blkid) in /etc/fstab and root=UUID=… (update-grub / grub2-mkconfig).");
/// An encrypted volume where the root should be.
pub static ENCRYPTED: Rule = Rule::new("GUEST.EncryptedDisk", Severity::Error, "the system disk is not encrypted (LUKS, BitLocker)", "ECS cannot unlock an encrypted system disk at boot (no passphrase prompt, no TPM): decrypt it in the source VM (cryptsetup reencrypt --decrypt, manage-bde -off) and export again.");
/// A partition is an md RAID member.
pub static MD_RAID: Rule = Rule::new("GUEST.MdRaidMember", Severity::Warning, "the system disk holds plain partitions, not md RAID members", "ECS attaches this one disk: the array can only run degraded from it, if the initramfs assembles a degraded array. Prefer a plain partition (the RAID1 member's data is a plain filesystem).");
/// An OS that is recognised but not inspected (FreeBSD).
pub static OS_NOT_INSPECTED: Rule = Rule::new("GUEST.OsNotInspected", Severity::Warning, "the guest OS is one the inspector reads (Linux, Windows)", "The guest was recognised but not inspected: drivers, boot configuration and fstab were not checked. Verify in the source VM that it boots from a virtio disk (FreeBSD: virtio_blk, if_vtnet).");
/// A partition table written for 4096-byte sectors.
pub static SECTOR_4KN: Rule = Rule::new("GUEST.Sector4Kn", Severity::Warning, "the partition table is written for 512-byte sectors (ECS disks are 512e)", "On an ECS disk with 512-byte logical sectors a 4Kn table's partitions land in the wrong place; recreate the table and filesystems on a 512-byte-sector disk before exporting.");
/// A parser crashed (bug): the rest of the inspection continued.
pub static INTERNAL: Rule = Rule::new(
    "GUEST.InternalError",
    Severity::Error,
    "the inspector read every structure without an internal error",
    "This is a bug in ecs-preflight; please report it with the message.",
);

/// Every guest rule, for `ecs-preflight rules`.
pub static RULES: &[&Rule] = &[
    &READ_ERROR,
    &PARTITION_TABLE_CORRUPT,
    &GPT_BACKUP,
    &HYBRID_MBR,
    &PARTITION_GEOMETRY,
    &FS_LARGER_THAN_PARTITION,
    &FS_CORRUPT,
    &FS_UNSUPPORTED,
    &FS_NEEDS_RECOVERY,
    &LVM,
    &NO_OS,
    &INCOMPLETE,
    &MULTIPLE_ROOTS,
    &ROOT_NOT_ON_DISK,
    &NO_VIRTIO_BLK,
    &OTHER_KERNEL_NO_VIRTIO,
    &NO_VIRTIO_NET,
    &NVME_ONLY_STORAGE,
    &NO_NVME,
    &NO_KERNEL,
    &INITRAMFS_MISSING,
    &INITRAMFS_UNREADABLE,
    &INITRAMFS_KERNEL_MISMATCH,
    &DECOMPRESSION_LIMIT,
    &READ_LIMIT,
    &FSTAB_DEVICE_NAME,
    &FSTAB_UNKNOWN,
    &GRUB_ROOT_DEVICE,
    &NO_CLOUD_INIT,
    &QEMU_GA,
    &SELINUX,
    &SHADOW_IMMUTABLE,
    &EXT4_64BIT,
    &EXT4_PROJECT_QUOTA,
    &FW_CFG,
    &RTC_LOCAL,
    &NO_BOOT_LOADER,
    &ESP_UNREADABLE,
    &BOOT_MODE_UEFI_ONLY,
    &EFI_NO_FALLBACK,
    &NETWORK_STATIC,
    &NETWORK_MAC_PINNED,
    &NETWORK_NOT_CONFIGURED,
    &WIN_NO_VIOSTOR,
    &WIN_NO_NETKVM,
    &HIVE_CORRUPT,
    &HIVE_DIRTY,
    &ARCH_UNKNOWN,
    &PLATFORM_OTHER,
    &BOOT_DEVICE_NAME,
    &ENCRYPTED,
    &MD_RAID,
    &OS_NOT_INSPECTED,
    &SECTOR_4KN,
    &INTERNAL,
];
