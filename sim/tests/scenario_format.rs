//! Reading scenarios (FORMAT.md §1): defaults, optional fields, and what is rejected.

use braid_sim::Scenario;
use braid_sim::scenario::{InjectPrev, Reply};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "name": "t/t",
        "description": "d",
        "air": "(null)",
        "particle": {"id": "p", "init_peer": "A", "timestamp": 1, "ttl": 2},
        "peers": ["A", "B"],
        "services": {"rules": [], "default": {"ok": null}}
    })
}

fn with(extra: Value) -> Value {
    let mut s = base();
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

fn load(v: Value) -> Result<Scenario, String> {
    Scenario::from_json(&v.to_string()).map_err(|e| e.to_string())
}

#[test]
fn defaults() {
    let s = load(base()).unwrap();
    assert_eq!(s.max_steps, 200);
    assert!(s.inject.is_empty() && s.drop.is_empty() && s.ignore_args.is_empty());
    assert!(s.bench.is_none() && s.expected.is_none() && s.source.is_none());
    assert_eq!(s.script().unwrap(), "(null)");
    assert_eq!(s.services.default, Reply::Ok(Value::Null));
}

#[test]
fn every_optional_field() {
    let s = load(with(json!({
        "source": "new",
        "inject": [
            {"after_step": 2, "to": "B"},
            {"after_step": 3, "to": "A", "data_from_step": 1, "prev": "empty"},
            {"after_step": 4, "to": "A", "prev": 2}
        ],
        "drop": [{"from_step": 3, "to": "B"}],
        "max_steps": 9,
        "ignore_args": [{"service": "s", "index": 0}, {"function": "f"}],
        "bench": {"step": 2, "what": "w", "iters": 3},
        "expected": {"steps": [], "peers": {}, "end": "quiescent"}
    })))
    .unwrap();
    let prevs: Vec<InjectPrev> = s.inject.iter().map(|i| i.prev).collect();
    assert_eq!(
        prevs,
        [InjectPrev::Stored, InjectPrev::Empty, InjectPrev::Step(2)]
    );
    assert_eq!(s.inject[1].data_from_step, Some(1));
    assert_eq!((s.drop[0].from_step, s.drop[0].to.as_str()), (3, "B"));
    assert_eq!(s.max_steps, 9);
    assert_eq!(s.ignore_args[0].index, Some(0));
    assert_eq!(s.ignore_args[1].function.as_deref(), Some("f"));
    assert_eq!(
        s.bench.as_ref().map(|b| (b.step, b.iters)),
        Some((2, Some(3)))
    );
    assert!(s.expected.is_some());
}

#[test]
fn generated_scripts() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("air");
    v["air_generator"] = json!({"kind": "nest", "depth": 2, "open": "(seq (null) ", "inner": "(null)", "close": ")"});
    let s = load(v.clone()).unwrap();
    assert_eq!(s.script().unwrap(), "(seq (null) (seq (null) (null)))");
    v["air"] = json!("(null)");
    assert!(
        load(v)
            .unwrap_err()
            .contains("exactly one of `air` and `air_generator`")
    );
}

#[test]
fn rejected() {
    let err = load(with(
        json!({"particle": {"id": "p", "init_peer": "C", "timestamp": 1, "ttl": 2}}),
    ))
    .unwrap_err();
    assert!(err.contains("init peer \"C\""), "{err}");
    let err = load(with(json!({"inject": [{"after_step": 1, "to": "C"}]}))).unwrap_err();
    assert!(err.contains("inject to \"C\""), "{err}");
    let err = load(with(
        json!({"inject": [{"after_step": 1, "to": "A", "prev": "old"}]}),
    ))
    .unwrap_err();
    assert!(err.contains("unknown inject prev \"old\""), "{err}");
    let err = load(with(json!({"extra": 1}))).unwrap_err();
    assert!(err.contains("unknown field `extra`"), "{err}");
    let mut no_air = base();
    no_air.as_object_mut().unwrap().remove("air");
    assert!(load(no_air).unwrap_err().contains("exactly one"));
}
