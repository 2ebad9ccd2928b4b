//! The differential test against the reference: random multi-peer programs from braid's
//! generator (`braid_sim::random_runs`), each written as a scenario, recorded with the
//! reference (`oracle record`, many files per oracle process), run with braid's
//! simulator and compared as the conformance suite compares (FORMAT.md §5).
//!
//! ```sh
//! cargo run -p braid-sim --release --example differential -- \
//!     --oracle ../oracle-target/release/oracle --seed 1 --count 5000 --out differential-failures
//! ```
//!
//! Options: `--batch B` scenarios per oracle process (default 250), `--depth D` program
//! depth (default 4), `--work DIR` where the scenarios are recorded (default: a folder
//! in the system's temporary directory, removed at the end).
//!
//! It prints `N passed, M failed` (M: the differences nothing known explains, each saved
//! to `--out DIR/<name>.json` with its recorded transcript), then the differences it
//! attributes to known defects of the reference or to braid's signature checks (saved
//! under `DIR/reference/`; README.md, Development), the runs the reference crashed on
//! (`DIR/crashed/`), and a coverage table: how many programs reached each instruction
//! form and raised each error code in braid's runs (the execution log of
//! `invoke_inspected`, so a form counts only when it ran), and which return codes the
//! reference's steps ended with.
//!
//! The oracle is not part of the build, so no `cargo test` runs this.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use braid_interpreter::grammar::{self, Ast, Fail, InstrId, InstrKind, Lens, Value, VarKind};
use braid_interpreter::{CallResults, ExecEvent, Outcome, RunParams, invoke_inspected};
use braid_sim::random_runs::arb_scenario_with_depth;
use braid_sim::{KeepInputs, Scenario, diff, run_with};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value as Json;

struct Options {
    /// `--check FILE...`: compare recorded scenarios instead of generating.
    check: Vec<PathBuf>,
    oracle: PathBuf,
    seed: u64,
    count: usize,
    out: PathBuf,
    batch: usize,
    depth: u32,
    work: Option<PathBuf>,
}

fn main() {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("differential: {e}");
            eprintln!(
                "usage: differential --oracle PATH --seed S --count N [--out DIR] [--batch B] [--depth D] [--work DIR]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options) {
        eprintln!("differential: {e}");
        std::process::exit(2);
    }
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut oracle = None;
    let mut seed = 0;
    let mut count = 1000;
    let mut out = PathBuf::from("differential-failures");
    let mut batch = 250;
    let mut depth = 4;
    let mut work = None;
    let mut check = Vec::new();
    while let Some(flag) = args.next() {
        if flag == "--check" {
            check.extend(args.by_ref().map(PathBuf::from));
            break;
        }
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--oracle" => oracle = Some(PathBuf::from(value()?)),
            "--seed" => seed = number(value()?)?,
            "--count" => count = number(value()?)? as usize,
            "--out" => out = PathBuf::from(value()?),
            "--batch" => batch = (number(value()?)? as usize).max(1),
            "--depth" => depth = number(value()?)? as u32,
            "--work" => work = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !check.is_empty() {
        oracle.get_or_insert_with(PathBuf::new);
    }
    Ok(Options {
        check,
        oracle: oracle.ok_or("--oracle is required")?,
        seed,
        count,
        out,
        batch,
        depth,
        work,
    })
}

/// What happened to one generated program.
enum Verdict {
    Passed,
    Failed(Vec<String>),
    /// A difference a known defect of the reference explains.
    Reference(&'static str, Vec<String>),
    Crashed(String),
}

fn run(options: &Options) -> Result<(), String> {
    if !options.check.is_empty() {
        return check_files(&options.check);
    }
    let own_work = options.work.is_none();
    let work = options.work.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "braid-differential-{}-{}",
            options.seed,
            std::process::id()
        ))
    });
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    std::fs::create_dir_all(&options.out).map_err(|e| format!("{}: {e}", options.out.display()))?;

    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&options.seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = arb_scenario_with_depth(options.depth);

    let coverage = Coverage::default();
    let (mut passed, mut failed, mut explained, mut crashed) = (0usize, 0usize, 0usize, 0usize);
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut crash_sites: BTreeMap<String, usize> = BTreeMap::new();
    let mut done = 0;
    while done < options.count {
        let n = options.batch.min(options.count - done);
        let mut files = Vec::with_capacity(n);
        for i in done..done + n {
            let generated = strategy
                .new_tree(&mut runner)
                .map_err(|e| format!("cannot generate: {e}"))?
                .current();
            let name = format!("differential/s{}_{i}", options.seed);
            let json = generated.to_json_named(&name, "a generated multi-peer run");
            let file = work.join(format!("s{}_{i}.json", options.seed));
            let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
            std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
            files.push(file);
        }
        let crashes = record(&options.oracle, &files)?;
        for file in &files {
            let verdict = match crashes.get(file) {
                Some(message) => Verdict::Crashed(message.clone()),
                None => compare(file, &coverage)?,
            };
            let stem = file.file_name().map(PathBuf::from).unwrap_or_default();
            match verdict {
                Verdict::Passed => passed += 1,
                Verdict::Failed(differences) => {
                    failed += 1;
                    save(file, &options.out.join(&stem))?;
                    eprintln!("FAILED {}: {}", stem.display(), differences.join("; "));
                }
                Verdict::Reference(reason, differences) => {
                    explained += 1;
                    *reasons.entry(reason).or_default() += 1;
                    save(file, &options.out.join("reference").join(&stem))?;
                    eprintln!(
                        "reference defect ({reason}) {}: {}",
                        stem.display(),
                        differences.join("; ")
                    );
                }
                Verdict::Crashed(message) => {
                    crashed += 1;
                    *crash_sites.entry(crash_site(&message)).or_default() += 1;
                    save(file, &options.out.join("crashed").join(&stem))?;
                    eprintln!("reference crashed on {}: {message}", stem.display());
                }
            }
            if own_work {
                let _ = std::fs::remove_file(file);
            }
        }
        done += n;
        eprintln!(
            "... {done}/{}: {passed} passed, {failed} failed, {explained} explained, {crashed} crashed",
            options.count
        );
    }
    if own_work {
        let _ = std::fs::remove_dir(&work);
    }

    println!("{passed} passed, {failed} failed");
    println!(
        "not counted above: {explained} differences explained (known defects of the reference, \
         and braid's signature checks; README.md, Development), {crashed} runs the reference \
         crashed on (saved under {})",
        options.out.display()
    );
    for (reason, n) in &reasons {
        println!("  {n:6}  {reason}");
    }
    for (site, n) in &crash_sites {
        println!("  {n:6}  the reference panicked at {site}");
    }
    coverage.print(options.count);
    Ok(())
}

/// `--check FILE...`: compares scenarios recorded earlier, printing braid's steps for
/// the ones that differ.
fn check_files(files: &[PathBuf]) -> Result<(), String> {
    let coverage = Coverage::default();
    for file in files {
        match compare(file, &coverage)? {
            Verdict::Passed => {
                println!("{}: same", file.display());
                continue;
            }
            Verdict::Failed(d) => println!("{}: DIFFERENT {}", file.display(), d.join("; ")),
            Verdict::Reference(r, d) => {
                println!("{}: DIFFERENT ({r}) {}", file.display(), d.join("; "));
            }
            Verdict::Crashed(_) => {}
        }
        let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
        if let Ok(run) = braid_sim::run(&scenario, KeepInputs::All) {
            for (step, record) in run.transcript.steps.iter().zip(&run.records) {
                if std::env::var_os("BRAID_DIFF_STATES").is_some() {
                    if let Ok(view) = braid_interpreter::decode_for_inspection(&record.output) {
                        println!("    signers {:?}", view.signers);
                        for (i, state) in view.states.iter().enumerate() {
                            println!("    {i}: {state:?}");
                        }
                    }
                }
                println!(
                    "  braid step {} {} {:?} ret {} {} next {:?} calls {}",
                    step.step,
                    step.peer,
                    step.cause,
                    step.ret_code,
                    step.error_message,
                    step.next_peers,
                    step.call_requests.len()
                );
            }
        }
    }
    Ok(())
}

/// Records every file with the reference, several per process. The reference panics on a
/// few programs (its known defects), which ends the process: the files before it are
/// recorded, that one is a crash, and recording goes on after it. Returns the crashed
/// files with the panic message.
fn record(oracle: &Path, files: &[PathBuf]) -> Result<BTreeMap<PathBuf, String>, String> {
    let mut crashes = BTreeMap::new();
    let mut rest = files;
    while !rest.is_empty() {
        let (success, stderr) = record_some(oracle, rest)?;
        let recorded = rest.iter().take_while(|f| is_recorded(f)).count();
        if recorded == rest.len() {
            break;
        }
        if success {
            return Err(format!(
                "the oracle left {} unrecorded: {stderr}",
                rest[recorded].display()
            ));
        }
        let message = stderr
            .lines()
            .find(|l| l.contains("panicked at"))
            .map(|l| {
                let detail = stderr
                    .lines()
                    .skip_while(|x| !x.contains("panicked at"))
                    .nth(1)
                    .unwrap_or("");
                format!("{} {detail}", l.trim())
            })
            .unwrap_or_else(|| stderr.lines().last().unwrap_or("").to_owned());
        crashes.insert(rest[recorded].clone(), message);
        rest = &rest[recorded + 1..];
    }
    Ok(crashes)
}

/// The longest an oracle process may run: a generated program whose values double in
/// size with every pass would keep it busy for hours.
const ORACLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One `oracle record` process over `files`: whether it succeeded, and its stderr (or
/// what stopped it). A process that runs longer than [`ORACLE_TIMEOUT`] is killed.
fn record_some(oracle: &Path, files: &[PathBuf]) -> Result<(bool, String), String> {
    // Its stderr goes to a file: a pipe nobody reads until the end could fill up.
    let log = files
        .first()
        .and_then(|f| f.parent())
        .unwrap_or(Path::new("."))
        .join("oracle-stderr.txt");
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(oracle)
        .arg("record")
        .args(files)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", oracle.display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > ORACLE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok((
                    false,
                    format!("timeout: the reference ran longer than {ORACLE_TIMEOUT:?}"),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for the oracle: {e}")),
        }
    };
    let text = std::fs::read(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    Ok((
        status.success(),
        String::from_utf8_lossy(&text).into_owned(),
    ))
}

/// Where the reference panicked, from the panic message: its source file and line, and
/// the panic's own text.
fn crash_site(message: &str) -> String {
    message.split("aquavm-air-0.64.1/src/").nth(1).map_or_else(
        || message.to_owned(),
        |rest| {
            let mut parts = rest.splitn(3, ':');
            let file = parts.next().unwrap_or("");
            let line = parts.next().unwrap_or("");
            let text = rest.split_once(": ").map_or("", |(_, t)| t);
            format!("{file}:{line} ({})", text.trim())
        },
    )
}

fn is_recorded(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<Json>(&t).ok())
        .is_some_and(|j| j.get("expected").is_some())
}

fn save(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", to.display()))
}

/// Runs a recorded scenario with braid and compares.
fn compare(file: &Path, coverage: &Coverage) -> Result<Verdict, String> {
    let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    let expected = scenario
        .expected
        .clone()
        .ok_or_else(|| format!("{} has no transcript", file.display()))?;
    let script = scenario.script().map_err(|e| e.to_string())?;
    let reached = Mutex::new(Reached::default());
    let interpreter = |script: &str,
                       prev: &[u8],
                       current: &[u8],
                       params: &RunParams,
                       results: &CallResults|
     -> Result<Outcome, String> {
        let (outcome, log) = invoke_inspected(script, prev, current, params, results);
        reached.lock().unwrap_or_else(|e| e.into_inner()).add(&log);
        Ok(outcome)
    };
    let actual = match run_with(&scenario, KeepInputs::Nothing, &interpreter) {
        Ok(run) => run.transcript.to_json(),
        Err(e) => return Ok(Verdict::Failed(vec![format!("braid's run failed: {e}")])),
    };
    let reached = reached.into_inner().unwrap_or_else(|e| e.into_inner());
    let reference_codes: BTreeSet<i64> = steps(&expected)
        .filter_map(|s| s.get("ret_code").and_then(Json::as_i64))
        .collect();
    coverage.add(&script, &reached, &reference_codes);
    let differences: Vec<String> = diff(&expected, &actual, &scenario.ignore_args, 5)
        .iter()
        .map(ToString::to_string)
        .collect();
    if differences.is_empty() {
        return Ok(Verdict::Passed);
    }
    Ok(
        match reference_fault(&scenario, &expected, &actual, &reached) {
            Some(reason) => Verdict::Reference(reason, differences),
            None => Verdict::Failed(differences),
        },
    )
}

fn steps(transcript: &Json) -> impl Iterator<Item = &Json> {
    transcript
        .get("steps")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
}

/// A difference a known defect of the reference explains (spec/README.md, "Known
/// defects of the reference", and README.md, "Known defects of the reference"). In a
/// differential run every peer's data was produced by the reference itself, so a
/// reference step that rejects such data (20000: the trace handler finds the trace
/// inconsistent) is the reference disagreeing with itself. Such a step explains the
/// difference when braid's steps are the same up to it: defect 3 when braid's run
/// caught a map-key error (10012), else the reference's inconsistent trace after an
/// abandoned stream-fold pass.
fn reference_fault(
    scenario: &Scenario,
    expected: &Json,
    actual: &Json,
    reached: &Reached,
) -> Option<&'static str> {
    let messages: Vec<&str> = steps(actual)
        .map(|s| s.get("error_message").and_then(Json::as_str).unwrap_or(""))
        .collect();
    let expected = braid_sim::normalize(expected, &scenario.ignore_args);
    let actual = braid_sim::normalize(actual, &scenario.ignore_args);
    let (want, got): (Vec<&Json>, Vec<&Json>) =
        (steps(&expected).collect(), steps(&actual).collect());
    let code = |s: &Json| s.get("ret_code").and_then(Json::as_i64);
    let first_difference = want
        .iter()
        .zip(&got)
        .position(|(w, g)| w != g)
        .unwrap_or(want.len().min(got.len()));
    if let (Some(w), Some(g)) = (want.get(first_difference), got.get(first_difference)) {
        let unsigned = messages
            .get(first_difference)
            .is_some_and(|m| m.contains("results in the data but no signature"));
        if code(w) == Some(0) && code(g) == Some(9) && unsigned {
            return Some(
                "braid's signature check: a result processed under a call that now targets \
                 another peer is that peer's, unsigned (the reference's test build checks no \
                 signatures)",
            );
        }
    }
    // The reference asking again for a call whose result it was just given, leaving
    // that result unconsumed (30000), has lost the call's state in its own data.
    if let (Some(w), Some(g)) = (want.get(first_difference), got.get(first_difference)) {
        let asks_again = w
            .get("call_requests")
            .and_then(Json::as_array)
            .is_some_and(|r| !r.is_empty());
        if code(w) == Some(30000) && code(g) == Some(0) && asks_again {
            return Some(
                "the reference loses a call's state in its own data (30000, asks again), \
                 braid's steps the same until then",
            );
        }
    }
    let first_rejection = want.iter().position(|s| code(s) == Some(20000))?;
    if first_difference < first_rejection {
        return None;
    }
    Some(if reached.codes.contains(&(10012, true)) {
        "defect 3: a map-key error caught by xor corrupts the reference's data (20000 on its next invoke)"
    } else {
        "the reference rejects its own data (20000 on its next invoke), braid's steps the same until then"
    })
}

/// What one program reached in braid's runs.
#[derive(Default)]
struct Reached {
    instructions: BTreeSet<InstrId>,
    codes: BTreeSet<(i32, bool)>,
}

impl Reached {
    fn add(&mut self, log: &[ExecEvent]) {
        for event in log {
            match event {
                ExecEvent::Enter { instr, .. } => {
                    self.instructions.insert(*instr);
                }
                ExecEvent::Leave {
                    fault: Some(fault), ..
                } => {
                    self.codes.insert((fault.code, fault.catchable));
                }
                _ => {}
            }
        }
    }
}

/// Programs that reached each form and code.
#[derive(Default)]
struct Coverage {
    counts: Mutex<BTreeMap<String, usize>>,
}

impl Coverage {
    fn add(&self, script: &str, reached: &Reached, reference_codes: &BTreeSet<i64>) {
        let mut keys = BTreeSet::new();
        if let Ok(ast) = grammar::parse(script) {
            let parents = parents(&ast);
            for id in &reached.instructions {
                for form in forms(&ast, *id, &parents) {
                    keys.insert(form);
                }
            }
        }
        for (code, catchable) in &reached.codes {
            let kind = if *catchable {
                "catchable"
            } else {
                "uncatchable"
            };
            keys.insert(format!("error {code} ({kind}) raised in braid"));
        }
        for code in reference_codes {
            keys.insert(format!("reference step ret_code {code}"));
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
    }

    fn print(&self, programs: usize) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        println!("coverage: programs (of {programs}) that reached each form");
        for (key, n) in counts.iter() {
            println!("  {n:7}  {key}");
        }
    }
}

fn parents(ast: &Ast<'_>) -> BTreeMap<InstrId, InstrId> {
    let mut parents = BTreeMap::new();
    for (id, instr) in ast.iter() {
        for child in instr.kind.children() {
            parents.insert(child, id);
        }
    }
    parents
}

/// The forms an instruction that ran stands for.
fn forms(ast: &Ast<'_>, id: InstrId, parents: &BTreeMap<InstrId, InstrId>) -> Vec<String> {
    let kind = &ast.instr(id).kind;
    let mut forms = Vec::new();
    match kind {
        InstrKind::Call(_) => {
            if let Some(call) = ast.call(id) {
                let output = match call.output.map(|o| o.kind) {
                    None => "no output",
                    Some(VarKind::Scalar) => "scalar output",
                    _ => "stream output",
                };
                forms.push(format!("call, {output}"));
                forms.push(format!("call, peer {}", operand(&call.peer)));
                if !matches!(call.service, Value::String(_)) {
                    forms.push(format!("call, service {}", operand(&call.service)));
                }
                forms.push(format!("call with {} arguments", call.args.len()));
                for arg in &call.args {
                    forms.push(format!("call argument {}", operand(arg)));
                }
            }
        }
        InstrKind::Ap(ap) => {
            let target = if ap.result.kind == VarKind::Scalar {
                "scalar"
            } else {
                "stream"
            };
            forms.push(format!("ap {} to a {target}", operand(&ap.arg)));
        }
        InstrKind::ApMap(ap) => {
            forms.push(format!("ap {} to a stream map", operand(&ap.value)));
            forms.push(format!("ap to a stream map, key {}", operand(&ap.key)));
        }
        InstrKind::Canon(canon) => {
            let form = match (canon.source.kind, canon.target.kind) {
                (VarKind::Stream, _) => "canon stream",
                (_, VarKind::CanonMap) => "canon stream map to a canon map",
                _ => "canon stream map to a scalar",
            };
            forms.push(form.into());
        }
        InstrKind::New { var, .. } => forms.push(format!("new {}", var_kind(var.kind))),
        InstrKind::Fail(fail) => forms.push(
            match &**fail {
                Fail::Literal { .. } => "fail CODE MESSAGE",
                Fail::Var(var, _) if var.kind == VarKind::Canon => "fail canon element",
                Fail::Var(..) => "fail scalar",
                Fail::LastError => "fail %last_error%",
                Fail::Error => "fail :error:",
            }
            .into(),
        ),
        InstrKind::Fold(fold) => {
            let over = match &fold.iterable {
                Value::EmptyArray => "[]".into(),
                other => operand(other),
            };
            let last = if fold.last.is_some() {
                ", with last"
            } else {
                ""
            };
            forms.push(format!("fold over {over}{last}"));
        }
        InstrKind::Next(_) => {
            let place = parents.get(&id).map_or_else(
                || "alone".to_owned(),
                |parent| {
                    let p = &ast.instr(*parent).kind;
                    let first = p.children().next() == Some(id);
                    let side = if first { "first" } else { "last" };
                    match p {
                        InstrKind::Fold(_) => "as the fold body".to_owned(),
                        _ => format!("{side} in {}", p.keyword()),
                    }
                },
            );
            forms.push(format!("next {place}"));
        }
        InstrKind::Match(_)
        | InstrKind::Mismatch(_)
        | InstrKind::Seq(..)
        | InstrKind::Par(..)
        | InstrKind::Xor(..)
        | InstrKind::Null
        | InstrKind::Never => {
            forms.push(kind.keyword().into());
        }
    }
    forms
}

fn var_kind(kind: VarKind) -> &'static str {
    match kind {
        VarKind::Scalar => "scalar",
        VarKind::Stream => "stream",
        VarKind::StreamMap => "stream map",
        VarKind::Canon => "canon stream",
        VarKind::CanonMap => "canon map",
    }
}

/// An operand's kind, with its lens kind.
fn operand(value: &Value<'_>) -> String {
    let lens = |lens: Option<&Lens<'_>>| match lens {
        None => "",
        Some(Lens::Length) => " .length",
        Some(Lens::Path(_)) => " with lens",
    };
    match value {
        Value::InitPeerId => "%init_peer_id%".into(),
        Value::Timestamp => "%timestamp%".into(),
        Value::Ttl => "%ttl%".into(),
        Value::LastError(l) => format!("%last_error%{}", lens(l.as_ref())),
        Value::Error(l) => format!(":error:{}", lens(l.as_ref())),
        Value::String(_) => "string".into(),
        Value::Int(_) | Value::Float(_) => "number".into(),
        Value::Bool(_) => "boolean".into(),
        Value::EmptyArray => "[]".into(),
        Value::Var(var, l) => format!("{}{}", var_kind(var.kind), lens(l.as_ref())),
    }
}
