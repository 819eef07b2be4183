//! The `no_accept` nftables table (src/netlink/nft.rs) against the real
//! kernel, in network namespaces.
//!
//! Needs root, ip(8), nft(8) (Debian package `nftables`) and ping. Under
//! plain `cargo test` without them each test prints why it skips; with
//! KEEPALIVED_RS_FULL_TEST=1 a missing prerequisite fails the test (see
//! `common::lab::can_run`).
//!
//! Every test makes its own lab (`common::lab::Lab`), whose namespaces go
//! on drop, also when an assertion fails. Our code runs on a thread that
//! entered the namespace with setns(2) (`Netns::run`). The witnesses are
//! independent of our code: `nft list` (the table exactly as nft prints
//! it), `ping` through a veth pair, and `ip neigh`.

use std::net::IpAddr;

use keepalived_rs::netlink::nft::{ensure_table_batch, NftVips, DEFAULT_TABLE};
use keepalived_rs::netlink::wire::NLM_F_ACK;
use keepalived_rs::netlink::{Attrs, Message, Messages};

mod common;
use common::lab::{can_run, Lab, Netns};

/// Tools besides `ip` that every namespace test here needs.
const TOOLS: &[&str] = &["nft", "ping"];

/// `nft list table inet keepalived` in `ns`, or `None` when there is no
/// such table.
fn nft_table(ns: &Netns) -> Option<String> {
    ns.try_exec(&["nft", "list", "table", "inet", DEFAULT_TABLE])
}

// ===== the expected table =====

/// What `nft list table inet keepalived` prints for our layout, with the
/// given set elements (as nft writes them, sorted as nft sorts them).
fn expected_table(vips: &[&str], vips6: &[&str]) -> String {
    let elements = |list: &[&str]| {
        if list.is_empty() {
            String::new()
        } else {
            format!("elements = {{ {} }}\n", list.join(", "))
        }
    };
    format!(
        "table inet keepalived {{
set vips {{
type ipv4_addr
{}}}
set vips6 {{
type ipv6_addr
{}}}
chain in {{
type filter hook input priority filter - 1; policy accept;
ip daddr @vips drop
icmpv6 type nd-neighbor-solicit accept
icmpv6 type nd-neighbor-advert accept
ip6 daddr @vips6 drop
}}
chain out {{
type filter hook output priority filter - 1; policy accept;
ip saddr @vips drop
icmpv6 type nd-neighbor-solicit accept
icmpv6 type nd-neighbor-advert accept
ip6 saddr @vips6 drop
}}
}}
",
        elements(vips),
        elements(vips6)
    )
}

/// nft's text without indentation, blank lines and the wrapping of long
/// element lists; older nft versions print the priority as a number.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(&line.replace("priority -1;", "priority filter - 1;"));
        out.push(if line.ends_with(',') { ' ' } else { '\n' });
    }
    out
}

fn assert_table(ns: &Netns, vips: &[&str], vips6: &[&str]) {
    let listed = nft_table(ns).expect("table inet keepalived exists");
    assert_eq!(
        normalize(&listed),
        expected_table(vips, vips6),
        "nft list table inet keepalived:\n{listed}"
    );
}

fn addrs(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

// ===== byte vector (no kernel, no root) =====

/// The messages of tests/vectors/nft/layout.request.hex: the batch nft(8)
/// itself sent for the same table (see the README there).
fn nft_vector() -> Vec<Vec<u8>> {
    include_str!("vectors/nft/layout.request.hex")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

fn parse_one(bytes: &[u8]) -> Message<'_> {
    let mut msgs = Messages::new(bytes);
    let msg = msgs.next().unwrap().unwrap();
    assert!(msgs.next().is_none());
    msg
}

/// `ours` is `theirs` without nft's trailing attributes of the given kinds
/// (nft adds table flags 0 and set userdata for its own display).
fn assert_prefix_plus(ours: &Message<'_>, theirs: &Message<'_>, extra: &[u16]) {
    assert!(
        theirs.payload.starts_with(ours.payload),
        "ours {:02x?}\nnft  {:02x?}",
        ours.payload,
        theirs.payload
    );
    let rest: Vec<u16> = Attrs::new(&theirs.payload[ours.payload.len()..])
        .map(|a| a.unwrap().kind())
        .collect();
    assert_eq!(rest, extra);
}

/// Our set-up batch, message by message, against the one nft 1.0.6 sent for
/// the same layout: rules and chains byte for byte, sets and table up to
/// the attributes only nft adds; the same batch markers and flags (we add
/// NLM_F_ACK).
#[test]
fn ensure_table_matches_nft_bytes() {
    let theirs = nft_vector();
    assert_eq!(theirs.len(), 15);
    let theirs: Vec<Message<'_>> = theirs.iter().map(|m| parse_one(m)).collect();
    let batch = ensure_table_batch(DEFAULT_TABLE, 0).unwrap();
    let ours: Vec<Message<'_>> = Messages::new(batch.bytes()).map(Result::unwrap).collect();
    assert_eq!(ours.len(), 17);
    // Ours: BEGIN, NEWTABLE, DELTABLE, NEWTABLE, 2 sets, chain in + 4 rules,
    // chain out + 4 rules, END. nft: BEGIN, NEWTABLE, 2 chains, 2 sets,
    // 8 rules, END.
    let pairs: Vec<(usize, usize)> = vec![
        (0, 0),
        (3, 1),
        (4, 4),
        (5, 5),
        (6, 2),
        (11, 3),
        (7, 6),
        (8, 7),
        (9, 8),
        (10, 9),
        (12, 10),
        (13, 11),
        (14, 12),
        (15, 13),
        (16, 14),
    ];
    for (o, t) in pairs {
        let (ours, theirs) = (&ours[o], &theirs[t]);
        assert_eq!(ours.kind, theirs.kind, "our message {o} vs nft's {t}");
        match t {
            1 => assert_prefix_plus(ours, theirs, &[2]), // NFTA_TABLE_FLAGS
            4 | 5 => assert_prefix_plus(ours, theirs, &[13]), // NFTA_SET_USERDATA
            _ => assert_eq!(ours.payload, theirs.payload, "our message {o} vs nft's {t}"),
        }
        if t != 1 {
            let ack = if t == 0 || t == 14 { 0 } else { NLM_F_ACK };
            assert_eq!(
                ours.flags,
                theirs.flags | ack,
                "our message {o} vs nft's {t}"
            );
        }
    }
}

// ===== tests in namespaces =====

/// The table as nft sees it: layout, elements after add, after remove,
/// gone after delete_table. Our own dump (list) agrees with nft.
#[test]
fn nft_sees_table_sets_and_rules() {
    if !can_run("nft_sees_table_sets_and_rules", TOOLS) {
        return;
    }
    let lab = Lab::new("nft-list", 1, 0);
    let ns = lab.node(0).clone();
    lab.node(0).run(move || {
        let mut nft = NftVips::open(DEFAULT_TABLE).unwrap();
        nft.ensure_table().unwrap();
        assert_table(&ns, &[], &[]);
        assert!(nft.list().unwrap().is_empty());

        nft.add(&addrs(&[
            "10.55.0.101",
            "10.55.0.100",
            "fd55::100",
            "fd55::100",
        ]))
        .unwrap();
        // Adding present addresses again is no error.
        nft.add(&addrs(&["10.55.0.100", "fd55::100", "fd55::1:100"]))
            .unwrap();
        assert_table(
            &ns,
            &["10.55.0.100", "10.55.0.101"],
            &["fd55::100", "fd55::1:100"],
        );
        assert_eq!(
            nft.list().unwrap(),
            addrs(&["10.55.0.100", "10.55.0.101", "fd55::100", "fd55::1:100"])
        );

        // Absent addresses (10.55.0.200) are no error.
        nft.remove(&addrs(&["10.55.0.100", "fd55::100", "10.55.0.200"]))
            .unwrap();
        assert_table(&ns, &["10.55.0.101"], &["fd55::1:100"]);
        nft.remove(&addrs(&["10.55.0.101", "fd55::1:100"])).unwrap();
        nft.remove(&addrs(&["10.55.0.101"])).unwrap();
        assert_table(&ns, &[], &[]);
        nft.add(&[]).unwrap();
        nft.remove(&[]).unwrap();

        nft.delete_table().unwrap();
        assert_eq!(nft_table(&ns), None);
        let tables = ns.exec(&["nft", "list", "tables"]);
        assert!(!tables.contains("keepalived"), "{tables}");
        // Deleting an absent table is no error either.
        nft.delete_table().unwrap();
        // Without a table, changes are refused with the kernel's reason,
        // and the socket stays in step for the next batch.
        let err = nft.add(&addrs(&["10.55.0.1"])).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
        assert!(
            err.to_string()
                .starts_with("nftables: add element to set vips"),
            "{err}"
        );
        nft.ensure_table().unwrap();
        assert_table(&ns, &[], &[]);
    });
}

/// ensure_table twice is fine; over a table left by a previous run (ours,
/// with elements; or anything else of that name) it gives a clean table.
#[test]
fn ensure_table_replaces_leftovers() {
    if !can_run("ensure_table_replaces_leftovers", TOOLS) {
        return;
    }
    let lab = Lab::new("nft-redo", 1, 0);
    let ns = lab.node(0).clone();
    // Something else entirely under our name, for later.
    let junk = lab.write(
        "junk.nft",
        "table inet keepalived {}
        delete table inet keepalived
        table inet keepalived {
            set vips { type ipv4_addr; elements = { 192.0.2.1 } }
            set other { type inet_service; elements = { 22 } }
            chain in { type filter hook input priority 0; policy drop; }
            chain junk { tcp dport @other accept; }
        }\n",
    );
    lab.node(0).run(move || {
        let mut nft = NftVips::open(DEFAULT_TABLE).unwrap();
        nft.ensure_table().unwrap();
        nft.ensure_table().unwrap();
        assert_table(&ns, &[], &[]);

        // A previous run that died (no delete_table) left its elements.
        nft.add(&addrs(&["10.55.0.100", "fd55::100"])).unwrap();
        drop(nft);
        let mut nft = NftVips::open(DEFAULT_TABLE).unwrap();
        nft.ensure_table().unwrap();
        assert_table(&ns, &[], &[]);

        // Something else entirely under our name.
        ns.exec(&["nft", "-f", junk.to_str().unwrap()]);
        assert!(nft_table(&ns).unwrap().contains("junk"));
        nft.ensure_table().unwrap();
        assert_table(&ns, &[], &[]);
        nft.delete_table().unwrap();
        assert_eq!(nft_table(&ns), None);
    });
}

/// A router namespace holding the VIPs and a client namespace, joined by a
/// veth pair: router 10.55.0.1/24 + fd55::1/64, client .2 / ::2; VIPs
/// 10.55.0.100 and fd55::100 on the router.
struct Pair {
    /// Owns the namespaces.
    _lab: Lab,
    router: Netns,
    client: Netns,
}

const VIP4: &str = "10.55.0.100";
const VIP6: &str = "fd55::100";

impl Pair {
    fn new(tag: &str) -> Pair {
        let lab = Lab::new(&format!("nft-{tag}"), 2, 0);
        lab.veth(
            (0, "krsr0", &["10.55.0.1/24", "fd55::1/64"]),
            (1, "krsc0", &["10.55.0.2/24", "fd55::2/64"]),
        );
        lab.add_addr(0, "krsr0", &format!("{VIP4}/24"));
        lab.add_addr(0, "krsr0", &format!("{VIP6}/64"));
        let (router, client) = (lab.node(0).clone(), lab.node(1).clone());
        Pair {
            _lab: lab,
            router,
            client,
        }
    }

    /// One echo request from the client, one second to answer.
    fn ping_once(&self, addr: &str) -> bool {
        self.client
            .try_exec(&["ping", "-n", "-q", "-c1", "-W1", addr])
            .is_some()
    }

    /// Pings succeed (a few tries: the first may wait for ARP/ND).
    fn reachable(&self, addr: &str) -> bool {
        (0..3).any(|_| self.ping_once(addr))
    }
}

/// Real traffic: ping from the client reaches the VIPs before add(), is
/// dropped after it (while the router's own addresses still answer, and
/// neighbour discovery for the IPv6 VIP still works), and reaches them
/// again after remove().
#[test]
fn vip_traffic_dropped_while_listed() {
    if !can_run("vip_traffic_dropped_while_listed", TOOLS) {
        return;
    }
    let pair = Pair::new("ping");
    // The socket belongs to the namespace it was opened in, whichever
    // thread uses it later.
    let mut nft = pair.router.run(|| {
        let mut nft = NftVips::open(DEFAULT_TABLE).unwrap();
        nft.ensure_table().unwrap();
        nft
    });

    for vip in [VIP4, VIP6] {
        assert!(pair.reachable(vip), "{vip} unreachable before add()");
    }

    nft.add(&addrs(&[VIP4, VIP6])).unwrap();
    assert_table(&pair.router, &[VIP4], &[VIP6]);
    // Forget what the client learned, so the IPv6 VIP is resolved again
    // through NS/NA while the drop rules are in place.
    pair.client.ip(&["neigh", "flush", "dev", "krsc0"]);
    for vip in [VIP4, VIP6] {
        for _ in 0..2 {
            assert!(!pair.ping_once(vip), "{vip} answered after add()");
        }
    }
    for own in ["10.55.0.1", "fd55::1"] {
        assert!(pair.reachable(own), "router address {own} blocked too");
    }
    // The client resolved the VIP's MAC: the NS reached the router and
    // its NA (source address: the VIP) got out.
    let neigh = pair
        .client
        .ip(&["-6", "neigh", "show", VIP6, "dev", "krsc0"]);
    assert!(
        neigh.contains("lladdr") && !neigh.contains("FAILED") && !neigh.contains("INCOMPLETE"),
        "IPv6 neighbour discovery for {VIP6} failed: {neigh:?}"
    );

    nft.remove(&addrs(&[VIP4, VIP6])).unwrap();
    assert_table(&pair.router, &[], &[]);
    for vip in [VIP4, VIP6] {
        assert!(pair.reachable(vip), "{vip} unreachable after remove()");
    }

    // Only the listed VIP is dropped.
    nft.add(&addrs(&[VIP4])).unwrap();
    assert!(!pair.ping_once(VIP4));
    assert!(pair.reachable(VIP6), "{VIP6} dropped though not listed");
    nft.delete_table().unwrap();
    assert!(
        pair.reachable(VIP4),
        "{VIP4} unreachable after delete_table()"
    );
    assert_eq!(nft_table(&pair.router), None);
}

/// Drop CAP_NET_ADMIN from the calling thread's effective set
/// (capabilities are per thread; the rest of the test process keeps it).
fn drop_net_admin_on_this_thread() {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data structs, as the
    // kernel expects; pid 0 is the calling thread.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0,
            "capget: {}",
            std::io::Error::last_os_error()
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &header, data.as_ptr()),
            0,
            "capset: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Without CAP_NET_ADMIN the kernel refuses the whole batch (answering its
/// BEGIN message): a typed EPERM at once, not a timeout, and no table.
#[test]
fn refused_batch_is_a_typed_error() {
    if !can_run("refused_batch_is_a_typed_error", TOOLS) {
        return;
    }
    let lab = Lab::new("nft-eperm", 1, 0);
    let err = lab.node(0).run(|| {
        drop_net_admin_on_this_thread();
        let mut nft = NftVips::open(DEFAULT_TABLE).unwrap();
        let start = std::time::Instant::now();
        let err = nft.ensure_table().unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "{err}");
        err
    });
    assert_eq!(err.errno(), Some(libc::EPERM), "{err}");
    assert!(
        err.to_string().starts_with("nftables: set up table"),
        "{err}"
    );
    assert_eq!(nft_table(lab.node(0)), None);
}
