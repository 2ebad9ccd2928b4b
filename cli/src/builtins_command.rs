//! `braid builtins`: the node's built-in services and their functions, from the list the
//! node dispatches from (`braid_host::BUILTIN_SERVICES`).

use std::process::ExitCode;

/// Prints every built-in service and its functions: as JSON (`{"peer": ["identify",
/// …], …}`) or one `service.function` a line.
pub(crate) fn builtins(json: bool) -> anyhow::Result<ExitCode> {
    print!("{}", render(json));
    Ok(ExitCode::SUCCESS)
}

fn render(json: bool) -> String {
    if json {
        let mut services = serde_json::Map::new();
        for (service, functions) in braid_host::BUILTIN_SERVICES {
            services.insert((*service).to_owned(), serde_json::json!(functions));
        }
        format!("{}\n", serde_json::Value::Object(services))
    } else {
        let mut out = String::new();
        for (service, functions) in braid_host::BUILTIN_SERVICES {
            for function in *functions {
                out.push_str(&format!("{service}.{function}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_every_service_and_function() {
        let printed: serde_json::Value = serde_json::from_str(&render(true)).unwrap();
        let services = printed.as_object().unwrap();
        assert_eq!(services.len(), braid_host::BUILTIN_SERVICES.len());
        for (service, functions) in braid_host::BUILTIN_SERVICES {
            assert_eq!(services[*service], serde_json::json!(functions));
        }
        assert!(
            services["peer"]
                .as_array()
                .unwrap()
                .contains(&"identify".into())
        );
        assert!(render(false).lines().any(|l| l == "kad.neighborhood"));
    }
}
