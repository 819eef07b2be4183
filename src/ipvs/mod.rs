/*! LVS / IPVS: virtual servers from the configuration, kept in the kernel.

- [`ids`]: identities of virtual and real servers that survive a reload,
  printed the way keepalived prints them (`[10.0.0.100]:tcp:80`, `FWM 5`).
- [`desired`]: the sans-IO [`State`]: configuration + checker verdicts +
  VIP ownership -> the desired table, with keepalived's quorum, sorry
  server, inhibit_on_failure, alpha and ha_suspend rules, and the
  [`Notice`]s (log lines in keepalived's wording, quorum scripts).
- [`table`]: a table as data and the pure [`diff`] that yields the fewest
  IPVS commands.
- [`manager`]: the [`Manager`] that owns the kernel connection, adopts what
  already matches at start, applies diffs, resyncs after errors and
  removes its services at shutdown (unless `-I`).

The wire format is in [`crate::netlink::ipvs`].
*/

pub mod desired;
pub mod ids;
pub mod manager;
pub mod table;

pub use desired::{Notice, State};
pub use ids::{ProtocolId, RsId, VsId};
pub use manager::{owns_key, Backend, Host, Manager, ManagerOptions};
pub use table::{diff, table_from_dump, Op, Table, TableService};
