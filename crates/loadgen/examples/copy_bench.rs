//! Loopback throughput of `hasocks_net::copy::pump`, buffer copy vs splice(2) ([`hasocks_loadgen::pump`]).
//!
//! `cargo run --release -p hasocks-loadgen --example copy_bench -- [MiB per stream] [streams] [buf KiB]`
//! With MiB = 0 it measures short sessions instead: `streams` sessions of 1 KiB each way.

use hasocks_loadgen::pump::{run, PumpLoad};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), hasocks_loadgen::pump::PumpError> {
    let mib = arg(1, 1024);
    let streams = arg(2, 1) as usize;
    let buf_kib = arg(3, 32) as usize;
    hasocks_net::copy::set_buffer_size(buf_kib * 1024);
    for splice in [false, true, false, true] {
        let name = if splice { "splice" } else { "copy" };
        if mib == 0 {
            let r = run(PumpLoad::Short { sessions: streams }, splice)?;
            println!(
                "{name:6} sessions={streams} {:6.0} sessions/s wall, {:6.1} us pump CPU per session",
                streams as f64 / r.seconds,
                r.cpu_seconds * 1e6 / streams as f64
            );
            continue;
        }
        let r = run(
            PumpLoad::Bulk {
                bytes: mib << 20,
                streams,
            },
            splice,
        )?;
        let total = (mib << 20) as f64 * streams as f64;
        println!(
            "{name:6} streams={streams} buf={buf_kib}KiB {:6.0} MB/s wall, {:6.0} MB per pump CPU-second",
            total / r.seconds / 1e6,
            total / r.cpu_seconds / 1e6
        );
    }
    Ok(())
}
