//! keepalived-rs: a keepalived-compatible VRRP, IPVS and health-check daemon.
//!
//! The library holds all logic; `main.rs` is a thin shell. Protocol and
//! configuration code is sans-IO; only `daemon/` touches file descriptors.

pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod net;
pub mod netlink;
pub mod run;
pub mod vrrp;
