//! The guest's network configuration: ECS gives the primary NIC its address
//! by DHCP, on a MAC address the source VM never had. Reads ifupdown
//! (`/etc/network/interfaces` and what it sources), netplan, NetworkManager
//! keyfiles, ifcfg files (RHEL and SUSE), systemd-networkd, and the udev
//! rules that pin interface names to MAC addresses.

use crate::bootloader::Files;
use crate::linux::key_values;
use crate::{rules, Sink};
use serde::Serialize;
use std::collections::BTreeMap;

/// Files read from one configuration directory.
const MAX_FILES: usize = 64;

/// One interface's configuration, from one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The file that configures it.
    pub file: String,
    /// Interface name or pattern (`eth0`, `en*`; `*` when the file applies to any).
    pub interface: String,
    /// `dhcp`, `static`, `manual` (up without an address) or `disabled`.
    pub method: String,
    /// A static address, when one is written.
    pub address: Option<String>,
    /// The MAC address the configuration is bound to or sets.
    pub mac: Option<String>,
}

/// What the guest configures for its network.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkInfo {
    /// Every interface configuration read (the loopback left out).
    pub interfaces: Vec<InterfaceConfig>,
    /// Index in `interfaces` of the primary interface's configuration.
    pub primary: Option<usize>,
    /// `MAC -> name` pairs from /etc/udev/rules.d/70-persistent-net.rules.
    pub persistent_names: Vec<String>,
}

fn config(file: &str, interface: &str, method: &str) -> InterfaceConfig {
    InterfaceConfig {
        file: file.into(),
        interface: interface.into(),
        method: method.into(),
        address: None,
        mac: None,
    }
}

/// Files of a directory, sorted, with the wanted suffix (empty: any).
fn dir_files(files: &mut dyn Files, dir: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = files
        .list(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix) && !n.starts_with('.'))
        .collect();
    names.sort();
    names.truncate(MAX_FILES);
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

/// ifupdown: `iface eth0 inet dhcp|static|manual` stanzas, following
/// `source` and `source-directory`.
pub(crate) fn parse_interfaces(
    file: &str,
    text: &str,
    out: &mut Vec<InterfaceConfig>,
) -> Vec<String> {
    let mut sources = Vec::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["iface", name, "inet", method, ..] if *name != "lo" && *method != "loopback" => {
                out.push(config(
                    file,
                    name,
                    if *method == "dhcp" { "dhcp" } else { method },
                ));
                current = Some(out.len() - 1);
            }
            ["iface", ..] | ["auto", ..] | ["allow-hotplug", ..] | ["mapping", ..] => {
                current = None
            }
            ["address", a, ..] => {
                if let Some(c) = current.and_then(|i| out.get_mut(i)) {
                    c.address = Some((*a).to_string());
                }
            }
            ["hwaddress", .., mac] => {
                if let Some(c) = current.and_then(|i| out.get_mut(i)) {
                    c.mac = Some((*mac).to_string());
                }
            }
            ["source", p] => sources.push((*p).to_string()),
            ["source-directory", d] => sources.push(format!("{d}/*")),
            _ => {}
        }
    }
    sources
}

/// netplan YAML, read by indentation (the files are machine-written block YAML).
pub(crate) fn parse_netplan(file: &str, text: &str, out: &mut Vec<InterfaceConfig>) {
    let mut eth_indent: Option<usize> = None;
    let mut name_indent: Option<usize> = None;
    let mut current: Option<usize> = None;
    let mut in_addresses = false;
    for raw in text.lines() {
        let line = raw.split(" #").next().unwrap_or("");
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        let (key, value) = match t.split_once(':') {
            Some((k, v)) => (
                k.trim().trim_matches('"'),
                v.trim().trim_matches(|c| c == '"' || c == '\''),
            ),
            None => (t, ""),
        };
        if let Some(ei) = eth_indent {
            if indent <= ei {
                eth_indent = None;
                name_indent = None;
                current = None;
            }
        }
        if eth_indent.is_none() {
            if key == "ethernets" {
                eth_indent = Some(indent);
            }
            continue;
        }
        let ni = *name_indent.get_or_insert(indent);
        if indent == ni {
            out.push(config(file, key, "manual"));
            current = Some(out.len() - 1);
            in_addresses = false;
            continue;
        }
        let Some(c) = current.and_then(|i| out.get_mut(i)) else {
            continue;
        };
        if in_addresses && t.starts_with('-') {
            let a = t
                .trim_start_matches('-')
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            c.address.get_or_insert_with(|| a.to_string());
            if c.method != "dhcp" {
                c.method = "static".into();
            }
            continue;
        }
        in_addresses = false;
        match key {
            "dhcp4" if ["true", "yes", "on"].contains(&value.to_ascii_lowercase().as_str()) => {
                c.method = "dhcp".into();
            }
            "addresses" => {
                in_addresses = value.is_empty();
                let inline = value.trim_start_matches('[').trim_end_matches(']').trim();
                if !inline.is_empty() {
                    c.address = Some(inline.split(',').next().unwrap_or("").trim().to_string());
                    if c.method != "dhcp" {
                        c.method = "static".into();
                    }
                }
            }
            "macaddress" => c.mac = Some(value.to_string()),
            _ => {}
        }
    }
}

/// INI sections of a keyfile or a systemd unit: section -> [(key, value)].
fn ini(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn get<'a>(
    ini: &'a BTreeMap<String, Vec<(String, String)>>,
    section: &str,
    key: &str,
) -> Option<&'a str> {
    ini.get(section)?
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A NetworkManager keyfile (`*.nmconnection`).
pub(crate) fn parse_nm_keyfile(file: &str, text: &str) -> Option<InterfaceConfig> {
    let k = ini(text);
    let kind = get(&k, "connection", "type").unwrap_or("ethernet");
    if kind != "ethernet" && kind != "802-3-ethernet" {
        return None;
    }
    let name = get(&k, "connection", "interface-name").unwrap_or("*");
    let method = match get(&k, "ipv4", "method").unwrap_or("auto") {
        "auto" => "dhcp",
        "manual" => "static",
        "disabled" => "disabled",
        other => other,
    };
    let mut c = config(file, name, method);
    c.address = get(&k, "ipv4", "address1")
        .or_else(|| get(&k, "ipv4", "addresses"))
        .map(|a| a.split(',').next().unwrap_or(a).to_string());
    c.mac = get(&k, "ethernet", "mac-address")
        .or_else(|| get(&k, "ethernet", "cloned-mac-address"))
        .or_else(|| get(&k, "802-3-ethernet", "mac-address"))
        .map(str::to_string);
    Some(c)
}

/// An ifcfg file (`/etc/sysconfig/network-scripts/ifcfg-eth0`, SUSE's too).
pub(crate) fn parse_ifcfg(file: &str, text: &str) -> Option<InterfaceConfig> {
    let kv = key_values(text);
    let from_name = file.rsplit('/').next()?.strip_prefix("ifcfg-")?;
    let name = kv.get("DEVICE").map_or(from_name, String::as_str);
    // The loopback, and ports of a bond or bridge (their master holds the address).
    if name == "lo" || kv.contains_key("MASTER") || kv.contains_key("BRIDGE") {
        return None;
    }
    let address = kv.get("IPADDR").or_else(|| kv.get("IPADDR0")).cloned();
    let proto = kv
        .get("BOOTPROTO")
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "none".into());
    let method = if proto.starts_with("dhcp") {
        "dhcp"
    } else if address.is_some() || proto == "static" {
        "static"
    } else {
        "manual"
    };
    let mut c = config(file, name, method);
    c.address = address;
    c.mac = kv
        .get("HWADDR")
        .or_else(|| kv.get("MACADDR"))
        .or_else(|| kv.get("LLADDR"))
        .filter(|m| !m.is_empty())
        .cloned();
    Some(c)
}

/// A systemd-networkd `.network` file.
pub(crate) fn parse_networkd(file: &str, text: &str) -> Option<InterfaceConfig> {
    let k = ini(text);
    let name = get(&k, "Match", "Name").unwrap_or("*");
    if name == "lo" {
        return None;
    }
    let dhcp = get(&k, "Network", "DHCP")
        .unwrap_or("no")
        .to_ascii_lowercase();
    let address = get(&k, "Network", "Address").or_else(|| get(&k, "Address", "Address"));
    let method = if ["yes", "true", "ipv4", "both"].contains(&dhcp.as_str()) {
        "dhcp"
    } else if address.is_some() {
        "static"
    } else {
        "manual"
    };
    let mut c = config(file, name, method);
    c.address = address.map(str::to_string);
    c.mac = get(&k, "Match", "MACAddress")
        .or_else(|| get(&k, "Match", "PermanentMACAddress"))
        .or_else(|| get(&k, "Link", "MACAddress"))
        .map(str::to_string);
    Some(c)
}

/// `MAC -> name` from udev's persistent-net rules.
pub(crate) fn parse_persistent_net(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let field = |key: &str| {
                let i = l.find(key)? + key.len();
                let rest = l[i..].trim_start_matches(['=', '"']);
                Some(rest.split('"').next()?.to_string())
            };
            let mac = field("ATTR{address}==")?;
            let name = field("NAME=").unwrap_or_else(|| "?".into());
            Some(format!("{mac} -> {name}"))
        })
        .collect()
}

/// True when a configured name or pattern covers the first NIC on ECS
/// (`eth0` with net.ifnames=0, or a predictable `en…` name).
fn covers_first_nic(pattern: &str) -> bool {
    pattern
        .split_whitespace()
        .any(|p| p == "*" || p == "eth0" || p.starts_with("en") || p == "eth*" || p == "e*")
}

/// Reads every network configuration the guest has and reports on the
/// primary interface. `cloud_init` is true when an enabled cloud-init will
/// write the configuration at first boot.
pub(crate) fn inspect(
    files: &mut dyn Files,
    cloud_init: bool,
    network_manager: bool,
    sink: &mut Sink,
) -> NetworkInfo {
    let mut all = Vec::new();
    // ifupdown, and what it sources (globs only as `dir/*`).
    // Each file once, and at most MAX_FILES of them: `source` lines can loop.
    let mut pending = vec!["/etc/network/interfaces".to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(p) = pending.pop() {
        let targets = match p.strip_suffix("/*") {
            Some(dir) => dir_files(files, dir, ""),
            None => vec![p],
        };
        for t in targets {
            if seen.len() >= MAX_FILES || !seen.insert(t.clone()) {
                continue;
            }
            if let Some(text) = files.text(&t) {
                let dir = t.rsplit_once('/').map_or("/", |(d, _)| d).to_string();
                for s in parse_interfaces(&t, &text, &mut all) {
                    let s = if s.starts_with('/') {
                        s
                    } else {
                        format!("{dir}/{s}")
                    };
                    // `interfaces.d/*` and the like.
                    let s = match s.split_once('*') {
                        Some((head, _)) => format!("{}/*", head.trim_end_matches('/')),
                        None => s,
                    };
                    if pending.len() < MAX_FILES {
                        pending.push(s);
                    }
                }
            }
        }
    }
    for f in dir_files(files, "/etc/netplan", ".yaml") {
        if let Some(text) = files.text(&f) {
            parse_netplan(&f, &text, &mut all);
        }
    }
    for f in dir_files(files, "/etc/NetworkManager/system-connections", "") {
        if let Some(c) = files.text(&f).and_then(|t| parse_nm_keyfile(&f, &t)) {
            all.push(c);
        }
    }
    for dir in ["/etc/sysconfig/network-scripts", "/etc/sysconfig/network"] {
        for f in dir_files(files, dir, "") {
            if !f
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("ifcfg-"))
            {
                continue;
            }
            if let Some(c) = files.text(&f).and_then(|t| parse_ifcfg(&f, &t)) {
                all.push(c);
            }
        }
    }
    for f in dir_files(files, "/etc/systemd/network", ".network") {
        if let Some(c) = files.text(&f).and_then(|t| parse_networkd(&f, &t)) {
            all.push(c);
        }
    }
    let persistent = files
        .text("/etc/udev/rules.d/70-persistent-net.rules")
        .map(|t| parse_persistent_net(&t))
        .unwrap_or_default();

    let primary = all
        .iter()
        .position(|c| c.interface == "eth0")
        .or_else(|| all.iter().position(|c| covers_first_nic(&c.interface)))
        .or_else(|| (!all.is_empty()).then_some(0));
    match primary.and_then(|i| all.get(i)) {
        None if !cloud_init && !network_manager => sink.push(rules::NETWORK_NOT_CONFIGURED.finding(
            "no network configuration was found (ifupdown, netplan, NetworkManager, ifcfg, systemd-networkd) and cloud-init is not there to write one",
        )),
        None => {}
        Some(c) if c.method == "static" => sink.push(rules::NETWORK_STATIC.finding(format!(
            "{} gives {} the static address {}",
            c.file,
            c.interface,
            c.address.as_deref().unwrap_or("(unknown)")
        ))),
        Some(c) if c.method != "dhcp" && !cloud_init => {
            sink.push(rules::NETWORK_NOT_CONFIGURED.finding(format!(
                "{} configures {} as {:?}, not DHCP",
                c.file, c.interface, c.method
            )))
        }
        Some(_) => {}
    }
    // cloud-init rewrites its own file for the new instance at first boot.
    let rewritten = |c: &InterfaceConfig| cloud_init && c.file.ends_with("50-cloud-init.yaml");
    for c in all.iter().filter(|c| c.mac.is_some() && !rewritten(c)) {
        sink.push(rules::NETWORK_MAC_PINNED.finding(format!(
            "{} binds {} to MAC address {}",
            c.file,
            c.interface,
            c.mac.as_deref().unwrap_or("")
        )));
    }
    if !persistent.is_empty() {
        sink.push(rules::NETWORK_MAC_PINNED.finding(format!(
            "/etc/udev/rules.d/70-persistent-net.rules names interfaces by MAC address ({}); the ECS NIC would get another name",
            persistent.join(", ")
        )));
    }
    NetworkInfo {
        interfaces: all,
        primary,
        persistent_names: persistent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifupdown() {
        let mut out = Vec::new();
        let src = parse_interfaces(
            "/etc/network/interfaces",
            "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\nauto eth0\niface eth0 inet static\n  address 192.168.1.10/24\n  hwaddress ether 52:54:00:12:34:56\niface eth0 inet6 auto\n",
            &mut out,
        );
        assert_eq!(src, vec!["/etc/network/interfaces.d/*"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].method, "static");
        assert_eq!(out[0].address.as_deref(), Some("192.168.1.10/24"));
        assert_eq!(out[0].mac.as_deref(), Some("52:54:00:12:34:56"));
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
    fn sourcing_loops_end_and_dhcp_is_quiet() {
        let mut files = Mem(BTreeMap::from([
            (
                "/etc/network/interfaces".to_string(),
                "source /etc/network/interfaces\nsource-directory /etc/network/interfaces.d\n"
                    .to_string(),
            ),
            (
                "/etc/network/interfaces.d/eth0".to_string(),
                "source /etc/network/interfaces\nauto eth0\niface eth0 inet dhcp\n".to_string(),
            ),
        ]));
        let mut sink = Sink::new(20);
        let info = inspect(&mut files, false, false, &mut sink);
        assert_eq!(info.interfaces.len(), 1);
        assert_eq!(info.interfaces[0].method, "dhcp");
        assert!(sink.into_findings().is_empty());
    }

    /// Random text made of the characters these formats care about never panics a parser.
    #[test]
    fn parsers_survive_garbage() {
        let alphabet: Vec<char> = "ethernets: dhcp4 true addresses - [ ] macaddress iface inet static auto source [Match] Name= DHCP= ATTR{address}==\"NAME=\" \n  #=".chars().collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
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
            let mut out = Vec::new();
            let _ = parse_interfaces("/i", &text, &mut out);
            parse_netplan("/n.yaml", &text, &mut out);
            let _ = parse_nm_keyfile("/k", &text);
            let _ = parse_ifcfg("/etc/sysconfig/network-scripts/ifcfg-eth0", &text);
            let _ = parse_networkd("/x.network", &text);
            let _ = parse_persistent_net(&text);
        }
    }

    #[test]
    fn netplan() {
        let mut out = Vec::new();
        parse_netplan(
            "/etc/netplan/50-cloud-init.yaml",
            "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      match:\n        macaddress: fa:16:3e:00:00:01\n      set-name: eth0\n    ens4:\n      addresses:\n        - 10.0.0.5/24\n      gateway4: 10.0.0.1\n  bridges:\n    br0:\n      dhcp4: no\n",
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            (out[0].method.as_str(), out[0].mac.as_deref()),
            ("dhcp", Some("fa:16:3e:00:00:01"))
        );
        assert_eq!(
            (out[1].method.as_str(), out[1].address.as_deref()),
            ("static", Some("10.0.0.5/24"))
        );
    }

    #[test]
    fn keyfile_ifcfg_networkd_udev() {
        let c = parse_nm_keyfile(
            "/etc/NetworkManager/system-connections/eth0.nmconnection",
            "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n[ethernet]\nmac-address=52:54:00:AA:BB:CC\n[ipv4]\naddress1=192.168.122.5/24,192.168.122.1\nmethod=manual\n",
        )
        .unwrap();
        assert_eq!(
            (c.method.as_str(), c.address.as_deref()),
            ("static", Some("192.168.122.5/24"))
        );
        assert_eq!(c.mac.as_deref(), Some("52:54:00:AA:BB:CC"));
        let c = parse_ifcfg(
            "/etc/sysconfig/network-scripts/ifcfg-eth0",
            "TYPE=Ethernet\nBOOTPROTO=none\nIPADDR=10.1.1.5\nHWADDR=52:54:00:00:00:01\nDEVICE=eth0\nONBOOT=yes\n",
        )
        .unwrap();
        assert_eq!((c.method.as_str(), c.mac.is_some()), ("static", true));
        let c = parse_ifcfg(
            "/etc/sysconfig/network/ifcfg-eth0",
            "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n",
        )
        .unwrap();
        assert_eq!((c.interface.as_str(), c.method.as_str()), ("eth0", "dhcp"));
        let c = parse_networkd(
            "/etc/systemd/network/20-wired.network",
            "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n",
        )
        .unwrap();
        assert_eq!((c.interface.as_str(), c.method.as_str()), ("en*", "dhcp"));
        let r = parse_persistent_net(
            "# net device ()\nSUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"52:54:00:12:34:56\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n",
        );
        assert_eq!(r, vec!["52:54:00:12:34:56 -> eth0"]);
    }
}
