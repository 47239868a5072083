//! Partition tables: MBR (with extended/logical partitions), GPT (primary
//! and backup headers, CRCs), protective and hybrid MBRs.

use crate::bytes;
use crate::cache::{CachedDisk, View};
use crate::rules;
use crate::Sink;
use serde::Serialize;

/// Most logical partitions followed in an extended partition's EBR chain
/// (Linux stops at 60; a loop in the chain must not spin).
const MAX_LOGICAL: usize = 128;

/// Largest GPT entry array read (the usual one is 16 KiB; 1 MiB allows 8192
/// entries of 128 bytes, beyond any real table).
const MAX_GPT_ARRAY: u64 = 1024 * 1024;

/// GPT partition type of an EFI System Partition.
pub(crate) const GUID_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// GPT partition type of a GRUB BIOS boot partition.
pub(crate) const GUID_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";

/// The partition table found on the disk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionTable {
    /// `mbr`, `gpt` or `none` (a filesystem on the whole disk, or nothing).
    pub kind: String,
    /// Sector size the table was found with (512 or 4096).
    pub sector_size: u64,
    /// MBR disk signature (hex) or GPT disk GUID.
    pub disk_id: Option<String>,
    /// A GPT disk whose MBR also lists partitions (a hybrid MBR).
    pub hybrid_mbr: bool,
    /// GPT only: the backup header was found, valid, and matches.
    pub gpt_backup_ok: Option<bool>,
}

/// One partition.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    /// Partition number as Linux numbers it (sda1 = 1; logical from 5).
    pub number: u32,
    /// Offset on the disk, in bytes.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// MBR type byte (`0x83`) or GPT type GUID.
    pub type_id: String,
    /// What the type means, when known (`linux`, `efi-system`, …).
    pub type_name: Option<String>,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT unique partition GUID (PARTUUID).
    pub partuuid: Option<String>,
    /// MBR active flag (or GPT legacy-BIOS-bootable attribute).
    pub bootable: bool,
}

/// Formats a mixed-endian GUID as text (`C12A7328-F81F-…`).
pub(crate) fn guid(b: &[u8; 16]) -> String {
    let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, n0, n1, n2, n3, n4, n5] = *b;
    format!(
        "{:08X}-{:04X}-{:04X}-{d0:02X}{d1:02X}-{n0:02X}{n1:02X}{n2:02X}{n3:02X}{n4:02X}{n5:02X}",
        u32::from_le_bytes([a0, a1, a2, a3]),
        u16::from_le_bytes([b0, b1]),
        u16::from_le_bytes([c0, c1]),
    )
}

/// One of the four 16-byte entries of an MBR or EBR.
#[derive(Debug, Clone, Copy)]
struct MbrEntry {
    status: u8,
    ty: u8,
    lba: u64,
    count: u64,
}

/// The fields read from a 512-byte MBR or EBR.
#[derive(Debug, Clone, Copy)]
struct Mbr {
    disk_signature: u32,
    boot_signature: u16,
    entries: [MbrEntry; 4],
}

impl Mbr {
    /// `None` when `s` is shorter than a sector.
    fn parse(s: &[u8]) -> Option<Mbr> {
        let entry = |i: usize| -> Option<MbrEntry> {
            let [status, _, _, _, ty, _, _, _, l0, l1, l2, l3, c0, c1, c2, c3] =
                bytes::array::<16>(s, 446 + i * 16)?;
            Some(MbrEntry {
                status,
                ty,
                lba: u32::from_le_bytes([l0, l1, l2, l3]).into(),
                count: u32::from_le_bytes([c0, c1, c2, c3]).into(),
            })
        };
        Some(Mbr {
            disk_signature: bytes::le32(s, 440)?,
            boot_signature: bytes::le16(s, 510)?,
            entries: [entry(0)?, entry(1)?, entry(2)?, entry(3)?],
        })
    }
}

fn mbr_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x01 | 0x04 | 0x06 | 0x0b | 0x0c | 0x0e => "fat",
        0x05 | 0x0f | 0x85 => "extended",
        0x07 => "ntfs",
        0x27 => "windows-recovery",
        0x82 => "linux-swap",
        0x83 => "linux",
        0x8e => "linux-lvm",
        0xa5 => "freebsd",
        0xee => "gpt-protective",
        0xef => "efi-system",
        0xfd => "linux-raid",
        _ => return None,
    })
}

fn gpt_type_name(g: &str) -> Option<&'static str> {
    Some(match g {
        GUID_ESP => "efi-system",
        GUID_BIOS_BOOT => "bios-boot",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "linux",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "linux-root-x86-64",
        "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" => "linux-root-arm64",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "linux-xbootldr",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "linux-lvm",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "linux-swap",
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => "linux-raid",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "microsoft-basic-data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "microsoft-reserved",
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" => "windows-recovery",
        crate::foreign::GUID_FREEBSD_BOOT => "freebsd-boot",
        "516E7CB5-6ECF-11D6-8FF8-00022D09712B" => "freebsd-swap",
        "516E7CB6-6ECF-11D6-8FF8-00022D09712B" => "freebsd-ufs",
        "516E7CBA-6ECF-11D6-8FF8-00022D09712B" => "freebsd-zfs",
        _ => return None,
    })
}

/// True when sector 0 is a filesystem boot sector rather than an MBR
/// (a "superfloppy": FAT or NTFS on the whole disk).
fn is_fs_boot_sector(s: &[u8]) -> bool {
    bytes::magic_at(s, 3, b"NTFS    ")
        || bytes::magic_at(s, 3, b"EXFAT   ")
        || bytes::magic_at(s, 82, b"FAT32")
        || bytes::magic_at(s, 54, b"FAT")
}

/// Reads the partition table. Problems become findings; partitions that
/// cannot be trusted are left out.
pub(crate) fn read(disk: &CachedDisk<'_>, sink: &mut Sink) -> (PartitionTable, Vec<Partition>) {
    let mut table = PartitionTable {
        kind: "none".into(),
        sector_size: 512,
        ..Default::default()
    };
    let size = disk.size();
    if size < 512 {
        return (table, Vec::new());
    }
    let sector0 = match disk.read_vec(0, 512) {
        Ok(m) => m,
        Err(e) => {
            sink.push(rules::READ_ERROR.finding(format!("sector 0: {e}")));
            return (table, Vec::new());
        }
    };
    let Some(mbr) = Mbr::parse(&sector0) else {
        sink.push(
            rules::READ_ERROR.finding(format!("sector 0: read {} bytes, not 512", sector0.len())),
        );
        return (table, Vec::new());
    };
    // GPT first: at 512 or 4096 bytes, whatever the MBR says (a wiped MBR
    // with an intact GPT still boots on UEFI).
    for ss in [512u64, 4096] {
        if size >= ss * 2 {
            if let Ok(sig) = disk.read_vec(ss, 8) {
                if sig == b"EFI PART" {
                    table.sector_size = ss;
                    if ss != 512 {
                        sink.push(rules::SECTOR_4KN.finding(
                            "the GPT is in 4096-byte sectors (a 4Kn disk); it was read so, but ECS disks have 512-byte logical sectors",
                        ));
                    }
                    return read_gpt(disk, &mbr, table, sink);
                }
            }
        }
    }
    if mbr.boot_signature != 0xAA55 || is_fs_boot_sector(&sector0) {
        return (table, Vec::new());
    }
    let statuses_ok = mbr.entries.iter().all(|e| matches!(e.status, 0x00 | 0x80));
    if !statuses_ok {
        sink.push(
            rules::PARTITION_TABLE_CORRUPT
                .finding("MBR partition entries have status bytes other than 0x00/0x80"),
        );
        return (table, Vec::new());
    }
    if mbr.entries.iter().any(|e| e.ty == 0xee) {
        sink.push(rules::PARTITION_TABLE_CORRUPT.finding(
            "the MBR is a GPT protective MBR, but no GPT header was found at LBA 1 (primary header lost)",
        ));
    }
    table.kind = "mbr".into();
    table.disk_id = Some(format!("{:08x}", mbr.disk_signature));
    table.sector_size = mbr_sector_size(disk, &mbr);
    if table.sector_size != 512 {
        sink.push(rules::SECTOR_4KN.finding(
            "the MBR's partitions are in 4096-byte sectors (a 4Kn disk); they were read so, but ECS disks have 512-byte logical sectors",
        ));
    }
    let parts = read_mbr(disk, &mbr, table.sector_size, sink);
    check_geometry(&parts, size, sink);
    (table, parts)
}

/// The sector size an MBR's LBAs count: 4096 when something is found where
/// the partitions start counted in 4 KiB sectors and nothing where they start
/// counted in 512-byte ones (an MBR does not say; Linux asks the disk).
fn mbr_sector_size(disk: &CachedDisk<'_>, mbr: &Mbr) -> u64 {
    let found = |ss: u64| {
        mbr.entries
            .iter()
            .filter(|e| e.ty != 0 && e.count != 0 && !matches!(e.ty, 0x05 | 0x0f | 0x85 | 0xee))
            .filter(|e| {
                let (start, len) = (e.lba.saturating_mul(ss), e.count.saturating_mul(ss));
                start.checked_add(len).is_some_and(|end| end <= disk.size())
                    && crate::fs::probe(&View::new(disk, start, len)).is_some()
            })
            .count()
    };
    if disk.size() % 4096 == 0 && found(512) == 0 && found(4096) > 0 {
        4096
    } else {
        512
    }
}

fn read_mbr(disk: &CachedDisk<'_>, mbr: &Mbr, ss: u64, sink: &mut Sink) -> Vec<Partition> {
    let mut parts = Vec::new();
    for (i, entry) in mbr.entries.iter().enumerate() {
        let MbrEntry {
            status,
            ty,
            lba,
            count,
        } = *entry;
        if ty == 0 || count == 0 {
            continue;
        }
        let number = u32::try_from(i + 1).unwrap_or(0);
        let extended = matches!(ty, 0x05 | 0x0f | 0x85);
        parts.push(Partition {
            number,
            start: lba.saturating_mul(ss),
            size: count.saturating_mul(ss),
            type_id: format!("0x{ty:02x}"),
            type_name: mbr_type_name(ty).map(str::to_string),
            name: None,
            partuuid: Some(mbr_partuuid(mbr.disk_signature, number)),
            bootable: status == 0x80,
        });
        if extended {
            read_ebr_chain(disk, lba, ss, mbr.disk_signature, &mut parts, sink);
        }
    }
    parts.sort_by_key(|p| p.number);
    parts
}

/// The PARTUUID Linux gives an MBR partition: the disk signature and the
/// partition number, both in hex (`%08x-%02x`): partition 10 is `…-0a`.
fn mbr_partuuid(signature: u32, number: u32) -> String {
    format!("{signature:08x}-{number:02x}")
}

fn read_ebr_chain(
    disk: &CachedDisk<'_>,
    ext_start: u64,
    ss: u64,
    signature: u32,
    parts: &mut Vec<Partition>,
    sink: &mut Sink,
) {
    let mut ebr_lba = ext_start;
    let mut seen = std::collections::HashSet::new();
    let mut number = 5u32;
    for _ in 0..MAX_LOGICAL {
        if !seen.insert(ebr_lba) {
            sink.push(rules::PARTITION_TABLE_CORRUPT.finding(format!(
                "the extended partition's EBR chain loops back to LBA {ebr_lba}"
            )));
            return;
        }
        let ebr = match ebr_lba.checked_mul(ss).map(|o| disk.read_vec(o, 512)) {
            Some(Ok(e)) => Mbr::parse(&e),
            _ => {
                sink.push(
                    rules::PARTITION_TABLE_CORRUPT
                        .finding(format!("EBR at LBA {ebr_lba} is outside the disk")),
                );
                return;
            }
        };
        let Some(ebr) = ebr.filter(|e| e.boot_signature == 0xAA55) else {
            sink.push(
                rules::PARTITION_TABLE_CORRUPT
                    .finding(format!("EBR at LBA {ebr_lba} has no 0x55AA signature")),
            );
            return;
        };
        let [MbrEntry {
            status,
            ty,
            lba: rel,
            count,
        }, next, ..] = ebr.entries;
        if ty != 0 && count != 0 {
            parts.push(Partition {
                number,
                start: ebr_lba.saturating_add(rel).saturating_mul(ss),
                size: count.saturating_mul(ss),
                type_id: format!("0x{ty:02x}"),
                type_name: mbr_type_name(ty).map(str::to_string),
                name: None,
                partuuid: Some(mbr_partuuid(signature, number)),
                bootable: status == 0x80,
            });
            number += 1;
        }
        if next.ty == 0 || next.lba == 0 {
            return;
        }
        ebr_lba = ext_start.saturating_add(next.lba);
    }
    sink.push(rules::PARTITION_TABLE_CORRUPT.finding(format!(
        "more than {MAX_LOGICAL} logical partitions; the rest were not read"
    )));
}

struct GptHeader {
    my_lba: u64,
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: String,
    entries_lba: u64,
    num_entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

fn parse_gpt_header(disk: &CachedDisk<'_>, lba: u64, ss: u64) -> Result<GptHeader, String> {
    let off = lba.checked_mul(ss).ok_or("header LBA overflows")?;
    let h = disk
        .read_vec(off, 512)
        .map_err(|e| format!("cannot read LBA {lba}: {e}"))?;
    if !h.starts_with(b"EFI PART") {
        return Err(format!("no 'EFI PART' signature at LBA {lba}"));
    }
    let short = || format!("the header at LBA {lba} is shorter than its fields");
    let hsize = bytes::le32(&h, 12).ok_or_else(short)?;
    if !(92..=512).contains(&hsize) {
        return Err(format!("header size {hsize} is not 92..512"));
    }
    let hs = usize::try_from(hsize).map_err(|_| "header size")?;
    let stored_crc = bytes::le32(&h, 16).ok_or_else(short)?;
    // The CRC covers the header with its own CRC field zeroed.
    let mut copy = h.get(..hs).ok_or_else(short)?.to_vec();
    copy.get_mut(16..20).ok_or_else(short)?.fill(0);
    let crc = crc32fast::hash(&copy);
    if crc != stored_crc {
        return Err(format!(
            "header CRC32 is {stored_crc:#010x}, computed {crc:#010x}"
        ));
    }
    let field64 = |at| bytes::le64(&h, at).ok_or_else(short);
    let field32 = |at| bytes::le32(&h, at).ok_or_else(short);
    let hdr = GptHeader {
        my_lba: field64(24)?,
        alternate_lba: field64(32)?,
        first_usable: field64(40)?,
        last_usable: field64(48)?,
        disk_guid: guid(&bytes::array(&h, 56).ok_or_else(short)?),
        entries_lba: field64(72)?,
        num_entries: field32(80)?,
        entry_size: field32(84)?,
        entries_crc: field32(88)?,
    };
    if hdr.my_lba != lba {
        return Err(format!(
            "header at LBA {lba} says it is at LBA {}",
            hdr.my_lba
        ));
    }
    if hdr.entry_size < 128 || hdr.entry_size % 8 != 0 {
        return Err(format!(
            "entry size {} is not a multiple of 8 >= 128",
            hdr.entry_size
        ));
    }
    Ok(hdr)
}

/// The fields of a GPT entry's first 128 bytes (the part UEFI defines).
struct GptEntry {
    type_guid: [u8; 16],
    unique_guid: [u8; 16],
    first_lba: u64,
    last_lba: u64,
    attributes: u64,
    /// UTF-16LE, NUL-padded.
    name: [u8; 72],
}

impl GptEntry {
    /// `None` when `e` is shorter than 128 bytes.
    fn parse(e: &[u8]) -> Option<GptEntry> {
        Some(GptEntry {
            type_guid: bytes::array(e, 0)?,
            unique_guid: bytes::array(e, 16)?,
            first_lba: bytes::le64(e, 32)?,
            last_lba: bytes::le64(e, 40)?,
            attributes: bytes::le64(e, 48)?,
            name: bytes::array(e, 56)?,
        })
    }
}

fn read_gpt_entries(disk: &CachedDisk<'_>, h: &GptHeader, ss: u64) -> Result<Vec<u8>, String> {
    let len = u64::from(h.num_entries) * u64::from(h.entry_size);
    if len > MAX_GPT_ARRAY {
        return Err(format!(
            "{} entries of {} bytes exceed the {MAX_GPT_ARRAY}-byte limit",
            h.num_entries, h.entry_size
        ));
    }
    let off = h
        .entries_lba
        .checked_mul(ss)
        .ok_or("entry array LBA overflows")?;
    let n = usize::try_from(len).map_err(|_| "entry array too large")?;
    let data = disk
        .read_vec(off, n)
        .map_err(|e| format!("cannot read the entry array at LBA {}: {e}", h.entries_lba))?;
    let crc = crc32fast::hash(&data);
    if crc != h.entries_crc {
        return Err(format!(
            "entry array CRC32 is {:#010x}, computed {crc:#010x}",
            h.entries_crc
        ));
    }
    Ok(data)
}

fn read_gpt(
    disk: &CachedDisk<'_>,
    mbr: &Mbr,
    mut table: PartitionTable,
    sink: &mut Sink,
) -> (PartitionTable, Vec<Partition>) {
    let ss = table.sector_size;
    let last_lba = disk.size() / ss - 1;
    table.kind = "gpt".into();
    let primary =
        parse_gpt_header(disk, 1, ss).and_then(|h| read_gpt_entries(disk, &h, ss).map(|e| (h, e)));
    let backup_lba = match &primary {
        Ok((h, _)) => h.alternate_lba,
        Err(_) => last_lba,
    };
    let backup = parse_gpt_header(disk, backup_lba, ss)
        .and_then(|h| read_gpt_entries(disk, &h, ss).map(|e| (h, e)));
    let (hdr, entries) = match (primary, backup) {
        (Ok(p), Ok(b)) => {
            let same = b.1 == p.1 && b.0.disk_guid == p.0.disk_guid;
            table.gpt_backup_ok = Some(same);
            if !same {
                sink.push(
                    rules::GPT_BACKUP
                        .finding("the backup GPT header or entry array differs from the primary"),
                );
            } else if p.0.alternate_lba != last_lba {
                table.gpt_backup_ok = Some(false);
                sink.push(rules::GPT_BACKUP.finding(format!(
                    "the backup GPT header is at LBA {}, not at the last LBA {last_lba} (the disk was resized)",
                    p.0.alternate_lba
                )));
            }
            p
        }
        (Ok(p), Err(e)) => {
            table.gpt_backup_ok = Some(false);
            sink.push(rules::GPT_BACKUP.finding(format!("backup GPT header: {e}")));
            p
        }
        (Err(e), Ok(b)) => {
            table.gpt_backup_ok = Some(true);
            sink.push(rules::PARTITION_TABLE_CORRUPT.finding(format!(
                "primary GPT: {e}; the partitions were read from the backup header"
            )));
            b
        }
        (Err(e), Err(e2)) => {
            table.gpt_backup_ok = Some(false);
            sink.push(
                rules::PARTITION_TABLE_CORRUPT
                    .finding(format!("primary GPT: {e}; backup GPT: {e2}")),
            );
            return (table, Vec::new());
        }
    };
    table.disk_id = Some(hdr.disk_guid.clone());
    // Protective or hybrid MBR.
    if mbr.boot_signature == 0xAA55 {
        let mut protective = false;
        let mut others = false;
        for e in &mbr.entries {
            match e.ty {
                0 => {}
                0xee => protective = true,
                _ => others = true,
            }
        }
        if others {
            table.hybrid_mbr = true;
            sink.push(rules::HYBRID_MBR.finding(if protective {
                "the MBR lists partitions beside its 0xEE protective entry (hybrid MBR)"
            } else {
                "the MBR of a GPT disk has no 0xEE protective entry but lists partitions"
            }));
        }
    }
    let es = usize::try_from(hdr.entry_size).unwrap_or(128);
    let mut parts = Vec::new();
    for (i, raw) in entries.chunks_exact(es).enumerate() {
        // The header check keeps entries at 128 bytes or more.
        let Some(e) = GptEntry::parse(raw) else {
            sink.push(rules::PARTITION_TABLE_CORRUPT.finding(format!(
                "GPT entry {} is {es} bytes, shorter than the 128 an entry needs",
                i + 1
            )));
            break;
        };
        if e.type_guid == [0; 16] {
            continue;
        }
        let (first, last) = (e.first_lba, e.last_lba);
        let type_id = guid(&e.type_guid);
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if last < first || first < hdr.first_usable || last > hdr.last_usable {
            sink.push(rules::PARTITION_GEOMETRY.finding(format!(
                "GPT partition {number}: LBAs {first}..={last} are outside the usable range {}..={}",
                hdr.first_usable, hdr.last_usable
            )));
            if last < first {
                continue;
            }
        }
        let name_units: Vec<u16> = e
            .name
            .chunks_exact(2)
            .filter_map(|c| bytes::le16(c, 0))
            .take_while(|&u| u != 0)
            .collect();
        parts.push(Partition {
            number,
            start: first.saturating_mul(ss),
            size: (last - first + 1).saturating_mul(ss),
            type_name: gpt_type_name(&type_id).map(str::to_string),
            type_id,
            name: Some(String::from_utf16_lossy(&name_units)),
            partuuid: Some(guid(&e.unique_guid).to_lowercase()),
            bootable: e.attributes & 4 != 0,
        });
    }
    check_geometry(&parts, disk.size(), sink);
    (table, parts)
}

/// Partitions past the end of the disk, and overlaps.
fn check_geometry(parts: &[Partition], disk_size: u64, sink: &mut Sink) {
    for p in parts {
        if p.start
            .checked_add(p.size)
            .is_none_or(|end| end > disk_size)
        {
            sink.push(rules::PARTITION_GEOMETRY.finding(format!(
                "partition {} ({} bytes at {}) reaches past the end of the {disk_size}-byte disk",
                p.number, p.size, p.start
            )));
        }
    }
    // An extended partition holds its logical ones: it overlaps nothing.
    let plain: Vec<&Partition> = parts
        .iter()
        .filter(|p| p.type_name.as_deref() != Some("extended"))
        .collect();
    for (i, a) in plain.iter().enumerate() {
        for b in plain.iter().skip(i + 1) {
            let a_end = a.start.saturating_add(a.size);
            let b_end = b.start.saturating_add(b.size);
            if a.start < b_end && b.start < a_end {
                sink.push(
                    rules::PARTITION_GEOMETRY
                        .finding(format!("partitions {} and {} overlap", a.number, b.number)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mbr_partuuids_are_hex_like_linux() {
        assert_eq!(super::mbr_partuuid(0xdeadbeef, 5), "deadbeef-05");
        assert_eq!(super::mbr_partuuid(0x1234, 10), "00001234-0a");
    }

    #[test]
    fn short_sectors_and_entries_give_none_not_a_panic() {
        let mut s = vec![0u8; 512];
        s[446] = 0x80;
        s[446 + 4] = 0x83;
        s[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        s[446 + 12..446 + 16].copy_from_slice(&4096u32.to_le_bytes());
        s[440..444].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        s[510..512].copy_from_slice(&0xAA55u16.to_le_bytes());
        let m = super::Mbr::parse(&s).unwrap();
        assert_eq!(m.boot_signature, 0xAA55);
        assert_eq!(m.disk_signature, 0xdead_beef);
        let e = m.entries[0];
        assert_eq!((e.status, e.ty, e.lba, e.count), (0x80, 0x83, 2048, 4096));
        for cut in [0, 100, 441, 460, 509, 511] {
            assert!(super::Mbr::parse(&s[..cut]).is_none(), "cut at {cut}");
            // A short sector is no boot sector (this used to index past the end).
            assert!(!super::is_fs_boot_sector(&s[..cut]));
        }
        let mut entry = vec![0u8; 128];
        entry[0] = 1;
        entry[56..60].copy_from_slice(&[b'E', 0, b'F', 0]);
        assert!(super::GptEntry::parse(&entry).is_some());
        assert!(super::GptEntry::parse(&entry[..127]).is_none());
        assert!(super::GptEntry::parse(&[]).is_none());
    }

    #[test]
    fn guids_print_mixed_endian() {
        let esp: [u8; 16] = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        assert_eq!(super::guid(&esp), super::GUID_ESP);
    }
}
