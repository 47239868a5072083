//! LVM2: the physical volume label, its text metadata, and linear logical
//! volumes lying on this one PV (the default single-disk install of the
//! RHEL family). Written here: the one crate (lamlvm) is no_std/embedded-io
//! and young; the format is a label, a header and a small text file.
//!
//! Logical volumes made of several segments are read when the segments are
//! contiguous on the PV; striped, mirrored, thin or multi-PV volumes are
//! reported, not read.

use crate::cache::View;
use std::collections::BTreeMap;

/// Largest metadata text read (LVM's default metadata area is 1 MiB).
const MAX_METADATA: u64 = 4 * 1024 * 1024;
/// Deepest section nesting accepted in the metadata text (real: 5).
const MAX_DEPTH: usize = 16;
/// Metadata area header magic.
const MDA_MAGIC: &[u8; 16] = b"\x20LVM2\x20x[5A%r0N*>";

/// A logical volume we can read as one contiguous range of the PV.
#[derive(Debug, Clone)]
pub(crate) struct LogicalVolume {
    /// `vg/lv`.
    pub(crate) name: String,
    /// Offset within the PV, in bytes.
    pub(crate) start: u64,
    /// Length in bytes.
    pub(crate) len: u64,
}

/// What a PV holds.
#[derive(Debug, Default)]
pub(crate) struct PhysicalVolume {
    pub(crate) vg: Option<String>,
    pub(crate) lvs: Vec<LogicalVolume>,
    /// LVs that are not read, with why.
    pub(crate) skipped: Vec<String>,
}

#[derive(Debug, Clone)]
enum Node {
    Value(String),
    List(Vec<String>),
    Section(BTreeMap<String, Node>),
}

fn le32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Tokens of the metadata text: words, strings, and `{ } [ ] = ,`.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == '#' {
            while chars.peek().is_some_and(|&c| c != '\n') {
                chars.next();
            }
        } else if c.is_whitespace() {
            chars.next();
        } else if "{}[]=,".contains(c) {
            out.push(c.to_string());
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            s.push(n);
                        }
                    }
                    '"' => break,
                    c => s.push(c),
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || "{}[]=,#\"".contains(c) {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    out
}

fn unq(t: &str) -> String {
    t.strip_prefix('"').unwrap_or(t).to_string()
}

fn parse_section(toks: &[String], pos: &mut usize, depth: usize) -> Option<BTreeMap<String, Node>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut map = BTreeMap::new();
    while *pos < toks.len() {
        let name = toks[*pos].clone();
        if name == "}" {
            *pos += 1;
            return Some(map);
        }
        *pos += 1;
        match toks.get(*pos).map(String::as_str) {
            Some("{") => {
                *pos += 1;
                let s = parse_section(toks, pos, depth + 1)?;
                map.insert(name, Node::Section(s));
            }
            Some("=") => {
                *pos += 1;
                if toks.get(*pos).map(String::as_str) == Some("[") {
                    *pos += 1;
                    let mut items = Vec::new();
                    while let Some(t) = toks.get(*pos) {
                        *pos += 1;
                        match t.as_str() {
                            "]" => break,
                            "," => {}
                            t => items.push(unq(t)),
                        }
                    }
                    map.insert(name, Node::List(items));
                } else {
                    let v = toks.get(*pos).map(|t| unq(t)).unwrap_or_default();
                    *pos += 1;
                    map.insert(name, Node::Value(v));
                }
            }
            _ => return None,
        }
    }
    Some(map)
}

fn num(map: &BTreeMap<String, Node>, key: &str) -> Option<u64> {
    match map.get(key)? {
        Node::Value(v) => v.parse().ok(),
        _ => None,
    }
}

fn section<'m>(map: &'m BTreeMap<String, Node>, key: &str) -> Option<&'m BTreeMap<String, Node>> {
    match map.get(key)? {
        Node::Section(s) => Some(s),
        _ => None,
    }
}

/// Reads the PV at the start of `view`. `None` when there is no readable
/// label or metadata.
pub(crate) fn read(view: &View<'_, '_>) -> Result<PhysicalVolume, String> {
    let head = view.read_vec(0, 2048).map_err(|e| e.to_string())?;
    let label = (0..4usize)
        .map(|s| s * 512)
        .find(|&o| &head[o..o + 8] == b"LABELONE" && &head[o + 24..o + 32] == b"LVM2 001")
        .ok_or("no LVM2 label")?;
    let pvh =
        label + usize::try_from(le32(&head, label + 20).ok_or("label")?).map_err(|_| "label")?;
    let pv_uuid: String = head
        .get(pvh..pvh + 32)
        .ok_or("PV header past the label sector")?
        .iter()
        .map(|&b| char::from(b))
        .collect();
    // Data areas, a zero entry, then metadata areas, a zero entry.
    let mut o = pvh + 40;
    let mut lists: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            let off = le64(&head, o).ok_or("PV header truncated")?;
            let size = le64(&head, o + 8).ok_or("PV header truncated")?;
            o += 16;
            if off == 0 && size == 0 {
                break;
            }
            list.push((off, size));
            if list.len() > 8 {
                return Err("too many areas in the PV header".into());
            }
        }
    }
    let (mda_start, mda_size) = *lists[1].first().ok_or("PV has no metadata area")?;
    let mdah = view
        .read_vec(mda_start, 512)
        .map_err(|e| format!("metadata area: {e}"))?;
    if &mdah[4..20] != MDA_MAGIC {
        return Err("bad metadata area magic".into());
    }
    let loc_off = le64(&mdah, 40).ok_or("mda")?;
    let loc_size = le64(&mdah, 48).ok_or("mda")?;
    if loc_size == 0 || loc_size > MAX_METADATA || loc_off >= mda_size {
        return Err(format!(
            "metadata of {loc_size} bytes at {loc_off} is out of range"
        ));
    }
    // The metadata area is a ring after its 512-byte header.
    let first = loc_size.min(mda_size - loc_off);
    let mut text = view
        .read_vec(
            mda_start + loc_off,
            usize::try_from(first).map_err(|_| "size")?,
        )
        .map_err(|e| format!("metadata: {e}"))?;
    if first < loc_size {
        let rest = view
            .read_vec(
                mda_start + 512,
                usize::try_from(loc_size - first).map_err(|_| "size")?,
            )
            .map_err(|e| format!("metadata: {e}"))?;
        text.extend_from_slice(&rest);
    }
    let text = String::from_utf8_lossy(&text);
    let toks = tokens(text.trim_end_matches('\0'));
    let mut pos = 0;
    let top = parse_section(&toks, &mut pos, 0).ok_or("metadata text does not parse")?;
    let (vg_name, vg) = top
        .iter()
        .find_map(|(k, v)| match v {
            Node::Section(s) if s.contains_key("physical_volumes") => Some((k.clone(), s)),
            _ => None,
        })
        .ok_or("no volume group in the metadata")?;
    let extent = num(vg, "extent_size")
        .ok_or("no extent_size")?
        .saturating_mul(512);
    let pvs = section(vg, "physical_volumes").ok_or("no physical_volumes")?;
    let (pv_name, pv) = pvs
        .iter()
        .find_map(|(k, v)| match v {
            Node::Section(s) => match s.get("id") {
                Some(Node::Value(id)) if id.replace('-', "") == pv_uuid => Some((k.clone(), s)),
                _ => None,
            },
            _ => None,
        })
        .ok_or("this PV is not in its volume group's metadata")?;
    let pe_start = num(pv, "pe_start")
        .ok_or("no pe_start")?
        .saturating_mul(512);
    let mut out = PhysicalVolume {
        vg: Some(vg_name.clone()),
        ..Default::default()
    };
    let Some(lvs) = section(vg, "logical_volumes") else {
        return Ok(out);
    };
    for (lv_name, lv) in lvs {
        let Node::Section(lv) = lv else { continue };
        let full = format!("{vg_name}/{lv_name}");
        match linear_range(lv, &pv_name) {
            Some((pe, count)) => out.lvs.push(LogicalVolume {
                name: full,
                start: pe_start.saturating_add(pe.saturating_mul(extent)),
                len: count.saturating_mul(extent),
            }),
            None => out.skipped.push(full),
        }
    }
    Ok(out)
}

/// (first PE, extent count) of an LV whose segments are linear, on `pv`,
/// in order and contiguous.
fn linear_range(lv: &BTreeMap<String, Node>, pv: &str) -> Option<(u64, u64)> {
    let n = num(lv, "segment_count")?;
    let mut range: Option<(u64, u64)> = None;
    for i in 1..=n.min(1024) {
        let seg = section(lv, &format!("segment{i}"))?;
        match seg.get("type") {
            Some(Node::Value(t)) if t == "striped" => {}
            _ => return None,
        }
        if num(seg, "stripe_count")? != 1 {
            return None;
        }
        let Node::List(stripes) = seg.get("stripes")? else {
            return None;
        };
        if stripes.first()? != pv {
            return None;
        }
        let pe: u64 = stripes.get(1)?.parse().ok()?;
        let count = num(seg, "extent_count")?;
        range = match range {
            None => Some((pe, count)),
            Some((start, len)) if start + len == pe => Some((start, len + count)),
            Some(_) => return None,
        };
    }
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_text() {
        let t = r#"vg0 { id = "x" extent_size = 8192 # 4 MiB
            physical_volumes { pv0 { id = "ab-cd" pe_start = 2048 } }
            logical_volumes { root { segment_count = 2
              segment1 { start_extent = 0 extent_count = 5 type = "striped" stripe_count = 1 stripes = [ "pv0", 3 ] }
              segment2 { start_extent = 5 extent_count = 2 type = "striped" stripe_count = 1 stripes = [ "pv0", 8 ] } } } }"#;
        let toks = tokens(t);
        let mut pos = 0;
        let top = parse_section(&toks, &mut pos, 0).unwrap();
        let vg = section(&top, "vg0").unwrap();
        let lv = section(section(vg, "logical_volumes").unwrap(), "root").unwrap();
        assert_eq!(linear_range(lv, "pv0"), Some((3, 7)));
        assert_eq!(linear_range(lv, "pv1"), None);
    }
}
