/*! VRRP (RFC 3768 version 2, RFC 5798 version 3).

This module is sans-IO: it turns bytes into validated values and back and
never touches a socket or a clock.

- [`packet`]: the VRRP advertisement codec. [`VrrpPacket`] is a zero-copy view
  over the VRRP message (the IP payload) whose accessors never panic once
  [`VrrpPacket::new_checked`] succeeded; [`VrrpRepr`] is its validated meaning
  with `parse` / `buffer_len` / `emit`. [`Ipv4Packet`] reads the IPv4 header a
  raw socket hands us, and [`receive_ipv4`] / [`receive_ipv6`] apply the receive
  rules that belong to one packet (TTL / hop limit 255, protocol, version, type,
  VRID, checksum, lengths).
- [`instance`]: the sans-IO state machine of one VRRP instance
  (Initialize / Backup / Master / Fault): `handle_*` events in, [`Action`]s
  and a [`timers::Timer`] deadline out, `now` always passed in.
- [`auth`]: VRRPv2 authentication: simple text password and IPsec AH with
  HMAC-MD5-96 as keepalived does it.

Every rejection is an [`Error`] that maps one-to-one to a statistics counter
(RFC 2787 / RFC 6527 MIB objects, keepalived's `vrrp stats`), see
[`Error::counter`].

Wire details were settled against bytes captured from keepalived 2.2.7 (see
`tests/vectors/README.md`): the VRRPv3 checksum includes the IPv4 or IPv6
pseudo-header, the VRRPv2 checksum does not.
*/

pub mod auth;
pub mod instance;
pub mod packet;
pub mod router;
pub mod timers;

pub use auth::{AhPacket, AH_LEN};
pub use instance::{
    Action, Discard, Instance, InstanceConfig, NotifyEvent, Reason, State, TrackStatus,
};
pub use packet::{
    emit_ipv4_advert, receive_ipv4, receive_ipv4_with, receive_ipv6, receive_ipv6_with, Auth,
    AuthType, Error, Family, Ipv4Packet, Ipv4Repr, MessageType, Received, TtlRule, VrrpPacket,
    VrrpRepr, VrrpVersion,
};
pub use router::{Router, RouterAction};
