/*! LVS / IPVS: virtual servers from the configuration, kept in the kernel.

- [`ids`]: identities of virtual and real servers that survive a reload
  (the checker engine's, so a verdict names the same server here), printed
  the way keepalived prints them (`[10.0.0.100]:tcp:80`, `FWM 5`).
- [`desired`]: the sans-IO [`State`]: configuration + checker verdicts +
  VIP ownership -> the desired table, with keepalived's quorum, sorry
  server, inhibit_on_failure, alpha and ha_suspend rules, and the
  [`Notice`]s (log lines in keepalived's wording, quorum scripts).
- [`table`]: a table as data and the pure [`diff`] that yields the fewest
  IPVS commands.
- [`manager`]: the [`Manager`] (the daemon's IPVS subsystem) that owns the
  kernel connection, adopts what already matches at start, applies diffs
  as pipelined netlink batches, resyncs after errors and removes its
  services at shutdown (unless `-I`).

Log lines and their order follow keepalived 2.2.7 as observed in the test
VM (`Gained quorum 1+0=1 <= 2 for VS [10.0.0.100]:tcp:80`, `Disabling
service [10.0.0.11]:tcp:80 of VS [10.0.0.100]:tcp:80`, `Adding sorry server
... to VS ...` then `Removing alive servers from the pool for VS ...`).

The wire format is in [`crate::netlink::ipvs`].
*/

pub mod desired;
pub mod ids;
pub mod manager;
pub mod table;

pub use desired::{Notice, State};
pub use ids::{ProtocolId, RsId, VsId};
pub use manager::{owns_key, Backend, Host, Manager, ManagerOptions, Opener};
pub use table::{diff, table_from_dump, Op, Table, TableService};
