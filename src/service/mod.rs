pub mod script;
pub mod vrrp;
