//! Finds the system DPDK with pkg-config and compiles the inline-wrapper shim.
//!
//! The probe decides whether the DPDK backend exists at all: with `libdpdk`
//! 22.11 present the shim is compiled and linked, the crate gets
//! `cfg(dpdk)` and dependents see `DEP_DPDK_AVAILABLE=1` (a `links`
//! metadata key); without it (or with `SKUA_NO_DPDK=1`) the crate is empty and
//! skua builds with its pcap-file and AF_PACKET sources only.

use std::env;

/// The DPDK series the committed bindings were generated from.
const SERIES: &str = "22.11";

fn main() {
    println!("cargo:rustc-check-cfg=cfg(dpdk)");
    println!("cargo:rerun-if-env-changed=SKUA_NO_DPDK");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=shim/skua_dpdk.c");
    println!("cargo:rerun-if-changed=shim/skua_dpdk.h");

    if env::var_os("SKUA_NO_DPDK").is_some_and(|v| v != "0") {
        println!("cargo:warning=SKUA_NO_DPDK set: building skua without the DPDK backend");
        println!("cargo:available=0");
        return;
    }

    let lib = match pkg_config::Config::new()
        .atleast_version(SERIES)
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(err) => {
            println!(
                "cargo:warning=libdpdk {SERIES} not found ({}); building skua without the DPDK backend \
                 (install libdpdk-dev for it)",
                first_line(&err.to_string())
            );
            println!("cargo:available=0");
            return;
        }
    };
    if !lib.version.starts_with(SERIES) {
        println!(
            "cargo:warning=libdpdk {} found but the bindings are for {SERIES}.x; \
             building skua without the DPDK backend",
            lib.version
        );
        println!("cargo:available=0");
        return;
    }

    let mut build = cc::Build::new();
    build.file("shim/skua_dpdk.c").include("shim").opt_level(3).warnings(false);
    for path in &lib.include_paths {
        build.include(path);
    }
    // DPDK's pkg-config cflags also carry `-include rte_config.h` and a -march
    // floor; the header includes rte_config.h itself and -march is taken from
    // the cflags so the inline fast path is compiled for the same ISA floor as
    // the libraries.
    for (k, v) in &lib.defines {
        build.define(k, v.as_deref());
    }
    build.flag_if_supported("-march=corei7");
    build.compile("skua_dpdk_shim");

    for path in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", path.display());
    }
    // Link only what skua calls; the PMDs (net_pcap, net_ring, ...) are shared
    // objects EAL loads itself from its driver directory.
    for name in
        ["rte_ethdev", "rte_mbuf", "rte_mempool", "rte_ring", "rte_eal", "rte_kvargs", "rte_net"]
    {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    println!("cargo:rustc-cfg=dpdk");
    println!("cargo:available=1");
    println!("cargo:version={}", lib.version);
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}
