//! Which distribution and release a root is, and its architecture.

use super::*;

pub(super) fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    let v = v
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(v);
    v.to_string()
}

/// KEY=VALUE lines (os-release, sysconfig), quotes removed.
pub(crate) fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), unquote(v)))
        })
        .collect()
}

pub(super) fn parse_version(v: &str) -> (Option<u32>, Option<u32>) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = it.next().and_then(|s| s.parse().ok());
    let minor = it.next().and_then(|s| s.parse().ok());
    (major, minor)
}

/// The ImportImage platform of a Linux distribution.
pub(crate) fn platform_of(id: &str, name: &str) -> &'static str {
    let name_l = name.to_ascii_lowercase();
    match id {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "centos" if name_l.contains("stream") => "CentOS Stream",
        "centos" => "CentOS",
        "rhel" => "RedHat",
        "fedora" if name_l.contains("coreos") => "Fedora CoreOS",
        "fedora" => "Fedora",
        "almalinux" => "AlmaLinux",
        "rocky" => "Rocky Linux",
        "anolis" => "Anolis",
        "alinux" => "Aliyun",
        "sles" | "sled" | "sles_sap" => "SUSE",
        "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" => "OpenSUSE",
        "kylin" => "Kylin",
        "uos" | "uniontech" => "UOS",
        "gentoo" => "Gentoo",
        "coreos" | "flatcar" => "CoreOS",
        "freebsd" => "FreeBSD",
        _ => "Others Linux",
    }
}

/// Platforms whose ImportImage notes ask for CONFIG_FW_CFG_SYSFS.
pub(super) const FW_CFG_PLATFORMS: &[&str] = &[
    "CentOS Stream",
    "Anolis",
    "AlmaLinux",
    "UOS",
    "Kylin",
    "Rocky Linux",
];

/// The distribution named by the first line of /etc/redhat-release, which every RHEL
/// rebuild writes (CentOS 5 has no centos-release).
pub(super) fn redhat_release_id(line: &str) -> &'static str {
    let l = line.to_ascii_lowercase();
    [
        ("centos stream", "centos"),
        ("centos", "centos"),
        ("red hat", "rhel"),
        ("oracle", "ol"),
        ("scientific", "scientific"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
        ("fedora", "fedora"),
        ("anolis", "anolis"),
        ("alibaba cloud linux", "alinux"),
    ]
    .into_iter()
    .find(|(p, _)| l.starts_with(p))
    .map_or("rhel", |(_, id)| id)
}

/// The ImportImage platform: from ID, or, for a distribution we do not know, from the
/// first of its ID_LIKE that we do (Linux Mint → Ubuntu). Oracle Linux is known and
/// has no platform of its own.
pub(super) fn platform_with_like(id: &str, name: &str, id_like: Option<&str>) -> &'static str {
    let own = platform_of(id, name);
    if own != "Others Linux" || id == "ol" {
        return own;
    }
    id_like
        .unwrap_or("")
        .split_whitespace()
        .map(|like| platform_of(&like.to_ascii_lowercase(), name))
        .find(|p| *p != "Others Linux")
        .unwrap_or(own)
}

/// Fills the release facts; returns os-release's ID_LIKE.
pub(super) fn release(tree: &mut Tree<'_, '_>, os: &mut OsInfo) -> Option<String> {
    let mut id_like = None;
    let text = tree
        .text("/etc/os-release")
        .or_else(|| tree.text("/usr/lib/os-release"));
    if let Some(t) = text {
        let kv = key_values(&t);
        id_like = kv.get("ID_LIKE").cloned();
        os.distro = kv.get("ID").map(|s| s.to_ascii_lowercase());
        os.name = kv.get("PRETTY_NAME").or_else(|| kv.get("NAME")).cloned();
        os.version = kv.get("VERSION_ID").cloned();
    }
    // Older systems, and a more precise version (Debian's VERSION_ID has no
    // minor; /etc/debian_version does).
    if os.distro.is_none() || os.distro.as_deref() == Some("debian") {
        if let Some(v) = tree.text("/etc/debian_version") {
            let v = v.trim().to_string();
            if v.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                os.distro.get_or_insert_with(|| "debian".into());
                let (maj, min) = parse_version(&v);
                os.major = maj;
                os.minor = min;
            }
        }
    }
    if os.distro.is_none() {
        for (file, id) in [
            ("/etc/centos-release", "centos"),
            ("/etc/rocky-release", "rocky"),
            ("/etc/almalinux-release", "almalinux"),
            ("/etc/oracle-release", "ol"),
            ("/etc/redhat-release", "rhel"),
            ("/etc/SuSE-release", "sles"),
            ("/etc/alpine-release", "alpine"),
        ] {
            if let Some(t) = tree.text(file) {
                let line = t.lines().next().unwrap_or("").trim().to_string();
                let id = if file == "/etc/redhat-release" {
                    redhat_release_id(&line)
                } else {
                    id
                };
                os.distro = Some(id.into());
                let v: String = line
                    .split_whitespace()
                    .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
                    .unwrap_or("")
                    .to_string();
                os.version = (!v.is_empty()).then_some(v);
                os.name = Some(line);
                break;
            }
        }
    }
    if os.distro.is_none() {
        if let Some(t) = tree.text("/etc/lsb-release") {
            let kv = key_values(&t);
            os.distro = kv.get("DISTRIB_ID").map(|s| s.to_ascii_lowercase());
            os.version = kv.get("DISTRIB_RELEASE").cloned();
            os.name = kv.get("DISTRIB_DESCRIPTION").cloned();
        }
    }
    if os.major.is_none() {
        if let Some(v) = &os.version {
            let (maj, min) = parse_version(v);
            os.major = maj;
            os.minor = min;
        }
    }
    for f in ["/etc/hostname", "/etc/HOSTNAME"] {
        if let Some(h) = tree.text(f) {
            let h = h
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'));
            if let Some(h) = h {
                os.hostname = Some(h.to_string());
                return id_like;
            }
        }
    }
    if let Some(t) = tree.text("/etc/sysconfig/network") {
        os.hostname = key_values(&t).get("HOSTNAME").cloned();
    }
    id_like
}

pub(super) fn arch(tree: &mut Tree<'_, '_>) -> Option<String> {
    for p in [
        "/bin/sh",
        "/bin/ls",
        "/bin/bash",
        "/usr/bin/ls",
        "/bin/busybox",
    ] {
        if let Some(b) = tree.head(p) {
            if let Some(a) = exe::elf_arch(&b) {
                return Some(a);
            }
        }
    }
    None
}
