//! Architecture from executables: ELF (Linux) and PE (Windows, EFI).

use crate::bytes;

/// The ImportImage `Architecture` value of an ELF file (`x86_64`, `i386`,
/// `arm64`), or its machine number when it is none of those.
pub(crate) fn elf_arch(b: &[u8]) -> Option<String> {
    if !b.starts_with(b"\x7fELF") {
        return None;
    }
    let raw = bytes::array::<2>(b, 18)?;
    // EI_DATA 2: big-endian.
    let machine = if b.get(5) == Some(&2) {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    };
    Some(match machine {
        0x3e => "x86_64".into(),
        0x03 => "i386".into(),
        0xb7 => "arm64".into(),
        0x28 => "arm".into(),
        0xf3 => "riscv64".into(),
        0x102 => "loongarch64".into(),
        0x15 => "ppc64".into(),
        0x16 => "s390x".into(),
        m => format!("elf-machine-{m:#x}"),
    })
}

/// The architecture of a PE image (`x86_64`, `i386`, `arm64`).
pub(crate) fn pe_arch(b: &[u8]) -> Option<String> {
    if !b.starts_with(b"MZ") {
        return None;
    }
    let pe = usize::try_from(bytes::le32(b, 0x3c)?).ok()?;
    if !bytes::magic_at(b, pe, b"PE\0\0") {
        return None;
    }
    let machine = bytes::le16(b, pe.checked_add(4)?)?;
    Some(match machine {
        0x8664 => "x86_64".into(),
        0x14c => "i386".into(),
        0xaa64 => "arm64".into(),
        0x5064 => "riscv64".into(),
        m => format!("pe-machine-{m:#x}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_and_pe() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[5] = 1;
        elf[18] = 0xb7;
        assert_eq!(elf_arch(&elf).as_deref(), Some("arm64"));
        let mut pe = vec![0u8; 0x100];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        assert_eq!(pe_arch(&pe).as_deref(), Some("x86_64"));
        pe[0x3c] = 0xff;
        assert_eq!(pe_arch(&pe), None);
    }

    #[test]
    fn truncated_headers_are_none() {
        let mut elf = vec![0u8; 20];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[5] = 2;
        elf[19] = 0x3e;
        assert_eq!(elf_arch(&elf).as_deref(), Some("x86_64"));
        for cut in [0, 4, 6, 19] {
            assert_eq!(elf_arch(&elf[..cut]), None, "cut at {cut}");
        }
        let mut pe = vec![0u8; 0x46];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x44..0x46].copy_from_slice(&0xaa64u16.to_le_bytes());
        assert_eq!(pe_arch(&pe).as_deref(), Some("arm64"));
        for cut in [0, 2, 0x3d, 0x40, 0x43, 0x45] {
            assert_eq!(pe_arch(&pe[..cut]), None, "cut at {cut}");
        }
        // e_lfanew near usize::MAX must not overflow into a panic.
        pe[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(pe_arch(&pe), None);
    }
}
