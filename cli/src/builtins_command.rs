//! `braid builtins`: the node's built-in services and their functions, from the list the
//! node dispatches from (`braid_host::BUILTIN_SERVICES`).

use std::process::ExitCode;

/// Prints every built-in service and its functions: as JSON (`{"peer": ["identify",
/// …], …}`, in the node's order) or one `service.function` a line.
pub(crate) fn builtins(json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let mut services = serde_json::Map::new();
        for (service, functions) in braid_host::BUILTIN_SERVICES {
            services.insert((*service).to_owned(), serde_json::json!(functions));
        }
        println!("{}", serde_json::Value::Object(services));
    } else {
        for (service, functions) in braid_host::BUILTIN_SERVICES {
            for function in *functions {
                println!("{service}.{function}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
