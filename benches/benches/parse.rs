//! `parse/<case>`: throughput of `braid_grammar::parse` on the parser workloads of
//! ../shared/bench and the largest script of the corpus. Inputs are generated before
//! any timing starts.

use std::time::Duration;

use braid_benches::{bench_script, corpus_script};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn parse_case(c: &mut Criterion, case: &str, source: &str, big: bool) {
    let mut group = c.benchmark_group(format!("parse/{case}"));
    group.throughput(Throughput::Bytes(source.len() as u64));
    if big {
        // ~112 MiB per iteration: few samples, one iteration each
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(30));
    }
    group.bench_function("parse", |b| {
        b.iter(|| braid_grammar::parse(std::hint::black_box(source)).expect("bench script parses"))
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    for (case, scenario) in [
        ("random-ap-tree-10000", "parser-10000-100"),
        ("calls-10000", "parser-calls-10000-100"),
        ("nest-1000", "nest-1000"),
    ] {
        parse_case(c, case, &bench_script(scenario), false);
    }
    parse_case(
        c,
        "deal-install",
        &corpus_script("fluencelabs+spell/cli__deal_install.air"),
        false,
    );
    parse_case(c, "air-100mb", &bench_script("parser-air-100mb"), true);
}

criterion_group!(benches, parse);
criterion_main!(benches);
