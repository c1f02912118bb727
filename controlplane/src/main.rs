//! The `skua` binary.

#![forbid(unsafe_code)]

/// mimalloc rather than the system allocator: items are built on the
/// dataplane cores and freed on the script cores, many small allocations
/// each, and glibc's free of them (consolidation, cross-thread chunks) cost
/// more per item than running the agent's hook (`BENCHMARKS.md`, agents).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    controlplane::cli::main()
}
