//! Turns dpdk-sys's pkg-config verdict (`DEP_DPDK_AVAILABLE`) into `cfg(dpdk)`.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(dpdk)");
    if std::env::var("DEP_DPDK_AVAILABLE").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=dpdk");
    }
}
