/*! Unsolicited Neighbour Advertisement (RFC 5798 6.4.1: on becoming Master,
send an unsolicited ND Neighbor Advertisement with the Router flag set if
acting as a router, for each IPv6 virtual address; RFC 4861 7.2.6).

```text
 Ethernet: 33:33:00:00:00:01 | sender MAC | 0x86dd
 IPv6:     version 6, class 0, flow 0 | payload 32 | next 58 | hop limit 255
           src = target (the VIP), dst = ff02::1 (all nodes)
 ICMPv6:   type 136, code 0, checksum | R S O flags (O set) | target
           option 2 (target link-layer address), length 1 (8 bytes): MAC
```

Settled against the frame keepalived 2.2.7 sends (test vector below): the
VIP as IPv6 source, Override set, Solicited clear, Router only when the
interface forwards. 86 bytes.
*/

use std::net::Ipv6Addr;

use crate::vrrp::packet::Checksum;

/// 14 Ethernet + 40 IPv6 + 24 NA + 8 option.
pub const NA_FRAME_LEN: usize = 86;
/// ICMPv6 payload length: NA (24) + target link-layer option (8).
const ICMP_LEN: usize = 32;

/// `linux/if_ether.h`.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// `IPPROTO_ICMPV6`.
pub const IPPROTO_ICMPV6: u8 = 58;
/// `NDISC_NEIGHBOUR_ADVERTISEMENT` (RFC 4861 4.4).
pub const NDISC_NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// `ND_OPT_TARGET_LL_ADDR` (RFC 4861 4.6.1).
pub const ND_OPT_TARGET_LL_ADDR: u8 = 2;
/// NA flags in the first byte after the checksum (RFC 4861 4.4).
pub const ND_NA_FLAG_ROUTER: u8 = 0x80;
pub const ND_NA_FLAG_SOLICITED: u8 = 0x40;
pub const ND_NA_FLAG_OVERRIDE: u8 = 0x20;
/// RFC 4861 7.1.2: hop limit 255 proves the sender is on-link.
pub const ND_HOP_LIMIT: u8 = 255;

/// ff02::1, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The Ethernet address of an IPv6 multicast group (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The unsolicited NA announcing that `target` is at `mac`.
pub fn unsolicited_na_frame(mac: [u8; 6], target: Ipv6Addr, router: bool) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    let src = target.octets();
    let dst = ALL_NODES.octets();
    // Ethernet.
    f[0..6].copy_from_slice(&multicast_mac(ALL_NODES));
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    // IPv6 header.
    let ip = &mut f[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(ICMP_LEN as u16).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = ND_HOP_LIMIT;
    ip[8..24].copy_from_slice(&src);
    ip[24..40].copy_from_slice(&dst);
    // ICMPv6 NA.
    let icmp = &mut f[54..86];
    icmp[0] = NDISC_NEIGHBOUR_ADVERTISEMENT;
    icmp[4] = ND_NA_FLAG_OVERRIDE | if router { ND_NA_FLAG_ROUTER } else { 0 };
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = ND_OPT_TARGET_LL_ADDR;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    // RFC 4443 2.3: checksum over the pseudo-header (RFC 8200 8.1) and message.
    let mut sum = Checksum::default();
    sum.add(&src);
    sum.add(&dst);
    sum.add(&(ICMP_LEN as u32).to_be_bytes());
    sum.add(&[0, 0, 0, IPPROTO_ICMPV6]);
    sum.add(icmp);
    let checksum = sum.finish();
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    f
}

/// Does `ifname` forward IPv6 (`net.ipv6.conf.IF.forwarding`)? Decides the
/// NA Router flag. An unreadable sysctl (no IPv6) counts as no.
pub fn ipv6_forwarding(ifname: &str) -> bool {
    if ifname.is_empty() || ifname.contains('/') || ifname.starts_with('.') {
        return false;
    }
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|v| v.trim() != "0")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived 2.2.7, VRRPv3 IPv6 instance with VIP fd99::100 on an
    /// interface with MAC 02:00:00:00:00:0a (no forwarding): the frame as
    /// tcpdump -XX showed it on the peer end of a veth pair.
    const KEEPALIVED_NA: [u8; 86] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfd, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x57, 0x62, 0x20, 0x00,
        0x00, 0x00, 0xfd, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,
    ];

    /// The same with `use_vmac` (VRID 52): source MAC 00:00:5e:00:02:34,
    /// checksum 0xf937.
    fn keepalived_vmac_na() -> [u8; 86] {
        let mut f = KEEPALIVED_NA;
        let vmac = [0x00, 0x00, 0x5e, 0x00, 0x02, 0x34];
        f[6..12].copy_from_slice(&vmac);
        f[80..86].copy_from_slice(&vmac);
        f[56..58].copy_from_slice(&[0xf9, 0x37]);
        f
    }

    #[test]
    fn matches_keepalived() {
        let vip: Ipv6Addr = "fd99::100".parse().unwrap();
        assert_eq!(
            unsolicited_na_frame([2, 0, 0, 0, 0, 0x0a], vip, false),
            KEEPALIVED_NA
        );
        assert_eq!(
            unsolicited_na_frame([0, 0, 0x5e, 0, 2, 0x34], vip, false),
            keepalived_vmac_na()
        );
    }

    #[test]
    fn router_flag_and_checksum() {
        let vip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let f = unsolicited_na_frame([2, 0, 0, 0, 0, 1], vip, true);
        assert_eq!(f[58], ND_NA_FLAG_ROUTER | ND_NA_FLAG_OVERRIDE);
        assert_eq!(f[21], 255, "hop limit");
        // The checksum verifies: summing everything including it gives 0.
        let mut sum = Checksum::default();
        sum.add(&f[22..38]);
        sum.add(&f[38..54]);
        sum.add(&32u32.to_be_bytes());
        sum.add(&[0, 0, 0, 58]);
        sum.add(&f[54..]);
        assert_eq!(sum.finish(), 0);
        assert_eq!(
            multicast_mac("ff02::12".parse().unwrap()),
            [0x33, 0x33, 0, 0, 0, 0x12]
        );
    }

    #[test]
    fn forwarding_of_bad_names_is_no() {
        assert!(!ipv6_forwarding("../all"));
        assert!(!ipv6_forwarding(""));
        assert!(!ipv6_forwarding("krs-no-such0"));
    }
}
