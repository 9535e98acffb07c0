//! The reliability suite (issue 17): hostile inputs generated from a seed, fed to the real
//! binary the way users and attackers would, with every run checked for panics, hangs,
//! wrong exit codes, lost or clobbered files and peak memory.
//!
//! Quick mode (the default, run by `cargo test` and CI): a few hundred cases in about a
//! minute. Long mode, for the figures in the README:
//!
//! ```text
//! HALLMARK_RELIABILITY_CASES=8000 cargo test --release -p hallmark-cli --test reliability -- --nocapture
//! ```
//!
//! `HALLMARK_RELIABILITY_SEED` picks another seed. Peak memory per run comes from
//! `/usr/bin/time -f %M` (GNU time, the resident-set high-water mark the kernel reports);
//! where it is missing, memory is not measured and the report says so.
#![allow(clippy::unwrap_used)]

mod cases;
mod harness;

use harness::{Outcome, Suite};

/// The documented bound on one run's peak memory at the default limits (README, `--max-memory`).
const MEMORY_BOUND_KB: u64 = 1024 * 1024;

#[test]
fn hostile_inputs_never_panic_hang_lose_files_or_exceed_the_memory_bound() {
    let n: usize = std::env::var("HALLMARK_RELIABILITY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("HALLMARK_RELIABILITY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(17);
    let mut suite = Suite::new(seed);
    cases::mutated_images(&mut suite, n);
    cases::bombs(&mut suite);
    cases::hostile_keys_and_configs(&mut suite);
    cases::hostile_text(&mut suite, (n / 40).max(4));
    cases::kills(&mut suite, (n / 60).max(3));
    cases::concurrency(&mut suite);
    let report = suite.report();
    eprintln!("{report}");
    // Kept for the figures in the README (`target/tmp/reliability-report.txt`).
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability-report.txt"),
        report.to_string(),
    );
    let failures: Vec<&Outcome> = suite.failures().collect();
    assert!(
        failures.is_empty(),
        "{} failing runs; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    if let Some(peak) = report.peak_kb {
        assert!(
            peak <= MEMORY_BOUND_KB,
            "peak memory {peak} KB over the {MEMORY_BOUND_KB} KB bound ({})",
            report.peak_case
        );
    }
}
