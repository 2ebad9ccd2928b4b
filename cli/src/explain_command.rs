//! `braid explain` and the outputs of `braid sim --html/--save-data`: a particle's life
//! from recorded invocations, a scenario or bare data, as annotated text and as an
//! HTML page (the `braid-explain` crate does the work).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use braid_explain::{Life, StepInput, render_html, render_text};
use braid_host::InvokeRecord;
use braid_interpreter::{Integrity, KeyPair, Limits, RunParams};
use braid_sim::{KeepInputs, Scenario};

/// Arguments of `braid explain`.
#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    /// The AIR script.
    script: PathBuf,
    /// What to explain: an invoke record (`braid run --record DIR`, `braid sim
    /// --save-data DIR`), a folder of them (one particle's life), a scenario (`.json`
    /// with `air`), or bare particle data (braid's msgpack format).
    data: PathBuf,
    /// Also write the page with the sequence diagram to this file.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// Annotate the script as of this step (default: the last).
    #[arg(long)]
    step: Option<usize>,
    /// With a folder holding several particles: the one to explain.
    #[arg(long)]
    particle: Option<String>,
    /// With bare data: the particle's init peer (its `%init_peer_id%`).
    #[arg(long, default_value = "")]
    init_peer: String,
    /// With bare data: the particle's timestamp (`%timestamp%`).
    #[arg(long, default_value_t = 0)]
    timestamp: u64,
    /// With bare data: the particle's ttl (`%ttl%`).
    #[arg(long, default_value_t = 0)]
    ttl: u32,
    /// With bare data: the particle id.
    #[arg(long, default_value = "")]
    particle_id: String,
}

/// The peer through whose eyes bare data is read: it takes no part in any script, so
/// the interpreter replays what the data records and executes nothing new.
const OBSERVER: &str = "braid-explain-observer";

pub(crate) fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let script = crate::read(&args.script)?;
    let life = load_life(args, &script)?;
    if life.script != script {
        eprintln!(
            "braid: note: the recorded script differs from {}; explaining the recorded one",
            args.script.display()
        );
    }
    output(&life, args.step, args.html.as_deref())
}

fn load_life(args: &ExplainArgs, script: &str) -> anyhow::Result<Life> {
    let path = &args.data;
    if path.is_dir() {
        let records = read_records(path)?;
        return life_of_records(records, args.particle.as_deref());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        if json.get("braid_invoke_record").is_some() {
            let record = InvokeRecord::from_json(&json)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}", path.display()))?;
            return life_of_records(vec![with_known_key(record)], None);
        }
        if json.get("air").is_some() || json.get("air_generator").is_some() {
            let scenario = Scenario::load(path).with_context(|| format!("{}", path.display()))?;
            return Ok(Life::of_scenario(&scenario)?);
        }
        bail!(
            "{} is JSON but neither an invoke record nor a scenario",
            path.display()
        );
    }
    braid_interpreter::decode_for_inspection(&bytes)
        .with_context(|| format!("{} is not braid's particle data", path.display()))?;
    let params = RunParams {
        init_peer_id: args.init_peer.clone(),
        current_peer_id: OBSERVER.to_owned(),
        timestamp: args.timestamp,
        ttl: args.ttl,
        particle_id: args.particle_id.clone(),
        key: KeyPair {
            format: 0,
            secret: vec![7; 32],
        },
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity::default(),
    };
    Ok(Life::of_data(script, &bytes, &params, OBSERVER))
}

/// Every `*.json` record of a folder, by file name.
pub(crate) fn read_records(dir: &Path) -> anyhow::Result<Vec<InvokeRecord>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let record = InvokeRecord::from_json(&json)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}", file.display()))?;
            Ok(with_known_key(record))
        })
        .collect()
}

/// A record written without its secret key gets it back when it is one of `braid
/// run`'s test keys (else it is re-run with none, and its signatures differ).
fn with_known_key(record: InvokeRecord) -> InvokeRecord {
    if record.has_secret_key() {
        return record;
    }
    match crate::run_command::key_for(&record.params.current_peer_id, None) {
        Some(secret) => record.with_secret_key(secret),
        None => record,
    }
}

/// Groups records by peer (keeping their order) and orders the steps by causality.
pub(crate) fn life_of_records(
    records: Vec<InvokeRecord>,
    particle: Option<&str>,
) -> anyhow::Result<Life> {
    let mut per_peer: BTreeMap<String, Vec<StepInput>> = BTreeMap::new();
    let mut first_seen: Vec<String> = Vec::new();
    for r in records {
        if particle.is_some_and(|p| p != r.params.particle_id) {
            continue;
        }
        let peer = r.params.current_peer_id.clone();
        if !first_seen.contains(&peer) {
            first_seen.push(peer.clone());
        }
        per_peer.entry(peer).or_default().push(StepInput {
            script: r.script,
            prev_data: r.prev_data,
            data: r.data,
            params: r.params,
            call_results: r.call_results,
        });
    }
    let groups = first_seen
        .iter()
        .filter_map(|p| per_peer.remove(p))
        .collect();
    Ok(Life::of_records(groups)?)
}

/// Prints the text and writes the page.
fn output(life: &Life, step: Option<usize>, html: Option<&Path>) -> anyhow::Result<ExitCode> {
    let ast = match braid_grammar::parse(&life.script) {
        Ok(ast) => ast,
        Err(e) => {
            eprint!("{}", e.render(&life.script, "script"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let at = step.unwrap_or(life.steps.len());
    if at == 0 || at > life.steps.len() {
        bail!(braid_explain::ExplainError::NoSuchStep {
            step: at,
            steps: life.steps.len()
        });
    }
    print!("{}", render_text(life, &ast, at));
    if let Some(out) = html {
        std::fs::write(out, render_html(life, &ast))
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("braid: wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `braid sim SCENARIO --html OUT --save-data DIR`: the page of the scenario's run, and
/// one invoke record per step (`step-NNN-PEER.json`, for `braid explain` and `braid
/// replay`). Runs braid's native interpreter.
pub(crate) fn sim_outputs(
    paths: &[PathBuf],
    html: Option<&Path>,
    save_data: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let [path] = paths else {
        bail!("--html and --save-data take one scenario");
    };
    let scenario = Scenario::load(path).with_context(|| format!("{}", path.display()))?;
    if let Some(dir) = save_data {
        let run = braid_sim::run(&scenario, KeepInputs::All)?;
        for r in &run.records {
            let outcome = std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(braid_sim::driver::DRIVER_STACK_BYTES)
                    .spawn_scoped(s, || {
                        braid_interpreter::invoke(
                            &r.script,
                            &r.prev_data,
                            &r.current_data,
                            &r.params,
                            &r.call_results,
                        )
                    })
                    .map(|h| h.join())
            })
            .context("cannot start a thread")?
            .map_err(|_| anyhow::anyhow!("the interpreter panicked on step {}", r.step))?;
            let record = InvokeRecord {
                script: r.script.to_string(),
                prev_data: r.prev_data.to_vec(),
                data: r.current_data.to_vec(),
                params: r.params.clone(),
                call_results: r.call_results.clone(),
                outcome,
            };
            let name = format!("step-{:03}-{}", r.step, file_safe(&r.peer));
            // A scenario's keys are test keys: keep them, so the records replay as they are.
            record
                .write_with_secret_key(dir, &name)
                .with_context(|| format!("cannot write {}", dir.display()))?;
        }
        eprintln!(
            "braid: wrote {} records to {}",
            run.records.len(),
            dir.display()
        );
    }
    if let Some(out) = html {
        let life = Life::of_scenario(&scenario)?;
        let Ok(ast) = braid_grammar::parse(&life.script) else {
            bail!("the scenario's script does not parse: no page to draw");
        };
        std::fs::write(out, render_html(&life, &ast))
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("braid: wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A peer name usable in a file name.
fn file_safe(peer: &str) -> String {
    peer.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
