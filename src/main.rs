//! `keepalived` (and `genhash`, the same binary by another name).

fn main() {
    let code = keepalived_rs::app::main(std::env::args_os().collect());
    std::process::exit(code);
}
