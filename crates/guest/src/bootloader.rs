//! Which kernel the boot loader really boots: GRUB 2 (`grub.cfg` menu
//! entries, `set default`, grubenv `saved_entry`, `GRUB_DEFAULT`, BLS entries
//! through `blscfg`), GRUB legacy (`grub.conf` / `menu.lst`) and extlinux.
//! Text parsers only; the caller reads the files.

use crate::rpmvercmp::rpmvercmp;
use std::collections::BTreeMap;

/// Menu entries kept per file (a real menu has a handful).
const MAX_ENTRIES: usize = 256;
/// Nested blocks (submenu, menuentry, function) followed in grub.cfg; deeper ones are
/// ignored, so a hostile file cannot make each entry copy a huge stack.
const MAX_DEPTH: usize = 16;

/// A GRUB submenu: its title and id.
type Submenu = (String, Option<String>);

/// One boot menu entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BootEntry {
    /// Menu title.
    pub(crate) title: String,
    /// GRUB id (`--id`, `$menuentry_id_option`) or BLS file stem.
    pub(crate) id: Option<String>,
    /// Kernel path as the loader names it (`/vmlinuz-…`, `/boot/vmlinuz-…`).
    pub(crate) kernel: String,
    /// Initramfs paths (the first is the one with the modules).
    pub(crate) initrds: Vec<String>,
    /// Kernel command line.
    pub(crate) options: String,
    /// Titles/ids of the submenus that hold it (GRUB `submenu`).
    pub(crate) submenu: Vec<Submenu>,
    /// BLS `version`.
    pub(crate) version: Option<String>,
}

impl BootEntry {
    /// The file name of the kernel image.
    pub(crate) fn kernel_file(&self) -> &str {
        self.kernel.rsplit('/').next().unwrap_or(&self.kernel)
    }
}

/// Splits a shell-like line into words, honouring single and double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The id of a `menuentry`/`submenu` line: `--id X`, `--id=X` or
/// `$menuentry_id_option 'X'`.
fn entry_id(w: &[String]) -> Option<String> {
    w.iter().enumerate().find_map(|(i, x)| {
        if let Some(v) = x.strip_prefix("--id=") {
            return Some(v.to_string());
        }
        (x == "--id" || x == "$menuentry_id_option").then(|| w.get(i + 1).cloned())?
    })
}

/// A GRUB 2 configuration: its menu (BLS entries stand where `blscfg` is)
/// and its `set default=` value.
#[derive(Debug, Clone, Default)]
pub(crate) struct GrubCfg {
    /// Top-level menu items in order; entries inside a submenu carry it.
    pub(crate) entries: Vec<BootEntry>,
    /// Index in `entries` where `blscfg` puts the BLS entries.
    pub(crate) blscfg_at: Option<usize>,
    /// The last `set default=` as written, leaving out the one-shot
    /// `${next_entry}` (grub-reboot), which is not what boots every time.
    pub(crate) default: Option<String>,
}

/// Parses a grub.cfg.
pub(crate) fn parse_grub_cfg(text: &str) -> GrubCfg {
    let mut cfg = GrubCfg::default();
    // Open blocks: Some(menu title, id) for a submenu, None for menuentry/if/function.
    let mut stack: Vec<Option<Submenu>> = Vec::new();
    let mut current: Option<BootEntry> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let w = words(line);
        let Some(first) = w.first().map(String::as_str) else {
            continue;
        };
        match first {
            "menuentry" | "submenu" | "function"
                if stack.len() >= MAX_DEPTH || cfg.entries.len() >= MAX_ENTRIES => {}
            "menuentry" | "submenu" => {
                let title = w.get(1).cloned().unwrap_or_default();
                let id = entry_id(&w);
                if first == "submenu" {
                    stack.push(Some((title, id)));
                } else {
                    current = Some(BootEntry {
                        title,
                        id,
                        submenu: stack.iter().flatten().cloned().collect(),
                        ..Default::default()
                    });
                    stack.push(None);
                }
            }
            // The closing brace of a menuentry (not of a submenu or function) ends the entry.
            "}" if stack.pop() == Some(None) => {
                if let Some(e) = current.take().filter(|e| !e.kernel.is_empty()) {
                    if cfg.entries.len() < MAX_ENTRIES {
                        cfg.entries.push(e);
                    }
                }
            }
            "function" => stack.push(None),
            "linux" | "linuxefi" | "linux16" | "kernel" => {
                if let Some(e) = current.as_mut() {
                    e.kernel = w.get(1).cloned().unwrap_or_default();
                    e.options = w.get(2..).map(|x| x.join(" ")).unwrap_or_default();
                }
            }
            "initrd" | "initrdefi" | "initrd16" => {
                if let Some(e) = current.as_mut() {
                    e.initrds = w.get(1..).unwrap_or_default().to_vec();
                }
            }
            "blscfg" if current.is_none() => {
                cfg.blscfg_at.get_or_insert(cfg.entries.len());
            }
            "set" if current.is_none() => {
                if let Some(v) = w.get(1).and_then(|x| x.strip_prefix("default=")) {
                    if !v.contains("next_entry") {
                        cfg.default = Some(v.to_string());
                    }
                }
            }
            _ => {}
        }
        // `menuentry 'x' { linux …; }` on one line is rare; a closing brace
        // at the end of a line that opened a block is handled by the next "}".
    }
    cfg
}

/// A BLS entry (`/boot/loader/entries/<stem>.conf`).
pub(crate) fn parse_bls(stem: &str, text: &str) -> Option<BootEntry> {
    let mut e = BootEntry {
        id: Some(stem.to_string()),
        ..Default::default()
    };
    for line in text.lines() {
        let line = line.trim();
        let (k, v) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k, v.trim()),
            None => continue,
        };
        match k {
            "title" => e.title = v.to_string(),
            "version" => e.version = Some(v.to_string()),
            "linux" => e.kernel = v.to_string(),
            "initrd" => e.initrds.push(v.to_string()),
            "options" => e.options = v.to_string(),
            _ => {}
        }
    }
    (!e.kernel.is_empty()).then_some(e)
}

/// Orders BLS entries as GRUB's blscfg lists them: newest version first
/// (rpm's comparison), the file stem breaking ties.
pub(crate) fn sort_bls(entries: &mut [BootEntry]) {
    entries.sort_by(|a, b| {
        let key = |e: &BootEntry| {
            e.version
                .clone()
                .or_else(|| e.id.clone())
                .unwrap_or_default()
        };
        rpmvercmp(&key(b), &key(a))
            .then_with(|| rpmvercmp(b.id.as_deref().unwrap_or(""), a.id.as_deref().unwrap_or("")))
    });
}

/// `KEY=value` lines of a grubenv block (its `#` padding ignored).
pub(crate) fn parse_grubenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Resolves a GRUB default (`2`, `1>0`, an id, a title, `Advanced…>title`)
/// against a menu; `None` when nothing matches.
pub(crate) fn resolve_grub_default<'e>(menu: &'e [BootEntry], spec: &str) -> Option<&'e BootEntry> {
    let spec = spec.trim();
    if spec.is_empty() {
        return None;
    }
    let mut parts = spec.split('>');
    let top = parts.next()?;
    let sub = parts.next();
    // Top-level items: an entry, or a whole submenu (counted once).
    let mut items: Vec<(Option<Submenu>, Vec<&BootEntry>)> = Vec::new();
    for e in menu {
        let head = e.submenu.first().cloned();
        match (&head, items.last_mut()) {
            (Some(h), Some((Some(last), group))) if last == h => group.push(e),
            _ => items.push((head, vec![e])),
        }
    }
    let matches = |title: &str, id: Option<&str>, want: &str| title == want || id == Some(want);
    let (head, group) = match top.parse::<usize>() {
        Ok(n) => items.get(n)?,
        Err(_) => items.iter().find(|(h, g)| match h {
            Some((t, id)) => matches(t, id.as_deref(), top),
            None => g
                .first()
                .is_some_and(|e| matches(&e.title, e.id.as_deref(), top)),
        })?,
    };
    match (head, sub) {
        (None, _) | (Some(_), None) => group.first().copied(),
        (Some(_), Some(sub)) => match sub.parse::<usize>() {
            Ok(n) => group.get(n).copied(),
            Err(_) => group
                .iter()
                .find(|e| matches(&e.title, e.id.as_deref(), sub))
                .copied(),
        },
    }
}

/// GRUB legacy (`grub.conf`, `menu.lst`): the entries and the `default` index.
pub(crate) fn parse_grub_legacy(text: &str) -> (usize, Vec<BootEntry>) {
    let mut default = 0usize;
    let mut entries: Vec<BootEntry> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let (k, v) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (k, v.trim().trim_start_matches('=').trim()),
            None => continue,
        };
        match k {
            "default" if entries.is_empty() => default = v.parse().unwrap_or(0),
            "title" if entries.len() < MAX_ENTRIES => entries.push(BootEntry {
                title: v.to_string(),
                ..Default::default()
            }),
            "kernel" => {
                if let Some(e) = entries.last_mut() {
                    let mut w = v.split_whitespace();
                    e.kernel = w.next().unwrap_or("").to_string();
                    e.options = w.collect::<Vec<_>>().join(" ");
                }
            }
            "initrd" => {
                if let Some(e) = entries.last_mut() {
                    e.initrds = vec![v.split_whitespace().next().unwrap_or("").to_string()];
                }
            }
            _ => {}
        }
    }
    // GRUB legacy's partition prefix: `(hd0,0)/vmlinuz-…`.
    for e in &mut entries {
        if let Some((_, path)) = e.kernel.split_once(')') {
            e.kernel = path.to_string();
        }
    }
    entries.retain(|e| !e.kernel.is_empty());
    (default, entries)
}

/// extlinux / syslinux: the entries and the `DEFAULT` label.
pub(crate) fn parse_extlinux(text: &str) -> (Option<String>, Vec<BootEntry>) {
    let mut default = None;
    let mut entries: Vec<BootEntry> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (k, v) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k.to_ascii_lowercase(), v.trim()),
            None => continue,
        };
        match k.as_str() {
            "default" => default = Some(v.to_string()),
            "label" if entries.len() < MAX_ENTRIES => entries.push(BootEntry {
                title: v.to_string(),
                id: Some(v.to_string()),
                ..Default::default()
            }),
            "kernel" | "linux" => {
                if let Some(e) = entries.last_mut() {
                    e.kernel = v.to_string();
                }
            }
            "initrd" => {
                if let Some(e) = entries.last_mut() {
                    e.initrds = v.split(',').map(str::to_string).collect();
                }
            }
            "append" => {
                if let Some(e) = entries.last_mut() {
                    e.options = v.to_string();
                    if let Some(i) = v.split_whitespace().find_map(|w| w.strip_prefix("initrd=")) {
                        e.initrds = i.split(',').map(str::to_string).collect();
                    }
                }
            }
            _ => {}
        }
    }
    entries.retain(|e| !e.kernel.is_empty());
    (default, entries)
}

/// The entry extlinux boots: the `DEFAULT` label, else the first.
pub(crate) fn extlinux_default(default: Option<&str>, entries: &[BootEntry]) -> Option<BootEntry> {
    default
        .and_then(|d| entries.iter().find(|e| e.title == d))
        .or_else(|| entries.first())
        .cloned()
}

/// What the resolver reads from the guest's tree (mounts applied).
pub(crate) trait Files {
    /// A text file, if it exists and is readable.
    fn text(&mut self, path: &str) -> Option<String>;
    /// Names in a directory (empty when missing).
    fn list(&mut self, path: &str) -> Vec<String>;
}

/// The entry the boot loader boots, and how that was decided.
#[derive(Debug, Clone)]
pub(crate) struct DefaultEntry {
    /// The entry.
    pub(crate) entry: BootEntry,
    /// Which configuration decided (`/boot/grub2/grubenv saved_entry`…).
    pub(crate) source: String,
    /// Every BLS entry, GRUB menu entry and legacy entry seen (for `root=`).
    pub(crate) all: Vec<BootEntry>,
    /// The grubenv variables (RHEL 8 keeps the command line in `kernelopts`).
    pub(crate) env: BTreeMap<String, String>,
}

impl DefaultEntry {
    /// An entry's command line with grubenv's `$kernelopts` / `${kernelopts}` filled in.
    pub(crate) fn options(&self, e: &BootEntry) -> String {
        match self.env.get("kernelopts") {
            Some(k) => e
                .options
                .replace("${kernelopts}", k)
                .replace("$kernelopts", k),
            None => e.options.clone(),
        }
    }
}

/// GRUB 2 configurations, in the order GRUB finds them (BIOS core image
/// prefix, then the ESP's copy, which RHEL 7/8 and SLES use under UEFI).
fn grub_cfg_paths(files: &mut dyn Files) -> Vec<String> {
    let mut out = vec![
        "/boot/grub2/grub.cfg".to_string(),
        "/boot/grub/grub.cfg".to_string(),
    ];
    for d in files.list("/boot/efi/EFI") {
        if !d.eq_ignore_ascii_case("BOOT") {
            out.push(format!("/boot/efi/EFI/{d}/grub.cfg"));
        }
    }
    out
}

fn grubenv(files: &mut dyn Files, cfg_path: &str) -> Option<(String, BTreeMap<String, String>)> {
    let dir = cfg_path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut paths = vec![format!("{dir}/grubenv")];
    paths.extend(["/boot/grub2/grubenv".into(), "/boot/grub/grubenv".into()]);
    for d in files.list("/boot/efi/EFI") {
        paths.push(format!("/boot/efi/EFI/{d}/grubenv"));
    }
    paths
        .into_iter()
        .find_map(|p| Some((p.clone(), parse_grubenv(&files.text(&p)?))))
}

/// The entry the guest's boot loader boots by default; `configs` gets every
/// file read. `None` when no boot loader configuration names a kernel.
pub(crate) fn default_entry(
    files: &mut dyn Files,
    configs: &mut Vec<String>,
) -> Option<DefaultEntry> {
    let mut bls = Vec::new();
    for name in files.list("/boot/loader/entries") {
        let Some(stem) = name.strip_suffix(".conf") else {
            continue;
        };
        let path = format!("/boot/loader/entries/{name}");
        if let Some(e) = files.text(&path).and_then(|t| parse_bls(stem, &t)) {
            configs.push(path);
            if bls.len() < MAX_ENTRIES {
                bls.push(e);
            }
        }
    }
    sort_bls(&mut bls);
    let grub_default = files
        .text("/etc/default/grub")
        .and_then(|t| crate::linux::key_values(&t).get("GRUB_DEFAULT").cloned());

    for path in grub_cfg_paths(files) {
        let Some(text) = files.text(&path) else {
            continue;
        };
        let cfg = parse_grub_cfg(&text);
        if cfg.entries.is_empty() && cfg.blscfg_at.is_none() {
            // A stub that loads another grub.cfg (the ESP's on RHEL 9, Ubuntu).
            continue;
        }
        configs.push(path.clone());
        let mut menu = cfg.entries.clone();
        if let Some(at) = cfg.blscfg_at {
            let at = at.min(menu.len());
            menu.splice(at..at, bls.iter().cloned());
        }
        let env = grubenv(files, &path);
        let saved = env
            .as_ref()
            .and_then(|(p, kv)| Some((p.clone(), kv.get("saved_entry")?.clone())))
            .filter(|(_, v)| !v.is_empty());
        let (spec, source) = match cfg.default.as_deref() {
            Some(d) if d.contains("saved_entry") => match &saved {
                Some((p, v)) => (v.clone(), format!("{p} saved_entry")),
                None => (
                    "0".into(),
                    format!("{path} (no saved_entry: the first entry)"),
                ),
            },
            Some(d) => (d.to_string(), format!("{path} set default")),
            None => match grub_default.as_deref() {
                Some("saved") => match &saved {
                    Some((p, v)) => (v.clone(), format!("{p} saved_entry")),
                    None => (
                        "0".into(),
                        "GRUB_DEFAULT=saved, none saved: the first entry".into(),
                    ),
                },
                Some(d) => (d.to_string(), "/etc/default/grub GRUB_DEFAULT".into()),
                None => ("0".into(), format!("{path}: the first entry")),
            },
        };
        // GRUB boots the first entry when the default names none.
        let (entry, source) = match resolve_grub_default(&menu, &spec) {
            Some(e) => (e.clone(), source),
            None => match menu.first() {
                Some(e) => (
                    e.clone(),
                    format!("{source} names no entry ({spec:?}): the first entry"),
                ),
                None => continue,
            },
        };
        return Some(DefaultEntry {
            entry,
            source,
            all: menu,
            env: env.map(|(_, kv)| kv).unwrap_or_default(),
        });
    }
    if let Some(first) = bls.first().cloned() {
        // BLS without grub.cfg: systemd-boot, or GRUB reading the same entries.
        return Some(DefaultEntry {
            entry: first,
            source: "/boot/loader/entries (newest)".into(),
            all: bls,
            env: BTreeMap::new(),
        });
    }
    for path in [
        "/boot/grub/grub.conf",
        "/boot/grub/menu.lst",
        "/etc/grub.conf",
    ] {
        let Some(text) = files.text(path) else {
            continue;
        };
        let (default, entries) = parse_grub_legacy(&text);
        let Some(entry) = entries.get(default).or_else(|| entries.first()).cloned() else {
            continue;
        };
        configs.push(path.into());
        return Some(DefaultEntry {
            entry,
            source: format!("{path} default={default}"),
            all: entries,
            env: BTreeMap::new(),
        });
    }
    for path in [
        "/boot/extlinux/extlinux.conf",
        "/boot/extlinux.conf",
        "/extlinux.conf",
        "/boot/syslinux/syslinux.cfg",
        "/boot/syslinux/extlinux.conf",
    ] {
        let Some(text) = files.text(path) else {
            continue;
        };
        let (default, entries) = parse_extlinux(&text);
        let Some(entry) = extlinux_default(default.as_deref(), &entries) else {
            continue;
        };
        configs.push(path.into());
        return Some(DefaultEntry {
            entry,
            source: format!("{path} DEFAULT"),
            all: entries,
            env: BTreeMap::new(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"
set default="1>2"
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
fi
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-u1' {
	linux	/boot/vmlinuz-6.1.0-18-amd64 root=UUID=u1 ro quiet
	initrd	/boot/initrd.img-6.1.0-18-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-u1' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-18-amd64' $menuentry_id_option 'gnulinux-6.1.0-18-amd64-advanced-u1' {
		linux	/boot/vmlinuz-6.1.0-18-amd64 root=UUID=u1 ro quiet
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)' {
		linux	/boot/vmlinuz-6.1.0-18-amd64 root=UUID=u1 ro single
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-9-amd64' $menuentry_id_option 'gnulinux-6.1.0-9-amd64-advanced-u1' {
		linux	/boot/vmlinuz-6.1.0-9-amd64 root=UUID=u1 ro quiet
	}
}
"#;

    #[test]
    fn grub2_defaults() {
        let cfg = parse_grub_cfg(DEBIAN);
        assert_eq!(cfg.entries.len(), 4);
        assert_eq!(cfg.default.as_deref(), Some("1>2"));
        let k =
            |s: &str| resolve_grub_default(&cfg.entries, s).map(|e| e.kernel_file().to_string());
        assert_eq!(k("0").as_deref(), Some("vmlinuz-6.1.0-18-amd64"));
        assert_eq!(k("1>2").as_deref(), Some("vmlinuz-6.1.0-9-amd64"));
        assert_eq!(
            k("gnulinux-advanced-u1>gnulinux-6.1.0-9-amd64-advanced-u1").as_deref(),
            Some("vmlinuz-6.1.0-9-amd64")
        );
        assert_eq!(
            k("Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-9-amd64")
                .as_deref(),
            Some("vmlinuz-6.1.0-9-amd64")
        );
        assert_eq!(k("7"), None);
    }

    /// A tree held in memory.
    struct Mem(BTreeMap<String, String>);
    impl Files for Mem {
        fn text(&mut self, path: &str) -> Option<String> {
            self.0.get(path).cloned()
        }
        fn list(&mut self, path: &str) -> Vec<String> {
            let prefix = format!("{path}/");
            self.0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|rest| !rest.contains('/'))
                .map(str::to_string)
                .collect()
        }
    }

    #[test]
    fn grub_default_from_etc_default_grub() {
        let cfg = "menuentry 'a' {\n linux /vmlinuz-1\n}\nmenuentry 'b' --id b-id {\n linux /vmlinuz-2\n}\n";
        let mut files = Mem(BTreeMap::from([
            ("/boot/grub/grub.cfg".to_string(), cfg.to_string()),
            (
                "/etc/default/grub".to_string(),
                "GRUB_DEFAULT=\"b-id\"\n".to_string(),
            ),
        ]));
        let d = default_entry(&mut files, &mut Vec::new()).unwrap();
        assert_eq!(
            (d.entry.kernel_file(), d.source.as_str()),
            ("vmlinuz-2", "/etc/default/grub GRUB_DEFAULT")
        );
        // saved, with a grubenv beside grub.cfg.
        files
            .0
            .insert("/etc/default/grub".into(), "GRUB_DEFAULT=saved\n".into());
        files.0.insert(
            "/boot/grub/grubenv".into(),
            "# GRUB Environment Block\nsaved_entry=1\n####".into(),
        );
        let d = default_entry(&mut files, &mut Vec::new()).unwrap();
        assert_eq!(d.entry.kernel_file(), "vmlinuz-2");
        // A saved entry that names nothing: GRUB boots the first.
        files
            .0
            .insert("/boot/grub/grubenv".into(), "saved_entry=gone\n".into());
        let d = default_entry(&mut files, &mut Vec::new()).unwrap();
        assert_eq!(d.entry.kernel_file(), "vmlinuz-1");
    }

    /// RHEL 8: BLS options are `$kernelopts`, which grubenv holds.
    #[test]
    fn rhel8_kernelopts_from_grubenv() {
        let mut files = Mem(BTreeMap::from([
            (
                "/boot/grub2/grub.cfg".to_string(),
                "set default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n".to_string(),
            ),
            (
                "/boot/grub2/grubenv".to_string(),
                "saved_entry=m-4.18.0-513.el8.x86_64\nkernelopts=root=/dev/sda2 ro crashkernel=auto\n".to_string(),
            ),
            (
                "/boot/loader/entries/m-4.18.0-513.el8.x86_64.conf".to_string(),
                "version 4.18.0-513.el8.x86_64\nlinux /vmlinuz-4.18.0-513.el8.x86_64\noptions $kernelopts $tuned_params\n".to_string(),
            ),
        ]));
        let mut configs = Vec::new();
        let d = default_entry(&mut files, &mut configs).unwrap();
        assert_eq!(d.entry.kernel_file(), "vmlinuz-4.18.0-513.el8.x86_64");
        assert!(
            d.options(&d.entry).starts_with("root=/dev/sda2 ro"),
            "{}",
            d.options(&d.entry)
        );
        assert_eq!(configs.len(), 2);
    }

    /// Random text made of the characters these formats care about never panics a parser.
    #[test]
    fn parsers_survive_garbage() {
        let alphabet: Vec<char> = "{}'\"$>=# \n\tmenuentry submenu linux initrd set default=0 title kernel LABEL DEFAULT APPEND initrd=>1(hd0,0)/".chars().collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let len = usize::try_from(x % 300).unwrap_or(0);
            let text: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[usize::try_from(x).unwrap_or(0) % alphabet.len()]
                })
                .collect();
            let cfg = parse_grub_cfg(&text);
            for spec in ["0", "1>0", "x>y", ">", "", &text] {
                let _ = resolve_grub_default(&cfg.entries, spec);
            }
            let _ = parse_grub_legacy(&text);
            let (d, e) = parse_extlinux(&text);
            let _ = extlinux_default(d.as_deref(), &e);
            let _ = parse_bls("x", &text);
            let _ = parse_grubenv(&text);
        }
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let mut text = "submenu x {\n".repeat(50_000);
        text.push_str(&"menuentry y {\n linux /vmlinuz-1\n}\n".repeat(50_000));
        let cfg = parse_grub_cfg(&text);
        assert!(cfg.entries.len() <= MAX_ENTRIES);
    }

    #[test]
    fn bls_order_is_rpms() {
        let mut e = vec![
            parse_bls("m-5.14.0-362.el9.x86_64", "linux /vmlinuz-5.14.0-362.el9.x86_64\nversion 5.14.0-362.el9.x86_64\n").unwrap(),
            parse_bls("m-5.14.0-362.8.1.el9_3.x86_64", "title R\nversion 5.14.0-362.8.1.el9_3.x86_64\nlinux /vmlinuz-5.14.0-362.8.1.el9_3.x86_64\ninitrd /initramfs-5.14.0-362.8.1.el9_3.x86_64.img $tuned_initrd\noptions root=/dev/mapper/rl-root ro\n").unwrap(),
        ];
        sort_bls(&mut e);
        assert_eq!(e[0].version.as_deref(), Some("5.14.0-362.8.1.el9_3.x86_64"));
        assert_eq!(
            e[0].initrds[0],
            "/initramfs-5.14.0-362.8.1.el9_3.x86_64.img $tuned_initrd"
        );
    }

    #[test]
    fn grub_legacy_and_extlinux() {
        let (d, e) = parse_grub_legacy(
            "default=1\ntimeout=5\ntitle CentOS (2.6.32-754.35.1.el6.x86_64)\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32-754.35.1.el6.x86_64 ro root=/dev/sda2\n\tinitrd /initramfs-2.6.32-754.35.1.el6.x86_64.img\ntitle CentOS (2.6.32-754.el6.x86_64)\n\tkernel (hd0,0)/vmlinuz-2.6.32-754.el6.x86_64 ro\n",
        );
        assert_eq!(d, 1);
        assert_eq!(e[1].kernel, "/vmlinuz-2.6.32-754.el6.x86_64");
        assert_eq!(e[0].initrds[0], "/initramfs-2.6.32-754.35.1.el6.x86_64.img");
        let (d, e) = parse_extlinux(
            "DEFAULT old\nLABEL new\n  LINUX /vmlinuz-6.6.1\n  INITRD /initramfs-6.6.1\nLABEL old\n  KERNEL /vmlinuz-6.1.1\n  APPEND root=/dev/vda1 initrd=/initramfs-6.1.1\n",
        );
        let def = extlinux_default(d.as_deref(), &e).unwrap();
        assert_eq!(def.kernel_file(), "vmlinuz-6.1.1");
        assert_eq!(def.initrds, vec!["/initramfs-6.1.1"]);
    }
}
