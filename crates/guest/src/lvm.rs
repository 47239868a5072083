//! LVM2: the physical volume label, its text metadata, and the linear
//! logical volumes of the PVs found on this disk. Written here: the one crate
//! (lamlvm) is no_std/embedded-io and young; the format is a label, a header
//! and a small text file.
//!
//! Every PV of the disk is read first ([`read`]); [`assemble`] then maps each
//! logical volume whose segments are all linear and on those PVs, in any
//! order and with gaps between them (an LV grown with `lvextend`, or spread
//! over two PVs of the same disk). Striped, mirrored, raid, thin, cached or
//! multi-disk volumes are named, not read.

use crate::bytes::{self, le32, le64};
use crate::cache::Extent;
use std::collections::BTreeMap;

/// Largest metadata text read (LVM's default metadata area is 1 MiB).
const MAX_METADATA: u64 = 4 * 1024 * 1024;
/// Deepest section nesting accepted in the metadata text (real: 5).
const MAX_DEPTH: usize = 16;
/// Segments read per logical volume (lvextend adds one per call).
const MAX_SEGMENTS: u64 = 1024;
/// Metadata area header magic.
const MDA_MAGIC: &[u8; 16] = b"\x20LVM2\x20x[5A%r0N*>";

/// A logical volume mapped onto the disk, extent by extent.
#[derive(Debug, Clone)]
pub(crate) struct LogicalVolume {
    /// `vg/lv`.
    pub(crate) name: String,
    /// VG and LV uuids without dashes (udev's `dm-uuid-LVM-<vg><lv>`).
    pub(crate) dm_uuid: String,
    /// Where each piece of the LV lies on the disk, in LV order.
    pub(crate) extents: Vec<Extent>,
    /// Length in bytes.
    pub(crate) len: u64,
}

/// A logical volume that is not read, with why.
#[derive(Debug, Clone)]
pub(crate) struct SkippedVolume {
    /// `vg/lv`.
    pub(crate) name: String,
    /// Why (`segment type thin`, `on PV pv1, which is not on this disk`).
    pub(crate) why: String,
}

/// One segment of an LV's metadata.
#[derive(Debug, Clone)]
struct Segment {
    start_extent: u64,
    extent_count: u64,
    /// `Ok((pv name, first PE))` for a linear segment, `Err(description)`.
    linear: Result<(String, u64), String>,
}

#[derive(Debug, Clone)]
struct LvMeta {
    name: String,
    uuid: String,
    visible: bool,
    segments: Result<Vec<Segment>, String>,
}

/// A physical volume: its label and its copy of the VG metadata.
#[derive(Debug, Clone)]
pub(crate) struct PhysicalVolume {
    /// PV uuid without dashes.
    pv_uuid: String,
    /// VG name.
    pub(crate) vg: String,
    vg_uuid: String,
    seqno: u64,
    /// Bytes per extent.
    extent: u64,
    /// Every PV of the VG: name in the metadata → (uuid without dashes, pe_start in bytes).
    pvs: BTreeMap<String, (String, u64)>,
    lvs: Vec<LvMeta>,
}

#[derive(Debug, Clone)]
enum Node {
    Value(String),
    List(Vec<String>),
    Section(BTreeMap<String, Node>),
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
    while let Some(name) = toks.get(*pos).cloned() {
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

fn text(map: &BTreeMap<String, Node>, key: &str) -> Option<String> {
    match map.get(key)? {
        Node::Value(v) => Some(v.clone()),
        _ => None,
    }
}

fn undash(s: &str) -> String {
    s.chars().filter(|&c| c != '-').collect()
}

/// Reads the PV label and metadata at the start of `view`.
pub(crate) fn read(view: &crate::cache::View<'_, '_>) -> Result<PhysicalVolume, String> {
    let head = view.read_vec(0, 2048).map_err(|e| e.to_string())?;
    let label = (0..4usize)
        .map(|s| s * 512)
        .find(|&o| {
            bytes::magic_at(&head, o, b"LABELONE") && bytes::magic_at(&head, o + 24, b"LVM2 001")
        })
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
    if !bytes::magic_at(&mdah, 4, MDA_MAGIC) {
        return Err("bad metadata area magic".into());
    }
    let loc_off = le64(&mdah, 40).ok_or("mda")?;
    let loc_size = le64(&mdah, 48).ok_or("mda")?;
    if loc_size == 0 || loc_size > MAX_METADATA || loc_off >= mda_size || loc_off < 512 {
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
    parse_metadata(text.trim_end_matches('\0'), &pv_uuid)
}

/// The VG of one PV from its metadata text.
pub(crate) fn parse_metadata(metadata: &str, pv_uuid: &str) -> Result<PhysicalVolume, String> {
    let toks = tokens(metadata);
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
        .filter(|&e| e > 0)
        .ok_or("no extent_size")?
        .saturating_mul(512);
    let mut pvs = BTreeMap::new();
    for (name, pv) in section(vg, "physical_volumes").ok_or("no physical_volumes")? {
        let Node::Section(pv) = pv else { continue };
        let uuid = text(pv, "id").map(|u| undash(&u)).unwrap_or_default();
        let pe_start = num(pv, "pe_start").unwrap_or(0).saturating_mul(512);
        pvs.insert(name.clone(), (uuid, pe_start));
    }
    if !pvs.values().any(|(u, _)| u == pv_uuid) {
        return Err("this PV is not in its volume group's metadata".into());
    }
    let mut lvs = Vec::new();
    if let Some(sec) = section(vg, "logical_volumes") {
        for (name, lv) in sec {
            let Node::Section(lv) = lv else { continue };
            let visible = match lv.get("status") {
                Some(Node::List(flags)) => flags.iter().any(|f| f == "VISIBLE"),
                _ => true,
            };
            lvs.push(LvMeta {
                name: name.clone(),
                uuid: text(lv, "id").map(|u| undash(&u)).unwrap_or_default(),
                visible,
                segments: segments(lv),
            });
        }
    }
    Ok(PhysicalVolume {
        pv_uuid: pv_uuid.to_string(),
        vg: vg_name,
        vg_uuid: text(vg, "id").map(|u| undash(&u)).unwrap_or_default(),
        seqno: num(vg, "seqno").unwrap_or(0),
        extent,
        pvs,
        lvs,
    })
}

/// The segments of an LV; a linear one is `striped` with one stripe.
fn segments(lv: &BTreeMap<String, Node>) -> Result<Vec<Segment>, String> {
    let n = num(lv, "segment_count").ok_or("no segment_count")?;
    if n > MAX_SEGMENTS {
        return Err(format!("{n} segments"));
    }
    let mut out = Vec::new();
    for i in 1..=n {
        let seg = section(lv, &format!("segment{i}")).ok_or(format!("no segment{i}"))?;
        let start_extent = num(seg, "start_extent").ok_or("no start_extent")?;
        let extent_count = num(seg, "extent_count").ok_or("no extent_count")?;
        let ty = text(seg, "type").unwrap_or_default();
        let linear = match (ty.as_str(), num(seg, "stripe_count"), seg.get("stripes")) {
            ("striped", Some(1), Some(Node::List(st))) => match (st.first(), st.get(1)) {
                (Some(pv), Some(pe)) => pe
                    .parse::<u64>()
                    .map(|pe| (pv.clone(), pe))
                    .map_err(|_| format!("bad PE {pe:?}")),
                _ => Err("a stripe without PV and PE".into()),
            },
            ("striped", Some(c), _) => Err(format!("striped over {c} PVs")),
            (t, _, _) => Err(format!("segment type {t}")),
        };
        out.push(Segment {
            start_extent,
            extent_count,
            linear,
        });
    }
    Ok(out)
}

/// Maps the logical volumes of the PVs found on one disk. `pvs` are the PVs
/// with their offset on the disk and length. Returns the readable LVs and the
/// visible ones that are not read, with why.
pub(crate) fn assemble(
    pvs: &[(u64, u64, PhysicalVolume)],
) -> (Vec<LogicalVolume>, Vec<SkippedVolume>) {
    let mut mapped = Vec::new();
    let mut skipped = Vec::new();
    // One VG per uuid, described by its newest metadata (highest seqno).
    let mut vgs: BTreeMap<&str, &PhysicalVolume> = BTreeMap::new();
    for (_, _, pv) in pvs {
        let key = if pv.vg_uuid.is_empty() {
            pv.vg.as_str()
        } else {
            pv.vg_uuid.as_str()
        };
        match vgs.get(key) {
            Some(old) if old.seqno >= pv.seqno => {}
            _ => {
                vgs.insert(key, pv);
            }
        }
    }
    for vg in vgs.values() {
        // PV name in the metadata → (offset of its data on the disk, bytes of it on the disk).
        let mut on_disk: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (name, (uuid, pe_start)) in &vg.pvs {
            if let Some((off, len, _)) = pvs.iter().find(|(_, _, p)| &p.pv_uuid == uuid) {
                on_disk.insert(
                    name,
                    (off.saturating_add(*pe_start), len.saturating_sub(*pe_start)),
                );
            }
        }
        for lv in vg.lvs.iter().filter(|l| l.visible) {
            let name = format!("{}/{}", vg.vg, lv.name);
            match map_lv(lv, vg.extent, &on_disk) {
                Ok((extents, len)) => mapped.push(LogicalVolume {
                    name,
                    dm_uuid: format!("{}{}", vg.vg_uuid, lv.uuid),
                    extents,
                    len,
                }),
                Err(why) => skipped.push(SkippedVolume { name, why }),
            }
        }
    }
    (mapped, skipped)
}

fn map_lv(
    lv: &LvMeta,
    extent: u64,
    on_disk: &BTreeMap<&str, (u64, u64)>,
) -> Result<(Vec<Extent>, u64), String> {
    let mut segs = lv.segments.clone()?;
    segs.sort_by_key(|s| s.start_extent);
    let mut out: Vec<Extent> = Vec::new();
    let mut next = 0u64;
    for s in &segs {
        if s.start_extent != next {
            return Err(format!("segments leave a gap at extent {next}"));
        }
        let (pv, pe) = s.linear.clone()?;
        let (base, avail) = *on_disk
            .get(pv.as_str())
            .ok_or(format!("on PV {pv}, which is not on this disk"))?;
        let off = pe.checked_mul(extent).ok_or("PE overflows")?;
        let len = s
            .extent_count
            .checked_mul(extent)
            .ok_or("extent count overflows")?;
        if off.checked_add(len).is_none_or(|end| end > avail) {
            return Err(format!(
                "extents {pe}+{} lie past the end of PV {pv}",
                s.extent_count
            ));
        }
        let lv_off = next.checked_mul(extent).ok_or("LV offset overflows")?;
        let disk = base.checked_add(off).ok_or("PE overflows")?;
        match out.last_mut() {
            // lvextend onto the next free extents: one piece.
            Some(last) if last.disk.checked_add(last.len) == Some(disk) => last.len += len,
            _ => out.push(Extent {
                start: lv_off,
                disk,
                len,
            }),
        }
        next = next
            .checked_add(s.extent_count)
            .ok_or("extent count overflows")?;
    }
    if out.is_empty() {
        return Err("no segments".into());
    }
    Ok((out, next.saturating_mul(extent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_in_any_order_on_two_pvs() {
        let t = r#"vg0 { id = "v-g" seqno = 3 extent_size = 8192 # 4 MiB
            physical_volumes { pv0 { id = "ab-cd" pe_start = 2048 } pv1 { id = "ef" pe_start = 2048 } pv2 { id = "zz" pe_start = 2048 } }
            logical_volumes {
              root { id = "l-v" status = ["READ", "WRITE", "VISIBLE"] segment_count = 3
                segment1 { start_extent = 0 extent_count = 5 type = "striped" stripe_count = 1 stripes = [ "pv0", 3 ] }
                segment3 { start_extent = 7 extent_count = 1 type = "striped" stripe_count = 1 stripes = [ "pv1", 0 ] }
                segment2 { start_extent = 5 extent_count = 2 type = "striped" stripe_count = 1 stripes = [ "pv0", 10 ] } }
              far { id = "f" status = ["VISIBLE"] segment_count = 1
                segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = [ "pv2", 0 ] } }
              pool { id = "p" status = ["VISIBLE"] segment_count = 1
                segment1 { start_extent = 0 extent_count = 1 type = "thin-pool" } } } }"#;
        let pv0 = parse_metadata(t, "abcd").unwrap();
        let pv1 = parse_metadata(t, "ef").unwrap();
        let mib = 1 << 20;
        let (lvs, skipped) = assemble(&[(100 * mib, 64 * mib, pv0), (200 * mib, 64 * mib, pv1)]);
        assert_eq!(lvs.len(), 1);
        let root = &lvs[0];
        assert_eq!(root.name, "vg0/root");
        assert_eq!(root.dm_uuid, "vglv");
        assert_eq!(root.len, 8 * 4 * mib);
        let base0 = 100 * mib + mib;
        assert_eq!(
            root.extents,
            vec![
                Extent {
                    start: 0,
                    disk: base0 + 12 * mib,
                    len: 20 * mib
                },
                Extent {
                    start: 20 * mib,
                    disk: base0 + 40 * mib,
                    len: 8 * mib
                },
                Extent {
                    start: 28 * mib,
                    disk: 201 * mib,
                    len: 4 * mib
                },
            ]
        );
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.why))
            .collect();
        assert_eq!(
            why,
            [
                "vg0/far: on PV pv2, which is not on this disk",
                "vg0/pool: segment type thin-pool"
            ]
        );
        assert!(parse_metadata(t, "nope").is_err());
    }
}
