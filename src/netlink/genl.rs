/*! Generic netlink: the `genlmsghdr` after the netlink header, and family
resolution through the controller (`nlctrl`).

```text
 struct nlmsghdr (16) | struct genlmsghdr (4)                 | attributes ...
                      +--------+------------+----------------+
                      | cmd u8 | version u8 | reserved u16   |
                      +--------+------------+----------------+
```

A generic netlink family (IPVS, ...) has no fixed message type: the kernel
assigns one at registration, and userspace asks the controller for it by
name with `CTRL_CMD_GETFAMILY` (`linux/genetlink.h`). Constant names follow
the uapi header.
*/

use super::socket::NetlinkSocket;
use super::wire::{Attrs, Message, MessageBuilder, WireError, NLM_F_REQUEST};
use super::Error;

/// `GENL_HDRLEN`: the aligned size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;
/// `GENL_ID_CTRL`: the controller's fixed message type (`NLMSG_MIN_TYPE`).
pub const GENL_ID_CTRL: u16 = 0x10;
/// `GENL_NAMSIZ`: longest family name including its NUL.
pub const GENL_NAMSIZ: usize = 16;

pub const CTRL_CMD_NEWFAMILY: u8 = 1;
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// The controller's own protocol version (what `genl_ctrl_resolve` sends).
pub const CTRL_VERSION: u8 = 1;

pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub const CTRL_ATTR_VERSION: u16 = 3;
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
pub const CTRL_ATTR_MAXATTR: u16 = 5;

/// The generic netlink header of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenlHeader {
    pub cmd: u8,
    pub version: u8,
}

/// Start a generic netlink request: netlink header (type = the family's id,
/// `NLM_F_REQUEST` plus `flags`) and `genlmsghdr`.
pub fn request(family_id: u16, cmd: u8, version: u8, flags: u16) -> MessageBuilder {
    let mut msg = MessageBuilder::new(family_id, NLM_F_REQUEST | flags);
    msg.push_header(&[cmd, version, 0, 0]);
    msg
}

/// Split a received generic netlink message into its header and attributes.
pub fn parse<'a>(message: &Message<'a>) -> Result<(GenlHeader, Attrs<'a>), WireError> {
    let (header, attrs) = message.split_header(GENL_HDRLEN)?;
    Ok((
        GenlHeader {
            cmd: header[0],
            version: header[1],
        },
        attrs,
    ))
}

/// What the controller says about a family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    /// The netlink message type to send the family's requests with.
    pub id: u16,
    pub version: u32,
    pub hdrsize: u32,
    pub maxattr: u32,
}

/// `CTRL_CMD_GETFAMILY` for `name` (sent with `NLM_F_ACK` by the socket).
pub fn get_family_request(name: &str) -> MessageBuilder {
    let mut msg = request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_VERSION, 0);
    msg.attr_str(CTRL_ATTR_FAMILY_NAME, name);
    msg
}

/// Read the controller's `CTRL_CMD_NEWFAMILY` reply. `None` when the
/// message is not such a reply or lacks the family id.
pub fn parse_family(message: &Message<'_>) -> Result<Option<Family>, WireError> {
    if message.kind != GENL_ID_CTRL {
        return Ok(None);
    }
    let (header, attrs) = parse(message)?;
    if header.cmd != CTRL_CMD_NEWFAMILY {
        return Ok(None);
    }
    let mut family = Family {
        name: String::new(),
        id: 0,
        version: 0,
        hdrsize: 0,
        maxattr: 0,
    };
    let mut has_id = false;
    for attr in attrs {
        let attr = attr?;
        match attr.kind() {
            CTRL_ATTR_FAMILY_ID => {
                family.id = attr.as_u16()?;
                has_id = true;
            }
            CTRL_ATTR_FAMILY_NAME => family.name = attr.as_str()?.to_owned(),
            CTRL_ATTR_VERSION => family.version = attr.as_u32()?,
            CTRL_ATTR_HDRSIZE => family.hdrsize = attr.as_u32()?,
            CTRL_ATTR_MAXATTR => family.maxattr = attr.as_u32()?,
            // Ops, multicast groups and policies are not needed here.
            _ => {}
        }
    }
    Ok(has_id.then_some(family))
}

/// Ask the controller for a family by name. A family the kernel does not
/// know (module not loaded) is `Error::Kernel` with errno `ENOENT`.
pub fn resolve_family(sock: &mut NetlinkSocket, name: &str) -> Result<Family, Error> {
    if name.is_empty() || name.len() >= GENL_NAMSIZ {
        return Err(Error::Protocol {
            what: "resolve generic netlink family",
            detail: format!("invalid family name {name:?}"),
        });
    }
    let mut found = None;
    sock.request_with(
        get_family_request(name),
        "resolve generic netlink family",
        |message| {
            if let Some(family) = parse_family(message)? {
                found = Some(family);
            }
            Ok(())
        },
    )?;
    found.ok_or_else(|| Error::Protocol {
        what: "resolve generic netlink family",
        detail: format!("no family id in the controller's answer for {name:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{Messages, NLM_F_ACK};

    #[test]
    fn get_family_request_bytes() {
        let mut msg = get_family_request("IPVS");
        msg.add_flags(NLM_F_ACK);
        msg.set_seq(1);
        let bytes = msg.finish();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &32u32.to_ne_bytes()[..], &0x10u16.to_ne_bytes(), &5u16.to_ne_bytes(),
            &1u32.to_ne_bytes(), &0u32.to_ne_bytes(),
            &[3, 1, 0, 0],
            &9u16.to_ne_bytes(), &2u16.to_ne_bytes(), b"IPVS\0", &[0, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn parse_newfamily_reply() {
        let mut reply = request(GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 2, 0);
        reply
            .attr_str(CTRL_ATTR_FAMILY_NAME, "IPVS")
            .attr_u16(CTRL_ATTR_FAMILY_ID, 0x1d)
            .attr_u32(CTRL_ATTR_VERSION, 1)
            .attr_u32(CTRL_ATTR_HDRSIZE, 0)
            .attr_u32(CTRL_ATTR_MAXATTR, 6);
        let nest = reply.begin_nested(6);
        reply.attr_u32(1, 1);
        reply.end_nested(nest);
        let bytes = reply.finish();
        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let family = parse_family(&message).unwrap().unwrap();
        assert_eq!(
            family,
            Family {
                name: "IPVS".into(),
                id: 0x1d,
                version: 1,
                hdrsize: 0,
                maxattr: 6
            }
        );
        // Every truncation is an error or a partial answer, never a panic.
        for cut in 0..bytes.len() {
            for message in Messages::new(&bytes[..cut]).flatten() {
                let _ = parse_family(&message);
            }
        }
    }

    /// The controller is always present: resolving it by name gives its
    /// fixed id; a family that cannot exist is ENOENT.
    #[test]
    fn resolve_against_the_kernel() {
        let mut sock = NetlinkSocket::open(libc::NETLINK_GENERIC, false).unwrap();
        let ctrl = resolve_family(&mut sock, "nlctrl").unwrap();
        assert_eq!(ctrl.id, GENL_ID_CTRL);
        assert_eq!(ctrl.name, "nlctrl");
        let err = resolve_family(&mut sock, "krs-nofamily").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    }
}
