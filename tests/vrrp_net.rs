//! The VRRP I/O layer against the real kernel, in network namespaces.
//!
//! Needs root, ip(8) and tcpdump. Under plain `cargo test` without them each
//! test prints why it skips; with KEEPALIVED_RS_FULL_TEST=1 a missing
//! prerequisite fails the test (see `common::lab::can_run`).
//!
//! Every test makes its own two-node lab (`common::lab::Lab`, nodes joined
//! directly by a veth pair), whose namespaces go on drop, also when an
//! assertion fails. Our code runs inside a namespace on a dedicated thread
//! that called setns(2) (`Netns::run`; the network namespace is per
//! thread). The witnesses are independent of our code: `ip -o addr`,
//! `ip -d link`, `ip route`, `ip neigh`, `/proc/sys`, and frames captured
//! by tcpdump (parsed from its pcap file, and decoded by tcpdump itself).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keepalived_rs::net::vrrp_socket::build_ipv4_advert;
use keepalived_rs::net::{
    garp_frame, select_source, sysctl, unsolicited_na_frame, AhParams, FrameSender, VrrpSocket,
    VrrpSocketConfig,
};
use keepalived_rs::netlink::rtnl::{
    ipv4_broadcast, vmac_address, Added, AddressSpec, Deleted, RouteKind, RouteSpec, Rtnl,
    RtnlEvent, RtnlEvents, Scope, VmacSpec, IFA_F_NODAD, IFA_F_SECONDARY, MACVLAN_MODE_PRIVATE,
};
use keepalived_rs::vrrp::auth::{self, IcvTtl};
use keepalived_rs::vrrp::packet::{IPPROTO_AH, MCAST_GROUP4, MCAST_GROUP6};
use keepalived_rs::vrrp::{Auth, Family, VrrpRepr, VrrpVersion};

mod common;
use common::lab::{can_run, eventually, Capture, Lab, Netns};

/// How long a test waits for the kernel to settle or a capture to fill.
const WAIT: Duration = Duration::from_secs(5);

/// Two namespaces joined by a veth pair `krsa0` (A, lab node 0) / `krsb0`
/// (B, node 1) with 10.99.0.1/24 + fd99::1/64 (A) and 10.99.0.2/24 +
/// fd99::2/64 (B).
struct Pair {
    lab: Lab,
    a: Netns,
    b: Netns,
}

const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

impl Pair {
    fn new(tag: &str) -> Pair {
        let lab = Lab::new(&format!("vnet-{tag}"), 2, 0);
        lab.veth(
            (0, "krsa0", &["10.99.0.1/24", "fd99::1/64"]),
            (1, "krsb0", &["10.99.0.2/24", "fd99::2/64"]),
        );
        let (a, b) = (lab.node(0).clone(), lab.node(1).clone());
        Pair { lab, a, b }
    }

    /// tcpdump on B's krsb0 for the first `count` frames that match
    /// `filter`; returns when it listens.
    fn capture(&mut self, count: usize, filter: &str) -> Capture {
        self.lab.capture_count(1, "krsb0", filter, count)
    }
}

/// The captured frames (whole, Ethernet header included) and tcpdump's own
/// decoding of them (`-n -e -vv`), once tcpdump has its count (at most
/// [`WAIT`]).
fn finish(capture: Capture) -> (Vec<Vec<u8>>, String) {
    let (frames, decoded) = capture.finish(WAIT);
    (frames.into_iter().map(|f| f.data).collect(), decoded)
}

fn mac_of(ns: &Netns, ifname: &str) -> [u8; 6] {
    let text = ns.ip(&["-o", "link", "show", "dev", ifname]);
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("link/ether in ip link output");
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

// ===== addresses =====

#[test]
fn addresses_added_and_removed() {
    if !can_run("addresses_added_and_removed", &[]) {
        return;
    }
    let pair = Pair::new("addr");
    let ns = &pair.a;
    let (ifindex, specs, added, again, dump) = ns.run(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().expect("krsa0").ifindex;
        // A secondary in the primary's subnet (same scope: Linux 6.x refuses
        // a secondary whose scope differs from the primary's).
        let mut v4 = AddressSpec::vip(ifindex, "10.99.0.100".parse().unwrap(), 24);
        v4.label = Some("krsa0:vip".into());
        v4.broadcast = Some(Ipv4Addr::new(10, 99, 0, 255));
        // Scope link, in a subnet of its own, broadcast computed (`brd +`).
        let mut link_scoped = AddressSpec::vip(ifindex, "10.98.0.100".parse().unwrap(), 24);
        link_scoped.scope = Scope::Link;
        link_scoped.broadcast = ipv4_broadcast(Ipv4Addr::new(10, 98, 0, 100), 24);
        // IPv6: NODAD (set by `vip`) and deprecated (preferred_lft 0).
        let mut v6 = AddressSpec::vip(ifindex, "fd99::100".parse().unwrap(), 64);
        v6.preferred_lft = Some(0);
        let specs = vec![v4, link_scoped, v6];
        let added: Vec<Added> = specs.iter().map(|s| rtnl.add_address(s).unwrap()).collect();
        let again: Vec<Added> = specs.iter().map(|s| rtnl.add_address(s).unwrap()).collect();
        let dump = rtnl.addresses(Some(ifindex)).unwrap();
        (ifindex, specs, added, again, dump)
    });
    assert_eq!(added, [Added::Added; 3]);
    assert_eq!(again, [Added::AlreadyPresent; 3]);

    // ip(8) sees them with label, scope, broadcast and flags.
    let text = ns.ip(&["-o", "addr", "show", "dev", "krsa0"]);
    let expect: [(&str, &[&str]); 3] = [
        (
            "inet 10.99.0.100/24",
            &["brd 10.99.0.255", "scope global", "secondary", "krsa0:vip"],
        ),
        ("inet 10.98.0.100/24", &["brd 10.98.0.255", "scope link"]),
        (
            "inet6 fd99::100/64",
            &["scope global", "nodad", "deprecated"],
        ),
    ];
    for (address, wants) in expect {
        let line = text
            .lines()
            .find(|l| l.contains(address))
            .unwrap_or_else(|| panic!("no {address} in {text}"));
        for want in wants {
            assert!(line.contains(want), "{want:?} not in {line}");
        }
    }

    // Our dump reads back what ip(8) shows.
    let find = |addr: IpAddr| dump.iter().find(|a| a.addr == addr).expect("in dump");
    let vip4 = find(specs[0].addr);
    assert_eq!(vip4.label.as_deref(), Some("krsa0:vip"));
    assert_eq!(vip4.scope, Scope::Universe);
    assert_eq!(vip4.broadcast, Some(Ipv4Addr::new(10, 99, 0, 255)));
    assert_ne!(vip4.flags & IFA_F_SECONDARY, 0);
    assert!(!vip4.is_primary());
    let scoped = find(specs[1].addr);
    assert_eq!(scoped.scope, Scope::Link);
    assert_eq!(scoped.label.as_deref(), Some("krsa0"));
    let vip6 = find(specs[2].addr);
    assert_ne!(vip6.flags & IFA_F_NODAD, 0);
    assert_eq!(vip6.prefix_len, 64);
    assert!(dump.iter().all(|a| a.ifindex == ifindex));
    assert!(find(IpAddr::V4(ADDR_A)).is_primary());

    let (first, second) = ns.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let first: Vec<Deleted> = specs.iter().map(|s| rtnl.del_address(s).unwrap()).collect();
        let second: Vec<Deleted> = specs.iter().map(|s| rtnl.del_address(s).unwrap()).collect();
        (first, second)
    });
    assert_eq!(first, [Deleted::Deleted; 3]);
    assert_eq!(second, [Deleted::NotPresent; 3]);
    let text = ns.ip(&["-o", "addr", "show", "dev", "krsa0"]);
    for gone in ["10.99.0.100", "10.98.0.100", "fd99::100"] {
        assert!(!text.contains(gone), "{gone} still in {text}");
    }
    assert!(
        text.contains("inet 10.99.0.1/24"),
        "primary untouched: {text}"
    );
}

// ===== routes =====

#[test]
fn routes_added_and_removed() {
    if !can_run("routes_added_and_removed", &[]) {
        return;
    }
    let pair = Pair::new("route");
    let ns = &pair.a;
    let outcome = ns.run(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let base = RouteSpec {
            kind: RouteKind::Unicast,
            dst: "10.50.0.0".parse().unwrap(),
            prefix_len: 16,
            via: Some("10.99.0.254".parse().unwrap()),
            ifindex: Some(ifindex),
            src: Some("10.99.0.1".parse().unwrap()),
            metric: Some(77),
            table: Some(100),
            scope: None,
            onlink: false,
        };
        let routes = vec![
            base.clone(),
            RouteSpec {
                dst: "10.51.0.0".parse().unwrap(),
                via: None,
                src: None,
                metric: None,
                table: None,
                ..base.clone()
            },
            RouteSpec {
                kind: RouteKind::Blackhole,
                dst: "10.52.0.0".parse().unwrap(),
                via: None,
                ifindex: None,
                src: None,
                metric: None,
                table: None,
                ..base.clone()
            },
            RouteSpec {
                kind: RouteKind::Unreachable,
                dst: "10.53.0.0".parse().unwrap(),
                via: None,
                ifindex: None,
                src: None,
                metric: None,
                table: Some(1000),
                ..base.clone()
            },
            RouteSpec {
                kind: RouteKind::Blackhole,
                dst: "fd00:53::".parse().unwrap(),
                prefix_len: 48,
                via: None,
                ifindex: None,
                src: None,
                metric: None,
                table: None,
                ..base.clone()
            },
            RouteSpec {
                dst: "fd00:54::".parse().unwrap(),
                prefix_len: 48,
                via: Some("fd99::fe".parse().unwrap()),
                src: None,
                metric: Some(5),
                table: None,
                ..base.clone()
            },
        ];
        let added: Vec<Added> = routes.iter().map(|r| rtnl.add_route(r).unwrap()).collect();
        let again: Vec<Added> = routes.iter().map(|r| rtnl.add_route(r).unwrap()).collect();
        (routes, added, again)
    });
    let (routes, added, again) = outcome;
    assert!(added.iter().all(|a| *a == Added::Added), "{added:?}");
    assert!(
        again.iter().all(|a| *a == Added::AlreadyPresent),
        "{again:?}"
    );

    let expect = [
        (
            vec!["route", "show", "table", "100"],
            "10.50.0.0/16 via 10.99.0.254 dev krsa0 proto keepalived src 10.99.0.1 metric 77",
        ),
        (
            vec!["route", "show"],
            "10.51.0.0/16 dev krsa0 proto keepalived scope link",
        ),
        (
            vec!["route", "show"],
            "blackhole 10.52.0.0/16 proto keepalived",
        ),
        (
            vec!["route", "show", "table", "1000"],
            "unreachable 10.53.0.0/16 proto keepalived",
        ),
        (
            vec!["-6", "route", "show"],
            "blackhole fd00:53::/48 dev lo proto keepalived",
        ),
        (
            vec!["-6", "route", "show"],
            "fd00:54::/48 via fd99::fe dev krsa0 proto keepalived metric 5",
        ),
    ];
    for (args, line) in &expect {
        let text = ns.ip(args);
        assert!(
            text.lines().any(|l| l.trim_end().starts_with(line)),
            "{line:?} not in `ip {}`:\n{text}",
            args.join(" ")
        );
    }

    let deleted = ns.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let first: Vec<Deleted> = routes.iter().map(|r| rtnl.del_route(r).unwrap()).collect();
        let second: Vec<Deleted> = routes.iter().map(|r| rtnl.del_route(r).unwrap()).collect();
        (first, second)
    });
    assert!(
        deleted.0.iter().all(|d| *d == Deleted::Deleted),
        "{deleted:?}"
    );
    assert!(
        deleted.1.iter().all(|d| *d == Deleted::NotPresent),
        "{deleted:?}"
    );
    for (args, line) in &expect {
        let text = ns.ip(args);
        assert!(
            !text.lines().any(|l| l.trim_end().starts_with(line)),
            "{line:?} still in:\n{text}"
        );
    }
}

// ===== VMAC =====

#[test]
fn vmac_macvlan_created_adopted_and_deleted() {
    if !can_run("vmac_macvlan_created_adopted_and_deleted", &[]) {
        return;
    }
    let pair = Pair::new("vmac");
    let ns = &pair.a;
    // A link that is in the way: same name as a VMAC, but not a macvlan.
    ns.ip(&["link", "add", "vrrp.60", "type", "bridge"]);
    let (v4, v6, adopted, conflict, parent) = ns.run(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let parent = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let spec4 = VmacSpec {
            name: "vrrp.51".into(),
            parent_ifindex: parent,
            mac: vmac_address(false, 51),
        };
        let spec6 = VmacSpec {
            name: "vrrp.52".into(),
            parent_ifindex: parent,
            mac: vmac_address(true, 52),
        };
        let v4 = rtnl.create_vmac(&spec4).unwrap();
        let v6 = rtnl.create_vmac(&spec6).unwrap();
        let adopted = rtnl.create_vmac(&spec4).unwrap();
        let conflict = rtnl.create_vmac(&VmacSpec {
            name: "vrrp.60".into(),
            ..spec4.clone()
        });
        (v4, v6, adopted, conflict.map_err(|e| e.to_string()), parent)
    });
    assert_eq!(v4.kind.as_deref(), Some("macvlan"));
    assert_eq!(v4.macvlan_mode, Some(MACVLAN_MODE_PRIVATE));
    assert_eq!(v4.parent_ifindex, Some(parent));
    assert_eq!(v4.mac, Some([0, 0, 0x5e, 0, 1, 51]));
    assert!(v4.is_admin_up());
    assert_eq!(adopted.ifindex, v4.ifindex, "the existing VMAC is reused");
    let err = conflict.expect_err("a bridge named vrrp.60 must not be taken");
    assert!(err.contains("not a macvlan"), "{err}");
    assert!(
        ns.try_ip(&["link", "show", "vrrp.60"]).is_some(),
        "bridge kept"
    );

    for (name, mac) in [
        ("vrrp.51", "00:00:5e:00:01:33"),
        ("vrrp.52", "00:00:5e:00:02:34"),
    ] {
        let text = ns.ip(&["-d", "link", "show", name]);
        for want in [
            "macvlan mode private",
            &format!("link/ether {mac}"),
            &format!("{name}@krsa0"),
            "addrgenmode none",
            ",UP",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
    }
    // addrgenmode none: the kernel gave the VMAC no link-local address.
    let text = ns.ip(&["-6", "-o", "addr", "show", "dev", "vrrp.52"]);
    assert!(!text.contains("fe80"), "{text}");
    // The parent's link-local goes on the IPv6 VMAC, as keepalived puts it.
    let v6_ifindex = v6.ifindex;
    let link_local = ns.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let mut found = None;
        eventually("a link-local address on krsa0", WAIT, || {
            let addrs = rtnl.addresses(Some(parent)).unwrap();
            found = select_source(None, Family::V6, &addrs, &[]);
            found.is_some()
        });
        let Some(IpAddr::V6(link_local)) = found else {
            unreachable!()
        };
        let spec = AddressSpec::vmac_link_local(v6_ifindex, link_local);
        assert_eq!(rtnl.add_address(&spec).unwrap(), Added::Added);
        link_local
    });
    let text = ns.ip(&["-6", "-o", "addr", "show", "dev", "vrrp.52"]);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("inet6 {link_local}/64")))
        .unwrap_or_else(|| panic!("no {link_local} on vrrp.52: {text}"));
    for want in ["scope link", "nodad", "deprecated"] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }

    // The sysctls keepalived sets for a VMAC, read back through /proc.
    let restore = ns.run(|| {
        let parent = sysctl::apply("krsa0", &sysctl::VMAC_PARENT_SETTINGS).unwrap();
        let vmac = sysctl::apply("vrrp.51", &sysctl::VMAC_SETTINGS).unwrap();
        (parent, vmac)
    });
    let read = |ifname: &str, key: &str| {
        ns.exec(&["cat", &format!("/proc/sys/net/ipv4/conf/{ifname}/{key}")])
            .trim()
            .to_owned()
    };
    assert_eq!(read("krsa0", "arp_ignore"), "1");
    assert_eq!(read("krsa0", "arp_filter"), "1");
    assert_eq!(read("vrrp.51", "accept_local"), "1");
    assert_eq!(restore.0[0], ("arp_ignore".to_string(), "0".to_string()));

    let (first, second) = ns.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let first = (
            rtnl.delete_link(v4.ifindex).unwrap(),
            rtnl.delete_link(v6.ifindex).unwrap(),
        );
        (first, rtnl.delete_link(v4.ifindex).unwrap())
    });
    assert_eq!(first, (Deleted::Deleted, Deleted::Deleted));
    assert_eq!(second, Deleted::NotPresent);
    assert!(ns.try_ip(&["link", "show", "vrrp.51"]).is_none());
    assert!(ns.try_ip(&["link", "show", "vrrp.52"]).is_none());
}

// ===== link and address events =====

/// Wait for events through mio until `want` matches one (5 s at most).
fn wait_event(
    poll: &mut mio::Poll,
    events: &mut RtnlEvents,
    seen: &mut Vec<RtnlEvent>,
    want: impl Fn(&RtnlEvent) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut mio_events = mio::Events::with_capacity(8);
    loop {
        if seen.iter().any(&want) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        poll.poll(&mut mio_events, Some(deadline - now)).unwrap();
        // Edge-triggered: drain until the socket says WouldBlock.
        for _ in 0..100 {
            if events.read_events(seen).unwrap() {
                break;
            }
        }
    }
}

#[test]
fn link_and_address_events() {
    if !can_run("link_and_address_events", &[]) {
        return;
    }
    let pair = Pair::new("event");
    // The watcher reports after each step, and the next change is made only
    // then: a down/up pair faster than linkwatch would show no transition.
    let (step_tx, step_rx) = mpsc::channel::<bool>();
    let watcher = pair.a.spawn(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let mut events = RtnlEvents::open().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(&mut events, mio::Token(7), mio::Interest::READABLE)
            .unwrap();
        let mut seen = Vec::new();
        // Start from a settled "up" (linkwatch may still be bringing it up).
        eventually("krsa0 up and running", WAIT, || {
            rtnl.link_by_index(ifindex).unwrap().unwrap().is_up()
        });
        events.seed_links(&rtnl.links().unwrap());
        step_tx.send(true).unwrap();
        // 1: the peer end goes down in the other namespace: carrier lost here.
        let down = wait_event(&mut poll, &mut events, &mut seen, |e| {
            matches!(e, RtnlEvent::LinkDown { ifindex: i, name } if *i == ifindex && name == "krsa0")
        });
        step_tx.send(down).unwrap();
        // 2: the peer comes back.
        let up = wait_event(&mut poll, &mut events, &mut seen, |e| {
            matches!(e, RtnlEvent::LinkUp { ifindex: i, .. } if *i == ifindex)
        });
        step_tx.send(up).unwrap();
        // 3: someone else deletes addresses.
        let removed = wait_event(&mut poll, &mut events, &mut seen, |e| {
            matches!(e, RtnlEvent::AddressRemoved(a) if a.addr == IpAddr::V4(ADDR_A) && a.ifindex == ifindex)
        });
        let removed6 = wait_event(&mut poll, &mut events, &mut seen, |e| {
            matches!(e, RtnlEvent::AddressRemoved(a) if a.addr == "fd99::1".parse::<IpAddr>().unwrap())
        });
        (down, up, removed, removed6, seen)
    });
    let step = || {
        step_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or(false)
    };
    assert!(step(), "watcher not ready");
    pair.lab.set_link(1, "krsb0", false);
    if step() {
        pair.lab.set_link(1, "krsb0", true);
        if step() {
            pair.lab.del_addr(0, "krsa0", "10.99.0.1/24");
            pair.lab.del_addr(0, "krsa0", "fd99::1/64");
        }
    }
    let (down, up, removed, removed6, seen) = watcher.join().unwrap();
    assert!(down, "no LinkDown for krsa0: {seen:?}");
    assert!(up, "no LinkUp for krsa0: {seen:?}");
    assert!(removed, "no AddressRemoved for 10.99.0.1: {seen:?}");
    assert!(removed6, "no AddressRemoved for fd99::1: {seen:?}");
    // Transitions only: one down and one up for krsa0, in that order.
    let transitions: Vec<&RtnlEvent> = seen
        .iter()
        .filter(|e| matches!(e, RtnlEvent::LinkUp { name, .. } | RtnlEvent::LinkDown { name, .. } if name == "krsa0"))
        .collect();
    assert_eq!(transitions.len(), 2, "{transitions:?}");
    assert!(matches!(transitions[0], RtnlEvent::LinkDown { .. }));
}

// ===== VRRP adverts =====

fn repr_v2() -> VrrpRepr {
    VrrpRepr {
        version: VrrpVersion::V2,
        vrid: 51,
        priority: 150,
        max_advert_int: 100,
        addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))],
        auth: Auth::Pass(*b"secret12"),
    }
}

fn repr_v3_ipv6() -> VrrpRepr {
    VrrpRepr {
        version: VrrpVersion::V3,
        vrid: 52,
        priority: 120,
        max_advert_int: 100,
        addresses: vec!["fd99::100".parse().unwrap()],
        auth: Auth::None,
    }
}

/// What the receiving side got: (src, dst, hop limit, bytes, decode ok).
type Got = Vec<(IpAddr, Option<IpAddr>, Option<u8>, Vec<u8>, VrrpRepr)>;

/// Open a socket in `ns` on krsb0, signal readiness, collect `count`
/// datagrams (5 s at most) through mio.
fn receiver(
    ns: &Netns,
    family: Family,
    count: usize,
) -> (mpsc::Receiver<()>, std::thread::JoinHandle<Got>) {
    receiver_with(ns, count, move |ifindex| {
        VrrpSocketConfig::multicast(ifindex, family)
    })
}

/// [`receiver`] with any socket configuration.
fn receiver_with(
    ns: &Netns,
    count: usize,
    config: impl FnOnce(u32) -> VrrpSocketConfig + Send + 'static,
) -> (mpsc::Receiver<()>, std::thread::JoinHandle<Got>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = ns.spawn(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsb0").unwrap().unwrap().ifindex;
        let mut socket = VrrpSocket::open(&config(ifindex)).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(&mut socket, mio::Token(1), mio::Interest::READABLE)
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got: Got = Vec::new();
        let mut mio_events = mio::Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < count && Instant::now() < deadline {
            poll.poll(&mut mio_events, Some(Duration::from_millis(200)))
                .unwrap();
            for _ in 0..100 {
                let Some(d) = socket.recv().unwrap() else {
                    break;
                };
                let repr = d
                    .decode(keepalived_rs::vrrp::TtlRule::Unchecked)
                    .expect("a valid advert")
                    .repr;
                got.push((d.src, d.dst, d.hop_limit, d.bytes.to_vec(), repr));
            }
        }
        got
    });
    (ready_rx, handle)
}

#[test]
fn ipv4_adverts_multicast_and_unicast() {
    if !can_run("ipv4_adverts_multicast_and_unicast", &["tcpdump"]) {
        return;
    }
    let mut pair = Pair::new("adv4");
    let capture = pair.capture(3, "ip proto 112");
    let (ready, handle) = receiver(&pair.b, Family::V4, 3);
    ready.recv_timeout(Duration::from_secs(5)).unwrap();
    pair.a.run(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let addrs = rtnl.addresses(Some(ifindex)).unwrap();
        let src = select_source(None, Family::V4, &addrs, &[]).unwrap();
        assert_eq!(src, IpAddr::V4(ADDR_A));
        let mut socket =
            VrrpSocket::open(&VrrpSocketConfig::multicast(ifindex, Family::V4)).unwrap();
        socket
            .send_advert(src, IpAddr::V4(MCAST_GROUP4), 255, &repr_v2(), None)
            .unwrap();
        socket
            .send_advert(src, IpAddr::V4(ADDR_B), 255, &repr_v2(), None)
            .unwrap();
        // keepalived's unicast_ttl.
        socket
            .send_advert(src, IpAddr::V4(ADDR_B), 64, &repr_v2(), None)
            .unwrap();
    });
    let got = handle.join().unwrap();
    let (frames, _) = finish(capture);

    // What should be on the wire: keepalived's header, IDs 1, 2 and 3.
    let mut buf = [0u8; 256];
    let mut expected = Vec::new();
    let ttls = [255, 255, 64];
    for ((ident, dst), ttl) in [(1, MCAST_GROUP4), (2, ADDR_B), (3, ADDR_B)]
        .into_iter()
        .zip(ttls)
    {
        let len = build_ipv4_advert(&mut buf, ADDR_A, dst, ident, ttl, &repr_v2(), None).unwrap();
        assert!(keepalived_rs::vrrp::Ipv4Packet::new_checked(&buf[..len])
            .unwrap()
            .verify_checksum());
        expected.push(buf[..len].to_vec());
    }

    // tcpdump saw exactly those bytes after the Ethernet header.
    assert_eq!(frames.len(), 3, "captured {frames:?}");
    assert_eq!(
        &frames[0][..6],
        &[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12],
        "multicast MAC"
    );
    for ((frame, want), ttl) in frames.iter().zip(&expected).zip(ttls) {
        assert_eq!(&frame[14..], &want[..]);
        assert_eq!(frame[14 + 8], ttl, "TTL");
        assert_eq!(frame[14 + 1], 0xc0, "TOS");
        assert_eq!(frame[14 + 6] & 0x40, 0, "DF clear");
    }
    // The peer socket received the same bytes, with the right addresses.
    assert_eq!(got.len(), 3, "{got:?}");
    let dsts = [
        IpAddr::V4(MCAST_GROUP4),
        IpAddr::V4(ADDR_B),
        IpAddr::V4(ADDR_B),
    ];
    for (((src, dst, hop, bytes, repr), (want, want_dst)), ttl) in
        got.iter().zip(expected.iter().zip(dsts)).zip(ttls)
    {
        assert_eq!(*src, IpAddr::V4(ADDR_A));
        assert_eq!(*dst, Some(want_dst));
        assert_eq!(*hop, Some(ttl));
        assert_eq!(bytes, want);
        assert_eq!(*repr, repr_v2());
    }
}

#[test]
fn ipv6_adverts_multicast_and_unicast() {
    if !can_run("ipv6_adverts_multicast_and_unicast", &["tcpdump"]) {
        return;
    }
    let mut pair = Pair::new("adv6");
    let link_local_a = pair.a.run(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let mut found = None;
        eventually("a link-local address on krsa0", WAIT, || {
            let addrs = rtnl.addresses(Some(ifindex)).unwrap();
            found = select_source(None, Family::V6, &addrs, &[]);
            found.is_some()
        });
        found.unwrap()
    });
    let capture = pair.capture(3, "ip6 proto 112");
    let (ready, handle) = receiver(&pair.b, Family::V6, 3);
    ready.recv_timeout(Duration::from_secs(5)).unwrap();
    let fd99_2: Ipv6Addr = "fd99::2".parse().unwrap();
    pair.a.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let mut socket =
            VrrpSocket::open(&VrrpSocketConfig::multicast(ifindex, Family::V6)).unwrap();
        // The last one with keepalived's unicast_ttl.
        for (dst, hop) in [
            (IpAddr::V6(MCAST_GROUP6), 255),
            (IpAddr::V6(fd99_2), 255),
            (IpAddr::V6(fd99_2), 64),
        ] {
            socket
                .send_advert(link_local_a, dst, hop, &repr_v3_ipv6(), None)
                .unwrap();
        }
    });
    let got = handle.join().unwrap();
    let (frames, _) = finish(capture);

    let dsts = [
        IpAddr::V6(MCAST_GROUP6),
        IpAddr::V6(fd99_2),
        IpAddr::V6(fd99_2),
    ];
    let hops = [255, 255, 64];
    let expected: Vec<Vec<u8>> = dsts
        .iter()
        .map(|dst| {
            let mut buf = [0u8; 64];
            let len = repr_v3_ipv6().emit(&mut buf, &link_local_a, dst).unwrap();
            buf[..len].to_vec()
        })
        .collect();
    assert_eq!(frames.len(), 3, "captured {frames:?}");
    assert_eq!(
        &frames[0][..6],
        &[0x33, 0x33, 0, 0, 0, 0x12],
        "multicast MAC"
    );
    for (((frame, want), dst), hop) in frames.iter().zip(&expected).zip(dsts).zip(hops) {
        let ip = &frame[14..];
        assert_eq!(ip[0], 0x6c, "version 6, traffic class 0xc0 (high nibble)");
        assert_eq!(ip[1] >> 4, 0x0, "traffic class 0xc0 (low nibble)");
        assert_eq!(ip[6], 112, "next header VRRP");
        assert_eq!(ip[7], hop, "hop limit");
        assert_eq!(
            &ip[8..24],
            &match link_local_a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(_) => unreachable!(),
            }
        );
        let IpAddr::V6(dst6) = dst else {
            unreachable!()
        };
        assert_eq!(&ip[24..40], &dst6.octets());
        // The kernel's checksum (IPV6_CHECKSUM) equals the codec's.
        assert_eq!(&ip[40..], &want[..]);
    }
    assert_eq!(got.len(), 3, "{got:?}");
    for (((src, dst, hop, bytes, repr), (want, want_dst)), want_hop) in
        got.iter().zip(expected.iter().zip(dsts)).zip(hops)
    {
        assert_eq!(*src, link_local_a);
        assert_eq!(*dst, Some(want_dst));
        assert_eq!(*hop, Some(want_hop));
        assert_eq!(bytes, want);
        assert_eq!(*repr, repr_v3_ipv6());
    }
}

/// VRRPv2 with AH authentication, unicast to a peer whose socket (protocol
/// 51) joined no group: the ICV computed over the header we built verifies
/// on the bytes that arrived, and tcpdump decodes AH carrying VRRP.
#[test]
fn ipv4_ah_advert_unicast() {
    if !can_run("ipv4_ah_advert_unicast", &["tcpdump"]) {
        return;
    }
    let mut pair = Pair::new("ah");
    let capture = pair.capture(1, "ip proto 51");
    let (ready, handle) = receiver_with(&pair.b, 1, |ifindex| VrrpSocketConfig {
        ifindex,
        family: Family::V4,
        protocol: IPPROTO_AH,
        multicast_group: None,
    });
    ready.recv_timeout(Duration::from_secs(5)).unwrap();
    let repr = VrrpRepr {
        auth: Auth::Ah,
        ..repr_v2()
    };
    let sent = repr.clone();
    pair.a.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let ifindex = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let mut socket = VrrpSocket::open(&VrrpSocketConfig {
            ifindex,
            family: Family::V4,
            protocol: IPPROTO_AH,
            multicast_group: None,
        })
        .unwrap();
        let ah = AhParams {
            key: b"secret12",
            seq: 7,
            icv_ttl: IcvTtl::Zeroed,
        };
        socket
            .send_advert(
                IpAddr::V4(ADDR_A),
                IpAddr::V4(ADDR_B),
                255,
                &sent,
                Some(&ah),
            )
            .unwrap();
    });
    let got = handle.join().unwrap();
    let (frames, decoded) = finish(capture);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(got.len(), 1, "{got:?}");
    let (src, _, hop, bytes, got_repr) = &got[0];
    assert_eq!(*src, IpAddr::V4(ADDR_A));
    assert_eq!(*hop, Some(255));
    assert_eq!(&frames[0][14..], &bytes[..], "socket and wire agree");
    assert_eq!(*got_repr, repr);
    assert_eq!(auth::verify_ah(bytes, b"secret12", IcvTtl::Zeroed), Ok(7));
    assert!(auth::verify_ah(bytes, b"secret13", IcvTtl::Zeroed).is_err());
    assert!(decoded.contains("spi=0x0a630001,seq=0x7,"), "{decoded}");
    assert!(
        decoded.contains("VRRPv2, Advertisement, vrid 51, prio 150, authtype ah"),
        "{decoded}"
    );
    assert!(decoded.contains("ttl 255"), "{decoded}");
}

/// With `use_vmac`, adverts leave through the VMAC: the peer sees the
/// virtual router MAC as the Ethernet source. The sending socket joins no
/// group (the parent's socket receives), and its source address is the
/// parent's primary address.
#[test]
fn advert_sent_through_vmac() {
    if !can_run("advert_sent_through_vmac", &["tcpdump"]) {
        return;
    }
    let mut pair = Pair::new("vmacadv");
    let capture = pair.capture(1, "ip proto 112");
    let (ready, handle) = receiver(&pair.b, Family::V4, 1);
    ready.recv_timeout(Duration::from_secs(5)).unwrap();
    pair.a.run(|| {
        let mut rtnl = Rtnl::open().unwrap();
        let parent = rtnl.link_by_name("krsa0").unwrap().unwrap().ifindex;
        let vmac = rtnl
            .create_vmac(&VmacSpec {
                name: "vrrp.51".into(),
                parent_ifindex: parent,
                mac: vmac_address(false, 51),
            })
            .unwrap();
        let mut socket = VrrpSocket::open(&VrrpSocketConfig {
            multicast_group: None,
            ..VrrpSocketConfig::multicast(vmac.ifindex, Family::V4)
        })
        .unwrap();
        let src = select_source(
            None,
            Family::V4,
            &rtnl.addresses(Some(parent)).unwrap(),
            &[],
        );
        socket
            .send_advert(
                src.unwrap(),
                IpAddr::V4(MCAST_GROUP4),
                255,
                &repr_v2(),
                None,
            )
            .unwrap();
    });
    let got = handle.join().unwrap();
    let (frames, _) = finish(capture);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(&frames[0][6..12], &[0, 0, 0x5e, 0, 1, 51], "VMAC as source");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, IpAddr::V4(ADDR_A));
    assert_eq!(got[0].4, repr_v2());
}

// ===== GARP and NA =====

#[test]
fn gratuitous_arp_and_unsolicited_na() {
    if !can_run("gratuitous_arp_and_unsolicited_na", &["tcpdump"]) {
        return;
    }
    let mut pair = Pair::new("garp");
    let mac_a = mac_of(&pair.a, "krsa0");
    let bogus = "02:de:ad:be:ef:01";
    // Stale entries with a wrong MAC: the peer's kernel must replace them
    // with A's MAC when it accepts our frames (locktime is 1 s).
    pair.b.ip(&[
        "neigh",
        "add",
        "10.99.0.100",
        "lladdr",
        bogus,
        "dev",
        "krsb0",
        "nud",
        "stale",
    ]);
    pair.b.ip(&[
        "-6",
        "neigh",
        "add",
        "fd99::100",
        "lladdr",
        bogus,
        "dev",
        "krsb0",
        "nud",
        "stale",
    ]);
    std::thread::sleep(Duration::from_millis(1100));
    let mac_filter = mac_a
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let capture = pair.capture(
        2,
        &format!("ether src {mac_filter} and (arp or (icmp6 and ip6[40] == 136))"),
    );
    let vip4 = Ipv4Addr::new(10, 99, 0, 100);
    let vip6: Ipv6Addr = "fd99::100".parse().unwrap();
    pair.a.run(move || {
        let mut rtnl = Rtnl::open().unwrap();
        let link = rtnl.link_by_name("krsa0").unwrap().unwrap();
        let mac = link.mac.expect("Ethernet MAC");
        let sender = FrameSender::open().unwrap();
        sender.send_garp(link.ifindex, mac, vip4).unwrap();
        sender.send_na(link.ifindex, mac, vip6, false).unwrap();
    });
    let (frames, decoded) = finish(capture);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0], garp_frame(mac_a, vip4).to_vec());
    assert_eq!(frames[1], unsolicited_na_frame(mac_a, vip6, false).to_vec());
    // tcpdump's own reading of the frames.
    assert!(
        decoded.contains("Request who-has 10.99.0.100 (ff:ff:ff:ff:ff:ff) tell 10.99.0.100"),
        "{decoded}"
    );
    assert!(decoded.contains("neighbor advertisement"), "{decoded}");
    assert!(decoded.contains("tgt is fd99::100"), "{decoded}");
    assert!(decoded.contains("Flags [override]"), "{decoded}");
    assert!(decoded.contains("hlim 255"), "{decoded}");
    assert!(!decoded.contains("bad"), "{decoded}");
    // The peer's kernel took both: its neighbour entries now point at A.
    let mac_text = mac_filter.clone();
    eventually(
        "the peer's neighbour entries to move to A's MAC",
        WAIT,
        || {
            let v4 = pair.b.ip(&["neigh", "show", "10.99.0.100", "dev", "krsb0"]);
            let v6 = pair
                .b
                .ip(&["-6", "neigh", "show", "fd99::100", "dev", "krsb0"]);
            v4.contains(&mac_text) && v6.contains(&mac_text)
        },
    );
}
