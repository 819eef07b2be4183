pub mod check;
pub mod script;
pub mod vrrp;
