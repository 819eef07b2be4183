//! Deliberately broken configurations give exactly the expected diagnostics
//! (file:line:col: severity: message). Goldens live next to each .conf as
//! .expected; `UPDATE_GOLDENS=1 cargo test --test config_errors` rewrites them.

use keepalived_rs::config::{load_file, load_str, LoadOptions};
use std::path::Path;

fn options() -> LoadOptions {
    LoadOptions {
        config_id: "test".into(),
        hostname: "testhost".into(),
    }
}

#[test]
fn broken_configs_match_their_goldens() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let dir = Path::new("tests/data/broken");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for conf in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
    {
        let loaded = load_file(&conf, &options()).unwrap();
        let actual: String = loaded
            .diagnostics
            .items
            .iter()
            .map(|d| format!("{d}\n"))
            .collect();
        let golden = conf.with_extension("expected");
        if std::env::var_os("UPDATE_GOLDENS").is_some() {
            std::fs::write(&golden, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_GOLDENS=1", golden.display()));
        assert_eq!(actual, expected, "{}", conf.display());
        assert!(
            loaded.has_errors() || expected.contains("warning"),
            "{} proves nothing",
            conf.display()
        );
        checked += 1;
    }
    assert!(checked >= 5);
}

fn messages(text: &str) -> Vec<String> {
    load_str("t.conf", text, &options())
        .diagnostics
        .items
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let m = messages(
        "vrrp_instance A {\n interface e\n virtual_router_id 300\n priority x\n advert_int y\n}\n",
    );
    assert_eq!(
        m,
        [
            "t.conf:1:1: warning: vrrp_instance 'A': no virtual_ipaddress",
            "t.conf:3:20: error: 'virtual_router_id': expected an integer 1..255, found '300'",
            "t.conf:4:11: error: 'priority': expected an integer 1..255, found 'x'",
            "t.conf:5:13: error: 'advert_int': expected a time in seconds (0..255), found 'y'",
        ]
    );
}

#[test]
fn defaults_warn_like_keepalived() {
    let m = messages("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n}\n");
    assert_eq!(
        m,
        [
            "t.conf:1:1: warning: virtual_server 10.0.0.1:80: no delay_loop; using keepalived's default of 60 seconds",
            "t.conf:1:1: warning: virtual_server 10.0.0.1:80: no lb_algo; using keepalived's default scheduler 'wlc'",
            "t.conf:1:1: warning: virtual_server 10.0.0.1:80: no lb_kind; using keepalived's default 'NAT'",
            "t.conf:1:1: warning: virtual_server 10.0.0.1:80: no protocol; keepalived defaults to UDP (add 'protocol TCP' for a TCP service)",
        ]
    );
    let loaded = load_str("t.conf", "virtual_server 10.0.0.1 80 {\n}\n", &options());
    let vs = &loaded.config.virtual_servers[0];
    use keepalived_rs::config::model::*;
    assert_eq!(vs.protocol.value, Protocol::Udp);
    assert_eq!(vs.lb_algo.value, Scheduler::Wlc);
    assert_eq!(vs.lb_kind.value, ForwardMethod::Nat);
    assert_eq!(vs.delay_loop.value, std::time::Duration::from_secs(60));
}

#[test]
fn conditional_lines_and_definitions_follow_config_id() {
    let text = "$VIP=10.1.1.1\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n @node1 priority 150\n @^node1 priority 50\n virtual_ipaddress {\n  ${VIP}/24 dev eth0\n }\n}\n";
    for (id, prio) in [("node1", 150), ("node2", 50)] {
        let o = LoadOptions {
            config_id: id.into(),
            hostname: "h".into(),
        };
        let l = load_str("t.conf", text, &o);
        assert!(!l.has_errors());
        let i = &l.config.instances[0];
        assert_eq!(i.priority.value, prio);
        assert_eq!(i.virtual_ipaddress[0].addr.value.to_string(), "10.1.1.1");
        assert_eq!(i.virtual_ipaddress[0].prefix_len, 24);
    }
}

#[test]
fn sequences_and_lists_build_virtual_ipaddress_blocks() {
    let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  ~SEQ(SUBNET, 0, 3) 10.0.${SUBNET}.1/24 dev eth0\n  ~LST(HOST, 7, 9) 10.1.0.$HOST\n }\n virtual_ipaddress_excluded {\n  ~SEQx(X, 0x9e, 0xa1) fe80::$X\n }\n}\n";
    let loaded = load_str("t.conf", text, &options());
    assert!(
        loaded.diagnostics.items.is_empty(),
        "{:?}",
        loaded.diagnostics.items
    );
    let vi = &loaded.config.instances[0];
    let shown = |list: &[keepalived_rs::config::model::VirtualAddress]| -> Vec<String> {
        list.iter()
            .map(|a| format!("{}/{}", a.addr.value, a.prefix_len))
            .collect()
    };
    assert_eq!(
        shown(&vi.virtual_ipaddress),
        [
            "10.0.0.1/24",
            "10.0.1.1/24",
            "10.0.2.1/24",
            "10.0.3.1/24",
            "10.1.0.7/32",
            "10.1.0.9/32"
        ]
    );
    assert!(vi.virtual_ipaddress[..4]
        .iter()
        .all(|a| a.dev.as_ref().is_some_and(|d| d.value == "eth0")));
    assert_eq!(
        shown(&vi.virtual_ipaddress_excluded),
        [
            "fe80::9e/128",
            "fe80::9f/128",
            "fe80::a0/128",
            "fe80::a1/128"
        ]
    );
    // A generated line that is wrong is reported at the ~SEQ line.
    let m = messages("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  ~SEQ(N, 1, -1) 10.0.0.$N\n }\n}\n");
    assert_eq!(
        m,
        ["t.conf:5:18: error: 'virtual_ipaddress': expected an IP address or ADDRESS/PREFIX, found '10.0.0.-1'"]
    );
}

#[test]
fn ssl_block_is_read_and_checked() {
    let text = "SSL {\n password secret\n ca /etc/ssl/ca.pem\n certificate /etc/ssl/c.pem\n key /etc/ssl/k.pem\n}\n";
    let loaded = load_str("t.conf", text, &options());
    let ssl = loaded.config.ssl.as_ref().expect("SSL block");
    assert_eq!(
        ssl.ca.as_ref().map(|c| c.value.as_str()),
        Some("/etc/ssl/ca.pem")
    );
    assert_eq!(
        ssl.certificate.as_ref().map(|c| c.value.as_str()),
        Some("/etc/ssl/c.pem")
    );
    assert_eq!(
        ssl.key.as_ref().map(|c| c.value.as_str()),
        Some("/etc/ssl/k.pem")
    );
    assert_eq!(
        messages(text),
        ["t.conf:2:11: warning: 'password' in SSL: encrypted keys are not supported, give 'key' an unencrypted PEM key; ignored"]
    );
    // The dump reads back to the same block.
    let again = load_str(
        "d.conf",
        &keepalived_rs::config::dump::dump(&loaded.config),
        &options(),
    );
    assert_eq!(again.config.ssl, loaded.config.ssl);

    // Half a client certificate is dropped, with the reason.
    assert_eq!(
        messages("SSL {\n certificate /c.pem\n}\n"),
        ["t.conf:2:14: warning: 'certificate' without 'key' in SSL: no client certificate is presented"]
    );
    assert_eq!(
        messages("SSL {\n key /k.pem\n bogus 1\n}\n"),
        [
            "t.conf:2:6: warning: 'key' without 'certificate' in SSL: no client certificate is presented",
            "t.conf:3:2: warning: unknown keyword 'bogus' in SSL; ignored",
        ]
    );
    let half = load_str("t.conf", "SSL {\n key /k.pem\n}\n", &options());
    assert_eq!(half.config.ssl.as_ref().and_then(|s| s.key.as_ref()), None);
    assert_eq!(
        messages("SSL {\n ca\n}\n"),
        ["t.conf:2:2: error: 'ca': expected a CA file path"]
    );
}

/// The real server ports keepalived 2.2.7 uses, read from its own
/// `ipvsadm -Sn` table and warnings in the VM (tests/ipvs_vm.rs
/// `tables_match_keepalived` checks the same against the kernel): DR and
/// TUN cannot change ports, so a real server of an address service takes
/// the service's port and one of a fwmark service loses its port; NAT keeps
/// the configured port; a real server without a port takes the service's.
/// The checkers probe the corrected port.
#[test]
fn real_server_ports_follow_forwarding_like_keepalived() {
    let text = "\
virtual_server 10.1.0.1 80 {
 lb_kind DR
 protocol TCP
 sorry_server 10.1.0.20 8080
 real_server 10.1.0.11 443 {
  TCP_CHECK {
  }
 }
 real_server 10.1.0.12 {
 }
 real_server 10.1.0.13 8080 {
  lvs_method NAT
 }
}
virtual_server 10.1.0.1 81 {
 lb_kind NAT
 protocol TCP
 real_server 10.1.0.11 443 {
  lvs_method TUN
 }
 real_server 10.1.0.12 8081 {
 }
}
virtual_server fwmark 5 {
 lb_kind DR
 sorry_server 10.1.0.20 8080
 real_server 10.1.0.11 443 {
 }
 real_server 10.1.0.12 0 {
 }
}
virtual_server fwmark 6 {
 lb_kind NAT
 real_server 10.1.0.11 8080 {
 }
}
";
    let loaded = load_str("t.conf", text, &options());
    let warnings: Vec<String> = messages(text)
        .into_iter()
        .filter(|m| !m.contains("delay_loop") && !m.contains("lb_algo"))
        .collect();
    assert_eq!(
        warnings,
        [
            "t.conf:4:15: warning: virtual_server 10.1.0.1:80: sorry_server 10.1.0.20 port 8080: DR forwarding cannot change ports; port set to 80, as keepalived does",
            "t.conf:5:24: warning: virtual_server 10.1.0.1:80: real_server 10.1.0.11 port 443 differs from the service's with DR forwarding, which cannot change ports; using 80, as keepalived does",
            "t.conf:18:24: warning: virtual_server 10.1.0.1:81: real_server 10.1.0.11 port 443 differs from the service's with TUN forwarding, which cannot change ports; using 81, as keepalived does",
            "t.conf:26:15: warning: virtual_server fwmark 5: sorry_server 10.1.0.20 port 8080: DR forwarding cannot change ports; port cleared, as keepalived does",
            "t.conf:27:24: warning: virtual_server fwmark 5: real_server 10.1.0.11 port 443: DR forwarding of a fwmark service cannot change ports; port cleared, as keepalived does",
        ]
    );
    let ports = |vs: usize| -> Vec<Option<u16>> {
        loaded.config.virtual_servers[vs]
            .real_servers
            .iter()
            .map(|rs| rs.port.as_ref().map(|p| p.value))
            .collect()
    };
    assert_eq!(ports(0), [Some(80), Some(80), Some(8080)]);
    assert_eq!(ports(1), [Some(81), Some(8081)]);
    assert_eq!(ports(2), [None, Some(0)]);
    assert_eq!(
        ports(3),
        [Some(8080)],
        "NAT of a fwmark service keeps its port"
    );
    let sorry = |vs: usize| {
        loaded.config.virtual_servers[vs]
            .sorry_server
            .as_ref()
            .and_then(|s| s.port)
    };
    assert_eq!((sorry(0), sorry(2)), (Some(80), None));
    // The dump reads back to the same ports, without new warnings.
    let dumped = keepalived_rs::config::dump::dump(&loaded.config);
    let again = load_str("d.conf", &dumped, &options());
    assert_eq!(again.config.virtual_servers, loaded.config.virtual_servers);
    assert!(
        !again
            .diagnostics
            .items
            .iter()
            .any(|d| d.to_string().contains("port")),
        "{:#?}",
        again.diagnostics.items
    );
}

/// keepalived 2.2.7 runs each `host` block of an SMTP_CHECK as a checker
/// of its own, with none of the outer block's connection settings, and the
/// outer block as one more only when it sets a connection option (seen in
/// its "Activating healthchecker" lines and probes in the VM; tests/ipvs_vm.rs
/// `tables_match_keepalived` compares both daemons' lines). It warns that
/// the block is deprecated.
#[test]
fn smtp_host_blocks_become_checkers() {
    let text = "\
virtual_server 10.1.0.1 25 {
 delay_loop 5
 lb_algo rr
 lb_kind NAT
 protocol TCP
 real_server 10.1.0.14 25 {
  SMTP_CHECK {
   helo_name probe.example
   connect_timeout 3
   host {
    connect_ip 10.1.0.31
    connect_port 2525
    bindto 10.1.0.2
    connect_timeout 1
   }
   host {
    connect_ip 10.1.0.32
    retry 7
    helo_name nope
   }
  }
 }
}
";
    assert_eq!(
        messages(text),
        [
            "t.conf:10:4: warning: SMTP_CHECK 'host' blocks are deprecated: each is checked as an SMTP_CHECK of its own (the outer block too when it sets a connection option), as keepalived does; write them as SMTP_CHECK blocks",
            "t.conf:16:4: warning: SMTP_CHECK 'host' blocks are deprecated: each is checked as an SMTP_CHECK of its own (the outer block too when it sets a connection option), as keepalived does; write them as SMTP_CHECK blocks",
            "t.conf:19:5: warning: unknown keyword 'helo_name' in SMTP_CHECK host; ignored",
        ]
    );
    let loaded = load_str("t.conf", text, &options());
    let checkers = &loaded.config.virtual_servers[0].real_servers[0].checkers;
    // connect_ip connect_port bindto connect_timeout retry
    let seen: Vec<String> = checkers
        .iter()
        .map(|c| {
            let t = &c.target;
            format!(
                "{:?} {:?} {:?} {}s retry {}",
                t.connect_ip.as_ref().map(|a| a.value.to_string()),
                t.connect_port.as_ref().map(|p| p.value),
                t.bindto.as_ref().map(|a| a.value.to_string()),
                c.timing.connect_timeout.value.as_secs(),
                c.timing.retry.value,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            "None None None 3s retry 1",
            "Some(\"10.1.0.31\") Some(2525) Some(\"10.1.0.2\") 1s retry 1",
            "Some(\"10.1.0.32\") None None 5s retry 7",
        ]
    );
    for c in checkers {
        match &c.kind {
            keepalived_rs::config::model::CheckerKind::Smtp(s) => assert_eq!(
                s.helo_name.as_ref().map(|h| h.value.as_str()),
                Some("probe.example")
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn unimplemented_keepalived_keywords_say_so_instead_of_unknown() {
    let text = "global_defs {\n nftables_ipvs_priority -1\n nftables_ipvs_start_fwmark 1000\n}\ntrack_group GROUP1 {\n group {\n  VI_1\n }\n}\n";
    assert_eq!(
        messages(text),
        [
            "t.conf:2:2: warning: 'nftables_ipvs_priority' is a keepalived keyword that keepalived-rs does not implement; ignored",
            "t.conf:3:2: warning: 'nftables_ipvs_start_fwmark' is a keepalived keyword that keepalived-rs does not implement; ignored",
            "t.conf:5:1: warning: 'track_group' is a keepalived keyword that keepalived-rs does not implement; ignored",
        ]
    );
}

/// As keepalived 2.2.7: an unknown word after `NAME weight N` is warned
/// about and ignored; one right after NAME makes keepalived drop the line.
#[test]
fn unknown_track_options_warn_as_keepalived_does() {
    let text = "vrrp_script chk1 {\n script /bin/true\n}\nvrrp_script chk2 {\n script /bin/true\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n track_script {\n  chk1 weight 10 no_reverse\n  chk2 foo\n }\n track_interface {\n  eth1 weight -5 bar reverse\n }\n}\nvrrp_sync_group G {\n group {\n  VI_1\n }\n track_file {\n  tf1 weight 3 baz\n }\n}\n";
    let loaded = load_str("t.conf", text, &options());
    let m: Vec<String> = loaded
        .diagnostics
        .items
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        m,
        [
            "t.conf:14:18: warning: 'track_script': unknown option 'no_reverse' after 'chk1 weight 10'; did you mean 'noreverse'?; ignored",
            "t.conf:15:8: warning: 'track_script': unknown option 'foo' after 'chk2' (expected 'weight N'); keepalived ignores the whole line, so 'chk2' is not tracked",
            "t.conf:18:18: warning: 'track_interface': unknown option 'bar' after 'eth1 weight -5'; ignored",
            "t.conf:21:17: warning: vrrp_sync_group 'G' has only one member",
            "t.conf:26:16: warning: 'track_file': unknown option 'baz' after 'tf1 weight 3'; ignored",
        ]
    );
    assert!(!loaded.has_errors());
    let vi = &loaded.config.instances[0];
    let scripts: Vec<(&str, Option<i32>, Option<bool>)> = vi
        .track_script
        .iter()
        .map(|r| {
            (
                r.name.value.as_str(),
                r.weight.as_ref().map(|w| w.value),
                r.reverse.as_ref().map(|r| r.value),
            )
        })
        .collect();
    assert_eq!(scripts, [("chk1", Some(10), None)]);
    let interface = &vi.track_interface[0];
    assert_eq!(interface.weight.as_ref().map(|w| w.value), Some(-5));
    assert_eq!(interface.reverse.as_ref().map(|r| r.value), Some(true));
    assert_eq!(loaded.config.sync_groups[0].track_file.len(), 1);

    // A bad weight stays an error: keepalived rejects the number too.
    let bad = "vrrp_instance VI_1 {\n track_script {\n  chk1 weight x\n }\n}\n";
    assert!(messages(bad).contains(
        &"t.conf:3:15: error: 'track_script weight': expected an integer -254..254, found 'x'"
            .to_string()
    ));
}

/// keepalived.conf(5): "The MAC address can be specified with only 5 octets,
/// in which case the virtual_router_id will be used as the last octet."
#[test]
fn use_vmac_takes_a_five_octet_mac_completed_by_the_vrid() {
    let instance = |use_vmac: &str| {
        format!("vrrp_instance VI_1 {{\n interface eth0\n use_vmac {use_vmac}\n virtual_router_id 52\n virtual_ipaddress {{\n  10.0.0.1\n }}\n}}\n")
    };
    let vmac = |use_vmac: &str| {
        let loaded = load_str("t.conf", &instance(use_vmac), &options());
        assert!(
            loaded.diagnostics.items.is_empty(),
            "{:?}",
            loaded.diagnostics.items
        );
        let v = loaded.config.instances[0]
            .use_vmac
            .clone()
            .expect("use_vmac");
        // `-d` writes the completed MAC, which reads back the same.
        let dumped = keepalived_rs::config::dump::dump(&loaded.config);
        let again = load_str("d.conf", &dumped, &options());
        assert_eq!(
            again.config.instances[0]
                .use_vmac
                .as_ref()
                .map(|v| &v.value),
            Some(&v.value)
        );
        (v.value.name, v.value.mac)
    };
    // The VRID (52 = 0x34) comes after use_vmac: the MAC is completed at the end of the block.
    assert_eq!(
        vmac("vrrp52 02:00:00:00:01"),
        (Some("vrrp52".into()), Some([2, 0, 0, 0, 1, 0x34]))
    );
    assert_eq!(vmac("2:0:0:0:1"), (None, Some([2, 0, 0, 0, 1, 0x34])));
    assert_eq!(
        vmac("02:00:00:00:01:02 vrrp7"),
        (Some("vrrp7".into()), Some([2, 0, 0, 0, 1, 2]))
    );
    assert_eq!(
        vmac("0A:bc:00:00:01"),
        (None, Some([0x0a, 0xbc, 0, 0, 1, 0x34]))
    );
    assert_eq!(vmac(""), (None, None));

    let errors = |use_vmac: &str| -> Vec<String> {
        let loaded = load_str("t.conf", &instance(use_vmac), &options());
        loaded.diagnostics.errors().map(|d| d.to_string()).collect()
    };
    assert_eq!(
        errors("vrrp52 02:00:00:00"),
        ["t.conf:3:18: error: 'use_vmac': expected a MAC address of 5 or 6 hexadecimal octets (aa:bb:cc:dd:ee[:ff]), found '02:00:00:00'"]
    );
    assert_eq!(
        errors("02:00:00:00:zz"),
        ["t.conf:3:11: error: 'use_vmac': expected a MAC address of 5 or 6 hexadecimal octets (aa:bb:cc:dd:ee[:ff]), found '02:00:00:00:zz'"]
    );
    assert_eq!(
        errors("02:00:00:00:01:02:03"),
        ["t.conf:3:11: error: 'use_vmac': expected a MAC address of 5 or 6 hexadecimal octets (aa:bb:cc:dd:ee[:ff]), found '02:00:00:00:01:02:03'"]
    );
    assert_eq!(
        errors("01:00:5e:00:01"),
        ["t.conf:3:11: error: 'use_vmac': '01:00:5e:00:01' is a multicast MAC address; a VMAC needs a unicast one"]
    );
    assert_eq!(
        errors("vrrp1 vrrp2"),
        ["t.conf:3:17: error: 'use_vmac': a second interface name 'vrrp2' (expected [NAME] [MAC])"]
    );
    assert_eq!(
        errors("02:00:00:00:01 02:00:00:00:02"),
        ["t.conf:3:26: error: 'use_vmac': a second MAC address '02:00:00:00:02' (expected [NAME] [MAC])"]
    );
    assert_eq!(
        errors("averyveryverylongname"),
        ["t.conf:3:11: error: 'use_vmac': expected an interface name (< 16 chars) or a MAC address, found 'averyveryverylongname'"]
    );
}

#[test]
fn group_ranges_are_checked_and_bounded() {
    let group = |entry: &str| messages(&format!("virtual_server_group G {{\n {entry} 80\n}}\n"));
    assert_eq!(
        group("192.168.200.250-192.168.201.10"),
        Vec::<String>::new()
    );
    assert_eq!(
        group("192.168.201.10-192.168.200.250"),
        ["t.conf:2:2: error: virtual_server_group: address range '192.168.201.10-192.168.200.250' ends before it starts"]
    );
    assert_eq!(
        group("10.0.0.9-3"),
        ["t.conf:2:2: error: virtual_server_group: address range '10.0.0.9-3' ends before it starts"]
    );
    assert_eq!(
        group("192.168.1.1-2001:db8::5"),
        ["t.conf:2:2: error: virtual_server_group: address range '192.168.1.1-2001:db8::5' mixes IPv4 and IPv6"]
    );
    assert_eq!(
        group("192.168.1.1-192.168.1.300"),
        ["t.conf:2:2: error: virtual_server_group: bad address range '192.168.1.1-192.168.1.300' (expected FIRST-LAST, LAST a full address or the last octet 0..255, IPv6 hextet 0..ffff)"]
    );
    // One IPVS service per address: a huge range loads (keepalived runs it)
    // but is cut short, with a warning.
    assert_eq!(
        group("10.0.0.0-10.255.255.255"),
        ["t.conf:2:2: warning: virtual_server_group: '10.0.0.0-10.255.255.255' is 16777216 addresses, more than the 4096 one entry may expand to (one IPVS service each); only the first 4096 are programmed"]
    );
    assert_eq!(
        group("2001:db8::1-2001:db8:1::5"),
        ["t.conf:2:2: warning: virtual_server_group: '2001:db8::1-2001:db8:1::5' is 1208925819614629174706181 addresses, more than the 4096 one entry may expand to (one IPVS service each); only the first 4096 are programmed"]
    );
    assert_eq!(
        group("2001:db8::1-ffff"),
        ["t.conf:2:2: warning: virtual_server_group: '2001:db8::1-ffff' is 65535 addresses, more than the 4096 one entry may expand to (one IPVS service each); only the first 4096 are programmed"]
    );
    assert_eq!(
        group("10.1.0.0/16"),
        ["t.conf:2:2: warning: virtual_server_group: '10.1.0.0/16' is 65536 addresses, more than the 4096 one entry may expand to (one IPVS service each); only the first 4096 are programmed"]
    );
    assert_eq!(group("10.1.0.0/20"), Vec::<String>::new());
}

/// keepalived 2.2.7's table (tests/ipvs_vm.rs `tables_match_keepalived`):
/// a virtual_server_group's services get no persistence netmask, other
/// virtual servers do; a fwmark service without ip_family is IPv4 there.
#[test]
fn persistence_granularity_and_fwmark_family_like_keepalived() {
    let text = "\
virtual_server_group G {
 10.0.0.1 80
}
virtual_server group G {
 delay_loop 5
 lb_algo rr
 lb_kind NAT
 protocol TCP
 persistence_timeout 60
 persistence_granularity 255.255.255.0
}
virtual_server 10.0.0.2 80 {
 delay_loop 5
 lb_algo rr
 lb_kind NAT
 protocol TCP
 persistence_timeout
 persistence_granularity 255.255.0.0
}
virtual_server fwmark 3 {
 delay_loop 5
 lb_algo rr
 lb_kind NAT
 real_server fd00::1 80 {
 }
}
";
    assert_eq!(
        messages(text),
        [
            "t.conf:10:26: warning: virtual_server group G: keepalived does not apply persistence_granularity to a group's services; ignored",
            "t.conf:24:14: warning: virtual_server fwmark 3: no ip_family, so keepalived 2.2.7 takes the service as IPv4 and skips IPv6 real servers (and then the service); it is IPv6 here, from the real servers: add 'ip_family inet6'",
        ]
    );
    let loaded = load_str("t.conf", text, &options());
    let granularity: Vec<Option<String>> = loaded
        .config
        .virtual_servers
        .iter()
        .map(|vs| {
            vs.persistence_granularity
                .as_ref()
                .map(|g| g.value.to_string())
        })
        .collect();
    assert_eq!(granularity, [None, Some("255.255.0.0".to_string()), None]);
}
