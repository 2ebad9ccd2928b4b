//! Parses one benchmark script many times, for profilers (perf, callgrind):
//! `cargo run --release -p braid-benches --example parse_loop -- parser-10000-100 200`.

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "parser-10000-100".to_owned());
    let iters: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let script = braid_benches::bench_script(&name);
    let start = std::time::Instant::now();
    for _ in 0..iters {
        let ast = braid_grammar::parse(&script).expect("benchmark scripts parse");
        std::hint::black_box(&ast);
    }
    let per = start.elapsed() / iters;
    let mb_s = script.len() as f64 / per.as_secs_f64() / 1e6;
    println!(
        "{name}: {} bytes, {per:?} per parse, {mb_s:.1} MB/s",
        script.len()
    );
}
