//! `braid bench`: times one invoke of a benchmark scenario exactly as FORMAT.md §8.5
//! says (replay and check, then a warm-up, a counting run and N timed runs on the
//! measured step's inputs), or every workload of a folder as a table, optionally side
//! by side with the reference's `oracle bench`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use braid_host::{Backend, BackendError, backend_by_name};
use braid_sim::driver::DRIVER_STACK_BYTES;
use braid_sim::{Difference, KeepInputs, SHOWN_DIFFERENCES, Scenario, StepRecord, diff, run};
use serde_json::{Value, json};

use crate::counting_alloc::peak_heap_growth;

/// Timed runs when neither `--iters` nor the scenario's `bench.iters` says.
const DEFAULT_ITERS: usize = 10;

/// The arguments of `braid bench`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// The scenario file (FORMAT.md §8).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    scenario: Option<PathBuf>,
    /// The measured step (1-based); default: the scenario's `bench.step`.
    #[arg(long, conflicts_with = "all")]
    step: Option<usize>,
    /// Timed runs; default: the scenario's `bench.iters`, else 10. With `--all`, for
    /// every workload.
    #[arg(long)]
    iters: Option<usize>,
    /// Run every `*.json` workload of this folder (sorted) and print a markdown table.
    #[arg(long, value_name = "DIR")]
    all: Option<PathBuf>,
    /// With `--all`: also write each JSON line to this file (the reference's too with
    /// `--oracle`).
    #[arg(long, value_name = "OUT", requires = "all")]
    json: Option<PathBuf>,
    /// With `--all`: add the reference's numbers from this file of `oracle bench` JSON
    /// lines (matched by `scenario`).
    #[arg(
        long,
        value_name = "LINES",
        requires = "all",
        conflicts_with = "oracle"
    )]
    compare: Option<PathBuf>,
    /// With `--all`: run `ORACLE bench WORKLOAD` right after braid on each workload and
    /// compare with its line.
    #[arg(long, value_name = "ORACLE", requires = "all")]
    oracle: Option<PathBuf>,
    /// Time the step even when the replay differs from `expected` (the line then says
    /// `"checked": false`); the differences are still printed on stderr.
    #[arg(long)]
    allow_differences: bool,
    /// Verify arriving data (content ids, signatures) in the timed invokes, as
    /// production peers do. Off by default: the reference's benchmark build signs but
    /// checks nothing, and the scenario's replay has already checked every step.
    #[arg(long)]
    check: bool,
    /// Where `invoke` runs: `native`, or `wasm` (the interpreter's Wasm module under
    /// wasmtime; the heap column then counts the host's heap only, not the module's
    /// linear memory).
    #[arg(long, default_value = "native")]
    backend: String,
}

/// Runs `braid bench`. Exit 0: measured; 1: a replay differs from `expected` (nothing
/// timed for it); errors (exit 2) are returned.
pub(crate) fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let backend = backend_by_name(&args.backend)?;
    if let Some(dir) = &args.all {
        return bench_all(dir, args, backend.as_ref());
    }
    let path = args
        .scenario
        .as_deref()
        .context("give a scenario file or --all DIR")?;
    match measure_file(
        path,
        args.step,
        args.iters,
        args.allow_differences,
        args.check,
        backend.as_ref(),
    )? {
        Measured::Differs { name, differences } => {
            print_differences(&name, &differences);
            Ok(ExitCode::FAILURE)
        }
        Measured::Line {
            mut line,
            differences,
        } => {
            print_differences(&line_text(&line, "scenario"), &differences);
            if let Some(rss) = max_rss_kib() {
                line["process_max_rss_kib"] = rss.into();
            }
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What measuring one scenario gave.
enum Measured {
    /// The §8.5 line; `differences` is empty unless `--allow-differences` let a
    /// scenario that differs be timed.
    Line {
        line: Value,
        differences: Vec<Difference>,
    },
    /// The replay differs from `expected`: nothing was timed.
    Differs {
        name: String,
        differences: Vec<Difference>,
    },
}

/// Steps 1 to 3 of FORMAT.md §8.5 on one scenario file.
fn measure_file(
    path: &Path,
    step: Option<usize>,
    iters: Option<usize>,
    allow_differences: bool,
    check: bool,
    backend: &dyn Backend,
) -> anyhow::Result<Measured> {
    let scenario = Scenario::load(path).with_context(|| path.display().to_string())?;
    let bench = scenario.bench.as_ref();
    let step = step
        .or(bench.map(|b| b.step))
        .with_context(|| format!("{}: no `bench.step`; give --step", scenario.name))?;
    let iters = iters
        .or(bench.and_then(|b| b.iters))
        .unwrap_or(DEFAULT_ITERS);
    if step == 0 || iters == 0 {
        bail!("--step and --iters must be at least 1");
    }

    // 1. Replay, keeping step K's inputs, and compare with `expected`.
    let replay = run(&scenario, KeepInputs::Step(step)).with_context(|| scenario.name.clone())?;
    let steps = replay.transcript.steps.len();
    let differences = match &scenario.expected {
        Some(expected) => diff(
            expected,
            &replay.transcript.to_json(),
            &scenario.ignore_args,
            SHOWN_DIFFERENCES,
        ),
        None => Vec::new(),
    };
    let checked = scenario.expected.is_some() && differences.is_empty();
    if !differences.is_empty() && !allow_differences {
        return Ok(Measured::Differs {
            name: scenario.name,
            differences,
        });
    }
    // 2. The exact inputs of step K.
    let Some(mut record) = replay.records.into_iter().next() else {
        bail!(
            "{}: the run has {steps} steps, so step {step} never ran",
            scenario.name
        );
    };
    drop(replay.transcript);
    record.params.integrity.check = check;

    // 3. Warm-up, counting run, timed runs.
    let timing = time_on_big_stack(&record, iters, backend)?;
    let mut sorted = timing.times.clone();
    sorted.sort();
    let line = json!({
        "impl": match backend.name() {
            "native" => format!("braid {}", env!("CARGO_PKG_VERSION")),
            other => format!("braid {} ({other})", env!("CARGO_PKG_VERSION")),
        },
        "scenario": scenario.name,
        "step": step,
        "peer": record.peer,
        "iters": iters,
        "median_us": micros(median(&sorted)),
        "min_us": micros(sorted[0]),
        "max_us": micros(sorted[sorted.len() - 1]),
        "peak_heap_bytes": timing.peak_heap_bytes,
        "air_bytes": record.script.len(),
        "prev_data_bytes": record.prev_data.len(),
        "current_data_bytes": record.current_data.len(),
        "call_results": record.call_results.len(),
        "call_results_bytes": call_results_bytes(&record),
        "output_data_bytes": timing.output_data_bytes,
        "ret_code": timing.ret_code,
        "checked": checked,
    });
    Ok(Measured::Line { line, differences })
}

/// What the measured runs gave.
struct Timing {
    /// The wall-clock time of each timed run, in order.
    times: Vec<Duration>,
    peak_heap_bytes: usize,
    output_data_bytes: usize,
    ret_code: i32,
}

/// [`time_invoke`] on a thread with the driver's big stack: the interpreter recurses
/// as deep as the script nests.
fn time_on_big_stack(
    record: &StepRecord,
    iters: usize,
    backend: &dyn Backend,
) -> anyhow::Result<Timing> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("braid-bench".into())
            .stack_size(DRIVER_STACK_BYTES)
            .spawn_scoped(scope, || time_invoke(record, iters, backend))
            .context("cannot start the measuring thread")?;
        handle
            .join()
            .map_err(|_| anyhow!("step {}: the interpreter panicked", record.step))?
            .with_context(|| format!("step {}", record.step))
    })
}

/// Runs the interpreter on `record`'s inputs `iters + 2` times: a warm-up, one untimed
/// run counting the heap, then `iters` runs timed around the call alone. The inputs
/// are borrowed as they are (invoke takes slices), so nothing is built per run; each
/// outcome is dropped after its clock stops.
fn time_invoke(
    record: &StepRecord,
    iters: usize,
    backend: &dyn Backend,
) -> Result<Timing, BackendError> {
    let invoke = || {
        backend.invoke(
            &record.script,
            &record.prev_data,
            &record.current_data,
            &record.params,
            &record.call_results,
        )
    };
    let warm = invoke()?;
    // Without checking, the output carries the current peer's signature only (as the
    // reference's), so it equals the replay's (which checked) only with checking.
    if record.params.integrity.check && warm.data != *record.output {
        eprintln!(
            "braid bench: warning: step {} gave other data than in the replay",
            record.step
        );
    }
    let (output_data_bytes, ret_code) = (warm.data.len(), warm.ret_code());
    drop(warm);

    let (counted, peak_heap_bytes) = peak_heap_growth(invoke);
    drop(counted?);

    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        let outcome = invoke()?;
        let elapsed = start.elapsed();
        drop(std::hint::black_box(outcome));
        times.push(elapsed);
    }
    Ok(Timing {
        times,
        peak_heap_bytes,
        output_data_bytes,
        ret_code,
    })
}

/// The median of sorted, non-empty times (the mean of the two middle ones for an even
/// count).
fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Microseconds, to the nanosecond.
fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// The size of the call results as the compact JSON object
/// `{"<id>":{"ret_code":N,"result":"<text>"}, …}` (the JSON form of the interpreter
/// interface's call results; `{}`, 2 bytes, when there are none).
fn call_results_bytes(record: &StepRecord) -> usize {
    let mut size = ByteCount(2);
    for (i, (id, result)) in record.call_results.iter().enumerate() {
        let comma = usize::from(i > 0);
        let head = format!("\"{id}\":{{\"ret_code\":{},\"result\":", result.ret_code);
        size.0 += comma + head.len() + 1;
        // Writing to a counter cannot fail.
        serde_json::to_writer(&mut size, &result.result).expect("a string serializes");
    }
    size.0
}

/// A writer that only counts bytes.
struct ByteCount(usize);

impl Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's peak resident set (Linux `VmHWM`), in KiB.
fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_differences(name: &str, differences: &[Difference]) {
    if differences.is_empty() {
        return;
    }
    eprintln!("{name}: the replay differs from `expected`:");
    for d in differences {
        eprintln!("  {d}");
    }
}

/// `line[key]` as text (empty if absent or not a string).
fn line_text(line: &Value, key: &str) -> String {
    line[key].as_str().unwrap_or_default().to_owned()
}

/// One row of the `--all` table.
struct Row {
    workload: String,
    /// Braid's line, or why there is none.
    braid: Result<Value, String>,
    /// The reference's line, or why there is none (`None`: no comparison asked for).
    reference: Option<Result<Value, String>>,
}

/// `braid bench --all DIR`: every workload with its default step, one after the other.
fn bench_all(dir: &Path, args: &BenchArgs, backend: &dyn Backend) -> anyhow::Result<ExitCode> {
    let files = workload_files(dir)?;
    let mut json_out = match &args.json {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };
    let compare_lines = match &args.compare {
        Some(path) => Some(reference_lines(path)?),
        None => None,
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for file in &files {
        let workload = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        eprint!("{workload}: ");
        let measured = measure_file(
            file,
            None,
            args.iters,
            args.allow_differences,
            args.check,
            backend,
        );
        let braid = match measured {
            Ok(Measured::Line { line, differences }) => {
                eprintln!("{}", time_text(line["median_us"].as_f64()));
                print_differences(&line_text(&line, "scenario"), &differences);
                failed |= !differences.is_empty();
                Ok(line)
            }
            Ok(Measured::Differs { name, differences }) => {
                eprintln!("differs from expected, not timed");
                print_differences(&name, &differences);
                failed = true;
                Err("differs".to_owned())
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                failed = true;
                Err("error".to_owned())
            }
        };
        if let (Some(out), Ok(line)) = (json_out.as_mut(), &braid) {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        let reference = if let Some(oracle) = &args.oracle {
            let line = run_oracle(oracle, file, args.iters);
            if let (Some(out), Ok(line)) = (json_out.as_mut(), &line) {
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            if let Err(err) = &line {
                eprintln!("{workload}: the reference failed: {err}");
            }
            Some(line.map_err(|_| "error".to_owned()))
        } else {
            compare_lines.as_ref().map(|lines| {
                let scenario = braid.as_ref().map_or_else(
                    |_| format!("bench/{workload}"),
                    |line| line_text(line, "scenario"),
                );
                lines
                    .get(&scenario)
                    .cloned()
                    .ok_or_else(|| "absent".to_owned())
            })
        };
        rows.push(Row {
            workload,
            braid,
            reference,
        });
    }
    print!("{}", table(&rows));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The `*.json` files of `dir`, sorted.
fn workload_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{} has no *.json workload", dir.display());
    }
    Ok(files)
}

/// The lines of a file of `bench` JSON lines that are not braid's, by scenario name.
fn reference_lines(path: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON line", path.display(), n + 1))?;
        if !line_text(&value, "impl").starts_with("braid ") {
            lines.insert(line_text(&value, "scenario"), value);
        }
    }
    Ok(lines)
}

/// Runs `ORACLE bench FILE [--iters N]` and returns its JSON line; its stderr passes
/// through.
fn run_oracle(oracle: &Path, file: &Path, iters: Option<usize>) -> Result<Value, String> {
    let mut command = Command::new(oracle);
    command.arg("bench").arg(file);
    if let Some(n) = iters {
        command.arg("--iters").arg(n.to_string());
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", oracle.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}",
            oracle.display(),
            output.status
        ));
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).map_err(|e| format!("its output is not a JSON line: {e}"))
}

/// The markdown table of `--all`, with the reference's columns and a geometric-mean
/// row when there is a reference.
fn table(rows: &[Row]) -> String {
    let with_reference = rows.iter().any(|r| r.reference.is_some());
    let mut out = String::new();
    out.push_str("| workload | step | median | min | max | peak heap | output data | checked |");
    if with_reference {
        out.push_str(" reference median | ratio (ref/braid) | reference heap |");
    }
    out.push_str("\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    if with_reference {
        out.push_str(" ---: | ---: | ---: |");
    }
    out.push('\n');
    let mut log_ratios = Vec::new();
    for row in rows {
        let cells = match &row.braid {
            Ok(line) => format!(
                "{} | {} | {} | {} | {} | {} | {}",
                line["step"],
                time_text(line["median_us"].as_f64()),
                time_text(line["min_us"].as_f64()),
                time_text(line["max_us"].as_f64()),
                bytes_text(line["peak_heap_bytes"].as_u64()),
                bytes_text(line["output_data_bytes"].as_u64()),
                if line["checked"] == true {
                    "yes"
                } else {
                    "**no**"
                },
            ),
            Err(why) => format!(" | | | | | | **{why}**"),
        };
        let _ = write!(out, "| {} | {cells} |", row.workload);
        if with_reference {
            let reference = match &row.reference {
                Some(Ok(line)) => line,
                Some(Err(why)) => &json!({ "why": why }),
                None => &Value::Null,
            };
            let ours = row
                .braid
                .as_ref()
                .ok()
                .and_then(|l| l["median_us"].as_f64());
            let theirs = reference["median_us"].as_f64();
            let ratio = match (theirs, ours) {
                (Some(theirs), Some(ours)) if ours > 0.0 => {
                    log_ratios.push((theirs / ours).ln());
                    format!("{:.2}×", theirs / ours)
                }
                _ => String::new(),
            };
            let median = match theirs {
                Some(_) => time_text(theirs),
                None => line_text(reference, "why"),
            };
            let heap = bytes_text(reference["peak_heap_bytes"].as_u64());
            let _ = write!(out, " {median} | {ratio} | {heap} |");
        }
        out.push('\n');
    }
    if with_reference && !log_ratios.is_empty() {
        let mean = (log_ratios.iter().sum::<f64>() / log_ratios.len() as f64).exp();
        let _ = writeln!(
            out,
            "| **geometric mean** ({} workloads) | | | | | | | | | **{mean:.2}×** | |",
            log_ratios.len()
        );
    }
    out
}

/// A duration in µs as `35.2 µs`, `1.23 ms` or `1.34 s`.
fn time_text(us: Option<f64>) -> String {
    match us {
        None => String::new(),
        Some(us) if us < 1_000.0 => format!("{} µs", three_digits(us)),
        Some(us) if us < 1_000_000.0 => format!("{} ms", three_digits(us / 1e3)),
        Some(us) => format!("{} s", three_digits(us / 1e6)),
    }
}

/// A size as `232 B`, `100.2 KiB`, `428.0 MiB` or `1.18 GiB`.
fn bytes_text(bytes: Option<u64>) -> String {
    let Some(bytes) = bytes else {
        return String::new();
    };
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

/// Three significant digits (at least the integer part).
fn three_digits(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(median(&[ms(1), ms(2), ms(4), ms(9)]), ms(3));
        assert_eq!(median(&[ms(1), ms(2), ms(9)]), ms(2));
    }

    #[test]
    fn sizes_and_times_read_like_the_baseline() {
        assert_eq!(time_text(Some(35.71)), "35.7 µs");
        assert_eq!(time_text(Some(877.0)), "877 µs");
        assert_eq!(time_text(Some(11_400.0)), "11.4 ms");
        assert_eq!(time_text(Some(1_340_000.0)), "1.34 s");
        assert_eq!(bytes_text(Some(232)), "232 B");
        assert_eq!(bytes_text(Some(102_612)), "100.2 KiB");
        assert_eq!(bytes_text(Some(448_790_528)), "428.0 MiB");
    }

    #[test]
    fn the_table_ends_with_the_geometric_mean_of_the_ratios() {
        let line = |impl_: &str, us: f64| {
            json!({"impl": impl_, "scenario": "bench/x", "step": 1, "median_us": us,
                   "min_us": us, "max_us": us, "peak_heap_bytes": 1000,
                   "output_data_bytes": 10, "checked": true})
        };
        let rows = [
            Row {
                workload: "a".into(),
                braid: Ok(line("braid", 10.0)),
                reference: Some(Ok(line("ref", 40.0))),
            },
            Row {
                workload: "b".into(),
                braid: Ok(line("braid", 10.0)),
                reference: Some(Ok(line("ref", 10.0))),
            },
            Row {
                workload: "c".into(),
                braid: Err("differs".into()),
                reference: Some(Ok(line("ref", 10.0))),
            },
        ];
        let text = table(&rows);
        assert!(text.contains("| a | 1 | 10.0 µs |"), "{text}");
        assert!(text.contains("| 4.00× |"), "{text}");
        assert!(text.contains("**differs**"), "{text}");
        assert!(text.contains("(2 workloads)"), "{text}");
        assert!(text.contains("**2.00×**"), "{text}");
    }
}
