//! `-d`: the effective configuration in keepalived.conf syntax, includes
//! resolved and defaults filled in. Re-reading the output gives an equal
//! `Config` (tested), so it doubles as a canonical form.

use super::model::*;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::Duration;

struct Out {
    text: String,
    depth: usize,
}

impl Out {
    fn line(&mut self, content: impl AsRef<str>) {
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
        self.text.push_str(content.as_ref());
        self.text.push('\n');
    }

    fn open(&mut self, header: impl AsRef<str>) {
        self.line(format!("{} {{", header.as_ref()));
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.line("}");
    }

    fn kv(&mut self, key: &str, value: impl std::fmt::Display) {
        self.line(format!("{key} {value}"));
    }

    fn flag(&mut self, key: &str, on: bool) {
        if on {
            self.line(key);
        }
    }

    fn script(&mut self, key: &str, s: Option<&Script>) {
        if let Some(s) = s {
            let mut line = format!("{key} {}", quote(&s.command.value));
            if let Some(r) = &s.run_as {
                let _ = write!(line, " {}", word(&r.user));
                if let Some(g) = &r.group {
                    let _ = write!(line, " {}", word(g));
                }
            }
            self.line(line);
        }
    }
}

/// A string that must survive the lexer as one word.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace() || matches!(c, '#' | '!' | '{' | '}' | '"' | '\\' | '$' | '@')
        });
    if plain {
        s.to_string()
    } else {
        quote(s)
    }
}

/// Double-quoted; backslash escapes are kept by the lexer, so the raw text
/// goes back in as it came out.
fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

fn secs(d: Duration) -> String {
    let micros = d.as_micros();
    if micros % 1_000_000 == 0 {
        format!("{}", micros / 1_000_000)
    } else {
        let mut s = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
        while s.ends_with('0') {
            s.pop();
        }
        s
    }
}

fn bool_word(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn scope(s: AddressScope) -> &'static str {
    match s {
        AddressScope::Global => "global",
        AddressScope::Site => "site",
        AddressScope::Link => "link",
        AddressScope::Host => "host",
        AddressScope::Nowhere => "nowhere",
    }
}

fn prefix(addr: IpAddr, len: u8) -> String {
    format!("{addr}/{len}")
}

fn forward(m: &ForwardMethod) -> String {
    match m {
        ForwardMethod::Nat | ForwardMethod::Dr => m.name().into(),
        ForwardMethod::Tun { tunnel, checksum } => {
            let mut s = String::from(m.name());
            match tunnel {
                TunnelType::Ipip => {}
                TunnelType::Gre => s.push_str(" type gre"),
                TunnelType::Gue { port } => {
                    let _ = write!(s, " type gue port {port}");
                }
            }
            match checksum {
                None => {}
                Some(TunnelChecksum::NoCsum) => s.push_str(" nocsum"),
                Some(TunnelChecksum::Csum) => s.push_str(" csum"),
                Some(TunnelChecksum::RemCsum) => s.push_str(" remcsum"),
            }
            s
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn dump(config: &Config) -> String {
    let mut o = Out {
        text: String::new(),
        depth: 0,
    };
    global(&mut o, &config.global);
    for s in &config.vrrp_scripts {
        o.open(format!("vrrp_script {}", word(&s.name.value)));
        o.script("script", Some(&s.script));
        o.kv("interval", secs(s.interval.value));
        o.kv("timeout", secs(s.timeout.value));
        o.kv(
            "weight",
            format!(
                "{}{}",
                s.weight.value,
                if s.weight_reverse.value {
                    " reverse"
                } else {
                    ""
                }
            ),
        );
        o.kv("rise", s.rise.value);
        o.kv("fall", s.fall.value);
        o.flag("init_fail", s.init_fail.value);
        o.close();
    }
    for f in &config.track_files {
        o.open(format!("track_file {}", word(&f.name.value)));
        o.kv("file", word(&f.file.value));
        o.kv(
            "weight",
            format!(
                "{}{}",
                f.weight.value,
                if f.weight_reverse.value {
                    " reverse"
                } else {
                    ""
                }
            ),
        );
        if let Some(init) = &f.init_file {
            o.kv(
                "init_file",
                format!(
                    "{}{}",
                    init.value.0,
                    if init.value.1 { " overwrite" } else { "" }
                ),
            );
        }
        o.close();
    }
    for g in &config.sync_groups {
        o.open(format!("vrrp_sync_group {}", word(&g.name.value)));
        o.open("group");
        for m in &g.members {
            o.line(word(&m.value));
        }
        o.close();
        track_refs(&mut o, "track_interface", &g.track_interface);
        track_refs(&mut o, "track_script", &g.track_script);
        track_refs(&mut o, "track_file", &g.track_file);
        notify(&mut o, &g.notify);
        o.kv("smtp_alert", bool_word(g.smtp_alert.value));
        o.close();
    }
    for i in &config.instances {
        instance(&mut o, i);
    }
    for g in &config.vs_groups {
        o.open(format!("virtual_server_group {}", word(&g.name.value)));
        for e in &g.entries {
            match e {
                VsGroupEntry::Address {
                    addr,
                    range_end,
                    prefix_len,
                    port,
                } => {
                    let mut s = addr.value.to_string();
                    if let Some(end) = range_end {
                        let _ = write!(s, "-{end}");
                    }
                    if let Some(len) = prefix_len {
                        let _ = write!(s, "/{len}");
                    }
                    o.line(format!("{s} {port}"));
                }
                VsGroupEntry::Fwmark { mark, family } => o.line(format!(
                    "fwmark {}{}",
                    mark.value,
                    match family {
                        Some(AddressFamily::Inet) => " inet",
                        Some(AddressFamily::Inet6) => " inet6",
                        None => "",
                    }
                )),
            }
        }
        o.close();
    }
    for vs in &config.virtual_servers {
        virtual_server(&mut o, vs);
    }
    if let Some(ssl) = &config.ssl {
        o.open("SSL");
        for (key, value) in [
            ("password", &ssl.password),
            ("ca", &ssl.ca),
            ("certificate", &ssl.certificate),
            ("key", &ssl.key),
        ] {
            if let Some(v) = value {
                o.kv(key, word(&v.value));
            }
        }
        o.close();
    }
    o.text
}

fn global(o: &mut Out, g: &GlobalDefs) {
    o.open("global_defs");
    if !g.notification_email.is_empty() {
        o.open("notification_email");
        for e in &g.notification_email {
            o.line(word(&e.value));
        }
        o.close();
    }
    if let Some(f) = &g.notification_email_from {
        o.kv("notification_email_from", word(&f.value));
    }
    if let Some(s) = &g.smtp_server {
        o.kv(
            "smtp_server",
            format!("{} {}", word(&s.value.host), s.value.port),
        );
    }
    if let Some(h) = &g.smtp_helo_name {
        o.kv("smtp_helo_name", word(&h.value));
    }
    o.kv("smtp_connect_timeout", secs(g.smtp_connect_timeout.value));
    o.kv("smtp_alert", bool_word(g.smtp_alert.value));
    if let Some(v) = &g.smtp_alert_vrrp {
        o.kv("smtp_alert_vrrp", bool_word(v.value));
    }
    if let Some(v) = &g.smtp_alert_checker {
        o.kv("smtp_alert_checker", bool_word(v.value));
    }
    o.flag("no_email_faults", g.no_email_faults.value);
    o.kv(
        "checker_log_all_failures",
        bool_word(g.checker_log_all_failures.value),
    );
    o.kv("router_id", word(&g.router_id.value));
    o.kv("nftables", word(&g.nftables_table.value));
    o.kv("default_interface", word(&g.default_interface.value));
    o.kv("vrrp_mcast_group4", g.vrrp_mcast_group4.value);
    o.kv("vrrp_mcast_group6", g.vrrp_mcast_group6.value);
    o.kv("vrrp_version", g.vrrp_version.value);
    o.flag("vrrp_strict", g.vrrp_strict.value);
    o.kv(
        "vrrp_garp_master_delay",
        secs(g.vrrp_garp_master_delay.value),
    );
    o.kv("vrrp_garp_master_repeat", g.vrrp_garp_master_repeat.value);
    o.kv(
        "vrrp_garp_master_refresh",
        secs(g.vrrp_garp_master_refresh.value),
    );
    o.kv(
        "vrrp_garp_master_refresh_repeat",
        g.vrrp_garp_master_refresh_repeat.value,
    );
    o.kv(
        "vrrp_garp_lower_prio_delay",
        secs(g.vrrp_garp_lower_prio_delay.value),
    );
    o.kv(
        "vrrp_garp_lower_prio_repeat",
        g.vrrp_garp_lower_prio_repeat.value,
    );
    o.kv("vrrp_down_timer_adverts", g.vrrp_down_timer_adverts.value);
    o.kv("vrrp_garp_interval", secs(g.vrrp_garp_interval.value));
    o.kv("vrrp_gna_interval", secs(g.vrrp_gna_interval.value));
    o.kv("vrrp_min_garp", bool_word(g.vrrp_min_garp.value));
    o.kv(
        "vrrp_lower_prio_no_advert",
        bool_word(g.vrrp_lower_prio_no_advert.value),
    );
    o.kv(
        "vrrp_higher_prio_send_advert",
        bool_word(g.vrrp_higher_prio_send_advert.value),
    );
    o.flag("vrrp_check_unicast_src", g.vrrp_check_unicast_src.value);
    o.kv(
        "vrrp_skip_check_adv_addr",
        bool_word(g.vrrp_skip_check_adv_addr.value),
    );
    o.kv("vrrp_startup_delay", secs(g.vrrp_startup_delay.value));
    o.flag("enable_script_security", g.enable_script_security.value);
    if let Some(u) = &g.script_user {
        let mut s = word(&u.value.user);
        if let Some(group) = &u.value.group {
            s.push(' ');
            s.push_str(&word(group));
        }
        o.kv("script_user", s);
    }
    o.script("startup_script", g.startup_script.as_ref());
    o.kv(
        "startup_script_timeout",
        secs(g.startup_script_timeout.value),
    );
    o.script("shutdown_script", g.shutdown_script.as_ref());
    o.kv(
        "shutdown_script_timeout",
        secs(g.shutdown_script_timeout.value),
    );
    o.flag("dynamic_interfaces", g.dynamic_interfaces.value);
    if let Some(s) = &g.lvs_sync_daemon {
        let s = &s.value;
        let mut line = word(&s.interface);
        if let Some(i) = &s.instance {
            let _ = write!(line, " inst {}", word(i));
        }
        if let Some(id) = s.sync_id {
            let _ = write!(line, " id {id}");
        }
        if let Some(m) = s.maxlen {
            let _ = write!(line, " maxlen {m}");
        }
        let _ = write!(line, " port {} ttl {} group {}", s.port, s.ttl, s.group);
        o.kv("lvs_sync_daemon", line);
    }
    let t = &g.lvs_timeouts.value;
    let mut timeouts = String::new();
    for (name, v) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
        if let Some(v) = v {
            let _ = write!(timeouts, " {name} {v}");
        }
    }
    if !timeouts.is_empty() {
        o.line(format!("lvs_timeouts{timeouts}"));
    }
    o.flag("lvs_flush", g.lvs_flush.value);
    o.flag("lvs_flush_on_stop", g.lvs_flush_on_stop.value);
    o.close();
}

fn track_refs(o: &mut Out, key: &str, refs: &[TrackRef]) {
    if refs.is_empty() {
        return;
    }
    o.open(key);
    for r in refs {
        let mut line = word(&r.name.value);
        if let Some(w) = &r.weight {
            let _ = write!(line, " weight {}", w.value);
        }
        match r.reverse.as_ref().map(|r| r.value) {
            Some(true) => line.push_str(" reverse"),
            Some(false) => line.push_str(" noreverse"),
            None => {}
        }
        o.line(line);
    }
    o.close();
}

fn notify(o: &mut Out, n: &Notify) {
    o.script("notify_master", n.master.as_ref());
    o.script("notify_backup", n.backup.as_ref());
    o.script("notify_fault", n.fault.as_ref());
    o.script("notify_stop", n.stop.as_ref());
    o.script("notify_deleted", n.deleted.as_ref());
    o.script("notify_master_rx_lower_pri", n.master_rx_lower_pri.as_ref());
    o.script("notify", n.generic.as_ref());
}

fn address_line(a: &VirtualAddress) -> String {
    let mut s = prefix(a.addr.value, a.prefix_len);
    match &a.broadcast {
        None => {}
        Some(Broadcast::Address(b)) => {
            let _ = write!(s, " brd {b}");
        }
        Some(Broadcast::Computed) => s.push_str(" brd +"),
        Some(Broadcast::None) => s.push_str(" brd -"),
    }
    if let Some(dev) = &a.dev {
        let _ = write!(s, " dev {}", word(&dev.value));
    }
    if let Some(sc) = a.scope {
        let _ = write!(s, " scope {}", scope(sc));
    }
    if let Some(l) = &a.label {
        let _ = write!(s, " label {}", word(&l.value));
    }
    if let Some(p) = a.peer {
        let _ = write!(s, " peer {p}");
    }
    if let Some(lft) = a.preferred_lft {
        let _ = write!(s, " preferred_lft {lft}");
    }
    for (on, name) in [
        (a.use_vmac, "use_vmac"),
        (a.no_track, "no_track"),
        (a.home, "home"),
        (a.nodad, "-nodad"),
        (a.mngtmpaddr, "mngtmpaddr"),
        (a.noprefixroute, "noprefixroute"),
        (a.autojoin, "autojoin"),
    ] {
        if on {
            s.push(' ');
            s.push_str(name);
        }
    }
    s
}

fn route_line(r: &VirtualRoute) -> String {
    let mut s = String::new();
    match r.route_type {
        RouteType::Unicast => {}
        RouteType::Blackhole => s.push_str("blackhole "),
        RouteType::Unreachable => s.push_str("unreachable "),
        RouteType::Prohibit => s.push_str("prohibit "),
    }
    if let Some(src) = r.src {
        let _ = write!(s, "src {src} ");
    }
    s.push_str(&prefix(r.dest.value, r.prefix_len));
    if let Some(v) = r.via {
        let _ = write!(s, " via {v}");
    }
    if let Some(d) = &r.dev {
        let _ = write!(s, " dev {}", word(d));
    }
    if let Some(sc) = r.scope {
        let _ = write!(s, " scope {}", scope(sc));
    }
    if let Some(t) = r.table {
        let _ = write!(s, " table {t}");
    }
    if let Some(m) = r.metric {
        let _ = write!(s, " metric {m}");
    }
    if r.onlink {
        s.push_str(" onlink");
    }
    if r.no_track {
        s.push_str(" no_track");
    }
    s
}

fn instance(o: &mut Out, i: &VrrpInstance) {
    o.open(format!("vrrp_instance {}", word(&i.name.value)));
    o.kv(
        "state",
        match i.state.value {
            InitialState::Master => "MASTER",
            InitialState::Backup => "BACKUP",
        },
    );
    if let Some(ifname) = &i.interface {
        o.kv("interface", word(&ifname.value));
    }
    o.kv("virtual_router_id", i.virtual_router_id.value);
    o.kv("priority", i.priority.value);
    o.kv("advert_int", secs(i.advert_int.value));
    o.kv("version", i.version.value);
    if let Some(a) = &i.authentication {
        o.open("authentication");
        o.kv(
            "auth_type",
            match a.auth_type.value {
                AuthType::Pass => "PASS",
                AuthType::Ah => "AH",
            },
        );
        o.kv("auth_pass", word(&a.auth_pass.value));
        o.close();
    }
    for (key, list) in [
        ("virtual_ipaddress", &i.virtual_ipaddress),
        ("virtual_ipaddress_excluded", &i.virtual_ipaddress_excluded),
    ] {
        if !list.is_empty() {
            o.open(key);
            for a in list {
                o.line(address_line(a));
            }
            o.close();
        }
    }
    if !i.virtual_routes.is_empty() {
        o.open("virtual_routes");
        for r in &i.virtual_routes {
            o.line(route_line(r));
        }
        o.close();
    }
    if let Some(ip) = &i.unicast_src_ip {
        o.kv("unicast_src_ip", ip.value);
    }
    if !i.unicast_peer.is_empty() {
        o.open("unicast_peer");
        for p in &i.unicast_peer {
            let mut line = p.addr.value.to_string();
            if let Some(t) = p.min_ttl {
                let _ = write!(line, " min_ttl {t}");
            }
            if let Some(t) = p.max_ttl {
                let _ = write!(line, " max_ttl {t}");
            }
            o.line(line);
        }
        o.close();
    }
    o.kv("unicast_ttl", i.unicast_ttl.value);
    if let Some(ip) = &i.mcast_src_ip {
        o.kv("mcast_src_ip", ip.value);
    }
    if let Some(ip) = &i.mcast_dst_ip {
        o.kv("mcast_dst_ip", ip.value);
    }
    track_refs(o, "track_interface", &i.track_interface);
    track_refs(o, "track_script", &i.track_script);
    track_refs(o, "track_file", &i.track_file);
    o.flag("dont_track_primary", i.dont_track_primary.value);
    o.flag("track_src_ip", i.track_src_ip.value);
    notify(o, &i.notify);
    o.kv("smtp_alert", bool_word(i.smtp_alert.value));
    o.line(if i.nopreempt.value {
        "nopreempt"
    } else {
        "preempt"
    });
    o.kv("preempt_delay", secs(i.preempt_delay.value));
    o.kv("garp_master_delay", secs(i.garp_master_delay.value));
    o.kv("garp_master_repeat", i.garp_master_repeat.value);
    o.kv("garp_master_refresh", secs(i.garp_master_refresh.value));
    o.kv(
        "garp_master_refresh_repeat",
        i.garp_master_refresh_repeat.value,
    );
    o.kv("garp_lower_prio_delay", secs(i.garp_lower_prio_delay.value));
    o.kv("garp_lower_prio_repeat", i.garp_lower_prio_repeat.value);
    o.kv("down_timer_adverts", i.down_timer_adverts.value);
    if let Some(v) = &i.use_vmac {
        let mut line = String::from("use_vmac");
        if let Some(n) = &v.value.name {
            let _ = write!(line, " {}", word(n));
        }
        if let Some(m) = v.value.mac {
            let _ = write!(
                line,
                " {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
        }
        o.line(line);
    }
    o.flag("vmac_xmit_base", i.vmac_xmit_base.value);
    o.line(if i.accept.value {
        "accept"
    } else {
        "no_accept"
    });
    o.kv("strict_mode", bool_word(i.strict_mode.value));
    o.kv(
        "lower_prio_no_advert",
        bool_word(i.lower_prio_no_advert.value),
    );
    o.kv(
        "higher_prio_send_advert",
        bool_word(i.higher_prio_send_advert.value),
    );
    o.kv(
        "skip_check_adv_addr",
        bool_word(i.skip_check_adv_addr.value),
    );
    o.flag("check_unicast_src", i.check_unicast_src.value);
    o.flag("promote_secondaries", i.promote_secondaries.value);
    o.close();
}

fn timing(o: &mut Out, t: &InheritedTiming) {
    if let Some(v) = &t.delay_loop {
        o.kv("delay_loop", secs(v.value));
    }
    if let Some(v) = &t.connect_timeout {
        o.kv("connect_timeout", secs(v.value));
    }
    if let Some(v) = &t.retry {
        o.kv("retry", v.value);
    }
    if let Some(v) = &t.delay_before_retry {
        o.kv("delay_before_retry", secs(v.value));
    }
    if let Some(v) = &t.warmup {
        o.kv("warmup", secs(v.value));
    }
}

fn virtual_server(o: &mut Out, vs: &VirtualServer) {
    let header = match &vs.key {
        VsKey::Address { addr, port } => format!("virtual_server {} {}", addr.value, port.value),
        VsKey::Fwmark(m) => format!("virtual_server fwmark {}", m.value),
        VsKey::Group(g) => format!("virtual_server group {}", word(&g.value)),
    };
    o.open(header);
    match vs.ip_family {
        Some(AddressFamily::Inet) => o.kv("ip_family", "inet"),
        Some(AddressFamily::Inet6) => o.kv("ip_family", "inet6"),
        None => {}
    }
    o.kv("delay_loop", secs(vs.delay_loop.value));
    o.kv("lb_algo", vs.lb_algo.value.name());
    o.kv("lb_kind", forward(&vs.lb_kind.value));
    if let Some(p) = &vs.persistence_timeout {
        o.kv("persistence_timeout", p.value);
    }
    if let Some(g) = &vs.persistence_granularity {
        o.kv("persistence_granularity", g.value);
    }
    if let Some(e) = &vs.persistence_engine {
        o.kv("persistence_engine", word(&e.value));
    }
    o.kv("protocol", vs.protocol.value.name());
    let f = &vs.flags;
    o.flag("ops", f.ops);
    o.flag("sh-port", f.sh_port);
    o.flag("sh-fallback", f.sh_fallback);
    o.flag("mh-port", f.mh_port);
    o.flag("mh-fallback", f.mh_fallback);
    o.flag("flag-1", f.flag_1);
    o.flag("flag-2", f.flag_2);
    o.flag("flag-3", f.flag_3);
    o.flag("hashed", f.hashed);
    o.flag("ha_suspend", vs.ha_suspend.value);
    if let Some(v) = &vs.virtualhost {
        o.kv("virtualhost", word(&v.value));
    }
    o.kv("alpha", bool_word(vs.alpha.value));
    o.kv("omega", bool_word(vs.omega.value));
    o.kv("quorum", vs.quorum.value);
    o.kv("hysteresis", vs.hysteresis.value);
    o.script("quorum_up", vs.quorum_up.as_ref());
    o.script("quorum_down", vs.quorum_down.as_ref());
    if let Some(s) = &vs.sorry_server {
        match s.port {
            Some(p) => o.kv("sorry_server", format!("{} {p}", s.addr.value)),
            None => o.kv("sorry_server", s.addr.value),
        }
    }
    o.kv(
        "sorry_server_inhibit",
        bool_word(vs.sorry_server_inhibit.value),
    );
    if let Some(m) = &vs.sorry_server_lvs_method {
        o.kv("sorry_server_lvs_method", forward(&m.value));
    }
    o.kv("inhibit_on_failure", bool_word(vs.inhibit_on_failure.value));
    o.kv("smtp_alert", bool_word(vs.smtp_alert.value));
    timing(o, &vs.timing);
    for rs in &vs.real_servers {
        real_server(o, rs);
    }
    o.close();
}

fn real_server(o: &mut Out, rs: &RealServer) {
    match &rs.port {
        Some(p) => o.open(format!("real_server {} {}", rs.addr.value, p.value)),
        None => o.open(format!("real_server {}", rs.addr.value)),
    }
    o.kv("weight", rs.weight.value);
    if let Some(m) = &rs.lvs_method {
        o.kv("lvs_method", forward(&m.value));
    }
    if let Some(t) = &rs.uthreshold {
        o.kv("uthreshold", t.value);
    }
    if let Some(t) = &rs.lthreshold {
        o.kv("lthreshold", t.value);
    }
    o.script("notify_up", rs.notify_up.as_deref());
    o.script("notify_down", rs.notify_down.as_deref());
    o.kv("inhibit_on_failure", bool_word(rs.inhibit_on_failure.value));
    o.kv("alpha", bool_word(rs.alpha.value));
    if let Some(v) = &rs.virtualhost {
        o.kv("virtualhost", word(&v.value));
    }
    o.kv("smtp_alert", bool_word(rs.smtp_alert.value));
    timing(o, &rs.timing);
    for c in &rs.checkers {
        checker(o, c);
    }
    o.close();
}

fn checker(o: &mut Out, c: &Checker) {
    o.open(c.kind.keyword());
    let t = &c.target;
    if let Some(v) = &t.connect_ip {
        o.kv("connect_ip", v.value);
    }
    if let Some(v) = &t.connect_port {
        o.kv("connect_port", v.value);
    }
    if let Some(v) = &t.bindto {
        o.kv("bindto", v.value);
    }
    if let Some(v) = &t.bind_if {
        o.kv("bind_if", word(&v.value));
    }
    if let Some(v) = &t.bind_port {
        o.kv("bind_port", v.value);
    }
    if let Some(v) = &t.fwmark {
        o.kv("fwmark", v.value);
    }
    o.kv("delay_loop", secs(c.timing.delay_loop.value));
    o.kv("connect_timeout", secs(c.timing.connect_timeout.value));
    o.kv("retry", c.timing.retry.value);
    o.kv(
        "delay_before_retry",
        secs(c.timing.delay_before_retry.value),
    );
    o.kv("warmup", secs(c.timing.warmup.value));
    if let Some(a) = &c.alpha {
        o.kv("alpha", bool_word(a.value));
    }
    o.kv("log_all_failures", bool_word(c.log_all_failures.value));
    match &c.kind {
        CheckerKind::Tcp | CheckerKind::Ping => {}
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
            for u in &h.urls {
                o.open("url");
                o.kv("path", word(&u.path.value));
                if let Some(dg) = &u.digest {
                    o.kv("digest", hex(&dg.value));
                }
                if !u.status_code.is_empty() {
                    let codes: Vec<String> = u
                        .status_code
                        .iter()
                        .map(|r| {
                            if r.value.first == r.value.last {
                                r.value.first.to_string()
                            } else {
                                format!("{}-{}", r.value.first, r.value.last)
                            }
                        })
                        .collect();
                    o.kv("status_code", codes.join(" "));
                }
                if let Some(v) = &u.virtualhost {
                    o.kv("virtualhost", word(&v.value));
                }
                o.close();
            }
            if let Some(v) = &h.virtualhost {
                o.kv("virtualhost", word(&v.value));
            }
            o.kv(
                "http_protocol",
                match h.http_protocol.value {
                    HttpProtocol::V1_0 => "1.0",
                    HttpProtocol::V1_0C => "1.0C",
                    HttpProtocol::V1_1 => "1.1",
                },
            );
            o.kv("fast_recovery", bool_word(h.fast_recovery.value));
            if matches!(c.kind, CheckerKind::Ssl(_)) {
                o.kv("enable_sni", bool_word(h.enable_sni.value));
                if let Some(s) = &h.sni_name {
                    o.kv("sni_name", word(&s.value));
                }
                o.kv("tls_compliant", bool_word(h.tls_compliant.value));
            }
        }
        CheckerKind::Misc(m) => {
            o.script("misc_path", Some(&m.path));
            o.kv("misc_timeout", secs(m.timeout.value));
            o.flag("misc_dynamic", m.dynamic.value);
        }
        CheckerKind::Smtp(s) => {
            if let Some(h) = &s.helo_name {
                o.kv("helo_name", word(&h.value));
            }
        }
        CheckerKind::Dns(q) => {
            o.kv(
                "type",
                match q.query_type.value {
                    DnsType::A => "A",
                    DnsType::Ns => "NS",
                    DnsType::Cname => "CNAME",
                    DnsType::Soa => "SOA",
                    DnsType::Mx => "MX",
                    DnsType::Txt => "TXT",
                    DnsType::Aaaa => "AAAA",
                },
            );
            o.kv("name", word(&q.name.value));
        }
        CheckerKind::Udp(u) => {
            if let Some(p) = &u.payload {
                o.kv("payload", hex(&p.value));
            }
            if let Some(r) = &u.require_reply {
                match &r.value {
                    Some(bytes) => o.kv("require_reply", hex(bytes)),
                    None => o.line("require_reply"),
                }
            }
            o.kv("min_reply_length", u.min_reply_length.value);
            o.kv("max_reply_length", u.max_reply_length.value);
        }
        CheckerKind::File(f) => {
            o.kv("track_file", word(&f.track_file.value));
            if let Some(w) = &f.weight {
                o.kv(
                    "weight",
                    format!(
                        "{}{}",
                        w.value,
                        if f.weight_reverse.value {
                            " reverse"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
    }
    o.close();
}
