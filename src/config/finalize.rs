//! From the keyword tree's raw result to the effective configuration:
//! keepalived's defaults and inheritance filled in, cross references checked.

use super::diag::{Diagnostics, Spanned};
use super::keywords::{CheckerBuilder, InstanceBuilder, RsBuilder, TopLevel, VsBuilder};
use super::model::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

pub fn finalize(top: TopLevel, hostname: &str, d: &mut Diagnostics) -> Config {
    let TopLevel {
        mut config,
        instances,
    } = top;
    if config.global.router_id.value.is_empty() {
        config.global.router_id = Spanned::default_value(hostname.to_string());
    }
    config.instances = instances
        .into_iter()
        .filter_map(|b| finalize_instance(b, &config, d))
        .collect();
    check_instances(&mut config, d);
    check_sync_groups(&config, d);
    check_virtual_servers(&config, d);
    config
}

fn finalize_instance(
    b: InstanceBuilder,
    config: &Config,
    d: &mut Diagnostics,
) -> Option<VrrpInstance> {
    let g = &config.global;
    let mut inst = b.inst;
    let name = inst.name.value.clone();
    if !b.has_vrid {
        d.error(
            &b.span,
            format!(
                "vrrp_instance '{name}': missing required keyword 'virtual_router_id' (1..255)"
            ),
        );
        return None;
    }
    if b.vmac_last_octet_from_vrid {
        if let Some(mac) = inst.use_vmac.as_mut().and_then(|v| v.value.mac.as_mut()) {
            mac[5] = inst.virtual_router_id.value;
        }
    }
    if inst.interface.is_none() && inst.unicast_peer.is_empty() {
        d.error(
            &b.span,
            format!("vrrp_instance '{name}': missing required keyword 'interface'"),
        );
        return None;
    }
    let has_v4 = inst
        .virtual_ipaddress
        .iter()
        .any(|a| a.addr.value.is_ipv4());
    let has_v6 = inst
        .virtual_ipaddress
        .iter()
        .any(|a| a.addr.value.is_ipv6());
    if has_v4 && has_v6 {
        d.error(
            &b.span,
            format!("vrrp_instance '{name}': virtual_ipaddress mixes IPv4 and IPv6; put the other family in virtual_ipaddress_excluded"),
        );
        return None;
    }
    if inst.virtual_ipaddress.is_empty() {
        d.warning(
            &b.span,
            format!("vrrp_instance '{name}': no virtual_ipaddress"),
        );
    }

    // Version: the instance's, else the global one; IPv6 needs VRRPv3.
    inst.version = b.version.unwrap_or_else(|| g.vrrp_version.clone());
    if has_v6 && inst.version.value != 3 {
        if !inst.version.span.is_default() {
            d.warning(
                &inst.version.span,
                format!("vrrp_instance '{name}': IPv6 requires VRRP version 3; using version 3"),
            );
        }
        inst.version = Spanned::default_value(3);
    }

    // RFC 3768: v2 advertisement intervals are whole seconds; RFC 5798: v3
    // intervals are centiseconds, 1..4095.
    let advert = inst.advert_int.value;
    if inst.version.value == 2 {
        let secs = advert.as_secs_f64();
        if secs < 1.0 || secs.fract() != 0.0 {
            let rounded = secs.round().clamp(1.0, 255.0) as u64;
            d.warning(
                &inst.advert_int.span,
                format!("vrrp_instance '{name}': VRRPv2 advert_int must be whole seconds 1..255; using {rounded}"),
            );
            inst.advert_int.value = Duration::from_secs(rounded);
        }
    } else {
        let centis = advert.as_millis() / 10;
        if !(1..=4095).contains(&centis) {
            d.error(
                &inst.advert_int.span,
                format!("vrrp_instance '{name}': VRRPv3 advert_int must be 0.01..40.95 seconds"),
            );
            return None;
        }
        inst.advert_int.value = Duration::from_millis(u64::try_from(centis * 10).unwrap_or(1000));
    }

    inst.strict_mode = b.strict.unwrap_or_else(|| g.vrrp_strict.clone());
    let strict = inst.strict_mode.value;
    let owner = inst.priority.value == 255;
    inst.accept = match b.accept {
        Some(a) => a,
        None => Spanned::default_value(!strict || owner),
    };
    inst.lower_prio_no_advert = b
        .lower_prio_no_advert
        .unwrap_or_else(|| Spanned::default_value(g.vrrp_lower_prio_no_advert.value || strict));
    inst.higher_prio_send_advert = b
        .higher_prio_send_advert
        .unwrap_or_else(|| g.vrrp_higher_prio_send_advert.clone());
    inst.garp_master_delay = b
        .garp_master_delay
        .unwrap_or_else(|| g.vrrp_garp_master_delay.clone());
    inst.garp_master_repeat = b
        .garp_master_repeat
        .unwrap_or_else(|| g.vrrp_garp_master_repeat.clone());
    inst.garp_master_refresh = b
        .garp_master_refresh
        .unwrap_or_else(|| g.vrrp_garp_master_refresh.clone());
    inst.garp_master_refresh_repeat = b
        .garp_master_refresh_repeat
        .unwrap_or_else(|| g.vrrp_garp_master_refresh_repeat.clone());
    inst.garp_lower_prio_delay = b
        .garp_lower_prio_delay
        .unwrap_or_else(|| g.vrrp_garp_lower_prio_delay.clone());
    inst.garp_lower_prio_repeat = b
        .garp_lower_prio_repeat
        .unwrap_or_else(|| g.vrrp_garp_lower_prio_repeat.clone());
    inst.down_timer_adverts = b
        .down_timer_adverts
        .unwrap_or_else(|| g.vrrp_down_timer_adverts.clone());
    inst.skip_check_adv_addr.value |= g.vrrp_skip_check_adv_addr.value;
    inst.check_unicast_src.value |= g.vrrp_check_unicast_src.value;

    if let Some(auth) = &inst.authentication {
        if inst.version.value == 3 {
            d.warning(
                &auth.auth_type.span,
                format!("vrrp_instance '{name}': VRRPv3 has no authentication; ignored"),
            );
            inst.authentication = None;
        } else if strict {
            d.warning(
                &auth.auth_type.span,
                format!("vrrp_instance '{name}': strict mode forbids authentication; ignored"),
            );
            inst.authentication = None;
        }
    }
    if strict && !inst.unicast_peer.is_empty() {
        d.error(
            &inst.unicast_peer[0].addr.span,
            format!("vrrp_instance '{name}': strict mode forbids unicast_peer"),
        );
        return None;
    }
    if strict && !inst.preempt_delay.span.is_default() {
        d.warning(
            &inst.preempt_delay.span,
            format!("vrrp_instance '{name}': strict mode forbids preempt_delay; ignored"),
        );
        inst.preempt_delay = Spanned::default_value(Duration::ZERO);
    }
    if inst.nopreempt.value && inst.state.value == InitialState::Master {
        d.warning(
            &inst.nopreempt.span,
            format!("vrrp_instance '{name}': nopreempt only works with 'state BACKUP' (keepalived ignores it for MASTER)"),
        );
    }
    Some(inst)
}

fn check_instances(config: &mut Config, d: &mut Diagnostics) {
    let mut names = HashSet::new();
    let mut vrids: HashMap<(String, bool, u8), String> = HashMap::new();
    let scripts: HashSet<&str> = config
        .vrrp_scripts
        .iter()
        .map(|s| s.name.value.as_str())
        .collect();
    let files: HashSet<&str> = config
        .track_files
        .iter()
        .map(|f| f.name.value.as_str())
        .collect();
    for inst in &mut config.instances {
        let name = inst.name.value.clone();
        if !names.insert(name.clone()) {
            d.error(
                &inst.name.span,
                format!("vrrp_instance '{name}' is defined twice"),
            );
        }
        if let Some(ifname) = &inst.interface {
            let key = (
                ifname.value.clone(),
                inst.is_ipv6(),
                inst.virtual_router_id.value,
            );
            if let Some(other) = vrids.insert(key, name.clone()) {
                d.error(
                    &inst.virtual_router_id.span,
                    format!(
                        "vrrp_instance '{name}': virtual_router_id {} on {} is already used by '{other}'",
                        inst.virtual_router_id.value, ifname.value
                    ),
                );
            }
        }
        inst.track_script.retain(|t| {
            let known = scripts.contains(t.name.value.as_str());
            if !known {
                d.warning(
                    &t.name.span,
                    format!(
                        "track_script '{}' is not a defined vrrp_script; ignored",
                        t.name.value
                    ),
                );
            }
            known
        });
        inst.track_file.retain(|t| {
            let known = files.contains(t.name.value.as_str());
            if !known {
                d.warning(
                    &t.name.span,
                    format!(
                        "track_file '{}' is not a defined track_file; ignored",
                        t.name.value
                    ),
                );
            }
            known
        });
    }
}

fn check_sync_groups(config: &Config, d: &mut Diagnostics) {
    let instances: HashSet<&str> = config
        .instances
        .iter()
        .map(|i| i.name.value.as_str())
        .collect();
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for g in &config.sync_groups {
        for m in &g.members {
            if !instances.contains(m.value.as_str()) {
                d.error(
                    &m.span,
                    format!(
                        "vrrp_sync_group '{}': no vrrp_instance named '{}'",
                        g.name.value, m.value
                    ),
                );
            } else if let Some(other) = member_of.insert(m.value.as_str(), g.name.value.as_str()) {
                d.error(
                    &m.span,
                    format!(
                        "vrrp_sync_group '{}': instance '{}' is already in sync group '{other}'",
                        g.name.value, m.value
                    ),
                );
            }
        }
        if g.members.len() == 1 {
            d.warning(
                &g.name.span,
                format!("vrrp_sync_group '{}' has only one member", g.name.value),
            );
        }
    }
}

pub fn finalize_vs(b: VsBuilder, d: &mut Diagnostics) -> VirtualServer {
    let mut vs = b.vs;
    let what = vs.key.label();
    // keepalived's surprising defaults, with the warnings it gives.
    match b.delay_loop {
        Some(v) => vs.delay_loop = v,
        None => d.warning(
            &b.span,
            format!("{what}: no delay_loop; using keepalived's default of 60 seconds"),
        ),
    }
    match b.lb_algo {
        Some(v) => vs.lb_algo = v,
        None => d.warning(
            &b.span,
            format!("{what}: no lb_algo; using keepalived's default scheduler 'wlc'"),
        ),
    }
    match b.lb_kind {
        Some(v) => vs.lb_kind = v,
        None => d.warning(
            &b.span,
            format!("{what}: no lb_kind; using keepalived's default 'NAT'"),
        ),
    }
    match b.protocol {
        Some(v) => vs.protocol = v,
        None if matches!(vs.key, VsKey::Fwmark(_)) => {}
        None => d.warning(
            &b.span,
            format!("{what}: no protocol; keepalived defaults to UDP (add 'protocol TCP' for a TCP service)"),
        ),
    }
    correct_sorry_server_port(&mut vs, d);
    let group_granularity = match vs.key {
        VsKey::Group(_) => vs.persistence_granularity.take(),
        _ => None,
    };
    if let Some(g) = group_granularity {
        // Seen in keepalived 2.2.7's table: its group services get no
        // netmask. Dropped here too, so that the table is the same.
        d.warning(
            &g.span,
            format!("{what}: keepalived does not apply persistence_granularity to a group's services; ignored"),
        );
    }
    if let (VsKey::Fwmark(_), None) = (&vs.key, &vs.ip_family) {
        if let Some(rs) = b
            .real_servers
            .first()
            .filter(|rs| rs.rs.addr.value.is_ipv6())
        {
            // Kept (the family follows the real servers, desired.rs), but a
            // config that relies on it does not run under keepalived.
            d.warning(
                &rs.rs.addr.span,
                format!("{what}: no ip_family, so keepalived 2.2.7 takes the service as IPv4 and skips IPv6 real servers (and then the service); it is IPv6 here, from the real servers: add 'ip_family inet6'"),
            );
        }
    }
    vs.timing.delay_loop = Some(vs.delay_loop.clone());
    vs.real_servers = b
        .real_servers
        .into_iter()
        .map(|rs| finalize_rs(rs, &vs, d))
        .collect();
    vs.real_servers.shrink_to_fit();
    vs.timing.delay_loop = None;
    vs
}

fn finalize_rs(b: RsBuilder, vs: &VirtualServer, d: &mut Diagnostics) -> RealServer {
    let mut rs = b.rs;
    rs.inhibit_on_failure = b
        .inhibit_on_failure
        .unwrap_or_else(|| vs.inhibit_on_failure.clone());
    rs.alpha = b.alpha.unwrap_or_else(|| vs.alpha.clone());
    correct_real_server_port(&mut rs, vs, d);
    if let (VsKey::Address { addr, .. }, false) =
        (&vs.key, rs.addr.value.is_ipv4() == vs_is_ipv4(&vs.key))
    {
        if !matches!(vs.lb_kind.value, ForwardMethod::Tun { .. }) {
            d.error(
                &rs.addr.span,
                format!(
                    "real_server {}: address family differs from the virtual server's {}",
                    rs.addr.value, addr.value
                ),
            );
        }
    }
    rs.checkers = b
        .checkers
        .into_iter()
        .map(|c| finalize_checker(c, &rs, vs))
        .collect();
    // `collect` reuses the builders' (larger) allocation in place.
    rs.checkers.shrink_to_fit();
    rs
}

/// The name keepalived's warnings give a forwarding method that cannot
/// change ports: `None` for NAT, which can.
fn fixed_port_method(method: &ForwardMethod) -> Option<&'static str> {
    match method {
        ForwardMethod::Nat => None,
        ForwardMethod::Dr => Some("DR"),
        ForwardMethod::Tun { .. } => Some("TUN"),
    }
}

/// keepalived 2.2.7 (checked against its IPVS table): DR and TUN forward
/// the packet unchanged, so a real server of an address service gets the
/// service's port and one of a fwmark service loses its port, with a
/// warning; a real server without a port gets the service's port. The
/// checkers then probe the corrected port too.
fn correct_real_server_port(rs: &mut RealServer, vs: &VirtualServer, d: &mut Diagnostics) {
    let method = rs.lvs_method.as_ref().unwrap_or(&vs.lb_kind);
    let fixed = fixed_port_method(&method.value);
    let what = vs.key.label();
    match (&vs.key, rs.port.take()) {
        (VsKey::Address { port: vport, .. }, None) => {
            rs.port = Some(Spanned::default_value(vport.value));
        }
        (VsKey::Address { port: vport, .. }, Some(p)) => match fixed {
            Some(name) if p.value != vport.value => {
                d.warning(
                    &p.span,
                    format!(
                        "{what}: real_server {} port {} differs from the service's with {name} forwarding, which cannot change ports; using {}, as keepalived does",
                        rs.addr.value, p.value, vport.value
                    ),
                );
                rs.port = Some(Spanned::new(vport.value, p.span));
            }
            _ => rs.port = Some(p),
        },
        (VsKey::Fwmark(_), Some(p)) => match fixed {
            Some(name) if p.value != 0 => d.warning(
                &p.span,
                format!(
                    "{what}: real_server {} port {}: {name} forwarding of a fwmark service cannot change ports; port cleared, as keepalived does",
                    rs.addr.value, p.value
                ),
            ),
            _ => rs.port = Some(p),
        },
        (VsKey::Group(_), Some(p)) => {
            if let (Some(name), true) = (fixed, p.value != 0) {
                d.warning(
                    &p.span,
                    format!(
                        "{what}: real_server {} port {}: {name} forwarding cannot change ports; each service of the group uses its own port (0 for fwmark), as keepalived does",
                        rs.addr.value, p.value
                    ),
                );
            }
            rs.port = Some(p);
        }
        (_, None) => {}
    }
}

/// [`correct_real_server_port`] for the sorry server, with its own
/// `sorry_server_lvs_method`.
fn correct_sorry_server_port(vs: &mut VirtualServer, d: &mut Diagnostics) {
    let method = vs.sorry_server_lvs_method.as_ref().unwrap_or(&vs.lb_kind);
    let Some(name) = fixed_port_method(&method.value) else {
        return;
    };
    let what = vs.key.label();
    let Some(sorry) = vs.sorry_server.as_mut() else {
        return;
    };
    let wanted = match &vs.key {
        VsKey::Address { port, .. } => Some(port.value),
        VsKey::Fwmark(_) => None,
        VsKey::Group(_) => {
            if let Some(p) = sorry.port.filter(|&p| p != 0) {
                d.warning(
                    &sorry.addr.span,
                    format!(
                        "{what}: sorry_server {} port {p}: {name} forwarding cannot change ports; each service of the group uses its own port (0 for fwmark), as keepalived does",
                        sorry.addr.value
                    ),
                );
            }
            return;
        }
    };
    if let Some(p) = sorry.port.filter(|&p| Some(p) != wanted && p != 0) {
        let now = wanted.map_or_else(|| "cleared".to_string(), |w| format!("set to {w}"));
        d.warning(
            &sorry.addr.span,
            format!(
                "{what}: sorry_server {} port {p}: {name} forwarding cannot change ports; port {now}, as keepalived does",
                sorry.addr.value
            ),
        );
        sorry.port = wanted;
    }
}

fn vs_is_ipv4(key: &VsKey) -> bool {
    match key {
        VsKey::Address { addr, .. } => addr.value.is_ipv4(),
        _ => true,
    }
}

fn finalize_checker(c: CheckerBuilder, rs: &RealServer, vs: &VirtualServer) -> Checker {
    fn pick<T: Clone>(levels: [&Option<Spanned<T>>; 3], default: T) -> Spanned<T> {
        levels
            .into_iter()
            .find_map(|l| l.clone())
            .unwrap_or_else(|| Spanned::default_value(default))
    }
    let (ct, rt, vt) = (&c.timing, &rs.timing, &vs.timing);
    let delay_loop = pick(
        [&ct.delay_loop, &rt.delay_loop, &vt.delay_loop],
        vs.delay_loop.value,
    );
    // keepalived's per-checker defaults (keepalived.conf(5), check_*.c).
    let (default_retry, default_delay_before_retry) = match c.kind {
        CheckerKind::Http(_) | CheckerKind::Ssl(_) => (1, Duration::from_secs(3)),
        CheckerKind::Dns(_) => (3, delay_loop.value),
        CheckerKind::Misc(_) | CheckerKind::File(_) => (0, Duration::from_secs(1)),
        _ => (1, Duration::from_secs(1)),
    };
    let timing = CheckTiming {
        connect_timeout: pick(
            [
                &ct.connect_timeout,
                &rt.connect_timeout,
                &vt.connect_timeout,
            ],
            Duration::from_secs(5),
        ),
        retry: pick([&ct.retry, &rt.retry, &vt.retry], default_retry),
        delay_before_retry: pick(
            [
                &ct.delay_before_retry,
                &rt.delay_before_retry,
                &vt.delay_before_retry,
            ],
            default_delay_before_retry,
        ),
        warmup: pick([&ct.warmup, &rt.warmup, &vt.warmup], delay_loop.value),
        delay_loop,
    };
    let mut kind = c.kind;
    if let CheckerKind::Misc(m) = &mut kind {
        m.timeout = c
            .misc_timeout
            .unwrap_or_else(|| Spanned::default_value(timing.delay_loop.value));
    }
    Checker {
        kind,
        target: c.target,
        timing,
        alpha: c.alpha,
        log_all_failures: c.log_all_failures,
        span: c.span,
    }
}

fn check_virtual_servers(config: &Config, d: &mut Diagnostics) {
    let groups: HashSet<&str> = config
        .vs_groups
        .iter()
        .map(|g| g.name.value.as_str())
        .collect();
    let files: HashSet<&str> = config
        .track_files
        .iter()
        .map(|f| f.name.value.as_str())
        .collect();
    let mut seen = HashSet::new();
    for vs in &config.virtual_servers {
        if let VsKey::Group(g) = &vs.key {
            if !groups.contains(g.value.as_str()) {
                d.error(
                    &g.span,
                    format!(
                        "virtual_server group '{}': no virtual_server_group with that name",
                        g.value
                    ),
                );
            }
        }
        let label = vs.key.label();
        let key = format!("{label} {:?}", vs.protocol.value);
        if !seen.insert(key) {
            d.error(&key_span(&vs.key), format!("{label} is defined twice"));
        }
        for rs in &vs.real_servers {
            for c in &rs.checkers {
                if let CheckerKind::File(f) = &c.kind {
                    if !files.contains(f.track_file.value.as_str()) {
                        d.error(
                            &f.track_file.span,
                            format!("FILE_CHECK: no track_file named '{}'", f.track_file.value),
                        );
                    }
                }
            }
        }
    }
}

fn key_span(key: &VsKey) -> super::diag::Span {
    match key {
        VsKey::Address { addr, .. } => addr.span.clone(),
        VsKey::Fwmark(m) => m.span.clone(),
        VsKey::Group(g) => g.span.clone(),
    }
}
