//! Keyword tables: for each block, the keywords keepalived accepts and how
//! each sets the typed model. Unknown keywords warn with a suggestion.

use super::diag::{suggest, Diagnostics, Span, Spanned};
use super::model::*;
use super::parser::{Node, Word};
use super::values::*;
use std::net::IpAddr;
use std::time::Duration;

pub type Handler<T> = fn(&mut T, &Node, &mut Diagnostics);

pub struct Kw<T: 'static> {
    pub name: &'static str,
    pub handler: Handler<T>,
}

const fn kw<T>(name: &'static str, handler: Handler<T>) -> Kw<T> {
    Kw { name, handler }
}

/// keepalived keywords this implementation accepts but does not act on
/// (SNMP, D-Bus, firewall backends, process scheduling, ...).
const NOT_IMPLEMENTED: &[&str] = &[
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_keepalived",
    "enable_traps",
    "snmp_socket",
    "enable_dbus",
    "dbus_service_name",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables_priority",
    "nftables_counters",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_rt_priority",
    "checker_rt_priority",
    "bfd_rt_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "vrrp_rlimit_rttime",
    "checker_rlimit_rttime",
    "bfd_rlimit_rttime",
    "max_auto_priority",
    "min_auto_priority_delay",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "umask",
    "random_seed",
    "log_unknown_vrids",
    "vmac_prefix",
    "vmac_addr_prefix",
    "rs_init_notifies",
    "fifo_write_vrrp_states_on_reload",
    "iproute_usr_dir",
    "iproute_etc_dir",
    "disable_local_igmp",
    "v3_checksum_as_v2",
    "vrrp_notify_priority_changes",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "config_save_dir",
    "tmp_config_directory",
    "include_check",
    "state_dump_file",
    "stats_dump_file",
    "json_dump_file",
    "data_use_instance",
    "json_version",
    "vrrp_garp_extra_if",
    "vrrp_delay_after_boot",
    "no_checker_emails",
    "linkbeat_use_polling",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "child_wait_time",
    "auth_hmac",
    "use_ipvlan",
    "use_vmac_addr",
    "virtual_rules",
    "track_process",
    "track_bfd",
    "notify_priority_changes",
    "timer_expired_backup",
    "owner_ignore_adverts",
    "kernel_rx_buf_size",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "vrf",
    "garp_extra_if",
    "snmp_name",
    "regex",
    "regex_no_match",
    "regex_options",
    "regex_stack",
    "regex_min_offset",
    "regex_max_offset",
    "sync_group_tracking_weight",
    "global_tracking",
    "vrrp_track_process",
    "bfd_instance",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "garp_group",
    "linkbeat_interfaces",
    "interface_up_down_delays",
    "track_group",
    "BFD_CHECK",
    "notify_deleted_script",
];

/// Keywords keepalived dropped long ago: explained, then ignored.
fn removed_keyword(name: &str) -> Option<&'static str> {
    match name {
        "nat_mask" => Some("'nat_mask' was removed in keepalived 1.2.20 and has no effect; ignored"),
        "lvs_sync_daemon_interface" => {
            Some("'lvs_sync_daemon_interface' is deprecated; use global_defs 'lvs_sync_daemon IFACE'; ignored")
        }
        "native_ipv6" => Some("'native_ipv6' is deprecated and has no effect (IPv6 is detected from the addresses)"),
        "debug" => Some("'debug' has no effect"),
        _ => None,
    }
}

/// Lines such as `------` people use as separators.
fn is_decoration(word: &str) -> bool {
    word.len() >= 2
        && word
            .chars()
            .all(|c| matches!(c, '-' | '=' | '*' | '~' | '_' | '+'))
}

/// Dispatches every child of a block through its keyword table.
pub fn apply<T>(
    target: &mut T,
    block_name: &str,
    nodes: &[Node],
    table: &[Kw<T>],
    d: &mut Diagnostics,
) {
    for node in nodes {
        let name = node.name.text.as_str();
        if let Some(entry) = table.iter().find(|k| k.name == name) {
            (entry.handler)(target, node, d);
            continue;
        }
        report_unknown(block_name, node, table.iter().map(|k| k.name), d);
    }
}

pub fn report_unknown<'a>(
    block_name: &str,
    node: &Node,
    known: impl Iterator<Item = &'a str>,
    d: &mut Diagnostics,
) {
    let name = node.name.text.as_str();
    if is_decoration(name) {
        d.warning(
            node.span(),
            format!("decorative line '{name}' is not a keyword; ignored (real keepalived reports an unknown keyword)"),
        );
    } else if let Some(why) = removed_keyword(name) {
        d.warning(node.span(), why);
    } else if NOT_IMPLEMENTED.contains(&name) {
        d.warning(
            node.span(),
            format!(
                "'{name}' is a keepalived keyword that keepalived-rs does not implement; ignored"
            ),
        );
    } else {
        let known: Vec<&str> = known.collect();
        let hint = match suggest(name, known.iter().copied()) {
            Some(s) => format!("; did you mean '{s}'?"),
            None => String::new(),
        };
        d.warning(
            node.span(),
            format!("unknown keyword '{name}' in {block_name}{hint}; ignored"),
        );
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_opt<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

// ===== top level =====

pub struct TopLevel {
    pub config: Config,
    pub instances: Vec<InstanceBuilder>,
}

pub static TOP_LEVEL: &[Kw<TopLevel>] = &[
    kw("global_defs", |t, n, d| {
        apply(
            &mut t.config.global,
            "global_defs",
            block(n, d),
            GLOBAL_DEFS,
            d,
        )
    }),
    kw("vrrp_script", |t, n, d| {
        if let Some(s) = vrrp_script(n, d) {
            t.config.vrrp_scripts.push(s);
        }
    }),
    kw("vrrp_track_file", |t, n, d| {
        if let Some(f) = track_file(n, d) {
            t.config.track_files.push(f);
        }
    }),
    kw("track_file", |t, n, d| {
        if let Some(f) = track_file(n, d) {
            t.config.track_files.push(f);
        }
    }),
    kw("vrrp_sync_group", |t, n, d| {
        if let Some(g) = sync_group(n, d) {
            t.config.sync_groups.push(g);
        }
    }),
    kw("vrrp_instance", |t, n, d| {
        if let Some(i) = vrrp_instance(n, d) {
            t.instances.push(i);
        }
    }),
    kw("virtual_server_group", |t, n, d| {
        if let Some(g) = vs_group(n, d) {
            t.config.vs_groups.push(g);
        }
    }),
    kw("SSL", |t, n, d| {
        if t.config.ssl.is_some() {
            d.warning(
                n.span(),
                "a second 'SSL' block: its keywords override the first's",
            );
        }
        let ssl = t.config.ssl.get_or_insert_with(SslOptions::default);
        apply(ssl, "SSL", block(n, d), SSL_OPTIONS, d);
        ssl_pairing(ssl, d);
    }),
    kw("virtual_server", |t, n, d| {
        // Finalized at once: a virtual server needs nothing from the rest
        // of the file, and its builders are larger than the result.
        if let Some(v) = virtual_server(n, d) {
            t.config
                .virtual_servers
                .push(super::finalize::finalize_vs(v, d));
        }
    }),
];

static SSL_OPTIONS: &[Kw<SslOptions>] = &[
    kw("password", |s, n, d| {
        set_opt(&mut s.password, string(n, d, "the key's password"))
    }),
    kw("ca", |s, n, d| {
        set_opt(&mut s.ca, string(n, d, "a CA file path"))
    }),
    kw("certificate", |s, n, d| {
        set_opt(
            &mut s.certificate,
            string(n, d, "a PEM certificate file path"),
        )
    }),
    kw("key", |s, n, d| {
        set_opt(&mut s.key, string(n, d, "a PEM private key file path"))
    }),
];

/// A client certificate needs its key and a key its certificate; the
/// password of an encrypted key cannot be used (no PKCS#8 decryption).
fn ssl_pairing(ssl: &mut SslOptions, d: &mut Diagnostics) {
    match (&ssl.certificate, &ssl.key) {
        (Some(c), None) => {
            d.warning(
                &c.span,
                "'certificate' without 'key' in SSL: no client certificate is presented",
            );
            ssl.certificate = None;
        }
        (None, Some(k)) => {
            d.warning(
                &k.span,
                "'key' without 'certificate' in SSL: no client certificate is presented",
            );
            ssl.key = None;
        }
        _ => {}
    }
    if let Some(p) = &ssl.password {
        d.warning(
            &p.span,
            "'password' in SSL: encrypted keys are not supported, give 'key' an unencrypted PEM key; ignored",
        );
    }
}

/// `NAME {` blocks: the name argument.
fn block_name(n: &Node, d: &mut Diagnostics) -> Option<Spanned<String>> {
    match n.args.first() {
        Some(w) => Some(Spanned::new(w.text.clone(), w.span.clone())),
        None => {
            d.error(
                n.span(),
                format!("'{}': expected a name before '{{'", n.name.text),
            );
            None
        }
    }
}

// ===== global_defs =====

static GLOBAL_DEFS: &[Kw<GlobalDefs>] = &[
    kw("notification_email", |g, n, d| {
        g.notification_email = word_list(n, d)
    }),
    kw("notification_email_from", |g, n, d| {
        set_opt(
            &mut g.notification_email_from,
            string(n, d, "an e-mail address"),
        )
    }),
    kw("smtp_server", |g, n, d| {
        let Some(host) = n.args.first() else {
            d.error(
                n.span(),
                "'smtp_server': expected an address or host name [port]",
            );
            return;
        };
        let port = match n.args.get(1) {
            Some(p) => match integer::<u16>("smtp_server", p, 1, 65535, d) {
                Some(p) => p.value,
                None => return,
            },
            None => 25,
        };
        g.smtp_server = Some(Spanned::new(
            SmtpServer {
                host: host.text.clone(),
                port,
            },
            host.span.clone(),
        ));
    }),
    kw("smtp_helo_name", |g, n, d| {
        set_opt(&mut g.smtp_helo_name, string(n, d, "a host name"))
    }),
    kw("smtp_connect_timeout", |g, n, d| {
        set(&mut g.smtp_connect_timeout, timer(n, d))
    }),
    kw("smtp_alert", |g, n, d| g.smtp_alert = boolean(n, d)),
    kw("smtp_alert_vrrp", |g, n, d| {
        g.smtp_alert_vrrp = Some(boolean(n, d))
    }),
    kw("smtp_alert_checker", |g, n, d| {
        g.smtp_alert_checker = Some(boolean(n, d))
    }),
    kw("no_email_faults", |g, n, d| g.no_email_faults = flag(n, d)),
    kw("checker_log_all_failures", |g, n, d| {
        g.checker_log_all_failures = boolean(n, d)
    }),
    // `nftables [TABLE]`: the table no_accept drops VIP traffic in.
    kw("nftables", |g, n, _d| match n.args.first() {
        Some(w) => g.nftables_table = Spanned::new(w.text.clone(), w.span.clone()),
        None => g.nftables_table.span = n.span().clone(),
    }),
    kw("router_id", |g, n, d| {
        set(&mut g.router_id, string(n, d, "a router id"))
    }),
    kw("default_interface", |g, n, d| {
        set(&mut g.default_interface, string(n, d, "an interface name"))
    }),
    kw("vrrp_mcast_group4", |g, n, d| match ip_arg(n, d) {
        Some(Spanned {
            value: IpAddr::V4(v4),
            span,
        }) if v4.is_multicast() => g.vrrp_mcast_group4 = Spanned::new(v4, span),
        Some(other) => d.error(
            &other.span,
            format!(
                "'vrrp_mcast_group4': expected an IPv4 multicast address, found '{}'",
                other.value
            ),
        ),
        None => {}
    }),
    kw("vrrp_mcast_group6", |g, n, d| match ip_arg(n, d) {
        Some(Spanned {
            value: IpAddr::V6(v6),
            span,
        }) if v6.is_multicast() => g.vrrp_mcast_group6 = Spanned::new(v6, span),
        Some(other) => d.error(
            &other.span,
            format!(
                "'vrrp_mcast_group6': expected an IPv6 multicast address, found '{}'",
                other.value
            ),
        ),
        None => {}
    }),
    kw("vrrp_version", |g, n, d| {
        set(&mut g.vrrp_version, int_arg(n, 2, 3, d))
    }),
    kw("vrrp_strict", |g, n, d| g.vrrp_strict = flag(n, d)),
    kw("vrrp_garp_master_delay", |g, n, d| {
        set(&mut g.vrrp_garp_master_delay, timer(n, d))
    }),
    kw("vrrp_garp_master_repeat", |g, n, d| {
        set(&mut g.vrrp_garp_master_repeat, int_arg(n, 1, 10_000, d))
    }),
    kw("vrrp_garp_master_refresh", |g, n, d| {
        set(&mut g.vrrp_garp_master_refresh, timer(n, d))
    }),
    kw("vrrp_garp_master_refresh_repeat", |g, n, d| {
        set(
            &mut g.vrrp_garp_master_refresh_repeat,
            int_arg(n, 1, 10_000, d),
        )
    }),
    kw("vrrp_garp_lower_prio_delay", |g, n, d| {
        set(&mut g.vrrp_garp_lower_prio_delay, timer(n, d))
    }),
    kw("vrrp_garp_lower_prio_repeat", |g, n, d| {
        set(&mut g.vrrp_garp_lower_prio_repeat, int_arg(n, 1, 10_000, d))
    }),
    kw("vrrp_down_timer_adverts", |g, n, d| {
        set(&mut g.vrrp_down_timer_adverts, int_arg(n, 1, 100, d))
    }),
    kw("vrrp_garp_interval", |g, n, d| {
        set(&mut g.vrrp_garp_interval, timer(n, d))
    }),
    kw("vrrp_gna_interval", |g, n, d| {
        set(&mut g.vrrp_gna_interval, timer(n, d))
    }),
    kw("vrrp_min_garp", |g, n, d| g.vrrp_min_garp = boolean(n, d)),
    kw("vrrp_lower_prio_no_advert", |g, n, d| {
        g.vrrp_lower_prio_no_advert = boolean(n, d)
    }),
    kw("vrrp_higher_prio_send_advert", |g, n, d| {
        g.vrrp_higher_prio_send_advert = boolean(n, d)
    }),
    kw("vrrp_check_unicast_src", |g, n, d| {
        g.vrrp_check_unicast_src = flag(n, d)
    }),
    kw("vrrp_skip_check_adv_addr", |g, n, d| {
        g.vrrp_skip_check_adv_addr = boolean(n, d)
    }),
    kw("vrrp_startup_delay", |g, n, d| {
        set(&mut g.vrrp_startup_delay, timer(n, d))
    }),
    kw("enable_script_security", |g, n, d| {
        g.enable_script_security = flag(n, d)
    }),
    kw("script_user", |g, n, d| {
        if let Some(user) = single_or_pair(n, d) {
            g.script_user = Some(user);
        }
    }),
    kw("startup_script", |g, n, d| {
        set_opt(&mut g.startup_script, script(n, d))
    }),
    kw("startup_script_timeout", |g, n, d| {
        set(&mut g.startup_script_timeout, timer(n, d))
    }),
    kw("shutdown_script", |g, n, d| {
        set_opt(&mut g.shutdown_script, script(n, d))
    }),
    kw("shutdown_script_timeout", |g, n, d| {
        set(&mut g.shutdown_script_timeout, timer(n, d))
    }),
    kw("dynamic_interfaces", |g, n, _| {
        g.dynamic_interfaces = Spanned::new(true, n.span().clone())
    }),
    kw("lvs_sync_daemon", |g, n, d| {
        set_opt(&mut g.lvs_sync_daemon, lvs_sync_daemon(n, d))
    }),
    kw("lvs_timeouts", |g, n, d| {
        let mut t = LvsTimeouts::default();
        let mut args = n.args.iter();
        while let Some(k) = args.next() {
            let slot = match k.text.as_str() {
                "tcp" => &mut t.tcp,
                "tcpfin" => &mut t.tcpfin,
                "udp" => &mut t.udp,
                other => {
                    d.error(
                        &k.span,
                        format!("'lvs_timeouts': expected tcp|tcpfin|udp, found '{other}'"),
                    );
                    return;
                }
            };
            let Some(v) = args.next() else {
                d.error(
                    &k.span,
                    format!("'lvs_timeouts': expected seconds after '{}'", k.text),
                );
                return;
            };
            *slot = integer::<u32>("lvs_timeouts", v, 1, 86400 * 31, d).map(|v| v.value);
        }
        g.lvs_timeouts = Spanned::new(t, n.span().clone());
    }),
    kw("lvs_flush", |g, n, d| g.lvs_flush = flag(n, d)),
    kw("lvs_flush_on_stop", |g, n, _| {
        g.lvs_flush_on_stop = Spanned::new(true, n.span().clone())
    }),
];

fn single_or_pair(n: &Node, d: &mut Diagnostics) -> Option<Spanned<RunAs>> {
    let Some(user) = n.args.first() else {
        d.error(
            n.span(),
            format!("'{}': expected USER [GROUP]", n.name.text),
        );
        return None;
    };
    Some(Spanned::new(
        RunAs {
            user: user.text.clone(),
            group: n.args.get(1).map(|g| g.text.clone()),
        },
        user.span.clone(),
    ))
}

fn lvs_sync_daemon(n: &Node, d: &mut Diagnostics) -> Option<Spanned<LvsSyncDaemon>> {
    let Some(ifname) = n.args.first() else {
        d.error(n.span(), "'lvs_sync_daemon': expected INTERFACE [inst VI] [id N] [maxlen N] [port N] [ttl N] [group IP]");
        return None;
    };
    let mut s = LvsSyncDaemon {
        interface: ifname.text.clone(),
        instance: None,
        sync_id: None,
        maxlen: None,
        port: 8848,
        ttl: 1,
        group: IpAddr::from([224, 0, 0, 81]),
    };
    let mut args = n.args[1..].iter();
    while let Some(k) = args.next() {
        // The instance name may be written without `inst` (keepalived's old form).
        let needs_value = matches!(
            k.text.as_str(),
            "inst" | "id" | "maxlen" | "port" | "ttl" | "group"
        );
        if !needs_value {
            if s.instance.is_none() {
                s.instance = Some(k.text.clone());
                continue;
            }
            d.error(
                &k.span,
                format!("'lvs_sync_daemon': unexpected '{}'", k.text),
            );
            return None;
        }
        let Some(v) = args.next() else {
            d.error(
                &k.span,
                format!("'lvs_sync_daemon': expected a value after '{}'", k.text),
            );
            return None;
        };
        match k.text.as_str() {
            "inst" => s.instance = Some(v.text.clone()),
            "id" => s.sync_id = Some(integer::<u8>("lvs_sync_daemon id", v, 0, 255, d)?.value),
            "maxlen" => {
                s.maxlen = Some(integer::<u16>("lvs_sync_daemon maxlen", v, 1, 65507, d)?.value)
            }
            "port" => s.port = integer::<u16>("lvs_sync_daemon port", v, 1, 65535, d)?.value,
            "ttl" => s.ttl = integer::<u8>("lvs_sync_daemon ttl", v, 1, 255, d)?.value,
            _ => s.group = ip_word("lvs_sync_daemon group", v, d)?.value,
        }
    }
    Some(Spanned::new(s, ifname.span.clone()))
}

// ===== vrrp_script, track_file =====

fn vrrp_script(n: &Node, d: &mut Diagnostics) -> Option<VrrpScript> {
    let name = block_name(n, d)?;
    let s = VrrpScript {
        name,
        script: Script::default(),
        interval: Spanned::default_value(Duration::from_secs(1)),
        timeout: Spanned::default_value(Duration::ZERO),
        weight: Spanned::default_value(0),
        weight_reverse: Spanned::default_value(false),
        rise: Spanned::default_value(1),
        fall: Spanned::default_value(1),
        init_fail: Spanned::default_value(false),
    };
    let table: Vec<Kw<(VrrpScript, Option<Spanned<Duration>>)>> = vec![
        kw("script", |s, n, d| set(&mut s.0.script, script(n, d))),
        kw("interval", |s, n, d| {
            set(&mut s.0.interval, timer_arg(n, 86400.0, d))
        }),
        kw("timeout", |s, n, d| {
            set_opt(&mut s.1, timer_arg(n, 86400.0, d))
        }),
        kw("weight", |s, n, d| {
            let Some(w) = n.args.first() else {
                d.error(
                    n.span(),
                    "'weight': expected an integer -253..253 [reverse]",
                );
                return;
            };
            set(&mut s.0.weight, integer(&n.name.text, w, -253, 253, d));
            s.0.weight_reverse = Spanned::new(
                n.args.get(1).is_some_and(|r| r.text == "reverse"),
                w.span.clone(),
            );
        }),
        kw("rise", |s, n, d| {
            set(&mut s.0.rise, int_arg(n, 1, 10_000, d))
        }),
        kw("fall", |s, n, d| {
            set(&mut s.0.fall, int_arg(n, 1, 10_000, d))
        }),
        kw("user", |s, n, d| {
            s.0.script.run_as = single_or_pair(n, d).map(|r| r.value)
        }),
        kw("init_fail", |s, n, d| s.0.init_fail = flag(n, d)),
    ];
    let mut pair = (s, None);
    apply(&mut pair, "vrrp_script", block(n, d), &table, d);
    let (mut s, timeout) = pair;
    if s.script.command.value.is_empty() {
        d.error(
            n.span(),
            format!(
                "vrrp_script '{}': missing required keyword 'script'",
                s.name.value
            ),
        );
        return None;
    }
    // keepalived: the timeout defaults to the interval.
    s.timeout = timeout.unwrap_or_else(|| Spanned::default_value(s.interval.value));
    Some(s)
}

fn track_file(n: &Node, d: &mut Diagnostics) -> Option<TrackFile> {
    let name = block_name(n, d)?;
    let mut f = TrackFile {
        name,
        file: Spanned::default_value(String::new()),
        weight: Spanned::default_value(1),
        weight_reverse: Spanned::default_value(false),
        init_file: None,
    };
    let table: Vec<Kw<TrackFile>> = vec![
        kw("file", |f, n, d| {
            set(&mut f.file, string(n, d, "a file path"))
        }),
        kw("weight", |f, n, d| {
            let Some(w) = n.args.first() else {
                d.error(
                    n.span(),
                    "'weight': expected an integer -254..254 [reverse]",
                );
                return;
            };
            set(&mut f.weight, integer(&n.name.text, w, -254, 254, d));
            f.weight_reverse = Spanned::new(
                n.args.get(1).is_some_and(|r| r.text == "reverse"),
                w.span.clone(),
            );
        }),
        kw("init_file", |f, n, d| {
            let mut value = 0;
            let mut overwrite = false;
            for a in &n.args {
                if a.text == "overwrite" {
                    overwrite = true;
                } else if let Some(v) =
                    integer::<i64>("init_file", a, i64::from(i32::MIN), i64::from(i32::MAX), d)
                {
                    value = v.value;
                }
            }
            f.init_file = Some(Spanned::new((value, overwrite), n.span().clone()));
        }),
    ];
    apply(&mut f, "track_file", block(n, d), &table, d);
    if f.file.value.is_empty() {
        d.error(
            n.span(),
            format!(
                "track_file '{}': missing required keyword 'file'",
                f.name.value
            ),
        );
        return None;
    }
    Some(f)
}

/// `track_script`, `track_interface`, `track_file` blocks: `NAME [weight W] [reverse|noreverse]`.
/// Unknown words warn as in keepalived 2.2.7: after `weight W` the word is
/// ignored; right after NAME keepalived drops the whole line, and so do we.
fn track_refs(n: &Node, d: &mut Diagnostics, min: i64, max: i64) -> Vec<TrackRef> {
    const OPTIONS: [&str; 3] = ["weight", "reverse", "noreverse"];
    let keyword = n.name.text.as_str();
    let mut out = Vec::new();
    for line in block(n, d) {
        let name = line.name.text.as_str();
        let mut r = TrackRef {
            name: Spanned::new(name.to_string(), line.name.span.clone()),
            weight: None,
            reverse: None,
        };
        let mut weight_text: Option<&str> = None;
        let mut dropped = false;
        let mut args = line.args.iter();
        while let Some(a) = args.next() {
            match a.text.as_str() {
                "weight" => match args.next() {
                    Some(w) => {
                        weight_text = Some(w.text.as_str());
                        r.weight = integer(&format!("{keyword} weight"), w, min, max, d);
                    }
                    None => d.error(
                        &a.span,
                        format!("'{keyword}': expected a number after 'weight'"),
                    ),
                },
                "reverse" => r.reverse = Some(Spanned::new(true, a.span.clone())),
                "noreverse" => r.reverse = Some(Spanned::new(false, a.span.clone())),
                other => {
                    let hint = suggest(other, OPTIONS)
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_default();
                    match weight_text {
                        Some(w) => d.warning(
                            &a.span,
                            format!("'{keyword}': unknown option '{other}' after '{name} weight {w}'{hint}; ignored"),
                        ),
                        None => {
                            let expected = if hint.is_empty() { " (expected 'weight N')" } else { "" };
                            d.warning(
                                &a.span,
                                format!("'{keyword}': unknown option '{other}' after '{name}'{expected}{hint}; keepalived ignores the whole line, so '{name}' is not tracked"),
                            );
                            dropped = true;
                            break;
                        }
                    }
                }
            }
        }
        if !dropped {
            out.push(r);
        }
    }
    out
}

/// Handles a notify keyword; false when the keyword is not one.
fn handle_notify(notify: &mut Notify, n: &Node, d: &mut Diagnostics) -> bool {
    let slot = match n.name.text.as_str() {
        "notify_master" => &mut notify.master,
        "notify_backup" => &mut notify.backup,
        "notify_fault" => &mut notify.fault,
        "notify_stop" => &mut notify.stop,
        "notify_deleted" => &mut notify.deleted,
        "notify_master_rx_lower_pri" => &mut notify.master_rx_lower_pri,
        "notify" => &mut notify.generic,
        _ => return false,
    };
    set_opt(slot, script(n, d));
    true
}

pub const NOTIFY_KEYWORDS: [&str; 7] = [
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "notify",
];

// ===== vrrp_sync_group =====

fn sync_group(n: &Node, d: &mut Diagnostics) -> Option<SyncGroup> {
    let name = block_name(n, d)?;
    let mut g = SyncGroup {
        name,
        members: Vec::new(),
        track_interface: Vec::new(),
        track_script: Vec::new(),
        track_file: Vec::new(),
        notify: Notify::default(),
        smtp_alert: Spanned::default_value(false),
    };
    let table: Vec<Kw<SyncGroup>> = vec![
        kw("group", |g, n, d| g.members = word_list(n, d)),
        kw("track_interface", |g, n, d| {
            g.track_interface = track_refs(n, d, -254, 254)
        }),
        kw("track_script", |g, n, d| {
            g.track_script = track_refs(n, d, -254, 254)
        }),
        kw("track_file", |g, n, d| {
            g.track_file = track_refs(n, d, -254, 254)
        }),
        kw("smtp_alert", |g, n, d| g.smtp_alert = boolean(n, d)),
    ];
    for child in block(n, d) {
        if handle_notify(&mut g.notify, child, d) {
            continue;
        }
        match table.iter().find(|k| k.name == child.name.text) {
            Some(k) => (k.handler)(&mut g, child, d),
            None => report_unknown(
                "vrrp_sync_group",
                child,
                table.iter().map(|k| k.name).chain(NOTIFY_KEYWORDS),
                d,
            ),
        }
    }
    if g.members.is_empty() {
        d.error(
            &g.name.span,
            format!(
                "vrrp_sync_group '{}': missing required 'group {{ ... }}' with its instances",
                g.name.value
            ),
        );
    }
    Some(g)
}

// ===== vrrp_instance =====

/// An instance as written, before global defaults are applied.
pub struct InstanceBuilder {
    pub inst: VrrpInstance,
    pub span: Span,
    pub has_vrid: bool,
    pub version: Option<Spanned<u8>>,
    pub accept: Option<Spanned<bool>>,
    pub strict: Option<Spanned<bool>>,
    pub lower_prio_no_advert: Option<Spanned<bool>>,
    pub higher_prio_send_advert: Option<Spanned<bool>>,
    pub garp_master_delay: Option<Spanned<Duration>>,
    pub garp_master_repeat: Option<Spanned<u32>>,
    pub garp_master_refresh: Option<Spanned<Duration>>,
    pub garp_master_refresh_repeat: Option<Spanned<u32>>,
    pub garp_lower_prio_delay: Option<Spanned<Duration>>,
    pub garp_lower_prio_repeat: Option<Spanned<u32>>,
    pub down_timer_adverts: Option<Spanned<u8>>,
    /// `use_vmac` gave a 5-octet MAC: the VRID is its last octet.
    pub vmac_last_octet_from_vrid: bool,
}

fn new_instance(name: Spanned<String>) -> VrrpInstance {
    fn d<T>(v: T) -> Spanned<T> {
        Spanned::default_value(v)
    }
    VrrpInstance {
        name,
        state: d(InitialState::Backup),
        interface: None,
        virtual_router_id: d(0),
        priority: d(100),
        advert_int: d(Duration::from_secs(1)),
        version: d(2),
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        virtual_routes: Vec::new(),
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        unicast_ttl: d(255),
        mcast_src_ip: None,
        mcast_dst_ip: None,
        track_interface: Vec::new(),
        track_script: Vec::new(),
        track_file: Vec::new(),
        dont_track_primary: d(false),
        track_src_ip: d(false),
        notify: Notify::default(),
        smtp_alert: d(false),
        nopreempt: d(false),
        preempt_delay: d(Duration::ZERO),
        garp_master_delay: d(Duration::from_secs(5)),
        garp_master_repeat: d(5),
        garp_master_refresh: d(Duration::ZERO),
        garp_master_refresh_repeat: d(1),
        garp_lower_prio_delay: d(Duration::from_secs(5)),
        garp_lower_prio_repeat: d(5),
        down_timer_adverts: d(3),
        use_vmac: None,
        vmac_xmit_base: d(false),
        accept: d(true),
        strict_mode: d(false),
        lower_prio_no_advert: d(false),
        higher_prio_send_advert: d(false),
        skip_check_adv_addr: d(false),
        check_unicast_src: d(false),
        promote_secondaries: d(false),
    }
}

static VRRP_INSTANCE: &[Kw<InstanceBuilder>] = &[
    kw("state", |b, n, d| {
        let Some(w) = single(n, d, "MASTER or BACKUP") else {
            return;
        };
        b.inst.state = match w.text.as_str() {
            "MASTER" => Spanned::new(InitialState::Master, w.span.clone()),
            "BACKUP" => Spanned::new(InitialState::Backup, w.span.clone()),
            other
                if other.eq_ignore_ascii_case("master") || other.eq_ignore_ascii_case("backup") =>
            {
                d.warning(
                        &w.span,
                        format!("'state': '{other}' is not valid (MASTER and BACKUP are case-sensitive); using BACKUP as keepalived does"),
                    );
                Spanned::new(InitialState::Backup, w.span.clone())
            }
            other => {
                d.error(
                    &w.span,
                    format!("'state': expected MASTER or BACKUP, found '{other}'"),
                );
                return;
            }
        };
    }),
    kw("interface", |b, n, d| {
        set_opt(&mut b.inst.interface, string(n, d, "an interface name"))
    }),
    kw("virtual_router_id", |b, n, d| {
        b.has_vrid = true;
        set(&mut b.inst.virtual_router_id, int_arg(n, 1, 255, d));
    }),
    kw("priority", |b, n, d| {
        set(&mut b.inst.priority, int_arg(n, 1, 255, d))
    }),
    kw("advert_int", |b, n, d| {
        set(&mut b.inst.advert_int, timer_arg(n, 255.0, d))
    }),
    kw("version", |b, n, d| {
        set_opt(&mut b.version, int_arg(n, 2, 3, d))
    }),
    kw("authentication", |b, n, d| {
        b.inst.authentication = authentication(n, d)
    }),
    kw("virtual_ipaddress", |b, n, d| {
        b.inst
            .virtual_ipaddress
            .extend(block(n, d).iter().filter_map(|l| virtual_address(l, d)))
    }),
    kw("virtual_ipaddress_excluded", |b, n, d| {
        b.inst
            .virtual_ipaddress_excluded
            .extend(block(n, d).iter().filter_map(|l| virtual_address(l, d)))
    }),
    kw("virtual_routes", |b, n, d| {
        b.inst
            .virtual_routes
            .extend(block(n, d).iter().filter_map(|l| virtual_route(l, d)))
    }),
    kw("unicast_src_ip", |b, n, d| {
        set_opt(&mut b.inst.unicast_src_ip, ip_arg(n, d))
    }),
    kw("unicast_peer", |b, n, d| {
        b.inst
            .unicast_peer
            .extend(block(n, d).iter().filter_map(|l| unicast_peer(l, d)))
    }),
    kw("unicast_ttl", |b, n, d| {
        set(&mut b.inst.unicast_ttl, int_arg(n, 1, 255, d))
    }),
    kw("mcast_src_ip", |b, n, d| {
        set_opt(&mut b.inst.mcast_src_ip, ip_arg(n, d))
    }),
    kw("mcast_dst_ip", |b, n, d| {
        set_opt(&mut b.inst.mcast_dst_ip, ip_arg(n, d))
    }),
    kw("track_interface", |b, n, d| {
        b.inst.track_interface.extend(track_refs(n, d, -254, 254))
    }),
    kw("track_script", |b, n, d| {
        b.inst.track_script.extend(track_refs(n, d, -254, 254))
    }),
    kw("track_file", |b, n, d| {
        b.inst.track_file.extend(track_refs(n, d, -254, 254))
    }),
    kw("dont_track_primary", |b, n, d| {
        b.inst.dont_track_primary = flag(n, d)
    }),
    kw("track_src_ip", |b, n, d| b.inst.track_src_ip = flag(n, d)),
    kw("smtp_alert", |b, n, d| b.inst.smtp_alert = boolean(n, d)),
    kw("nopreempt", |b, n, d| b.inst.nopreempt = flag(n, d)),
    kw("preempt", |b, n, d| {
        b.inst.nopreempt = flag(n, d).map(|_| false)
    }),
    kw("preempt_delay", |b, n, d| {
        set(&mut b.inst.preempt_delay, timer_arg(n, 1000.0, d))
    }),
    kw("garp_master_delay", |b, n, d| {
        set_opt(&mut b.garp_master_delay, timer(n, d))
    }),
    kw("garp_master_repeat", |b, n, d| {
        set_opt(&mut b.garp_master_repeat, int_arg(n, 1, 10_000, d))
    }),
    kw("garp_master_refresh", |b, n, d| {
        set_opt(&mut b.garp_master_refresh, timer(n, d))
    }),
    kw("garp_master_refresh_repeat", |b, n, d| {
        set_opt(&mut b.garp_master_refresh_repeat, int_arg(n, 1, 10_000, d))
    }),
    kw("garp_lower_prio_delay", |b, n, d| {
        set_opt(&mut b.garp_lower_prio_delay, timer(n, d))
    }),
    kw("garp_lower_prio_repeat", |b, n, d| {
        set_opt(&mut b.garp_lower_prio_repeat, int_arg(n, 1, 10_000, d))
    }),
    kw("down_timer_adverts", |b, n, d| {
        set_opt(&mut b.down_timer_adverts, int_arg(n, 1, 100, d))
    }),
    kw("use_vmac", |b, n, d| {
        let parsed = use_vmac(n, d);
        b.vmac_last_octet_from_vrid = parsed.as_ref().is_some_and(|(_, from_vrid)| *from_vrid);
        b.inst.use_vmac = parsed.map(|(v, _)| v);
    }),
    kw("vmac_xmit_base", |b, n, d| {
        b.inst.vmac_xmit_base = flag(n, d)
    }),
    kw("accept", |b, n, d| b.accept = Some(flag(n, d))),
    kw("no_accept", |b, n, d| {
        b.accept = Some(flag(n, d).map(|_| false))
    }),
    kw("strict_mode", |b, n, d| b.strict = Some(boolean(n, d))),
    kw("lower_prio_no_advert", |b, n, d| {
        b.lower_prio_no_advert = Some(boolean(n, d))
    }),
    kw("higher_prio_send_advert", |b, n, d| {
        b.higher_prio_send_advert = Some(boolean(n, d))
    }),
    kw("skip_check_adv_addr", |b, n, d| {
        b.inst.skip_check_adv_addr = boolean(n, d)
    }),
    kw("check_unicast_src", |b, n, d| {
        b.inst.check_unicast_src = flag(n, d)
    }),
    kw("promote_secondaries", |b, n, d| {
        b.inst.promote_secondaries = flag(n, d)
    }),
];

fn vrrp_instance(n: &Node, d: &mut Diagnostics) -> Option<InstanceBuilder> {
    let name = block_name(n, d)?;
    let mut b = InstanceBuilder {
        inst: new_instance(name),
        span: n.span().clone(),
        has_vrid: false,
        version: None,
        accept: None,
        strict: None,
        lower_prio_no_advert: None,
        higher_prio_send_advert: None,
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        garp_lower_prio_delay: None,
        garp_lower_prio_repeat: None,
        down_timer_adverts: None,
        vmac_last_octet_from_vrid: false,
    };
    let table = VRRP_INSTANCE;
    for child in block(n, d) {
        if handle_notify(&mut b.inst.notify, child, d) {
            continue;
        }
        match table.iter().find(|k| k.name == child.name.text) {
            Some(k) => (k.handler)(&mut b, child, d),
            None => report_unknown(
                "vrrp_instance",
                child,
                table.iter().map(|k| k.name).chain(NOTIFY_KEYWORDS),
                d,
            ),
        }
    }
    Some(b)
}

fn authentication(n: &Node, d: &mut Diagnostics) -> Option<Authentication> {
    let mut auth_type: Option<Spanned<AuthType>> = None;
    let mut pass: Option<Spanned<String>> = None;
    for line in block(n, d) {
        match line.name.text.as_str() {
            "auth_type" => {
                let Some(w) = single(line, d, "PASS or AH") else {
                    continue;
                };
                auth_type = match w.text.as_str() {
                    "PASS" => Some(Spanned::new(AuthType::Pass, w.span.clone())),
                    "AH" => Some(Spanned::new(AuthType::Ah, w.span.clone())),
                    other => {
                        d.error(
                            &w.span,
                            format!("'auth_type': expected PASS or AH, found '{other}'"),
                        );
                        None
                    }
                }
            }
            "auth_pass" => {
                let Some(w) = single(line, d, "a password") else {
                    continue;
                };
                let mut text = w.text.clone();
                if text.len() > 8 {
                    d.warning(
                        &w.span,
                        "'auth_pass': longer than 8 characters; truncated to 8 as keepalived does",
                    );
                    let mut end = 8;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                }
                pass = Some(Spanned::new(text, w.span.clone()));
            }
            _ => report_unknown(
                "authentication",
                line,
                ["auth_type", "auth_pass"].into_iter(),
                d,
            ),
        }
    }
    match (auth_type, pass) {
        (Some(auth_type), Some(auth_pass)) => Some(Authentication {
            auth_type,
            auth_pass,
        }),
        (Some(_), None) => {
            d.error(n.span(), "'authentication': missing 'auth_pass'");
            None
        }
        (None, Some(_)) => {
            d.error(
                n.span(),
                "'authentication': missing 'auth_type' (PASS or AH)",
            );
            None
        }
        (None, None) => None,
    }
}

fn scope_word(keyword: &str, w: &Word, d: &mut Diagnostics) -> Option<AddressScope> {
    match w.text.as_str() {
        "global" | "universe" => Some(AddressScope::Global),
        "site" => Some(AddressScope::Site),
        "link" => Some(AddressScope::Link),
        "host" => Some(AddressScope::Host),
        "nowhere" => Some(AddressScope::Nowhere),
        other => {
            d.error(
                &w.span,
                format!(
                    "'{keyword}': expected scope global|site|link|host|nowhere, found '{other}'"
                ),
            );
            None
        }
    }
}

/// `IP[/LEN] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP] [flags...]`.
fn virtual_address(line: &Node, d: &mut Diagnostics) -> Option<VirtualAddress> {
    let (addr, prefix_len) = prefix_word("virtual_ipaddress", &line.name, d)?;
    let mut a = VirtualAddress {
        addr,
        prefix_len,
        broadcast: None,
        dev: None,
        scope: None,
        label: None,
        peer: None,
        use_vmac: false,
        no_track: false,
        home: false,
        nodad: false,
        mngtmpaddr: false,
        noprefixroute: false,
        autojoin: false,
        preferred_lft: None,
    };
    let mut args = line.args.iter();
    while let Some(k) = args.next() {
        let mut value = |what: &str, d: &mut Diagnostics| {
            let v = args.next();
            if v.is_none() {
                d.error(
                    &k.span,
                    format!("virtual_ipaddress: expected {what} after '{}'", k.text),
                );
            }
            v
        };
        match k.text.as_str() {
            "brd" | "broadcast" => {
                let v = value("an address, '+' or '-'", d)?;
                a.broadcast = match v.text.as_str() {
                    "+" => Some(Broadcast::Computed),
                    "-" => Some(Broadcast::None),
                    _ => match ip_word("brd", v, d)?.value {
                        IpAddr::V4(b) => Some(Broadcast::Address(b)),
                        IpAddr::V6(_) => {
                            d.error(&v.span, "'brd': broadcast addresses are IPv4 only");
                            return None;
                        }
                    },
                }
            }
            "dev" => {
                a.dev = value("an interface name", d)
                    .map(|v| Spanned::new(v.text.clone(), v.span.clone()))
            }
            "scope" => a.scope = scope_word("scope", value("a scope", d)?, d),
            "label" => {
                a.label = value("a label", d).map(|v| Spanned::new(v.text.clone(), v.span.clone()))
            }
            "peer" => a.peer = Some(prefix_word("peer", value("an address", d)?, d)?.0.value),
            "preferred_lft" => {
                let v = value("seconds or 'forever'", d)?;
                a.preferred_lft = if v.text == "forever" {
                    None
                } else {
                    Some(integer::<u32>("preferred_lft", v, 0, i64::from(u32::MAX), d)?.value)
                };
            }
            "use_vmac" => a.use_vmac = true,
            "no_track" => a.no_track = true,
            "home" => a.home = true,
            "-nodad" | "nodad" => a.nodad = true,
            "mngtmpaddr" => a.mngtmpaddr = true,
            "noprefixroute" => a.noprefixroute = true,
            "autojoin" => a.autojoin = true,
            other => {
                d.error(
                    &k.span,
                    format!("virtual_ipaddress: unexpected '{other}' after {} (expected brd, dev, scope, label, peer, no_track, ...; one address per line)", line.name.text),
                );
                return None;
            }
        }
    }
    Some(a)
}

fn virtual_route(line: &Node, d: &mut Diagnostics) -> Option<VirtualRoute> {
    let words: Vec<&Word> = std::iter::once(&line.name)
        .chain(line.args.iter())
        .collect();
    let mut route_type = RouteType::Unicast;
    let mut dest = None;
    let mut r = VirtualRoute {
        route_type,
        dest: Spanned::default_value(IpAddr::from([0, 0, 0, 0])),
        prefix_len: 0,
        src: None,
        via: None,
        dev: None,
        scope: None,
        table: None,
        metric: None,
        onlink: false,
        no_track: false,
    };
    let mut i = 0;
    while i < words.len() {
        let k = words[i];
        let next = words.get(i + 1).copied();
        let need = |d: &mut Diagnostics| {
            if next.is_none() {
                d.error(
                    &k.span,
                    format!("virtual_routes: expected a value after '{}'", k.text),
                );
            }
            next
        };
        let mut consumed = 2;
        match k.text.as_str() {
            "blackhole" | "unreachable" | "prohibit" if dest.is_none() => {
                route_type = match k.text.as_str() {
                    "blackhole" => RouteType::Blackhole,
                    "unreachable" => RouteType::Unreachable,
                    _ => RouteType::Prohibit,
                };
                consumed = 1;
            }
            "src" => r.src = Some(ip_word("src", need(d)?, d)?.value),
            "to" => dest = Some(prefix_word("virtual_routes", need(d)?, d)?),
            "via" | "gw" => r.via = Some(ip_word("via", need(d)?, d)?.value),
            "dev" | "oif" => r.dev = Some(need(d)?.text.clone()),
            "scope" => r.scope = scope_word("scope", need(d)?, d),
            "table" => {
                r.table = Some(integer::<u32>("table", need(d)?, 0, i64::from(u32::MAX), d)?.value)
            }
            "metric" | "priority" | "preference" => {
                r.metric =
                    Some(integer::<u32>("metric", need(d)?, 0, i64::from(u32::MAX), d)?.value)
            }
            "onlink" => {
                r.onlink = true;
                consumed = 1;
            }
            "no_track" => {
                r.no_track = true;
                consumed = 1;
            }
            _ if dest.is_none() => {
                let word = if k.text == "default" {
                    Word {
                        text: "0.0.0.0/0".into(),
                        span: k.span.clone(),
                        quoted: false,
                    }
                } else {
                    k.clone()
                };
                dest = Some(prefix_word("virtual_routes", &word, d)?);
                consumed = 1;
            }
            other => {
                d.error(&k.span, format!("virtual_routes: unexpected '{other}' (expected src, via, dev, scope, table, metric, onlink, no_track)"));
                return None;
            }
        }
        i += consumed;
    }
    let Some((addr, len)) = dest else {
        d.error(line.span(), "virtual_routes: expected a destination prefix");
        return None;
    };
    r.route_type = route_type;
    r.dest = addr;
    r.prefix_len = len;
    Some(r)
}

fn unicast_peer(line: &Node, d: &mut Diagnostics) -> Option<UnicastPeer> {
    let addr = ip_word("unicast_peer", &line.name, d)?;
    let mut p = UnicastPeer {
        addr,
        min_ttl: None,
        max_ttl: None,
    };
    let mut args = line.args.iter();
    while let Some(k) = args.next() {
        let slot = match k.text.as_str() {
            "min_ttl" => &mut p.min_ttl,
            "max_ttl" => &mut p.max_ttl,
            other => {
                d.error(
                    &k.span,
                    format!("unicast_peer: expected min_ttl or max_ttl, found '{other}'"),
                );
                return None;
            }
        };
        let Some(v) = args.next() else {
            d.error(
                &k.span,
                format!("unicast_peer: expected a TTL after '{}'", k.text),
            );
            return None;
        };
        *slot = Some(integer::<u8>(&k.text, v, 0, 255, d)?.value);
    }
    Some(p)
}

/// `use_vmac [NAME] [MAC]`, in either order. The bool says the MAC has 5
/// octets: keepalived makes the virtual_router_id the sixth, which is only
/// known at the end of the block.
fn use_vmac(n: &Node, d: &mut Diagnostics) -> Option<(Spanned<UseVmac>, bool)> {
    let mut v = UseVmac {
        name: None,
        mac: None,
    };
    let mut last_octet_from_vrid = false;
    for a in &n.args {
        let text = a.text.as_str();
        if text.contains(':') {
            let Some(octets) = parse_mac_octets(text) else {
                d.error(&a.span, format!("'use_vmac': expected a MAC address of 5 or 6 hexadecimal octets (aa:bb:cc:dd:ee[:ff]), found '{text}'"));
                return None;
            };
            if octets[0] & 1 != 0 {
                d.error(
                    &a.span,
                    format!("'use_vmac': '{text}' is a multicast MAC address; a VMAC needs a unicast one"),
                );
                return None;
            }
            if v.mac.is_some() {
                d.error(
                    &a.span,
                    format!("'use_vmac': a second MAC address '{text}' (expected [NAME] [MAC])"),
                );
                return None;
            }
            let mut mac = [0u8; 6];
            mac[..octets.len()].copy_from_slice(&octets);
            last_octet_from_vrid = octets.len() == 5;
            v.mac = Some(mac);
        } else if is_interface_name(text) {
            if v.name.is_some() {
                d.error(
                    &a.span,
                    format!("'use_vmac': a second interface name '{text}' (expected [NAME] [MAC])"),
                );
                return None;
            }
            v.name = Some(text.to_string());
        } else {
            d.error(&a.span, format!("'use_vmac': expected an interface name (< 16 chars) or a MAC address, found '{text}'"));
            return None;
        }
    }
    Some((Spanned::new(v, n.span().clone()), last_octet_from_vrid))
}

/// What Linux accepts as a link name (dev_valid_name).
fn is_interface_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() < 16
        && text != "."
        && text != ".."
        && !text.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
}

/// `aa:bb:cc:dd:ee[:ff]`, each octet one or two hex digits as keepalived
/// reads them: the 5 or 6 octets, or None.
fn parse_mac_octets(text: &str) -> Option<Vec<u8>> {
    let octets = text
        .split(':')
        .map(|p| {
            // from_str_radix alone would also take a sign ("+1").
            let hex = (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
            if hex {
                u8::from_str_radix(p, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<Vec<u8>>>()?;
    (5..=6).contains(&octets.len()).then_some(octets)
}

// ===== virtual_server_group =====

fn vs_group(n: &Node, d: &mut Diagnostics) -> Option<VirtualServerGroup> {
    let name = block_name(n, d)?;
    let mut entries = Vec::new();
    for line in block(n, d) {
        if line.name.text == "fwmark" {
            let Some(m) = line.args.first() else {
                d.error(
                    line.span(),
                    "virtual_server_group: expected a number after 'fwmark'",
                );
                continue;
            };
            let Some(mark) = integer::<u32>("fwmark", m, 1, i64::from(u32::MAX), d) else {
                continue;
            };
            let family = match line.args.get(1).map(|w| w.text.as_str()) {
                Some("inet") => Some(AddressFamily::Inet),
                Some("inet6") => Some(AddressFamily::Inet6),
                None => None,
                Some(other) => {
                    d.error(
                        &line.args[1].span,
                        format!("virtual_server_group: expected inet or inet6, found '{other}'"),
                    );
                    continue;
                }
            };
            entries.push(VsGroupEntry::Fwmark { mark, family });
            continue;
        }
        entries.extend(vs_group_address(line, d));
    }
    Some(VirtualServerGroup { name, entries })
}

/// `IP [PORT]`, `IP/LEN`, `IP-LAST` (LAST replaces the last octet, or
/// the last hextet for IPv6) or `IP-IP`, each address one IPVS service.
fn vs_group_address(line: &Node, d: &mut Diagnostics) -> Option<VsGroupEntry> {
    let text = line.name.text.as_str();
    let span = &line.name.span;
    let (addr, prefix_len, range_end) = match text.split_once('-') {
        None => {
            let (addr, len) = prefix_word("virtual_server_group", &line.name, d)?;
            let full = if addr.value.is_ipv4() { 32 } else { 128 };
            (addr, (len != full).then_some(len), None)
        }
        Some((first_text, last_text)) => {
            let first = first_text.parse::<IpAddr>().ok();
            let last = first.and_then(|f| range_last_address(f, last_text));
            let (Some(first), Some(last)) = (first, last) else {
                d.error(span, format!("virtual_server_group: bad address range '{text}' (expected FIRST-LAST, LAST a full address or the last octet 0..255, IPv6 hextet 0..ffff)"));
                return None;
            };
            if first.is_ipv4() != last.is_ipv4() {
                d.error(
                    span,
                    format!("virtual_server_group: address range '{text}' mixes IPv4 and IPv6"),
                );
                return None;
            }
            if last < first {
                d.error(
                    span,
                    format!("virtual_server_group: address range '{text}' ends before it starts"),
                );
                return None;
            }
            (Spanned::new(first, span.clone()), None, Some(last))
        }
    };
    // Each address is an IPVS service, and the table is cut at
    // MAX_GROUP_ENTRY_ADDRESSES per entry (desired.rs). keepalived accepts
    // any size, so a config it runs must load here too: warn, don't refuse.
    let count = group_entry_bounds(addr.value, range_end, prefix_len)
        .and_then(|(first, last, _)| (last - first).checked_add(1));
    if !matches!(count, Some(c) if c <= u128::from(MAX_GROUP_ENTRY_ADDRESSES)) {
        let count = count.map_or_else(|| "2^128".to_string(), |c| c.to_string());
        d.warning(span, format!("virtual_server_group: '{text}' is {count} addresses, more than the {MAX_GROUP_ENTRY_ADDRESSES} one entry may expand to (one IPVS service each); only the first {MAX_GROUP_ENTRY_ADDRESSES} are programmed"));
    }
    let port = match line.args.first() {
        Some(p) => integer::<u16>("virtual_server_group port", p, 0, 65535, d)?.value,
        None => 0,
    };
    Some(VsGroupEntry::Address {
        addr,
        range_end,
        prefix_len,
        port,
    })
}

/// The end of `FIRST-LAST`: a full address, or the last octet (decimal)
/// or hextet (hex) of FIRST replaced.
fn range_last_address(first: IpAddr, last_text: &str) -> Option<IpAddr> {
    if last_text.contains(['.', ':']) {
        return last_text.parse().ok();
    }
    let digits_only = |radix: u32, max_len: usize| {
        (1..=max_len).contains(&last_text.len()) && last_text.chars().all(|c| c.is_digit(radix))
    };
    match first {
        IpAddr::V4(a) if digits_only(10, 3) => {
            let mut octets = a.octets();
            octets[3] = last_text.parse().ok()?;
            Some(IpAddr::from(octets))
        }
        IpAddr::V6(a) if digits_only(16, 4) => {
            let mut segments = a.segments();
            segments[7] = u16::from_str_radix(last_text, 16).ok()?;
            Some(IpAddr::from(segments))
        }
        _ => None,
    }
}

// ===== virtual_server / real_server / checkers =====

pub struct VsBuilder {
    pub vs: VirtualServer,
    pub span: Span,
    pub delay_loop: Option<Spanned<Duration>>,
    pub lb_algo: Option<Spanned<Scheduler>>,
    pub lb_kind: Option<Spanned<ForwardMethod>>,
    pub protocol: Option<Spanned<Protocol>>,
    pub real_servers: Vec<RsBuilder>,
}

pub struct RsBuilder {
    pub rs: RealServer,
    pub inhibit_on_failure: Option<Spanned<bool>>,
    pub alpha: Option<Spanned<bool>>,
    pub checkers: Vec<CheckerBuilder>,
}

#[derive(Clone)]
pub struct CheckerBuilder {
    pub kind: CheckerKind,
    pub target: CheckTarget,
    pub timing: InheritedTiming,
    pub alpha: Option<Spanned<bool>>,
    pub log_all_failures: Spanned<bool>,
    pub misc_timeout: Option<Spanned<Duration>>,
    pub span: Span,
    /// SMTP_CHECK's legacy `host { ... }` blocks: each one is one more
    /// checker of the real server (see [`CheckerBuilder::expand_hosts`]).
    pub smtp_hosts: Vec<SmtpHost>,
}

/// One `host { connect_ip ...; connect_timeout ... }` block of SMTP_CHECK.
#[derive(Clone)]
pub struct SmtpHost {
    pub target: CheckTarget,
    pub timing: InheritedTiming,
    pub alpha: Option<Spanned<bool>>,
    pub log_all_failures: Option<Spanned<bool>>,
    pub span: Span,
}

impl CheckerBuilder {
    /// keepalived 2.2.7 ("The SMTP_CHECK host block is deprecated. Please
    /// define additional checkers."), as its VM runs show: each `host`
    /// block is a checker of its own, with its own connection settings
    /// (connect_ip, ports, bindto, connect_timeout: none taken from the
    /// outer block) and the outer block's other settings; the outer block
    /// is a checker too only when it sets a connection option itself.
    fn expand_hosts(self) -> Vec<CheckerBuilder> {
        if self.smtp_hosts.is_empty() {
            return vec![self];
        }
        let outer_connects =
            self.target != CheckTarget::default() || self.timing.connect_timeout.is_some();
        let mut all = Vec::with_capacity(1 + self.smtp_hosts.len());
        for host in &self.smtp_hosts {
            let mut extra = self.clone();
            extra.smtp_hosts = Vec::new();
            extra.target = host.target.clone();
            extra.timing = overlay_timing(&self.timing, host.timing.clone());
            extra.timing.connect_timeout = host.timing.connect_timeout.clone();
            if host.alpha.is_some() {
                extra.alpha = host.alpha.clone();
            }
            if let Some(l) = &host.log_all_failures {
                extra.log_all_failures = l.clone();
            }
            extra.span = host.span.clone();
            all.push(extra);
        }
        if outer_connects {
            let mut outer = self;
            outer.smtp_hosts = Vec::new();
            all.insert(0, outer);
        }
        all
    }
}

fn overlay_timing(base: &InheritedTiming, top: InheritedTiming) -> InheritedTiming {
    InheritedTiming {
        delay_loop: top.delay_loop.or_else(|| base.delay_loop.clone()),
        connect_timeout: top.connect_timeout.or_else(|| base.connect_timeout.clone()),
        retry: top.retry.or_else(|| base.retry.clone()),
        delay_before_retry: top
            .delay_before_retry
            .or_else(|| base.delay_before_retry.clone()),
        warmup: top.warmup.or_else(|| base.warmup.clone()),
    }
}

fn forward_method(n: &Node, d: &mut Diagnostics) -> Option<Spanned<ForwardMethod>> {
    let Some(w) = n.args.first() else {
        d.error(
            n.span(),
            format!("'{}': expected NAT, DR or TUN", n.name.text),
        );
        return None;
    };
    let method = match w.text.as_str() {
        "NAT" => ForwardMethod::Nat,
        "DR" => ForwardMethod::Dr,
        "TUN" => {
            let mut tunnel = TunnelType::Ipip;
            let mut checksum = None;
            let mut args = n.args[1..].iter();
            while let Some(a) = args.next() {
                match a.text.as_str() {
                    "type" => match args.next().map(|t| t.text.as_str()) {
                        Some("ipip") => tunnel = TunnelType::Ipip,
                        Some("gre") => tunnel = TunnelType::Gre,
                        Some("gue") => {
                            let port = match (args.next(), args.next()) {
                                (Some(p), Some(v)) if p.text == "port" => {
                                    integer::<u16>("gue port", v, 1, 65535, d)?.value
                                }
                                _ => {
                                    d.error(&a.span, "'TUN type gue': expected 'port N'");
                                    return None;
                                }
                            };
                            tunnel = TunnelType::Gue { port };
                        }
                        other => {
                            d.error(
                                &a.span,
                                format!(
                                    "'TUN type': expected ipip, gue or gre, found '{}'",
                                    other.unwrap_or("")
                                ),
                            );
                            return None;
                        }
                    },
                    "nocsum" => checksum = Some(TunnelChecksum::NoCsum),
                    "csum" => checksum = Some(TunnelChecksum::Csum),
                    "remcsum" => checksum = Some(TunnelChecksum::RemCsum),
                    other => {
                        d.error(
                            &a.span,
                            format!("'{}': unexpected '{other}' after TUN", n.name.text),
                        );
                        return None;
                    }
                }
            }
            ForwardMethod::Tun { tunnel, checksum }
        }
        other => {
            d.error(
                &w.span,
                format!(
                    "'{}': expected NAT, DR or TUN, found '{other}'",
                    n.name.text
                ),
            );
            return None;
        }
    };
    Some(Spanned::new(method, w.span.clone()))
}

/// Handles `delay_loop`, `connect_timeout`, `retry`, `delay_before_retry`,
/// `warmup` (and the deprecated `nb_get_retry`); false when not one of them.
fn handle_timing(t: &mut InheritedTiming, n: &Node, context: &str, d: &mut Diagnostics) -> bool {
    let name = n.name.text.as_str();
    if name != "nb_get_retry" && name.eq_ignore_ascii_case("nb_get_retry") {
        // Seen in the wild (`Nb_get_retry`); the author clearly meant retry.
        d.warning(
            n.span(),
            format!("'{name}': keywords are case-sensitive and real keepalived ignores this line; read as 'retry' (deprecated spelling of it is 'nb_get_retry')"),
        );
        set_opt(&mut t.retry, int_arg(n, 0, 1_000_000, d));
        return true;
    }
    match name {
        "delay_loop" => set_opt(&mut t.delay_loop, timer(n, d)),
        "connect_timeout" => set_opt(&mut t.connect_timeout, timer(n, d)),
        "retry" => set_opt(&mut t.retry, int_arg(n, 0, 1_000_000, d)),
        "nb_get_retry" => {
            let note = if matches!(context, "HTTP_GET" | "SSL_GET") {
                String::new()
            } else {
                format!(" (real keepalived accepts it only in HTTP_GET/SSL_GET and ignores it in {context})")
            };
            d.warning(
                n.span(),
                format!("'nb_get_retry' is deprecated; read as 'retry'{note}"),
            );
            set_opt(&mut t.retry, int_arg(n, 0, 1_000_000, d));
        }
        "delay_before_retry" => set_opt(&mut t.delay_before_retry, timer(n, d)),
        "warmup" => set_opt(&mut t.warmup, timer(n, d)),
        _ => return false,
    }
    true
}

const TIMING_KEYWORDS: [&str; 5] = [
    "delay_loop",
    "connect_timeout",
    "retry",
    "delay_before_retry",
    "warmup",
];

static VIRTUAL_SERVER: &[Kw<VsBuilder>] = &[
    kw("ip_family", |b, n, d| {
        let Some(w) = single(n, d, "inet or inet6") else {
            return;
        };
        b.vs.ip_family = match w.text.as_str() {
            "inet" => Some(AddressFamily::Inet),
            "inet6" => Some(AddressFamily::Inet6),
            other => {
                d.error(
                    &w.span,
                    format!("'ip_family': expected inet or inet6, found '{other}'"),
                );
                return;
            }
        }
    }),
    kw("lb_algo", |b, n, d| {
        b.lb_algo =
            Some(scheduler(n, d).unwrap_or_else(|| Spanned::new(Scheduler::Wlc, n.span().clone())))
    }),
    kw("lvs_sched", |b, n, d| {
        b.lb_algo =
            Some(scheduler(n, d).unwrap_or_else(|| Spanned::new(Scheduler::Wlc, n.span().clone())))
    }),
    kw("lb_kind", |b, n, d| {
        b.lb_kind = Some(
            forward_method(n, d)
                .unwrap_or_else(|| Spanned::new(ForwardMethod::Nat, n.span().clone())),
        )
    }),
    kw("lvs_method", |b, n, d| {
        b.lb_kind = Some(
            forward_method(n, d)
                .unwrap_or_else(|| Spanned::new(ForwardMethod::Nat, n.span().clone())),
        )
    }),
    kw("persistence_timeout", |b, n, d| {
        b.vs.persistence_timeout = match n.args.first() {
            // keepalived: the keyword alone means 360 s.
            None => Some(Spanned::new(360, n.span().clone())),
            Some(w) => integer("persistence_timeout", w, 1, i64::from(u32::MAX), d),
        }
    }),
    kw("persistence_granularity", |b, n, d| {
        set_opt(&mut b.vs.persistence_granularity, ip_arg(n, d))
    }),
    kw("persistence_engine", |b, n, d| {
        set_opt(
            &mut b.vs.persistence_engine,
            string(n, d, "an engine name (sip)"),
        )
    }),
    kw("protocol", |b, n, d| {
        let Some(w) = single(n, d, "TCP, UDP or SCTP") else {
            return;
        };
        let p = match w.text.to_ascii_uppercase().as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => {
                d.error(
                    &w.span,
                    format!("'protocol': expected TCP, UDP or SCTP, found '{}'", w.text),
                );
                return;
            }
        };
        b.protocol = Some(Spanned::new(p, w.span.clone()));
    }),
    kw("ops", |b, n, d| b.vs.flags.ops = flag(n, d).value),
    kw("sh-port", |b, n, d| b.vs.flags.sh_port = flag(n, d).value),
    kw("sh-fallback", |b, n, d| {
        b.vs.flags.sh_fallback = flag(n, d).value
    }),
    kw("mh-port", |b, n, d| b.vs.flags.mh_port = flag(n, d).value),
    kw("mh-fallback", |b, n, d| {
        b.vs.flags.mh_fallback = flag(n, d).value
    }),
    kw("flag-1", |b, n, d| b.vs.flags.flag_1 = flag(n, d).value),
    kw("flag-2", |b, n, d| b.vs.flags.flag_2 = flag(n, d).value),
    kw("flag-3", |b, n, d| b.vs.flags.flag_3 = flag(n, d).value),
    kw("hashed", |b, n, d| b.vs.flags.hashed = flag(n, d).value),
    kw("ha_suspend", |b, n, d| b.vs.ha_suspend = flag(n, d)),
    kw("virtualhost", |b, n, d| {
        set_opt(&mut b.vs.virtualhost, string(n, d, "a host name"))
    }),
    kw("alpha", |b, n, d| b.vs.alpha = boolean(n, d)),
    kw("omega", |b, n, d| b.vs.omega = boolean(n, d)),
    kw("quorum", |b, n, d| {
        set(&mut b.vs.quorum, int_arg(n, 1, i64::from(u32::MAX), d))
    }),
    kw("hysteresis", |b, n, d| {
        set(&mut b.vs.hysteresis, int_arg(n, 0, i64::from(u32::MAX), d))
    }),
    kw("quorum_up", |b, n, d| {
        set_opt(&mut b.vs.quorum_up, script(n, d))
    }),
    kw("quorum_down", |b, n, d| {
        set_opt(&mut b.vs.quorum_down, script(n, d))
    }),
    kw("sorry_server", |b, n, d| {
        let Some(a) = n.args.first() else {
            d.error(n.span(), "'sorry_server': expected IP [PORT]");
            return;
        };
        let Some(addr) = ip_word("sorry_server", a, d) else {
            return;
        };
        let port = match n.args.get(1) {
            Some(p) => match integer::<u16>("sorry_server port", p, 0, 65535, d) {
                Some(p) => Some(p.value),
                None => return,
            },
            None => None,
        };
        b.vs.sorry_server = Some(SorryServer { addr, port });
    }),
    kw("sorry_server_inhibit", |b, n, d| {
        b.vs.sorry_server_inhibit = boolean(n, d)
    }),
    kw("sorry_server_lvs_method", |b, n, d| {
        set_opt(&mut b.vs.sorry_server_lvs_method, forward_method(n, d))
    }),
    kw("inhibit_on_failure", |b, n, d| {
        b.vs.inhibit_on_failure = boolean(n, d)
    }),
    kw("smtp_alert", |b, n, d| b.vs.smtp_alert = boolean(n, d)),
    kw("real_server", |b, n, d| {
        if let Some(rs) = real_server(n, d) {
            b.real_servers.push(rs);
        }
    }),
];

fn scheduler(n: &Node, d: &mut Diagnostics) -> Option<Spanned<Scheduler>> {
    let w = single(n, d, "a scheduler name")?;
    match Scheduler::ALL.iter().find(|(name, _)| *name == w.text) {
        Some((_, s)) => Some(Spanned::new(*s, w.span.clone())),
        None => {
            let names: Vec<&str> = Scheduler::ALL.iter().map(|(n, _)| *n).collect();
            d.error(
                &w.span,
                format!(
                    "'{}': unknown scheduler '{}'; expected one of {}",
                    n.name.text,
                    w.text,
                    names.join(" ")
                ),
            );
            None
        }
    }
}

fn virtual_server(n: &Node, d: &mut Diagnostics) -> Option<VsBuilder> {
    let key = match n.args.first().map(|w| w.text.as_str()) {
        Some("fwmark") => {
            let Some(m) = n.args.get(1) else {
                d.error(n.span(), "virtual_server fwmark: expected a mark number");
                return None;
            };
            VsKey::Fwmark(integer(
                "virtual_server fwmark",
                m,
                1,
                i64::from(u32::MAX),
                d,
            )?)
        }
        Some("group") => {
            let Some(g) = n.args.get(1) else {
                d.error(
                    n.span(),
                    "virtual_server group: expected a virtual_server_group name",
                );
                return None;
            };
            VsKey::Group(Spanned::new(g.text.clone(), g.span.clone()))
        }
        Some(_) => {
            let addr = ip_word("virtual_server", &n.args[0], d)?;
            let port = match n.args.get(1) {
                Some(p) => integer("virtual_server port", p, 0, 65535, d)?,
                None => Spanned::new(0, n.args[0].span.clone()),
            };
            VsKey::Address { addr, port }
        }
        None => {
            d.error(
                n.span(),
                "virtual_server: expected IP PORT, 'fwmark N' or 'group NAME'",
            );
            return None;
        }
    };
    fn dv<T>(v: T) -> Spanned<T> {
        Spanned::default_value(v)
    }
    let mut b = VsBuilder {
        vs: VirtualServer {
            key,
            ip_family: None,
            delay_loop: dv(Duration::from_secs(60)),
            lb_algo: dv(Scheduler::Wlc),
            lb_kind: dv(ForwardMethod::Nat),
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            protocol: dv(Protocol::Udp),
            flags: ServiceFlags::default(),
            ha_suspend: dv(false),
            virtualhost: None,
            alpha: dv(false),
            omega: dv(false),
            quorum: dv(1),
            hysteresis: dv(0),
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            sorry_server_inhibit: dv(false),
            sorry_server_lvs_method: None,
            inhibit_on_failure: dv(false),
            smtp_alert: dv(false),
            timing: InheritedTiming::default(),
            real_servers: Vec::new(),
        },
        span: n.span().clone(),
        delay_loop: None,
        lb_algo: None,
        lb_kind: None,
        protocol: None,
        real_servers: Vec::new(),
    };
    let table = VIRTUAL_SERVER;
    for child in block(n, d) {
        if handle_timing(&mut b.vs.timing, child, "virtual_server", d) {
            if child.name.text == "delay_loop" {
                b.delay_loop = b.vs.timing.delay_loop.take();
            }
            continue;
        }
        match table.iter().find(|k| k.name == child.name.text) {
            Some(k) => (k.handler)(&mut b, child, d),
            None => report_unknown(
                "virtual_server",
                child,
                table.iter().map(|k| k.name).chain(TIMING_KEYWORDS),
                d,
            ),
        }
    }
    Some(b)
}

static REAL_SERVER: &[Kw<RsBuilder>] = &[
    kw("weight", |b, n, d| {
        set(&mut b.rs.weight, int_arg(n, 0, 65535, d))
    }),
    kw("lvs_method", |b, n, d| {
        set_opt(&mut b.rs.lvs_method, forward_method(n, d))
    }),
    kw("uthreshold", |b, n, d| {
        set_opt(&mut b.rs.uthreshold, int_arg(n, 0, i64::from(u32::MAX), d))
    }),
    kw("lthreshold", |b, n, d| {
        set_opt(&mut b.rs.lthreshold, int_arg(n, 0, i64::from(u32::MAX), d))
    }),
    kw("notify_up", |b, n, d| {
        set_opt(&mut b.rs.notify_up, script(n, d).map(Box::new))
    }),
    kw("notify_down", |b, n, d| {
        set_opt(&mut b.rs.notify_down, script(n, d).map(Box::new))
    }),
    kw("inhibit_on_failure", |b, n, d| {
        b.inhibit_on_failure = Some(boolean(n, d))
    }),
    kw("alpha", |b, n, d| b.alpha = Some(boolean(n, d))),
    kw("virtualhost", |b, n, d| {
        set_opt(&mut b.rs.virtualhost, string(n, d, "a host name"))
    }),
    kw("smtp_alert", |b, n, d| b.rs.smtp_alert = boolean(n, d)),
];

const CHECKER_KEYWORDS: [&str; 9] = [
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
];

fn real_server(n: &Node, d: &mut Diagnostics) -> Option<RsBuilder> {
    let Some(a) = n.args.first() else {
        d.error(n.span(), "real_server: expected IP [PORT]");
        return None;
    };
    let addr = ip_word("real_server", a, d)?;
    let port = match n.args.get(1) {
        Some(p) => Some(integer("real_server port", p, 0, 65535, d)?),
        None => None,
    };
    fn dv<T>(v: T) -> Spanned<T> {
        Spanned::default_value(v)
    }
    let mut b = RsBuilder {
        rs: RealServer {
            addr,
            port,
            weight: dv(1),
            lvs_method: None,
            uthreshold: None,
            lthreshold: None,
            notify_up: None,
            notify_down: None,
            inhibit_on_failure: dv(false),
            alpha: dv(false),
            virtualhost: None,
            smtp_alert: dv(false),
            timing: InheritedTiming::default(),
            checkers: Vec::new(),
        },
        inhibit_on_failure: None,
        alpha: None,
        checkers: Vec::new(),
    };
    let table = REAL_SERVER;
    for child in block(n, d) {
        if handle_timing(&mut b.rs.timing, child, "real_server", d) {
            continue;
        }
        if CHECKER_KEYWORDS.contains(&child.name.text.as_str()) {
            if let Some(c) = checker(child, d) {
                b.checkers.extend(c.expand_hosts());
            }
            continue;
        }
        match table.iter().find(|k| k.name == child.name.text) {
            Some(k) => (k.handler)(&mut b, child, d),
            None => report_unknown(
                "real_server",
                child,
                table
                    .iter()
                    .map(|k| k.name)
                    .chain(TIMING_KEYWORDS)
                    .chain(CHECKER_KEYWORDS),
                d,
            ),
        }
    }
    Some(b)
}

fn new_http() -> HttpCheck {
    fn dv<T>(v: T) -> Spanned<T> {
        Spanned::default_value(v)
    }
    HttpCheck {
        urls: Vec::new(),
        virtualhost: None,
        http_protocol: dv(HttpProtocol::V1_0),
        fast_recovery: dv(false),
        enable_sni: dv(false),
        sni_name: None,
        tls_compliant: dv(false),
    }
}

fn checker(n: &Node, d: &mut Diagnostics) -> Option<CheckerBuilder> {
    fn dv<T>(v: T) -> Spanned<T> {
        Spanned::default_value(v)
    }
    let kind = match n.name.text.as_str() {
        "TCP_CHECK" => CheckerKind::Tcp,
        "HTTP_GET" => CheckerKind::Http(Box::new(new_http())),
        "SSL_GET" => CheckerKind::Ssl(Box::new(new_http())),
        "MISC_CHECK" => CheckerKind::Misc(Box::new(MiscCheck {
            path: Script::default(),
            timeout: dv(Duration::ZERO),
            dynamic: dv(false),
        })),
        "SMTP_CHECK" => CheckerKind::Smtp(Box::new(SmtpCheck { helo_name: None })),
        "DNS_CHECK" => CheckerKind::Dns(Box::new(DnsCheck {
            query_type: dv(DnsType::Soa),
            name: dv(".".to_string()),
        })),
        "UDP_CHECK" => CheckerKind::Udp(Box::new(UdpCheck {
            payload: None,
            require_reply: None,
            min_reply_length: dv(0),
            max_reply_length: dv(255),
        })),
        "PING_CHECK" => CheckerKind::Ping,
        _ => CheckerKind::File(Box::new(FileCheck {
            track_file: dv(String::new()),
            weight: None,
            weight_reverse: dv(false),
        })),
    };
    let mut c = CheckerBuilder {
        kind,
        target: CheckTarget::default(),
        timing: InheritedTiming::default(),
        alpha: None,
        log_all_failures: dv(false),
        misc_timeout: None,
        span: n.span().clone(),
        smtp_hosts: Vec::new(),
    };
    let context = n.name.text.clone();
    let common = CHECKER_COMMON;
    let specific = specific_checker_table(&c.kind);
    for child in block(n, d) {
        if handle_timing(&mut c.timing, child, &context, d) {
            continue;
        }
        let name = child.name.text.as_str();
        match common
            .iter()
            .chain(specific.iter())
            .find(|k| k.name == name)
        {
            Some(k) => (k.handler)(&mut c, child, d),
            None => report_unknown(
                &context,
                child,
                common
                    .iter()
                    .chain(specific.iter())
                    .map(|k| k.name)
                    .chain(TIMING_KEYWORDS)
                    .chain(["nb_get_retry"]),
                d,
            ),
        }
    }
    match &c.kind {
        CheckerKind::Misc(m) if m.path.command.value.is_empty() => {
            d.error(n.span(), "MISC_CHECK: missing required keyword 'misc_path'");
            return None;
        }
        CheckerKind::File(f) if f.track_file.value.is_empty() => {
            d.error(
                n.span(),
                "FILE_CHECK: missing required keyword 'track_file'",
            );
            return None;
        }
        CheckerKind::Http(h) | CheckerKind::Ssl(h) if h.urls.is_empty() => {
            d.error(
                n.span(),
                format!("{context}: at least one 'url {{ path ... }}' block is required"),
            );
            return None;
        }
        _ => {}
    }
    Some(c)
}

static CHECKER_COMMON: &[Kw<CheckerBuilder>] = &[
    kw("connect_ip", |c, n, d| {
        set_opt(&mut c.target.connect_ip, ip_arg(n, d))
    }),
    kw("connect_port", |c, n, d| {
        set_opt(&mut c.target.connect_port, int_arg(n, 0, 65535, d))
    }),
    kw("bindto", |c, n, d| {
        set_opt(&mut c.target.bindto, ip_arg(n, d))
    }),
    kw("bind_if", |c, n, d| {
        set_opt(&mut c.target.bind_if, string(n, d, "an interface name"))
    }),
    kw("bind_port", |c, n, d| {
        set_opt(&mut c.target.bind_port, int_arg(n, 0, 65535, d))
    }),
    kw("fwmark", |c, n, d| {
        set_opt(&mut c.target.fwmark, int_arg(n, 0, i64::from(u32::MAX), d))
    }),
    kw("alpha", |c, n, d| c.alpha = Some(boolean(n, d))),
    kw("log_all_failures", |c, n, d| {
        c.log_all_failures = boolean(n, d)
    }),
];

fn smtp_host(n: &Node, d: &mut Diagnostics) -> SmtpHost {
    // Parsed into a scratch checker: a host block takes the keywords every
    // checker has, with the same argument checks.
    let mut scratch = CheckerBuilder {
        kind: CheckerKind::Tcp,
        target: CheckTarget::default(),
        timing: InheritedTiming::default(),
        alpha: None,
        log_all_failures: Spanned::default_value(false),
        misc_timeout: None,
        span: n.span().clone(),
        smtp_hosts: Vec::new(),
    };
    for child in block(n, d) {
        if handle_timing(&mut scratch.timing, child, "SMTP_CHECK host", d) {
            continue;
        }
        match CHECKER_COMMON.iter().find(|k| k.name == child.name.text) {
            Some(k) => (k.handler)(&mut scratch, child, d),
            None => report_unknown(
                "SMTP_CHECK host",
                child,
                CHECKER_COMMON.iter().map(|k| k.name).chain(TIMING_KEYWORDS),
                d,
            ),
        }
    }
    let log_all_failures =
        (!scratch.log_all_failures.span.is_default()).then_some(scratch.log_all_failures);
    SmtpHost {
        target: scratch.target,
        timing: scratch.timing,
        alpha: scratch.alpha,
        log_all_failures,
        span: n.span().clone(),
    }
}

fn http_of(c: &mut CheckerBuilder) -> Option<&mut HttpCheck> {
    match &mut c.kind {
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => Some(h),
        _ => None,
    }
}

fn specific_checker_table(kind: &CheckerKind) -> Vec<Kw<CheckerBuilder>> {
    match kind {
        CheckerKind::Http(_) | CheckerKind::Ssl(_) => {
            let mut t: Vec<Kw<CheckerBuilder>> = vec![
                kw("url", |c, n, d| {
                    if let (Some(u), Some(h)) = (url(n, d), http_of(c)) {
                        h.urls.push(u);
                    }
                }),
                kw("virtualhost", |c, n, d| {
                    let v = string(n, d, "a host name");
                    if let Some(h) = http_of(c) {
                        set_opt(&mut h.virtualhost, v);
                    }
                }),
                kw("http_protocol", |c, n, d| {
                    let Some(w) = single(n, d, "1.0, 1.0C or 1.1") else {
                        return;
                    };
                    let p = match w.text.as_str() {
                        "1.0" => HttpProtocol::V1_0,
                        "1.0C" | "1.0c" => HttpProtocol::V1_0C,
                        "1.1" => HttpProtocol::V1_1,
                        other => {
                            d.error(
                                &w.span,
                                format!(
                                    "'http_protocol': expected 1.0, 1.0C or 1.1, found '{other}'"
                                ),
                            );
                            return;
                        }
                    };
                    if let Some(h) = http_of(c) {
                        h.http_protocol = Spanned::new(p, w.span.clone());
                    }
                }),
                kw("fast_recovery", |c, n, d| {
                    let v = boolean(n, d);
                    if let Some(h) = http_of(c) {
                        h.fast_recovery = v;
                    }
                }),
            ];
            if matches!(kind, CheckerKind::Ssl(_)) {
                t.push(kw("enable_sni", |c, n, d| {
                    let v = boolean(n, d);
                    if let Some(h) = http_of(c) {
                        h.enable_sni = v;
                    }
                }));
                t.push(kw("sni_name", |c, n, d| {
                    let v = string(n, d, "a server name");
                    if let Some(h) = http_of(c) {
                        set_opt(&mut h.sni_name, v);
                    }
                }));
                t.push(kw("tls_compliant", |c, n, d| {
                    let v = boolean(n, d);
                    if let Some(h) = http_of(c) {
                        h.tls_compliant = v;
                    }
                }));
            }
            t
        }
        CheckerKind::Misc(_) => vec![
            kw("misc_path", |c, n, d| {
                let s = script(n, d);
                if let (CheckerKind::Misc(m), Some(s)) = (&mut c.kind, s) {
                    m.path = s;
                }
            }),
            kw("misc_timeout", |c, n, d| {
                set_opt(&mut c.misc_timeout, timer(n, d))
            }),
            kw("misc_dynamic", |c, n, d| {
                let v = flag(n, d);
                if let CheckerKind::Misc(m) = &mut c.kind {
                    m.dynamic = v;
                }
            }),
            kw("user", |c, n, d| {
                let u = single_or_pair(n, d);
                if let (CheckerKind::Misc(m), Some(u)) = (&mut c.kind, u) {
                    m.path.run_as = Some(u.value);
                }
            }),
        ],
        CheckerKind::Smtp(_) => vec![
            kw("helo_name", |c, n, d| {
                let v = string(n, d, "a host name");
                if let CheckerKind::Smtp(s) = &mut c.kind {
                    set_opt(&mut s.helo_name, v);
                }
            }),
            kw("host", |c, n, d| {
                d.warning(
                    n.span(),
                    "SMTP_CHECK 'host' blocks are deprecated: each is checked as an SMTP_CHECK of its own (the outer block too when it sets a connection option), as keepalived does; write them as SMTP_CHECK blocks",
                );
                c.smtp_hosts.push(smtp_host(n, d));
            }),
        ],
        CheckerKind::Dns(_) => {
            vec![
                kw("type", |c, n, d| {
                    let Some(w) = single(n, d, "a DNS record type") else {
                        return;
                    };
                    let t = match w.text.to_ascii_uppercase().as_str() {
                        "A" => DnsType::A,
                        "NS" => DnsType::Ns,
                        "CNAME" => DnsType::Cname,
                        "SOA" => DnsType::Soa,
                        "MX" => DnsType::Mx,
                        "TXT" => DnsType::Txt,
                        "AAAA" => DnsType::Aaaa,
                        _ => {
                            d.error(&w.span, format!("'type': expected A, NS, CNAME, SOA, MX, TXT or AAAA, found '{}'", w.text));
                            return;
                        }
                    };
                    if let CheckerKind::Dns(q) = &mut c.kind {
                        q.query_type = Spanned::new(t, w.span.clone());
                    }
                }),
                kw("name", |c, n, d| {
                    let v = string(n, d, "a domain name");
                    if let (CheckerKind::Dns(q), Some(v)) = (&mut c.kind, v) {
                        q.name = v;
                    }
                }),
            ]
        }
        CheckerKind::Udp(_) => vec![
            kw("payload", |c, n, d| {
                let Some(w) = single(n, d, "hexadecimal bytes") else {
                    return;
                };
                let bytes = hex_bytes("payload", w, d);
                if let (CheckerKind::Udp(u), Some(b)) = (&mut c.kind, bytes) {
                    u.payload = Some(Spanned::new(b, w.span.clone()));
                }
            }),
            kw("require_reply", |c, n, d| {
                let expected = match n.args.first() {
                    Some(w) => match hex_bytes("require_reply", w, d) {
                        Some(b) => Some(b),
                        None => return,
                    },
                    None => None,
                };
                if let CheckerKind::Udp(u) = &mut c.kind {
                    u.require_reply = Some(Spanned::new(expected, n.span().clone()));
                }
            }),
            kw("min_reply_length", |c, n, d| {
                let v = int_arg(n, 0, 65535, d);
                if let CheckerKind::Udp(u) = &mut c.kind {
                    set(&mut u.min_reply_length, v);
                }
            }),
            kw("max_reply_length", |c, n, d| {
                let v = int_arg(n, 0, 65535, d);
                if let CheckerKind::Udp(u) = &mut c.kind {
                    set(&mut u.max_reply_length, v);
                }
            }),
        ],
        CheckerKind::File(_) => vec![
            kw("track_file", |c, n, d| {
                let v = string(n, d, "a track_file name");
                if let (CheckerKind::File(f), Some(v)) = (&mut c.kind, v) {
                    f.track_file = v;
                }
            }),
            // The man page documents it; 2.2.7 does not know it, and a
            // non-zero weight adjusts the real server's weight without it
            // (check/file.rs). Read, so that its argument is checked.
            kw("dynamic", |_, n, d| {
                flag(n, d);
            }),
            kw("weight", |c, n, d| {
                let Some(w) = n.args.first() else {
                    d.error(n.span(), "'weight': expected an integer [reverse]");
                    return;
                };
                let v = integer("weight", w, -254, 254, d);
                if let CheckerKind::File(f) = &mut c.kind {
                    f.weight = v;
                    f.weight_reverse = Spanned::new(
                        n.args.get(1).is_some_and(|r| r.text == "reverse"),
                        w.span.clone(),
                    );
                }
            }),
        ],
        CheckerKind::Tcp | CheckerKind::Ping => Vec::new(),
    }
}

fn url(n: &Node, d: &mut Diagnostics) -> Option<Url> {
    let mut u = Url {
        path: Spanned::default_value(String::new()),
        digest: None,
        status_code: Vec::new(),
        virtualhost: None,
    };
    for line in block(n, d) {
        match line.name.text.as_str() {
            "path" => set(&mut u.path, string(line, d, "a URL path")),
            "digest" => {
                let Some(w) = single(line, d, "an MD5 digest (32 hex digits)") else {
                    continue;
                };
                let bytes = hex_bytes("digest", w, d).filter(|b| b.len() == 16);
                match bytes.and_then(|b| <[u8; 16]>::try_from(b).ok()) {
                    Some(digest) => u.digest = Some(Spanned::new(digest, w.span.clone())),
                    None => d.error(
                        &w.span,
                        format!(
                            "'digest': expected an MD5 digest of 32 hex digits, found '{}'",
                            w.text
                        ),
                    ),
                }
            }
            "status_code" => {
                if line.args.is_empty() {
                    d.error(
                        line.span(),
                        "'status_code': expected a code, a range A-B or a class such as 2xx",
                    );
                }
                for w in &line.args {
                    match status_range(&w.text) {
                        Some(r) => u.status_code.push(Spanned::new(r, w.span.clone())),
                        None => d.error(
                            &w.span,
                            format!("'status_code': expected a code 100..599, a range A-B or a class such as 2xx, found '{}'", w.text),
                        ),
                    }
                }
            }
            "virtualhost" => set_opt(&mut u.virtualhost, string(line, d, "a host name")),
            _ => report_unknown(
                "url",
                line,
                ["path", "digest", "status_code", "virtualhost"].into_iter(),
                d,
            ),
        }
    }
    if u.path.value.is_empty() {
        d.error(n.span(), "url: missing required keyword 'path'");
        return None;
    }
    Some(u)
}

fn status_range(text: &str) -> Option<StatusRange> {
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
        let c = class.parse::<u16>().ok().filter(|c| (1..=5).contains(c))?;
        return Some(StatusRange {
            first: c * 100,
            last: c * 100 + 99,
        });
    }
    if let Some((a, b)) = text.split_once('-') {
        let (first, last) = (code(a)?, code(b)?);
        return (first <= last).then_some(StatusRange { first, last });
    }
    let c = code(text)?;
    Some(StatusRange { first: c, last: c })
}
