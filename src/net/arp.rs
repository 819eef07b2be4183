/*! Gratuitous ARP (RFC 5798 6.4.1 / RFC 3768 6.4.1: on becoming Master,
broadcast a gratuitous ARP request for each IPv4 virtual address).

```text
 Ethernet: ff:ff:ff:ff:ff:ff | sender MAC | 0x0806
 ARP:      htype 1 | ptype 0x0800 | hlen 6 | plen 4 | oper 1 (request)
           sha = sender MAC, spa = VIP, tha = ff:ff:ff:ff:ff:ff, tpa = VIP
```

The layout is the one keepalived 2.2.7 sends, settled against a frame it
sent in a namespace (the test vector below): an ARP *request* (not a
reply), sender and target protocol address both the VIP, and an all-ones
target hardware address. 42 bytes; the NIC pads it to the Ethernet minimum.
*/

use std::net::Ipv4Addr;

/// Length of the frame: 14 Ethernet + 28 ARP.
pub const GARP_FRAME_LEN: usize = 42;

/// `linux/if_ether.h`.
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IP: u16 = 0x0800;
/// `linux/if_arp.h`.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPOP_REQUEST: u16 = 1;

const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// The gratuitous ARP request announcing that `addr` is at `mac`.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&addr.octets());
    f[32..38].copy_from_slice(&BROADCAST_MAC);
    f[38..42].copy_from_slice(&addr.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived 2.2.7, `use_vmac`, VRID 51, VIP 10.99.0.100: the frame
    /// as tcpdump -XX showed it on the peer end of a veth pair.
    const KEEPALIVED_VMAC_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x33, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x33, 0x0a, 0x63,
        0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x63, 0x00, 0x64,
    ];

    /// The same without VMAC: the interface MAC 02:00:00:00:00:0a.
    const KEEPALIVED_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x63,
        0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x63, 0x00, 0x64,
    ];

    #[test]
    fn matches_keepalived() {
        let vip = Ipv4Addr::new(10, 99, 0, 100);
        assert_eq!(
            garp_frame([0, 0, 0x5e, 0, 1, 0x33], vip),
            KEEPALIVED_VMAC_GARP
        );
        assert_eq!(garp_frame([2, 0, 0, 0, 0, 0x0a], vip), KEEPALIVED_GARP);
    }

    #[test]
    fn fields() {
        let f = garp_frame([1, 2, 3, 4, 5, 6], Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(&f[0..6], &[0xff; 6], "broadcast destination");
        assert_eq!(&f[6..12], &[1, 2, 3, 4, 5, 6], "Ethernet source");
        assert_eq!(u16::from_be_bytes([f[20], f[21]]), ARPOP_REQUEST);
        assert_eq!(&f[22..28], &f[6..12], "sender MAC = frame source");
        assert_eq!(&f[28..32], &f[38..42], "sender IP = target IP");
        assert_eq!(&f[28..32], &[192, 0, 2, 7]);
    }
}
