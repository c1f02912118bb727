//! The `skua` binary.

#![forbid(unsafe_code)]

/// mimalloc rather than the system allocator (`dataplane::alloc` says why).
#[global_allocator]
static ALLOCATOR: dataplane::alloc::Allocator = dataplane::alloc::Allocator;

fn main() -> std::process::ExitCode {
    controlplane::cli::main()
}
