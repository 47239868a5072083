//! The text descriptor: `key=value` lines, extent lines, comments.
//!
//! ```text
//! # Disk DescriptorFile
//! version=1
//! CID=20d00f02
//! parentCID=ffffffff
//! createType="monolithicFlat"
//! RW 10240 FLAT "disk-flat.vmdk" 0
//! ddb.adapterType = "ide"
//! ```

use crate::error::show_line;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, space0, space1};
use nom::combinator::{all_consuming, map_res, opt, rest};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// Most extents a descriptor may list: 32768, enough for a 62 TiB disk in
/// 2 GiB extents, and a bound on the files we open.
pub const MAX_EXTENTS: usize = 32 * 1024;
/// Longest extent file name (qemu reads at most 511 bytes).
pub const MAX_EXTENT_NAME: usize = 1024;
/// A `parentCID` meaning "no parent".
pub const NO_PARENT_CID: u32 = 0xffff_ffff;

/// How an extent may be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `RW`.
    ReadWrite,
    /// `RDONLY`.
    ReadOnly,
    /// `NOACCESS`: the data cannot be read.
    NoAccess,
}

/// One extent line: `RW 131072 SPARSE "disk-s001.vmdk"`,
/// `RW 10240 FLAT "disk-flat.vmdk" 0`, `RW 2048 ZERO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// 1-based line number in the descriptor.
    pub line: usize,
    /// Access mode.
    pub access: Access,
    /// Size in sectors.
    pub sectors: u64,
    /// Extent type as written (`FLAT`, `SPARSE`, `ZERO`, `VMFS`, …).
    pub kind: String,
    /// File name, unquoted, as written.
    pub file: Option<String>,
    /// Offset in sectors into the file (FLAT extents).
    pub offset: Option<u64>,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// `version=`.
    pub version: Option<String>,
    /// `CID=`, the content id.
    pub cid: Option<u32>,
    /// `parentCID=`; `ffffffff` means no parent.
    pub parent_cid: Option<u32>,
    /// `createType=`, unquoted.
    pub create_type: Option<String>,
    /// `parentFileNameHint=`: names the parent of a delta disk.
    pub parent_file_name_hint: Option<String>,
    /// Extent lines in order.
    pub extents: Vec<ExtentLine>,
    /// Every `key=value` line in order, values unquoted (includes `ddb.*`).
    pub entries: Vec<(String, String)>,
}

impl Descriptor {
    /// The value of `key` (case-sensitive), unquoted.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True if this descriptor names a parent: a delta (child) disk.
    pub fn is_delta(&self) -> bool {
        self.parent_cid.is_some_and(|p| p != NO_PARENT_CID) || self.parent_file_name_hint.is_some()
    }
}

/// A line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, quoting the line.
    pub detail: String,
}

/// Cuts raw descriptor bytes at the first NUL (embedded descriptors and
/// qemu's descriptor files are padded with NULs) and decodes them.
pub fn text_of(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// Parses descriptor text. Every line that is neither blank, a comment, a
/// `key=value` pair nor an extent line is returned as a [`BadLine`]; the
/// lines that parsed are kept.
pub fn parse(text: &str) -> (Descriptor, Vec<BadLine>) {
    let mut d = Descriptor::default();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i.saturating_add(1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match extent_line(line) {
            Ok((_, mut e)) => {
                if d.extents.len() >= MAX_EXTENTS {
                    bad.push(BadLine {
                        line: line_no,
                        detail: format!("more than {MAX_EXTENTS} extent lines"),
                    });
                    break;
                }
                if let Some(reason) = extent_shape_error(&e) {
                    bad.push(BadLine {
                        line: line_no,
                        detail: format!("{reason}: {}", show_line(line)),
                    });
                    continue;
                }
                e.line = line_no;
                d.extents.push(e);
                continue;
            }
            Err(_) if starts_like_extent(line) => {
                bad.push(BadLine {
                    line: line_no,
                    detail: format!(
                        "invalid extent line (want ACCESS SECTORS TYPE \"FILE\" [OFFSET]): {}",
                        show_line(line)
                    ),
                });
                continue;
            }
            Err(_) => {}
        }
        match key_value(line) {
            Ok((_, (key, value))) => {
                if let Err(reason) = apply(&mut d, key, value) {
                    bad.push(BadLine {
                        line: line_no,
                        detail: format!("{reason}: {}", show_line(line)),
                    });
                }
                d.entries.push((key.to_string(), value.to_string()));
            }
            Err(_) => bad.push(BadLine {
                line: line_no,
                detail: format!(
                    "neither key=value, an extent nor a comment: {}",
                    show_line(line)
                ),
            }),
        }
    }
    (d, bad)
}

fn apply(d: &mut Descriptor, key: &str, value: &str) -> Result<(), String> {
    match key {
        "version" => d.version = Some(value.to_string()),
        "CID" => {
            d.cid = Some(hex_u32(value).ok_or_else(|| format!("CID {value:?} is not 32-bit hex"))?)
        }
        "parentCID" => {
            d.parent_cid = Some(
                hex_u32(value).ok_or_else(|| format!("parentCID {value:?} is not 32-bit hex"))?,
            )
        }
        "createType" => d.create_type = Some(value.to_string()),
        "parentFileNameHint" => d.parent_file_name_hint = Some(value.to_string()),
        _ => {}
    }
    Ok(())
}

fn hex_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn starts_like_extent(line: &str) -> bool {
    [
        "RW ",
        "RDONLY ",
        "NOACCESS ",
        "RW\t",
        "RDONLY\t",
        "NOACCESS\t",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// The rules qemu applies to an extent line's shape.
fn extent_shape_error(e: &ExtentLine) -> Option<&'static str> {
    if e.sectors == 0 {
        return Some("extent of 0 sectors");
    }
    match (e.kind.as_str(), &e.file, e.offset) {
        ("ZERO", None, None) => None,
        ("ZERO", _, _) => Some("a ZERO extent names no file"),
        (_, None, _) => Some("the extent names no file"),
        ("FLAT", Some(_), None) => Some("a FLAT extent needs an offset"),
        ("FLAT", Some(_), Some(_)) => None,
        (_, Some(_), Some(_)) => Some("only FLAT extents take an offset"),
        (_, Some(_), None) => None,
    }
}

type Res<'a, T> = IResult<&'a str, T>;

fn access(i: &str) -> Res<'_, Access> {
    alt((
        tag("RW").map(|_| Access::ReadWrite),
        tag("RDONLY").map(|_| Access::ReadOnly),
        tag("NOACCESS").map(|_| Access::NoAccess),
    ))
    .parse(i)
}

fn number(i: &str) -> Res<'_, u64> {
    map_res(digit1, str::parse::<u64>).parse(i)
}

fn quoted(i: &str) -> Res<'_, &str> {
    delimited(char('"'), take_while(|c| c != '"'), char('"')).parse(i)
}

fn extent_line(i: &str) -> Res<'_, ExtentLine> {
    let (i, (access, _, sectors, _, kind)) = (
        access,
        space1,
        number,
        space1,
        take_while1(|c: char| c.is_ascii_alphanumeric()),
    )
        .parse(i)?;
    let (i, file) = opt(preceded(space1, quoted)).parse(i)?;
    let (i, offset) = if file.is_some() {
        opt(preceded(space1, number)).parse(i)?
    } else {
        (i, None)
    };
    let (i, _) = all_consuming(space0).parse(i)?;
    Ok((
        i,
        ExtentLine {
            line: 0,
            access,
            sectors,
            kind: kind.to_string(),
            file: file.map(str::to_string),
            offset,
        },
    ))
}

fn key_value(i: &str) -> Res<'_, (&str, &str)> {
    let (i, key) =
        take_while1(|c: char| c.is_ascii_alphanumeric() || "._-:".contains(c)).parse(i)?;
    let (i, _) = (space0, char('='), space0).parse(i)?;
    let (i, value) = alt((all_consuming(quoted_value), rest.map(str::trim))).parse(i)?;
    Ok((i, (key, value)))
}

fn quoted_value(i: &str) -> Res<'_, &str> {
    let (i, v) = quoted(i)?;
    let (i, _) = space0(i)?;
    Ok((i, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &str = "# Disk DescriptorFile\nversion=1\nCID=20d00f02\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW 10240 FLAT \"monolithicFlat-flat.vmdk\" 0\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"10\"\nddb.adapterType = \"ide\"\n";

    #[test]
    fn parses_qemu_descriptor() {
        let (d, bad) = parse(QEMU);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(d.version.as_deref(), Some("1"));
        assert_eq!(d.cid, Some(0x20d0_0f02));
        assert_eq!(d.parent_cid, Some(NO_PARENT_CID));
        assert_eq!(d.create_type.as_deref(), Some("monolithicFlat"));
        assert!(!d.is_delta());
        assert_eq!(d.get("ddb.adapterType"), Some("ide"));
        assert_eq!(d.get("ddb.virtualHWVersion"), Some("4"));
        assert_eq!(
            d.extents,
            vec![ExtentLine {
                line: 8,
                access: Access::ReadWrite,
                sectors: 10240,
                kind: "FLAT".into(),
                file: Some("monolithicFlat-flat.vmdk".into()),
                offset: Some(0),
            }]
        );
    }

    #[test]
    fn extent_variants() {
        let (d, bad) = parse(
            "RW 100 SPARSE \"a b.vmdk\"\r\nRDONLY 5 ZERO\nNOACCESS 7 VMFS \"x\"\nRW 8 FLAT \"f\" 12  \n",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(d.extents.len(), 4);
        assert_eq!(d.extents[0].file.as_deref(), Some("a b.vmdk"));
        assert_eq!(d.extents[1].kind, "ZERO");
        assert_eq!(d.extents[1].access, Access::ReadOnly);
        assert_eq!(d.extents[2].access, Access::NoAccess);
        assert_eq!(d.extents[3].offset, Some(12));
    }

    #[test]
    fn bad_lines_are_reported_with_the_line() {
        for line in [
            "RW 0 SPARSE \"a\"",
            "RW 10 FLAT \"a\"",
            "RW 10 SPARSE \"a\" 5",
            "RW 10 SPARSE",
            "RW 10 ZERO \"a\"",
            "RW abc SPARSE \"a\"",
            "RW 99999999999999999999999 SPARSE \"a\"",
            "RW 10 SPARSE \"unterminated",
            "this is not a descriptor",
            "CID=xyz",
            "parentCID=123456789",
        ] {
            let (_, bad) = parse(line);
            assert_eq!(bad.len(), 1, "{line}");
            assert_eq!(bad[0].line, 1);
            assert!(
                bad[0].detail.contains(&line[..4]),
                "{line}: {}",
                bad[0].detail
            );
        }
    }

    #[test]
    fn delta_detection() {
        let (d, _) = parse("parentCID=12345678\n");
        assert!(d.is_delta());
        let (d, _) = parse("parentCID=ffffffff\nparentFileNameHint=\"base.vmdk\"\n");
        assert!(d.is_delta());
        assert_eq!(d.parent_file_name_hint.as_deref(), Some("base.vmdk"));
    }

    #[test]
    fn values_quoted_or_not() {
        let (d, bad) = parse("a = \"x y\"\nb=plain value \nc=\"\"\nd=\n");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(d.get("a"), Some("x y"));
        assert_eq!(d.get("b"), Some("plain value"));
        assert_eq!(d.get("c"), Some(""));
        assert_eq!(d.get("d"), Some(""));
    }

    #[test]
    fn text_stops_at_nul() {
        assert_eq!(text_of(b"a=1\n\0\0junk"), "a=1\n");
    }
}
