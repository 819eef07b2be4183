/*! nf_tables over `NETLINK_NETFILTER`: the firewall half of `no_accept`.

RFC 5798 Accept_Mode False (keepalived's `no_accept`, implied by
`vrrp_strict` unless the priority is 255) makes a Master that is not the
address owner drop IP traffic addressed to its virtual addresses. As in
keepalived, the addresses go into nftables sets that DROP rules look up,
so adding or removing a VIP is one set-element change, never a rule change.
[`NftVips`] keeps this table (the text is what `nft list table inet
keepalived` prints for it):

```text
table inet keepalived {
    set vips {
        type ipv4_addr
    }

    set vips6 {
        type ipv6_addr
    }

    chain in {
        type filter hook input priority filter - 1; policy accept;
        ip daddr @vips drop
        icmpv6 type nd-neighbor-solicit accept
        icmpv6 type nd-neighbor-advert accept
        ip6 daddr @vips6 drop
    }

    chain out {
        type filter hook output priority filter - 1; policy accept;
        ip saddr @vips drop
        icmpv6 type nd-neighbor-solicit accept
        icmpv6 type nd-neighbor-advert accept
        ip6 saddr @vips6 drop
    }
}
```

Neighbour solicitations and advertisements are let through before the
IPv6 drop so that neighbour discovery for a VIP keeps working (RFC 5798
6.4.3: the Master answers NS for its virtual IPv6 addresses). ARP is not IP
and is never affected. An `accept` here only ends this chain; other tables'
chains still see the packet.

Every change is one nfnetlink batch (`NFNL_MSG_BATCH_BEGIN`, requests,
`NFNL_MSG_BATCH_END`) in one datagram, which the kernel commits as one
transaction or not at all. Each request carries `NLM_F_ACK` and every ACK
is read back; a failed commit is reported against the BEGIN message.
Three idioms keep the operations idempotent within one transaction:

- set up: `add table; delete table; add table ...` replaces whatever a
  previous run (killed by SIGKILL, say) left, so the layout is known;
- remove: `add element; delete element` succeeds whether or not the
  element was there;
- delete: `add table; delete table` succeeds whether or not it exists.

Message building ([`ensure_table_batch`], [`add_batch`], [`remove_batch`],
[`delete_table_batch`]) and parsing ([`parse_elements`]) are pure, so they
are tested without a kernel. Constant names are those of
`linux/netfilter/nfnetlink.h`, `linux/netfilter/nf_tables.h` and
`linux/netfilter.h`.
*/

use std::net::IpAddr;

use super::socket::NetlinkSocket;
use super::wire::{
    Message, MessageBuilder, Messages, WireError, NLA_F_NESTED, NLMSG_ERROR, NLM_F_ACK,
    NLM_F_CREATE, NLM_F_REQUEST,
};
use super::Error;

// ===== constants (uapi names) =====

/// `linux/netfilter/nfnetlink.h`.
pub const NFNL_SUBSYS_NFTABLES: u8 = 10;
pub const NFNL_MSG_BATCH_BEGIN: u16 = 16;
pub const NFNL_MSG_BATCH_END: u16 = 17;
pub const NFNETLINK_V0: u8 = 0;
/// `sizeof(struct nfgenmsg)`: family u8, version u8, res_id be16.
pub const NFGENMSG_LEN: usize = 4;

/// `linux/netfilter.h`.
pub const NFPROTO_UNSPEC: u8 = 0;
pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;
pub const NF_DROP: u32 = 0;
pub const NF_ACCEPT: u32 = 1;
pub const NF_INET_LOCAL_IN: u32 = 1;
pub const NF_INET_LOCAL_OUT: u32 = 3;

/// `linux/netlink.h`: add a rule at the end of its chain.
pub const NLM_F_APPEND: u16 = 0x800;

/// `enum nf_tables_msg_types`.
pub const NFT_MSG_NEWTABLE: u8 = 0;
pub const NFT_MSG_DELTABLE: u8 = 2;
pub const NFT_MSG_NEWCHAIN: u8 = 3;
pub const NFT_MSG_NEWRULE: u8 = 6;
pub const NFT_MSG_NEWSET: u8 = 9;
pub const NFT_MSG_NEWSETELEM: u8 = 12;
pub const NFT_MSG_GETSETELEM: u8 = 13;
pub const NFT_MSG_DELSETELEM: u8 = 14;

/// `NFT_NAME_MAXLEN` (table names), including the NUL.
pub const NFT_NAME_MAXLEN: usize = 256;

/// `enum nft_table_attributes`.
pub const NFTA_TABLE_NAME: u16 = 1;
/// `enum nft_chain_attributes`.
pub const NFTA_CHAIN_TABLE: u16 = 1;
pub const NFTA_CHAIN_NAME: u16 = 3;
pub const NFTA_CHAIN_HOOK: u16 = 4;
pub const NFTA_CHAIN_POLICY: u16 = 5;
pub const NFTA_CHAIN_TYPE: u16 = 7;
/// `enum nft_hook_attributes`.
pub const NFTA_HOOK_HOOKNUM: u16 = 1;
pub const NFTA_HOOK_PRIORITY: u16 = 2;
/// `enum nft_rule_attributes`.
pub const NFTA_RULE_TABLE: u16 = 1;
pub const NFTA_RULE_CHAIN: u16 = 2;
pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
/// `enum nft_list_attributes`.
pub const NFTA_LIST_ELEM: u16 = 1;
/// `enum nft_expr_attributes`.
pub const NFTA_EXPR_NAME: u16 = 1;
pub const NFTA_EXPR_DATA: u16 = 2;
/// `enum nft_set_attributes`.
pub const NFTA_SET_TABLE: u16 = 1;
pub const NFTA_SET_NAME: u16 = 2;
pub const NFTA_SET_FLAGS: u16 = 3;
pub const NFTA_SET_KEY_TYPE: u16 = 4;
pub const NFTA_SET_KEY_LEN: u16 = 5;
pub const NFTA_SET_ID: u16 = 10;
/// `enum nft_set_elem_list_attributes`.
pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// `enum nft_set_elem_attributes`.
pub const NFTA_SET_ELEM_KEY: u16 = 1;
/// `enum nft_data_attributes`.
pub const NFTA_DATA_VALUE: u16 = 1;
pub const NFTA_DATA_VERDICT: u16 = 2;
/// `enum nft_verdict_attributes`.
pub const NFTA_VERDICT_CODE: u16 = 1;
/// `enum nft_meta_attributes` and `enum nft_meta_keys`.
pub const NFTA_META_DREG: u16 = 1;
pub const NFTA_META_KEY: u16 = 2;
pub const NFT_META_NFPROTO: u32 = 15;
pub const NFT_META_L4PROTO: u32 = 16;
/// `enum nft_cmp_attributes` and `enum nft_cmp_ops`.
pub const NFTA_CMP_SREG: u16 = 1;
pub const NFTA_CMP_OP: u16 = 2;
pub const NFTA_CMP_DATA: u16 = 3;
pub const NFT_CMP_EQ: u32 = 0;
/// `enum nft_payload_attributes` and `enum nft_payload_bases`.
pub const NFTA_PAYLOAD_DREG: u16 = 1;
pub const NFTA_PAYLOAD_BASE: u16 = 2;
pub const NFTA_PAYLOAD_OFFSET: u16 = 3;
pub const NFTA_PAYLOAD_LEN: u16 = 4;
pub const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
/// `enum nft_lookup_attributes`.
pub const NFTA_LOOKUP_SET: u16 = 1;
pub const NFTA_LOOKUP_SREG: u16 = 2;
pub const NFTA_LOOKUP_SET_ID: u16 = 4;
/// `enum nft_immediate_attributes`.
pub const NFTA_IMMEDIATE_DREG: u16 = 1;
pub const NFTA_IMMEDIATE_DATA: u16 = 2;
/// `enum nft_registers`.
pub const NFT_REG_VERDICT: u32 = 0;
pub const NFT_REG_1: u32 = 1;

/// nft(8)'s own key type numbers (`include/datatype.h` of nftables, not a
/// kernel value): stored with the set so `nft list` prints addresses.
pub const NFT_TYPE_IPADDR: u32 = 7;
pub const NFT_TYPE_IP6ADDR: u32 = 8;

/// ICMPv6 neighbour discovery (RFC 4861) and `IPPROTO_ICMPV6`.
pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
pub const ND_NEIGHBOR_ADVERT: u8 = 136;
pub const IPPROTO_ICMPV6: u8 = 58;

// ===== the layout =====

/// keepalived's default table name (`nftables [TABLE]`).
pub const DEFAULT_TABLE: &str = "keepalived";
pub const SET_VIPS: &str = "vips";
pub const SET_VIPS6: &str = "vips6";
pub const CHAIN_IN: &str = "in";
pub const CHAIN_OUT: &str = "out";
/// Just before the usual `filter` priority 0, as keepalived's default
/// `nftables_priority`.
pub const CHAIN_PRIORITY: i32 = -1;

/// Batch-local ids of the two sets, so rules of the same batch find them.
const SET_ID_VIPS: u32 = 1;
const SET_ID_VIPS6: u32 = 2;

/// Elements per NEWSETELEM message: an attribute holds at most 64 KiB and
/// an IPv6 element takes 32 bytes.
const ELEMENTS_PER_MESSAGE: usize = 512;
/// A batch is one datagram; the kernel refuses one larger than the socket
/// send buffer (212992 bytes by default). 128 KiB is about 4000 IPv6 VIPs.
const MAX_BATCH_BYTES: usize = 128 * 1024;

// ===== building batches =====

/// One nfnetlink batch, ready to send: BATCH_BEGIN, requests (each with
/// `NLM_F_ACK`), BATCH_END, with consecutive sequence numbers.
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Vec<u8>,
    begin_seq: u32,
    next_seq: u32,
    /// Sequence number and description of each request, in order.
    requests: Vec<(u32, &'static str)>,
    /// Names the whole operation in timeouts and commit errors.
    what: &'static str,
}

impl Batch {
    fn begin(what: &'static str, first_seq: u32) -> Batch {
        let mut batch = Batch {
            bytes: Vec::new(),
            begin_seq: first_seq,
            next_seq: first_seq.wrapping_add(1),
            requests: Vec::new(),
            what,
        };
        batch
            .bytes
            .extend_from_slice(&batch_marker(NFNL_MSG_BATCH_BEGIN, first_seq));
        batch
    }

    fn push(&mut self, mut msg: MessageBuilder, what: &'static str) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        msg.set_seq(seq);
        msg.add_flags(NLM_F_ACK);
        self.bytes.extend_from_slice(&msg.finish());
        self.requests.push((seq, what));
    }

    fn end(mut self) -> Result<Batch, Error> {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.bytes
            .extend_from_slice(&batch_marker(NFNL_MSG_BATCH_END, seq));
        if self.bytes.len() > MAX_BATCH_BYTES {
            return Err(Error::Invalid {
                what: self.what,
                detail: format!(
                    "batch of {} bytes exceeds the {MAX_BATCH_BYTES}-byte limit (too many addresses)",
                    self.bytes.len()
                ),
            });
        }
        Ok(self)
    }

    /// The datagram.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of requests between BEGIN and END.
    pub fn requests(&self) -> usize {
        self.requests.len()
    }

    /// The first sequence number after this batch.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }
}

/// `NFNL_MSG_BATCH_BEGIN` / `_END`: family unspec, res_id the nf_tables
/// subsystem (big-endian), no ACK (the kernel never acknowledges these).
fn batch_marker(kind: u16, seq: u32) -> Vec<u8> {
    let mut msg = MessageBuilder::new(kind, NLM_F_REQUEST);
    msg.set_seq(seq);
    let res_id = u16::from(NFNL_SUBSYS_NFTABLES).to_be_bytes();
    msg.push_header(&[NFPROTO_UNSPEC, NFNETLINK_V0, res_id[0], res_id[1]]);
    msg.finish()
}

/// An nf_tables request for the inet family.
fn request(msg: u8, flags: u16) -> MessageBuilder {
    let kind = (u16::from(NFNL_SUBSYS_NFTABLES) << 8) | u16::from(msg);
    let mut builder = MessageBuilder::new(kind, NLM_F_REQUEST | flags);
    builder.push_header(&[NFPROTO_INET, NFNETLINK_V0, 0, 0]);
    builder
}

fn check_table_name(table: &str) -> Result<(), Error> {
    if table.is_empty() || table.len() >= NFT_NAME_MAXLEN || table.contains('\0') {
        return Err(Error::Invalid {
            what: "nftables table name",
            detail: format!("bad table name {table:?}"),
        });
    }
    Ok(())
}

fn table_request(msg: u8, flags: u16, table: &str) -> MessageBuilder {
    let mut builder = request(msg, flags);
    builder.attr_str(NFTA_TABLE_NAME, table);
    builder
}

fn set_request(table: &str, name: &str, key_type: u32, key_len: u32, id: u32) -> MessageBuilder {
    let mut msg = request(NFT_MSG_NEWSET, NLM_F_CREATE);
    msg.attr_str(NFTA_SET_TABLE, table)
        .attr_str(NFTA_SET_NAME, name)
        .attr_u32_be(NFTA_SET_FLAGS, 0)
        .attr_u32_be(NFTA_SET_KEY_TYPE, key_type)
        .attr_u32_be(NFTA_SET_KEY_LEN, key_len)
        .attr_u32_be(NFTA_SET_ID, id);
    msg
}

fn chain_request(table: &str, name: &str, hook: u32) -> MessageBuilder {
    let mut msg = request(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    msg.attr_str(NFTA_CHAIN_TABLE, table)
        .attr_str(NFTA_CHAIN_NAME, name)
        .attr_str(NFTA_CHAIN_TYPE, "filter")
        .attr_u32_be(NFTA_CHAIN_POLICY, NF_ACCEPT);
    let nest = msg.begin_nested(NFTA_CHAIN_HOOK | NLA_F_NESTED);
    msg.attr_u32_be(NFTA_HOOK_HOOKNUM, hook)
        .attr_u32_be(NFTA_HOOK_PRIORITY, CHAIN_PRIORITY as u32);
    msg.end_nested(nest);
    msg
}

/// What a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// `ip daddr @vips`, `ip6 saddr @vips6`, ...
    Vip { v6: bool, source: bool },
    /// `icmpv6 type T`.
    Icmpv6Type(u8),
}

/// The rules of one chain, in order (see the module documentation).
fn chain_rules(source: bool) -> [(Match, u32); 4] {
    [
        (Match::Vip { v6: false, source }, NF_DROP),
        (Match::Icmpv6Type(ND_NEIGHBOR_SOLICIT), NF_ACCEPT),
        (Match::Icmpv6Type(ND_NEIGHBOR_ADVERT), NF_ACCEPT),
        (Match::Vip { v6: true, source }, NF_DROP),
    ]
}

/// One `NFTA_LIST_ELEM` holding an expression named `name`.
fn expr(msg: &mut MessageBuilder, name: &str, body: impl FnOnce(&mut MessageBuilder)) {
    let elem = msg.begin_nested(NFTA_LIST_ELEM | NLA_F_NESTED);
    msg.attr_str(NFTA_EXPR_NAME, name);
    let data = msg.begin_nested(NFTA_EXPR_DATA | NLA_F_NESTED);
    body(msg);
    msg.end_nested(data);
    msg.end_nested(elem);
}

fn meta(msg: &mut MessageBuilder, key: u32) {
    expr(msg, "meta", |m| {
        m.attr_u32_be(NFTA_META_KEY, key)
            .attr_u32_be(NFTA_META_DREG, NFT_REG_1);
    });
}

fn cmp_eq(msg: &mut MessageBuilder, value: &[u8]) {
    expr(msg, "cmp", |m| {
        m.attr_u32_be(NFTA_CMP_SREG, NFT_REG_1)
            .attr_u32_be(NFTA_CMP_OP, NFT_CMP_EQ);
        let data = m.begin_nested(NFTA_CMP_DATA | NLA_F_NESTED);
        m.attr(NFTA_DATA_VALUE, value);
        m.end_nested(data);
    });
}

fn payload(msg: &mut MessageBuilder, base: u32, offset: u32, len: u32) {
    expr(msg, "payload", |m| {
        m.attr_u32_be(NFTA_PAYLOAD_DREG, NFT_REG_1)
            .attr_u32_be(NFTA_PAYLOAD_BASE, base)
            .attr_u32_be(NFTA_PAYLOAD_OFFSET, offset)
            .attr_u32_be(NFTA_PAYLOAD_LEN, len);
    });
}

fn lookup(msg: &mut MessageBuilder, set: &str, set_id: u32) {
    expr(msg, "lookup", |m| {
        m.attr_u32_be(NFTA_LOOKUP_SREG, NFT_REG_1)
            .attr_str(NFTA_LOOKUP_SET, set)
            .attr_u32_be(NFTA_LOOKUP_SET_ID, set_id);
    });
}

fn verdict(msg: &mut MessageBuilder, code: u32) {
    expr(msg, "immediate", |m| {
        m.attr_u32_be(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        let data = m.begin_nested(NFTA_IMMEDIATE_DATA | NLA_F_NESTED);
        let verdict = m.begin_nested(NFTA_DATA_VERDICT | NLA_F_NESTED);
        m.attr_u32_be(NFTA_VERDICT_CODE, code);
        m.end_nested(verdict);
        m.end_nested(data);
    });
}

/// `NFT_MSG_NEWRULE` appending one rule to `chain`; the expressions are
/// those nft(8) generates for the same rule in an inet table.
fn rule_request(table: &str, chain: &str, matches: Match, code: u32) -> MessageBuilder {
    let mut msg = request(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
    msg.attr_str(NFTA_RULE_TABLE, table)
        .attr_str(NFTA_RULE_CHAIN, chain);
    let list = msg.begin_nested(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED);
    match matches {
        Match::Vip { v6: false, source } => {
            // meta nfproto ipv4; ip saddr/daddr (offset 12/16 in the header)
            meta(&mut msg, NFT_META_NFPROTO);
            cmp_eq(&mut msg, &[NFPROTO_IPV4]);
            payload(
                &mut msg,
                NFT_PAYLOAD_NETWORK_HEADER,
                if source { 12 } else { 16 },
                4,
            );
            lookup(&mut msg, SET_VIPS, SET_ID_VIPS);
        }
        Match::Vip { v6: true, source } => {
            // meta nfproto ipv6; ip6 saddr/daddr (offset 8/24 in the header)
            meta(&mut msg, NFT_META_NFPROTO);
            cmp_eq(&mut msg, &[NFPROTO_IPV6]);
            payload(
                &mut msg,
                NFT_PAYLOAD_NETWORK_HEADER,
                if source { 8 } else { 24 },
                16,
            );
            lookup(&mut msg, SET_VIPS6, SET_ID_VIPS6);
        }
        Match::Icmpv6Type(kind) => {
            // meta nfproto ipv6; meta l4proto icmpv6; icmpv6 type (byte 0)
            meta(&mut msg, NFT_META_NFPROTO);
            cmp_eq(&mut msg, &[NFPROTO_IPV6]);
            meta(&mut msg, NFT_META_L4PROTO);
            cmp_eq(&mut msg, &[IPPROTO_ICMPV6]);
            payload(&mut msg, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
            cmp_eq(&mut msg, &[kind]);
        }
    }
    verdict(&mut msg, code);
    msg.end_nested(list);
    msg
}

/// The batch behind [`NftVips::ensure_table`]: replace any table called
/// `table` with the empty layout of the module documentation.
pub fn ensure_table_batch(table: &str, first_seq: u32) -> Result<Batch, Error> {
    check_table_name(table)?;
    let mut batch = Batch::begin("nftables: set up table", first_seq);
    // Create-if-missing so the delete cannot fail, then start afresh.
    batch.push(
        table_request(NFT_MSG_NEWTABLE, NLM_F_CREATE, table),
        "nftables: create table",
    );
    batch.push(
        table_request(NFT_MSG_DELTABLE, 0, table),
        "nftables: delete old table",
    );
    batch.push(
        table_request(NFT_MSG_NEWTABLE, NLM_F_CREATE, table),
        "nftables: create table",
    );
    batch.push(
        set_request(table, SET_VIPS, NFT_TYPE_IPADDR, 4, SET_ID_VIPS),
        "nftables: create set vips",
    );
    batch.push(
        set_request(table, SET_VIPS6, NFT_TYPE_IP6ADDR, 16, SET_ID_VIPS6),
        "nftables: create set vips6",
    );
    for (chain, hook, source) in [
        (CHAIN_IN, NF_INET_LOCAL_IN, false),
        (CHAIN_OUT, NF_INET_LOCAL_OUT, true),
    ] {
        batch.push(
            chain_request(table, chain, hook),
            if source {
                "nftables: create chain out"
            } else {
                "nftables: create chain in"
            },
        );
        for (matches, code) in chain_rules(source) {
            batch.push(
                rule_request(table, chain, matches, code),
                if source {
                    "nftables: add rule to chain out"
                } else {
                    "nftables: add rule to chain in"
                },
            );
        }
    }
    batch.end()
}

/// The batch behind [`NftVips::delete_table`]; no error when it is absent.
pub fn delete_table_batch(table: &str, first_seq: u32) -> Result<Batch, Error> {
    check_table_name(table)?;
    let mut batch = Batch::begin("nftables: delete table", first_seq);
    batch.push(
        table_request(NFT_MSG_NEWTABLE, NLM_F_CREATE, table),
        "nftables: create table",
    );
    batch.push(
        table_request(NFT_MSG_DELTABLE, 0, table),
        "nftables: delete table",
    );
    batch.end()
}

/// Sorted, deduplicated IPv4 and IPv6 keys (network byte order).
fn split_addrs(addrs: &[IpAddr]) -> (Vec<[u8; 4]>, Vec<[u8; 16]>) {
    let mut v4: Vec<[u8; 4]> = Vec::new();
    let mut v6: Vec<[u8; 16]> = Vec::new();
    for addr in addrs {
        match addr {
            IpAddr::V4(a) => v4.push(a.octets()),
            IpAddr::V6(a) => v6.push(a.octets()),
        }
    }
    v4.sort_unstable();
    v4.dedup();
    v6.sort_unstable();
    v6.dedup();
    (v4, v6)
}

/// `NFT_MSG_NEWSETELEM` / `NFT_MSG_DELSETELEM` for some keys of one set.
fn elements_request(msg: u8, flags: u16, table: &str, set: &str, keys: &[&[u8]]) -> MessageBuilder {
    let mut builder = request(msg, flags);
    builder
        .attr_str(NFTA_SET_ELEM_LIST_TABLE, table)
        .attr_str(NFTA_SET_ELEM_LIST_SET, set);
    let list = builder.begin_nested(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
    for key in keys {
        let elem = builder.begin_nested(NFTA_LIST_ELEM | NLA_F_NESTED);
        let key_nest = builder.begin_nested(NFTA_SET_ELEM_KEY | NLA_F_NESTED);
        builder.attr(NFTA_DATA_VALUE, key);
        builder.end_nested(key_nest);
        builder.end_nested(elem);
    }
    builder.end_nested(list);
    builder
}

/// Push element messages for both sets; `remove` adds each element before
/// deleting it so that a missing one is no error.
fn push_elements(batch: &mut Batch, table: &str, addrs: &[IpAddr], remove: bool) {
    let (v4, v6) = split_addrs(addrs);
    let v4: Vec<&[u8]> = v4.iter().map(|k| &k[..]).collect();
    let v6: Vec<&[u8]> = v6.iter().map(|k| &k[..]).collect();
    for (set, keys) in [(SET_VIPS, v4), (SET_VIPS6, v6)] {
        let v6 = set == SET_VIPS6;
        for chunk in keys.chunks(ELEMENTS_PER_MESSAGE) {
            batch.push(
                elements_request(NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, set, chunk),
                if v6 {
                    "nftables: add element to set vips6"
                } else {
                    "nftables: add element to set vips"
                },
            );
            if remove {
                batch.push(
                    elements_request(NFT_MSG_DELSETELEM, 0, table, set, chunk),
                    if v6 {
                        "nftables: delete element from set vips6"
                    } else {
                        "nftables: delete element from set vips"
                    },
                );
            }
        }
    }
}

/// The batch behind [`NftVips::add`]: `None` when there is nothing to add.
pub fn add_batch(table: &str, addrs: &[IpAddr], first_seq: u32) -> Result<Option<Batch>, Error> {
    check_table_name(table)?;
    if addrs.is_empty() {
        return Ok(None);
    }
    let mut batch = Batch::begin("nftables: add VIPs", first_seq);
    push_elements(&mut batch, table, addrs, false);
    batch.end().map(Some)
}

/// The batch behind [`NftVips::remove`]: `None` when there is nothing to
/// remove.
pub fn remove_batch(table: &str, addrs: &[IpAddr], first_seq: u32) -> Result<Option<Batch>, Error> {
    check_table_name(table)?;
    if addrs.is_empty() {
        return Ok(None);
    }
    let mut batch = Batch::begin("nftables: remove VIPs", first_seq);
    push_elements(&mut batch, table, addrs, true);
    batch.end().map(Some)
}

/// `NFT_MSG_GETSETELEM` for one set (sent as a dump).
pub fn get_elements_request(table: &str, set: &str) -> MessageBuilder {
    let mut msg = request(NFT_MSG_GETSETELEM, 0);
    msg.attr_str(NFTA_SET_ELEM_LIST_TABLE, table)
        .attr_str(NFTA_SET_ELEM_LIST_SET, set);
    msg
}

// ===== parsing =====

/// Append the address keys of an `NFT_MSG_NEWSETELEM` message (a dump
/// reply) to `out`. Other messages are ignored; elements without a key
/// (catch-all) are skipped; a key that is not 4 or 16 bytes is an error.
pub fn parse_elements(msg: &Message<'_>, out: &mut Vec<IpAddr>) -> Result<(), WireError> {
    let newsetelem = (u16::from(NFNL_SUBSYS_NFTABLES) << 8) | u16::from(NFT_MSG_NEWSETELEM);
    if msg.kind != newsetelem {
        return Ok(());
    }
    let (_, attrs) = msg.split_header(NFGENMSG_LEN)?;
    for attr in attrs {
        let attr = attr?;
        if attr.kind() != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for elem in attr.nested() {
            let elem = elem?;
            if elem.kind() != NFTA_LIST_ELEM {
                continue;
            }
            let Some(key) = elem.nested().find(NFTA_SET_ELEM_KEY) else {
                continue;
            };
            let Some(value) = key.nested().find(NFTA_DATA_VALUE) else {
                continue;
            };
            let addr = if let Ok(v4) = <[u8; 4]>::try_from(value.value) {
                IpAddr::from(v4)
            } else if let Ok(v6) = <[u8; 16]>::try_from(value.value) {
                IpAddr::from(v6)
            } else {
                return Err(WireError::BadAttributeSize {
                    kind: NFTA_DATA_VALUE,
                    expected: 16,
                    got: value.value.len(),
                });
            };
            out.push(addr);
        }
    }
    Ok(())
}

// ===== the socket =====

/// The `no_accept` table of one daemon: a `NETLINK_NETFILTER` socket and
/// the table's name. Every call is one transaction, answered before it
/// returns (bounded by the socket's reply timeout).
#[derive(Debug)]
pub struct NftVips {
    sock: NetlinkSocket,
    table: String,
    seq: u32,
}

impl NftVips {
    /// Open the socket; nothing is sent. `table` is usually
    /// [`DEFAULT_TABLE`].
    pub fn open(table: &str) -> Result<NftVips, Error> {
        check_table_name(table)?;
        let sock = NetlinkSocket::open(libc::NETLINK_NETFILTER, false)?;
        // Away from the socket's own counter (used for dumps), so a late
        // reply to one is never taken for the other.
        let seq = std::process::id().wrapping_mul(2654435761) ^ 0x8000_0000;
        Ok(NftVips {
            sock,
            table: table.to_owned(),
            seq,
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the table, or replace what a previous run left, with empty
    /// sets and the drop rules: afterwards the kernel holds exactly the
    /// layout of the module documentation.
    pub fn ensure_table(&mut self) -> Result<(), Error> {
        let batch = ensure_table_batch(&self.table, self.seq)?;
        self.exchange(batch)
    }

    /// Add addresses to the sets (traffic to and from them is dropped from
    /// now on). Addresses already present are no error.
    pub fn add(&mut self, addrs: &[IpAddr]) -> Result<(), Error> {
        match add_batch(&self.table, addrs, self.seq)? {
            Some(batch) => self.exchange(batch),
            None => Ok(()),
        }
    }

    /// Remove addresses from the sets. Addresses not present are no error.
    pub fn remove(&mut self, addrs: &[IpAddr]) -> Result<(), Error> {
        match remove_batch(&self.table, addrs, self.seq)? {
            Some(batch) => self.exchange(batch),
            None => Ok(()),
        }
    }

    /// Delete the table (at shutdown). A missing table is no error.
    pub fn delete_table(&mut self) -> Result<(), Error> {
        let batch = delete_table_batch(&self.table, self.seq)?;
        self.exchange(batch)
    }

    /// The addresses in both sets, sorted (what the kernel holds, for
    /// reconciling and for logs).
    pub fn list(&mut self) -> Result<Vec<IpAddr>, Error> {
        let mut out = Vec::new();
        for set in [SET_VIPS, SET_VIPS6] {
            self.sock.dump(
                get_elements_request(&self.table, set),
                "nftables: list set elements",
                |m| parse_elements(m, &mut out).map_err(Error::from),
            )?;
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Send a batch and read every answer. The first refused request (in
    /// batch order) is the error; the kernel then applied none of them.
    fn exchange(&mut self, batch: Batch) -> Result<(), Error> {
        self.seq = batch.next_seq;
        self.sock.send(&batch.bytes)?;
        let port_id = self.sock.port_id();
        let mut answers: Vec<Option<(i32, Option<String>)>> = vec![None; batch.requests.len()];
        let mut missing = batch.requests.len();
        // Every ACK may come in its own datagram; stale ones are skipped.
        let max_datagrams = batch.requests.len() * 2 + 16;
        for _ in 0..max_datagrams {
            if missing == 0 {
                break;
            }
            let Some(datagram) = self.sock.recv()? else {
                return Err(Error::Timeout { what: batch.what });
            };
            for message in Messages::new(datagram) {
                let message = message?;
                if message.kind != NLMSG_ERROR || (message.pid != port_id && message.pid != 0) {
                    continue;
                }
                let Some(ack) = message.error() else { continue };
                let ack = ack?;
                if message.seq == batch.begin_seq && ack.errno != 0 {
                    // The batch as a whole failed (no permission, commit
                    // refused): no per-request answers may follow.
                    return Err(Error::Kernel {
                        what: batch.what,
                        errno: ack.errno,
                        message: ack.message.map(str::to_owned),
                    });
                }
                let Some(at) = batch.requests.iter().position(|(s, _)| *s == message.seq) else {
                    continue;
                };
                if answers[at].is_none() {
                    missing -= 1;
                    answers[at] = Some((ack.errno, ack.message.map(str::to_owned)));
                }
            }
        }
        if missing > 0 {
            return Err(Error::Timeout { what: batch.what });
        }
        for ((_, what), answer) in batch.requests.iter().zip(answers) {
            if let Some((errno, message)) = answer {
                if errno != 0 {
                    return Err(Error::Kernel {
                        what,
                        errno,
                        message,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{Attr, Attrs, NLM_F_ACK, NLM_F_CREATE};
    use std::net::Ipv6Addr;

    fn nft_type(msg: u8) -> u16 {
        (u16::from(NFNL_SUBSYS_NFTABLES) << 8) | u16::from(msg)
    }

    fn messages(batch: &Batch) -> Vec<Message<'_>> {
        Messages::new(batch.bytes())
            .map(|m| m.expect("well-formed message"))
            .collect()
    }

    fn attrs<'a>(msg: &Message<'a>) -> Vec<Attr<'a>> {
        let (header, attrs) = msg.split_header(NFGENMSG_LEN).unwrap();
        assert_eq!(header, &[NFPROTO_INET, NFNETLINK_V0, 0, 0]);
        attrs.map(Result::unwrap).collect()
    }

    /// (kind, value) of each attribute in a nest.
    type Fields = Vec<(u16, Vec<u8>)>;

    fn nested(attr: &Attr<'_>) -> Fields {
        assert!(
            attr.is_nested(),
            "attribute {} lacks NLA_F_NESTED",
            attr.kind()
        );
        attr.nested()
            .map(|a| {
                let a = a.unwrap();
                (a.kind(), a.value.to_vec())
            })
            .collect()
    }

    fn keys(msg: &Message<'_>) -> Vec<Vec<u8>> {
        let list = attrs(msg)
            .into_iter()
            .find(|a| a.kind() == NFTA_SET_ELEM_LIST_ELEMENTS)
            .expect("element list");
        assert!(list.is_nested());
        Attrs::new(list.value)
            .map(|elem| {
                let elem = elem.unwrap();
                assert_eq!(elem.kind(), NFTA_LIST_ELEM);
                assert!(elem.is_nested());
                let key = elem.nested().find(NFTA_SET_ELEM_KEY).expect("key");
                assert!(key.is_nested());
                key.nested()
                    .find(NFTA_DATA_VALUE)
                    .expect("value")
                    .value
                    .to_vec()
            })
            .collect()
    }

    fn assert_markers(batch: &Batch, msgs: &[Message<'_>], first_seq: u32) {
        let (begin, end) = (msgs[0], msgs[msgs.len() - 1]);
        for (msg, kind) in [(begin, NFNL_MSG_BATCH_BEGIN), (end, NFNL_MSG_BATCH_END)] {
            assert_eq!(msg.kind, kind);
            assert_eq!(msg.flags, NLM_F_REQUEST);
            assert_eq!(msg.payload, &[0, 0, 0, 10]);
        }
        for (i, msg) in msgs.iter().enumerate() {
            assert_eq!(msg.seq, first_seq.wrapping_add(i as u32));
            if i > 0 && i < msgs.len() - 1 {
                assert_ne!(msg.flags & NLM_F_ACK, 0, "message {i} without ACK");
            }
        }
        assert_eq!(batch.requests(), msgs.len() - 2);
        assert_eq!(batch.next_seq(), first_seq.wrapping_add(msgs.len() as u32));
    }

    /// add() of one IPv4 address: BEGIN, one NEWSETELEM for set vips with
    /// the address as its only key, END.
    #[test]
    fn add_one_ipv4_address() {
        let addr: IpAddr = "10.1.2.100".parse().unwrap();
        let batch = add_batch("keepalived", &[addr], 100).unwrap().unwrap();
        let msgs = messages(&batch);
        assert_eq!(msgs.len(), 3);
        assert_markers(&batch, &msgs, 100);
        let msg = msgs[1];
        assert_eq!(msg.kind, nft_type(NFT_MSG_NEWSETELEM));
        assert_eq!(msg.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        let a = attrs(&msg);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].kind(), NFTA_SET_ELEM_LIST_TABLE);
        assert_eq!(a[0].as_str().unwrap(), "keepalived");
        assert_eq!(a[1].kind(), NFTA_SET_ELEM_LIST_SET);
        assert_eq!(a[1].as_str().unwrap(), "vips");
        assert_eq!(keys(&msg), vec![vec![10, 1, 2, 100]]);
        // Nothing to do, nothing sent.
        assert!(add_batch("keepalived", &[], 1).unwrap().is_none());
    }

    /// Mixed families go to their own set; duplicates are sent once.
    #[test]
    fn add_mixed_and_duplicate_addresses() {
        let addrs: Vec<IpAddr> = ["fd00::1", "10.0.0.2", "10.0.0.1", "fd00::1", "10.0.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let batch = add_batch("t", &addrs, u32::MAX).unwrap().unwrap();
        let msgs = messages(&batch);
        assert_eq!(msgs.len(), 4);
        assert_markers(&batch, &msgs, u32::MAX);
        assert_eq!(attrs(&msgs[1])[1].as_str().unwrap(), "vips");
        assert_eq!(keys(&msgs[1]), vec![vec![10, 0, 0, 1], vec![10, 0, 0, 2]]);
        assert_eq!(attrs(&msgs[2])[1].as_str().unwrap(), "vips6");
        let fd00_1: Ipv6Addr = "fd00::1".parse().unwrap();
        assert_eq!(keys(&msgs[2]), vec![fd00_1.octets().to_vec()]);
    }

    /// remove(): every element is added (no EXCL) and then deleted in the
    /// same transaction, so absent elements are no error.
    #[test]
    fn remove_adds_then_deletes() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::9".parse().unwrap()];
        let batch = remove_batch("keepalived", &addrs, 7).unwrap().unwrap();
        let msgs = messages(&batch);
        assert_markers(&batch, &msgs, 7);
        let kinds: Vec<(u16, &str)> = msgs[1..msgs.len() - 1]
            .iter()
            .map(|m| (m.kind, attrs(m)[1].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (nft_type(NFT_MSG_NEWSETELEM), "vips"),
                (nft_type(NFT_MSG_DELSETELEM), "vips"),
                (nft_type(NFT_MSG_NEWSETELEM), "vips6"),
                (nft_type(NFT_MSG_DELSETELEM), "vips6"),
            ]
        );
        assert_eq!(msgs[2].flags, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(keys(&msgs[1]), keys(&msgs[2]));
    }

    /// Large lists are split so no attribute overflows its u16 length;
    /// beyond the datagram limit the batch is refused before sending.
    #[test]
    fn many_addresses_are_chunked_and_bounded() {
        let addrs: Vec<IpAddr> = (0..1200u32)
            .map(|i| IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i))))
            .collect();
        let batch = add_batch("keepalived", &addrs, 1).unwrap().unwrap();
        let msgs = messages(&batch);
        assert_eq!(msgs.len(), 2 + 3);
        let total: usize = msgs[1..4].iter().map(|m| keys(m).len()).sum();
        assert_eq!(total, 1200);
        let too_many: Vec<IpAddr> = (0..10_000u32)
            .map(|i| IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i))))
            .collect();
        let err = add_batch("keepalived", &too_many, 1).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }

    #[test]
    fn bad_table_names_are_refused() {
        for name in ["", "a\0b", &"x".repeat(NFT_NAME_MAXLEN)] {
            assert!(matches!(
                ensure_table_batch(name, 1),
                Err(Error::Invalid { .. })
            ));
            assert!(matches!(NftVips::open(name), Err(Error::Invalid { .. })));
        }
        assert!(ensure_table_batch(&"x".repeat(NFT_NAME_MAXLEN - 1), 1).is_ok());
    }

    /// The set-up batch: table replaced, two sets, two chains with four
    /// rules each, in that order.
    #[test]
    fn ensure_table_structure() {
        let batch = ensure_table_batch("keepalived", 1).unwrap();
        let msgs = messages(&batch);
        assert_markers(&batch, &msgs, 1);
        let kinds: Vec<u16> = msgs[1..msgs.len() - 1].iter().map(|m| m.kind).collect();
        let mut expected = vec![
            nft_type(NFT_MSG_NEWTABLE),
            nft_type(NFT_MSG_DELTABLE),
            nft_type(NFT_MSG_NEWTABLE),
            nft_type(NFT_MSG_NEWSET),
            nft_type(NFT_MSG_NEWSET),
        ];
        for _ in 0..2 {
            expected.push(nft_type(NFT_MSG_NEWCHAIN));
            expected.extend([nft_type(NFT_MSG_NEWRULE); 4]);
        }
        assert_eq!(kinds, expected);

        // Sets: name, key type, key length, batch id.
        for (msg, name, key_type, key_len, id) in [
            (msgs[4], "vips", NFT_TYPE_IPADDR, 4u32, 1u32),
            (msgs[5], "vips6", NFT_TYPE_IP6ADDR, 16, 2),
        ] {
            let a = attrs(&msg);
            let find = |k| a.iter().find(|x| x.kind() == k).unwrap();
            assert_eq!(find(NFTA_SET_NAME).as_str().unwrap(), name);
            assert_eq!(find(NFTA_SET_KEY_TYPE).as_u32_be().unwrap(), key_type);
            assert_eq!(find(NFTA_SET_KEY_LEN).as_u32_be().unwrap(), key_len);
            assert_eq!(find(NFTA_SET_ID).as_u32_be().unwrap(), id);
        }

        // Chains: hook, priority -1, policy accept, type filter.
        for (msg, name, hook) in [
            (msgs[6], "in", NF_INET_LOCAL_IN),
            (msgs[11], "out", NF_INET_LOCAL_OUT),
        ] {
            let a = attrs(&msg);
            let find = |k| a.iter().find(|x| x.kind() == k).unwrap();
            assert_eq!(find(NFTA_CHAIN_NAME).as_str().unwrap(), name);
            assert_eq!(find(NFTA_CHAIN_TYPE).as_str().unwrap(), "filter");
            assert_eq!(find(NFTA_CHAIN_POLICY).as_u32_be().unwrap(), NF_ACCEPT);
            let hook_attrs = nested(find(NFTA_CHAIN_HOOK));
            assert_eq!(
                hook_attrs,
                vec![
                    (NFTA_HOOK_HOOKNUM, hook.to_be_bytes().to_vec()),
                    (NFTA_HOOK_PRIORITY, (-1i32).to_be_bytes().to_vec()),
                ]
            );
        }

        // Rules: expression names in order, and the verdict.
        let rule = |msg: &Message<'_>| -> (String, Vec<String>) {
            let a = attrs(msg);
            let chain = a[1].as_str().unwrap().to_owned();
            assert_eq!(a[2].kind(), NFTA_RULE_EXPRESSIONS);
            let names = a[2]
                .nested()
                .map(|e| {
                    let e = e.unwrap();
                    e.nested()
                        .find(NFTA_EXPR_NAME)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            (chain, names)
        };
        let addr_rule = ["meta", "cmp", "payload", "lookup", "immediate"];
        let icmp_rule = ["meta", "cmp", "meta", "cmp", "payload", "cmp", "immediate"];
        for (i, chain) in [(7, "in"), (12, "out")] {
            for (j, shape) in [addr_rule.as_slice(), &icmp_rule, &icmp_rule, &addr_rule]
                .iter()
                .enumerate()
            {
                let (c, names) = rule(&msgs[i + j]);
                assert_eq!(c, chain);
                assert_eq!(names, *shape, "rule {j} of chain {chain}");
                assert_eq!(
                    msgs[i + j].flags,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND
                );
            }
        }
    }

    /// `ip daddr @vips drop` expression by expression.
    #[test]
    fn ipv4_daddr_rule_expressions() {
        let msg = rule_request(
            "keepalived",
            "in",
            Match::Vip {
                v6: false,
                source: false,
            },
            NF_DROP,
        )
        .finish();
        let message = Messages::new(&msg).next().unwrap().unwrap();
        let a = attrs(&message);
        let exprs: Vec<(String, Fields)> = a[2]
            .nested()
            .map(|e| {
                let e = e.unwrap();
                let name = e.nested().find(NFTA_EXPR_NAME).unwrap().as_str().unwrap();
                let data = e.nested().find(NFTA_EXPR_DATA).unwrap();
                (name.to_owned(), nested(&data))
            })
            .collect();
        let be = |v: u32| v.to_be_bytes().to_vec();
        assert_eq!(exprs[0].0, "meta");
        assert_eq!(
            exprs[0].1,
            vec![
                (NFTA_META_KEY, be(NFT_META_NFPROTO)),
                (NFTA_META_DREG, be(1))
            ]
        );
        assert_eq!(exprs[1].0, "cmp");
        assert_eq!(
            exprs[1].1[..2],
            [(NFTA_CMP_SREG, be(1)), (NFTA_CMP_OP, be(0))]
        );
        assert_eq!(
            exprs[2].1,
            vec![
                (NFTA_PAYLOAD_DREG, be(1)),
                (NFTA_PAYLOAD_BASE, be(NFT_PAYLOAD_NETWORK_HEADER)),
                (NFTA_PAYLOAD_OFFSET, be(16)),
                (NFTA_PAYLOAD_LEN, be(4)),
            ]
        );
        assert_eq!(
            exprs[3].1,
            vec![
                (NFTA_LOOKUP_SREG, be(1)),
                (NFTA_LOOKUP_SET, b"vips\0".to_vec()),
                (NFTA_LOOKUP_SET_ID, be(1)),
            ]
        );
        assert_eq!(exprs[4].0, "immediate");
        assert_eq!(exprs[4].1[0], (NFTA_IMMEDIATE_DREG, be(NFT_REG_VERDICT)));
    }

    /// A dump reply as the kernel sends it (built here), parsed back; every
    /// truncation is an error or a partial answer, never a panic.
    #[test]
    fn parse_element_dump_reply() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        let v4 = [10u8, 0, 0, 1];
        let v6: Ipv6Addr = "fd00::1".parse().unwrap();
        let mut reply = elements_request(
            NFT_MSG_NEWSETELEM,
            0,
            "keepalived",
            "vips",
            &[&v4, &v6.octets()],
        );
        reply.set_seq(3);
        let bytes = reply.finish();
        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let mut out = Vec::new();
        parse_elements(&message, &mut out).unwrap();
        assert_eq!(out, addrs);

        let bad = elements_request(NFT_MSG_NEWSETELEM, 0, "k", "vips", &[&[1, 2, 3]]).finish();
        let message = Messages::new(&bad).next().unwrap().unwrap();
        assert!(parse_elements(&message, &mut Vec::new()).is_err());

        for cut in 0..bytes.len() {
            let mut cut_bytes = bytes[..cut].to_vec();
            // Keep the header length consistent with the cut so the
            // attribute parser sees the truncation.
            if cut >= 4 {
                cut_bytes[0..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            for message in Messages::new(&cut_bytes).flatten() {
                let _ = parse_elements(&message, &mut Vec::new());
            }
        }
        // Other message types are ignored.
        let other = request(NFT_MSG_NEWSET, 0).finish();
        let message = Messages::new(&other).next().unwrap().unwrap();
        let mut none = Vec::new();
        parse_elements(&message, &mut none).unwrap();
        assert!(none.is_empty());
    }
}
