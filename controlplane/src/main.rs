//! The `skua` binary.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    controlplane::cli::main()
}
