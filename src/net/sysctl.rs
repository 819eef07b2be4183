//! Per-interface IPv4 settings (`net.ipv4.conf.IF.*`) that a VMAC needs.
//!
//! With a macvlan VMAC, the parent and the VMAC share a link, so the parent
//! must not answer ARP for the VIP with its own MAC: keepalived 2.2.7 sets
//! `arp_ignore=1` and `arp_filter=1` on the parent, and `arp_ignore=1`,
//! `accept_local=1`, `promote_secondaries=1` on an IPv4 VMAC (observed in a
//! namespace with `use_vmac`). The previous values are returned so the
//! caller can restore them when the last VMAC goes away.

use std::io;

/// The settings keepalived applies to the parent of a VMAC.
pub const VMAC_PARENT_SETTINGS: [(&str, &str); 2] = [("arp_ignore", "1"), ("arp_filter", "1")];
/// The settings keepalived applies to an IPv4 VMAC.
pub const VMAC_SETTINGS: [(&str, &str); 3] = [
    ("arp_ignore", "1"),
    ("accept_local", "1"),
    ("promote_secondaries", "1"),
];

fn path(ifname: &str, key: &str) -> io::Result<String> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("bad {what}"));
    if ifname.is_empty() || ifname.len() > 15 || ifname.contains('/') || ifname.starts_with('.') {
        return Err(bad("interface name"));
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(bad("sysctl name"));
    }
    Ok(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"))
}

/// Read `net.ipv4.conf.IFNAME.KEY`.
pub fn get_ipv4_conf(ifname: &str, key: &str) -> io::Result<String> {
    Ok(std::fs::read_to_string(path(ifname, key)?)?
        .trim()
        .to_owned())
}

/// Write `net.ipv4.conf.IFNAME.KEY = value`; returns the previous value.
pub fn set_ipv4_conf(ifname: &str, key: &str, value: &str) -> io::Result<String> {
    let previous = get_ipv4_conf(ifname, key)?;
    if previous != value {
        std::fs::write(path(ifname, key)?, value)?;
    }
    Ok(previous)
}

/// Apply `settings`; returns what to write back to undo them. Stops at the
/// first failure (settings applied so far stay, and are in the error's
/// context only through the log: the caller restores what it got back).
pub fn apply(ifname: &str, settings: &[(&str, &str)]) -> io::Result<Vec<(String, String)>> {
    let mut previous = Vec::with_capacity(settings.len());
    for (key, value) in settings {
        previous.push((key.to_string(), set_ipv4_conf(ifname, key, value)?));
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(path("eth0", "arp_ignore").is_ok());
        assert!(path("../x", "arp_ignore").is_err());
        assert!(path("eth0", "../../kernel/x").is_err());
        assert!(path("", "arp_ignore").is_err());
        assert!(
            get_ipv4_conf("lo", "arp_ignore").is_ok()
                || !std::path::Path::new("/proc/sys/net/ipv4").exists()
        );
    }
}
