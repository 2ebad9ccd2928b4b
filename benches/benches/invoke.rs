//! `invoke/<workload>`: one whole `braid_interpreter::invoke` of the measured step of
//! small representative workloads of ../shared/bench, on the exact inputs braid-sim's
//! replay gives that step (built, and checked against `expected`, before any timing).
//! `braid bench` measures the same step from the command line.

use std::time::Duration;

use braid_benches::bench_step;
use braid_sim::driver::DRIVER_STACK_BYTES;
use criterion::{Criterion, Throughput};

/// Workloads from the fixed cost of an invoke to a few milliseconds.
const WORKLOADS: [&str; 9] = [
    "null",
    "call",
    "chat",
    "dashboard",
    "network-explore",
    "hop-50",
    "long-data",
    "canon-lens-1000",
    "fold-stream-1000",
];

fn invoke(c: &mut Criterion) {
    for workload in WORKLOADS {
        let record = bench_step(workload);
        let mut group = c.benchmark_group(format!("invoke/{workload}"));
        let data_bytes = record.prev_data.len() + record.current_data.len();
        if data_bytes > 0 {
            group.throughput(Throughput::Bytes(data_bytes as u64));
        }
        group.bench_function(format!("step-{}", record.step), |b| {
            b.iter_with_large_drop(|| {
                braid_interpreter::invoke(
                    std::hint::black_box(&record.script),
                    &record.prev_data,
                    &record.current_data,
                    &record.params,
                    &record.call_results,
                )
            })
        });
        group.finish();
    }
}

/// `criterion_main!`, but on a thread with the driver's big stack: the interpreter
/// recurses as deep as the script nests. Short measurements keep
/// `cargo bench --bench invoke` to a minute or two.
fn main() {
    std::thread::Builder::new()
        .name("invoke-bench".into())
        .stack_size(DRIVER_STACK_BYTES)
        .spawn(|| {
            let mut criterion = Criterion::default()
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2))
                .sample_size(30)
                .configure_from_args();
            invoke(&mut criterion);
            criterion.final_summary();
        })
        .expect("the bench thread starts")
        .join()
        .expect("the benchmarks do not panic");
}
