//! Services without Rust, for `braid run` and `braid node`: mock services from a JSON
//! file (in the spirit of the Fluence CLI's JSON services), services backed by a
//! command (the call as JSON on stdin, the answer as JSON on stdout), and Wasm modules
//! by path. All are registered through [`Node::register_service`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use braid_host::{Node, RunnerPolicy, ServiceCall, ServiceError, ServiceResult, WasmService};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// How long a command named in a mock file or by `--callback-command` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags that add services to a node.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct ServiceArgs {
    /// A JSON file of mock services: `{"services": [{"service": "ID", "functions":
    /// [{"name": "F", "result": JSON, "delay_ms": N, "error": JSON}]}]}` (the Fluence
    /// CLI's `serviceId`/`functions` form is read too). Repeatable.
    #[arg(long = "services", value_name = "FILE.json")]
    pub(crate) mock_files: Vec<PathBuf>,
    /// A service backed by a command, ID=COMMAND: each call runs `sh -c COMMAND` with
    /// `{"service", "function", "args", "particle"}` as JSON on stdin; its stdout (JSON)
    /// is the answer, a non-zero exit an error (its stderr). Repeatable.
    #[arg(long = "service-command", value_name = "ID=COMMAND")]
    pub(crate) commands: Vec<String>,
    /// How long a command service may take per call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub(crate) command_timeout: u64,
    /// A Wasm module as a service, ID=PATH (the default runner policy). Repeatable.
    #[arg(long = "wasm-service", value_name = "ID=PATH")]
    pub(crate) wasm: Vec<String>,
}

/// One function of a mock service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MockFunction {
    /// The function name (`*`: any function of the service without its own entry).
    name: String,
    /// The answer.
    #[serde(default)]
    result: Value,
    /// Fail with this instead of answering.
    #[serde(default)]
    error: Option<Value>,
    /// Wait this long before answering, ms.
    #[serde(default)]
    delay_ms: u64,
    /// Answer by running this command (as `--service-command` does) instead.
    #[serde(default)]
    command: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MockService {
    #[serde(alias = "serviceId")]
    service: String,
    /// The Fluence CLI's display name; not used.
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    functions: Vec<MockFunction>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MockFile {
    Many { services: Vec<MockService> },
    List(Vec<MockService>),
    One(MockService),
}

impl MockFunction {
    /// A mock function answering `result`.
    pub(crate) fn answer(name: &str, result: Value) -> MockFunction {
        MockFunction {
            name: name.to_owned(),
            result,
            error: None,
            delay_ms: 0,
            command: None,
        }
    }

    /// A mock function answered by running `command`.
    pub(crate) fn command(name: &str, command: &str) -> MockFunction {
        MockFunction {
            command: Some(command.to_owned()),
            ..Self::answer(name, Value::Null)
        }
    }
}

/// A service a node gets from the command line.
#[derive(Clone)]
pub(crate) enum UserService {
    /// Functions answered from a JSON file, by name.
    Mock(BTreeMap<String, MockFunction>),
    /// A command run per call.
    Command { command: String, timeout: Duration },
    /// A Wasm module.
    Wasm(Arc<WasmService>),
}

/// Services by id.
#[derive(Clone, Default)]
pub(crate) struct UserServices(pub(crate) BTreeMap<String, UserService>);

impl UserServices {
    /// Reads the files and compiles the modules the flags name.
    pub(crate) fn load(args: &ServiceArgs) -> anyhow::Result<Self> {
        let mut services = UserServices::default();
        for file in &args.mock_files {
            for (id, functions) in read_mocks(file)? {
                services.add_mocks(id, functions);
            }
        }
        for entry in &args.commands {
            let Some((id, command)) = entry.split_once('=') else {
                bail!("--service-command {entry}: expected ID=COMMAND");
            };
            services.0.insert(
                id.to_owned(),
                UserService::Command {
                    command: command.to_owned(),
                    timeout: Duration::from_millis(args.command_timeout),
                },
            );
        }
        for entry in &args.wasm {
            let Some((id, path)) = entry.split_once('=') else {
                bail!("--wasm-service {entry}: expected ID=PATH");
            };
            let bytes = std::fs::read(path)
                .with_context(|| format!("--wasm-service {entry}: cannot read {path}"))?;
            let service = WasmService::from_bytes(id, &bytes, RunnerPolicy::default())
                .with_context(|| format!("--wasm-service {entry}"))?;
            services
                .0
                .insert(id.to_owned(), UserService::Wasm(Arc::new(service)));
        }
        Ok(services)
    }

    /// Adds mock functions to service `id` (a later entry of a function wins).
    pub(crate) fn add_mocks(&mut self, id: String, functions: Vec<MockFunction>) {
        let entry = self
            .0
            .entry(id)
            .or_insert_with(|| UserService::Mock(BTreeMap::new()));
        if !matches!(entry, UserService::Mock(_)) {
            *entry = UserService::Mock(BTreeMap::new());
        }
        if let UserService::Mock(table) = entry {
            for f in functions {
                table.insert(f.name.clone(), f);
            }
        }
    }

    /// Whether service `id`'s function `function` is defined here.
    pub(crate) fn defines(&self, id: &str, function: &str) -> bool {
        match self.0.get(id) {
            Some(UserService::Mock(table)) => {
                table.contains_key(function) || table.contains_key("*")
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Registers every service on `node`.
    pub(crate) fn register(&self, node: &Node) {
        for (id, service) in &self.0 {
            match service {
                UserService::Wasm(wasm) => Arc::clone(wasm).register(node),
                other => {
                    let other = Arc::new(other.clone());
                    node.register_service(id.clone(), move |call| {
                        let service = Arc::clone(&other);
                        async move { service.call(call).await }
                    });
                }
            }
        }
    }
}

impl UserService {
    async fn call(&self, call: ServiceCall) -> ServiceResult {
        match self {
            UserService::Mock(table) => {
                let Some(f) = table.get(&call.function_name).or_else(|| table.get("*")) else {
                    return Err(ServiceError::new(format!(
                        "mock service {} has no function {}",
                        call.service_id, call.function_name
                    )));
                };
                if f.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
                }
                if let Some(command) = &f.command {
                    return run_command(command, COMMAND_TIMEOUT, &call).await;
                }
                match &f.error {
                    Some(error) => Err(ServiceError(error.clone())),
                    None => Ok(f.result.clone()),
                }
            }
            UserService::Command { command, timeout } => {
                run_command(command, *timeout, &call).await
            }
            UserService::Wasm(wasm) => wasm.call(&call),
        }
    }
}

/// Reads a mock services file: (service id, functions).
fn read_mocks(path: &Path) -> anyhow::Result<Vec<(String, Vec<MockFunction>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: MockFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected {{\"services\": [{{\"service\": ID, \"functions\": [{{\"name\": F, \"result\": JSON}}]}}]}}",
            path.display()
        )
    })?;
    let services = match file {
        MockFile::Many { services } | MockFile::List(services) => services,
        MockFile::One(one) => vec![one],
    };
    Ok(services
        .into_iter()
        .map(|s| (s.service, s.functions))
        .collect())
}

/// Runs `sh -c command` for one call: the call on stdin, the answer on stdout.
async fn run_command(command: &str, timeout: Duration, call: &ServiceCall) -> ServiceResult {
    let input = json!({
        "service": call.service_id,
        "function": call.function_name,
        "args": call.args,
        "particle": {
            "id": call.particle.id,
            "init_peer_id": call.particle.init_peer_id,
            "timestamp": call.particle.timestamp,
            "ttl": call.particle.ttl,
            "host_id": call.particle.host_id,
        },
    });
    let fail = |what: String| Err(ServiceError::new(format!("command `{command}`: {what}")));
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes the pipe: not an error.
        let _ = stdin.write_all(format!("{input}\n").as_bytes()).await;
    }
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return fail(format!("failed: {e}")),
        Err(_) => return fail(format!("no answer within {} ms", timeout.as_millis())),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return fail(format!("{}: {}", output.status, stderr.trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(value) => Ok(value),
        Err(e) => fail(format!("stdout is not JSON ({e}): {}", stdout.trim())),
    }
}
