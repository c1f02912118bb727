//! A fixed amount of agent work, for instruction counts: `BATCHES` batches
//! of 4,096 hand-built HTTP items (16 hosts) through one runtime running
//! the agent in `AGENT` (a path; the count-per-host agent of the agents
//! benchmark when absent). Wall-clock time on a shared VM moves by ±20 %
//! from run to run; instructions counted under callgrind do not, so two
//! builds compare exactly (BENCHMARKS.md, "Agents"):
//!
//! ```text
//! cargo build --release -p scripting --example item_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/item_loop 42
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/item_loop 2
//! ```
//!
//! The difference of the two totals over 163,840 items is the cost of one
//! item: copying it out of the template, the hook, dropping it. It moves
//! by about ±30 instructions from run to run (start-up work that depends
//! on timing, such as the TSC calibration, does not cancel exactly).
//!
//! Usage: `item_loop [BATCHES] [AGENT]`

#[global_allocator]
static ALLOCATOR: dataplane::alloc::Allocator = dataplane::alloc::Allocator;

use scripting::testkit::{host_items, runtime_with, COUNT_PER_HOST};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(12);
    let source = match args.next() {
        Some(path) => std::fs::read_to_string(path)?,
        None => COUNT_PER_HOST.to_owned(),
    };
    let mut rt = runtime_with(&source)?;
    let template = host_items(4096);
    for _ in 0..batches {
        rt.on_items_captured(template.clone());
    }
    println!("{} items through {} hook calls", batches * template.len(), rt.counters().hook_calls);
    Ok(())
}
