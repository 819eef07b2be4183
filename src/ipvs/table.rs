//! An IPVS table as plain data, and the pure diff that turns "what the
//! kernel has" into "what we want" with the fewest commands.
//!
//! The diff only touches services it is told it manages; everything else
//! in the kernel (another tool's services) is left alone.

use std::collections::{BTreeMap, BTreeSet};

use crate::netlink::ipvs::{
    Dest, DestKey, DestParams, ForwardMethod, Request, Service, ServiceKey, ServiceParams, Tunnel,
    IP_VS_SVC_F_HASHED,
};

/// One service and its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableService {
    pub params: ServiceParams,
    pub dests: BTreeMap<DestKey, DestParams>,
}

/// A whole IPVS table, ordered so diffs are deterministic.
pub type Table = BTreeMap<ServiceKey, TableService>;

/// Build a table from a kernel dump (counters are dropped).
pub fn table_from_dump(dump: Vec<(Service, Vec<Dest>)>) -> Table {
    dump.into_iter()
        .map(|(service, dests)| {
            (
                service.key,
                TableService {
                    params: service.params,
                    dests: dests.into_iter().map(|d| (d.key, d.params)).collect(),
                },
            )
        })
        .collect()
}

/// One IPVS command of a reconciliation. Each carries the whole service
/// (and destination), as the kernel request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddService(Service),
    UpdateService(Service),
    DelService(Service),
    AddDest(Service, Dest),
    UpdateDest(Service, Dest),
    DelDest(Service, Dest),
}

impl Op {
    /// The netlink request that carries out this operation.
    pub fn request(&self) -> Request<'_> {
        match self {
            Op::AddService(s) => Request::NewService(s),
            Op::UpdateService(s) => Request::SetService(s),
            Op::DelService(s) => Request::DelService(s),
            Op::AddDest(s, d) => Request::NewDest(s, d),
            Op::UpdateDest(s, d) => Request::SetDest(s, d),
            Op::DelDest(s, d) => Request::DelDest(s, d),
        }
    }

    /// The service the operation is about.
    pub fn service(&self) -> &ServiceKey {
        match self {
            Op::AddService(s)
            | Op::UpdateService(s)
            | Op::DelService(s)
            | Op::AddDest(s, _)
            | Op::UpdateDest(s, _)
            | Op::DelDest(s, _) => &s.key,
        }
    }

    /// Apply the operation to an in-memory table, as the kernel would.
    /// Returns false when the kernel would refuse it (EEXIST / ESRCH / ENOENT).
    pub fn apply_to(&self, table: &mut Table) -> bool {
        match self {
            Op::AddService(s) => {
                if table.contains_key(&s.key) {
                    return false;
                }
                table.insert(
                    s.key,
                    TableService {
                        params: s.params.clone(),
                        dests: BTreeMap::new(),
                    },
                );
                true
            }
            Op::UpdateService(s) => match table.get_mut(&s.key) {
                Some(service) => {
                    service.params = s.params.clone();
                    true
                }
                None => false,
            },
            Op::DelService(s) => table.remove(&s.key).is_some(),
            Op::AddDest(s, d) => match table.get_mut(&s.key) {
                Some(service) if !service.dests.contains_key(&d.key) => {
                    service.dests.insert(d.key, d.params);
                    true
                }
                _ => false,
            },
            Op::UpdateDest(s, d) => {
                match table.get_mut(&s.key).and_then(|t| t.dests.get_mut(&d.key)) {
                    Some(params) => {
                        *params = d.params;
                        true
                    }
                    None => false,
                }
            }
            Op::DelDest(s, d) => table
                .get_mut(&s.key)
                .is_some_and(|t| t.dests.remove(&d.key).is_some()),
        }
    }
}

/// Service parameters as far as they matter for equality: the kernel adds
/// `IP_VS_SVC_F_HASHED` to every service it holds.
fn same_service(desired: &ServiceParams, actual: &ServiceParams) -> bool {
    desired.scheduler == actual.scheduler
        && desired.pe_name == actual.pe_name
        && desired.flags & !IP_VS_SVC_F_HASHED == actual.flags & !IP_VS_SVC_F_HASHED
        && desired.timeout == actual.timeout
        && desired.netmask == actual.netmask
}

/// Destination parameters as far as they matter for equality: tunnel
/// settings mean nothing unless tunnelling, and the kernel reports a
/// destination on a local address as `IP_VS_CONN_F_LOCALNODE` whatever
/// method it was added with.
fn same_dest(desired: &DestParams, actual: &DestParams) -> bool {
    let tunnel = |p: &DestParams| {
        if p.forward == ForwardMethod::Tunnel {
            p.tunnel
        } else {
            Tunnel::default()
        }
    };
    let forward_ok = desired.forward == actual.forward || actual.forward == ForwardMethod::Local;
    forward_ok
        && desired.weight == actual.weight
        && desired.u_threshold == actual.u_threshold
        && desired.l_threshold == actual.l_threshold
        && tunnel(desired) == tunnel(actual)
}

/// The operations that turn `actual` into `desired` for every service in
/// `desired` or in `managed`; services outside both are left alone.
///
/// Order: new and changed services with their destinations first (within
/// a service, additions and updates before removals, so a pool never
/// empties on the way, e.g. when the sorry server replaces the real
/// servers), then removed services.
pub fn diff(desired: &Table, actual: &Table, managed: &BTreeSet<ServiceKey>) -> Vec<Op> {
    let mut ops = Vec::new();
    for (key, want) in desired {
        let service = Service::new(*key, want.params.clone());
        let have_dests = match actual.get(key) {
            None => {
                ops.push(Op::AddService(service.clone()));
                None
            }
            Some(have) => {
                if !same_service(&want.params, &have.params) {
                    ops.push(Op::UpdateService(service.clone()));
                }
                Some(&have.dests)
            }
        };
        for (dest_key, params) in &want.dests {
            match have_dests.and_then(|d| d.get(dest_key)) {
                None => ops.push(Op::AddDest(service.clone(), Dest::new(*dest_key, *params))),
                Some(have) if !same_dest(params, have) => ops.push(Op::UpdateDest(
                    service.clone(),
                    Dest::new(*dest_key, *params),
                )),
                Some(_) => {}
            }
        }
        if let Some(have_dests) = have_dests {
            for (dest_key, params) in have_dests {
                if !want.dests.contains_key(dest_key) {
                    ops.push(Op::DelDest(service.clone(), Dest::new(*dest_key, *params)));
                }
            }
        }
    }
    for (key, have) in actual {
        if managed.contains(key) && !desired.contains_key(key) {
            ops.push(Op::DelService(Service::new(*key, have.params.clone())));
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::ipvs::{Family, IpProtocol};

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: IpProtocol::TCP,
            addr: "10.0.0.100".parse().unwrap(),
            port,
        }
    }

    fn svc(port: u16) -> Service {
        Service::new(key(port), ServiceParams::new("rr", Family::Inet))
    }

    fn dest_key(last: u8) -> DestKey {
        DestKey {
            addr: format!("10.0.1.{last}").parse().unwrap(),
            port: 80,
        }
    }

    fn dest(weight: u32) -> DestParams {
        DestParams {
            forward: ForwardMethod::DirectRoute,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
        }
    }

    fn service(dests: &[(u8, u32)]) -> TableService {
        TableService {
            params: ServiceParams::new("rr", Family::Inet),
            dests: dests.iter().map(|&(d, w)| (dest_key(d), dest(w))).collect(),
        }
    }

    fn table(services: Vec<(u16, TableService)>) -> Table {
        services.into_iter().map(|(p, s)| (key(p), s)).collect()
    }

    fn apply(mut actual: Table, ops: &[Op]) -> Table {
        for op in ops {
            assert!(op.apply_to(&mut actual), "kernel would refuse {op:?}");
        }
        actual
    }

    #[test]
    fn empty_kernel_gets_everything() {
        let desired = table(vec![(80, service(&[(1, 1), (2, 1)]))]);
        let ops = diff(&desired, &Table::new(), &BTreeSet::new());
        assert_eq!(ops.len(), 3);
        assert!(matches!(ops[0], Op::AddService(_)));
        assert_eq!(apply(Table::new(), &ops), desired);
    }

    #[test]
    fn identical_tables_need_nothing() {
        let desired = table(vec![(80, service(&[(1, 1), (2, 1)]))]);
        let mut actual = desired.clone();
        // The kernel marks its services hashed; that is not a difference.
        for s in actual.values_mut() {
            s.params.flags |= IP_VS_SVC_F_HASHED;
        }
        assert_eq!(diff(&desired, &actual, &BTreeSet::new()), vec![]);
    }

    #[test]
    fn one_weight_change_is_one_update() {
        let actual = table(vec![(80, service(&[(1, 1), (2, 1), (3, 1)]))]);
        let desired = table(vec![(80, service(&[(1, 1), (2, 5), (3, 1)]))]);
        let ops = diff(&desired, &actual, &BTreeSet::new());
        assert_eq!(
            ops,
            vec![Op::UpdateDest(svc(80), Dest::new(dest_key(2), dest(5)))]
        );
    }

    #[test]
    fn additions_before_removals_within_a_service() {
        let actual = table(vec![(80, service(&[(1, 1)]))]);
        let desired = table(vec![(80, service(&[(9, 1)]))]);
        let ops = diff(&desired, &actual, &BTreeSet::new());
        assert_eq!(
            ops,
            vec![
                Op::AddDest(svc(80), Dest::new(dest_key(9), dest(1))),
                Op::DelDest(svc(80), Dest::new(dest_key(1), dest(1))),
            ]
        );
    }

    #[test]
    fn scheduler_change_updates_the_service_only() {
        let actual = table(vec![(80, service(&[(1, 1)]))]);
        let mut desired = actual.clone();
        desired.get_mut(&key(80)).unwrap().params.scheduler = "wlc".into();
        let ops = diff(&desired, &actual, &BTreeSet::new());
        assert_eq!(ops.len(), 1);
        assert!(matches!(&ops[0], Op::UpdateService(s) if s.params.scheduler == "wlc"));
    }

    #[test]
    fn foreign_services_are_left_alone_managed_ones_removed() {
        let actual = table(vec![(80, service(&[(1, 1)])), (443, service(&[(1, 1)]))]);
        let desired = Table::new();
        assert_eq!(diff(&desired, &actual, &BTreeSet::new()), vec![]);
        let managed = BTreeSet::from([key(443)]);
        assert_eq!(
            diff(&desired, &actual, &managed),
            vec![Op::DelService(svc(443))]
        );
    }

    #[test]
    fn local_node_and_unused_tunnel_fields_are_not_differences() {
        let desired = table(vec![(80, service(&[(1, 1)]))]);
        let mut actual = desired.clone();
        let params = actual
            .get_mut(&key(80))
            .unwrap()
            .dests
            .get_mut(&dest_key(1))
            .unwrap();
        params.forward = ForwardMethod::Local;
        params.tunnel.port = 7;
        assert_eq!(diff(&desired, &actual, &BTreeSet::new()), vec![]);
    }

    /// Any actual table converges in one diff, and a second diff is empty.
    #[test]
    fn converges_from_arbitrary_tables() {
        let mut seed = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let random_table = |next: &mut dyn FnMut(u64) -> u64| {
            let mut t = Table::new();
            for port in 0..next(4) as u16 {
                let dests: Vec<(u8, u32)> = (0..next(5))
                    .map(|_| (next(6) as u8, next(3) as u32))
                    .collect();
                let mut s = service(&dests);
                if next(2) == 0 {
                    s.params.scheduler = "wrr".into();
                }
                t.insert(key(port), s);
            }
            t
        };
        for _ in 0..500 {
            let desired = random_table(&mut next);
            let actual = random_table(&mut next);
            let managed: BTreeSet<_> = actual.keys().copied().collect();
            let ops = diff(&desired, &actual, &managed);
            let result = apply(actual, &ops);
            assert_eq!(result, desired);
            assert_eq!(diff(&desired, &result, &managed), vec![]);
        }
    }
}
