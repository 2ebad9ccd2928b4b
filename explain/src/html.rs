//! The page: one self-contained HTML file (inline CSS and JS, no external assets) with
//! a sequence diagram of the particle's life (peers as lanes, each invoke a box, data
//! hops as arrows, call requests and their answers, errors in red) next to the script;
//! clicking a step shows what it did to each instruction and highlights those that
//! recorded something new.
//!
//! For tests and tools the DOM carries counts: `#diagram[data-lanes][data-steps]`, one
//! `.lane` per peer, one `.step[data-step]` per invoke, one `.hop` per data hop.

use std::collections::BTreeMap;
use std::fmt::Write;

use braid_grammar::{Ast, InstrId};
use serde_json::{Value, json};

use crate::annotate::{annotate, script_lines, service, short_peer, short_text};
use crate::life::{Cause, Life, Step};
use crate::text::{cause, fault_line, step_line};

const LANE_WIDTH: usize = 180;
const ROW: usize = 64;
const TOP: usize = 56;
const BOX_WIDTH: usize = 132;
const BOX_HEIGHT: usize = 44;

/// The page of `life`.
pub fn render_html(life: &Life, ast: &Ast<'_>) -> String {
    let lanes = life.lanes();
    let lines = script_lines(ast);
    let line_of: BTreeMap<InstrId, usize> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.instr, i))
        .collect();
    let steps: Vec<Value> = life
        .steps
        .iter()
        .map(|step| step_json(ast, step, &line_of))
        .collect();
    let data = json!({ "steps": steps });

    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        page,
        "<title>braid explain: {}</title>",
        escape(&life.title)
    );
    page.push_str(STYLE);
    page.push_str("</head>\n<body>\n");
    let _ = writeln!(
        page,
        "<header><h1>{}</h1><p>{} steps on {} peers. Click a step to see what the data records for each instruction after it: <span class=\"key hl\">recorded by this step</span> <span class=\"key learned\">learned from the data that arrived</span> <span class=\"key err\">error raised here</span>; arrows: data sent, <span class=\"key answer\">answers to call requests</span>.</p></header>",
        escape(&life.title),
        life.steps.len(),
        lanes.len()
    );
    page.push_str("<main>\n<section id=\"diagram-pane\">\n");
    page.push_str(&diagram(life, &lanes));
    page.push_str("<div id=\"details\"></div>\n</section>\n");
    page.push_str("<section id=\"script-pane\">\n<div id=\"script\">\n");
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            page,
            "<div class=\"line\" id=\"line-{i}\"><span class=\"loc\">{}:{}</span><span class=\"code\">{}{}</span><span class=\"note\"></span></div>",
            line.location.line,
            line.location.column,
            " ".repeat(line.depth),
            escape(&line.text)
        );
    }
    page.push_str("</div>\n</section>\n</main>\n");
    let _ = writeln!(
        page,
        "<script type=\"application/json\" id=\"life\">{}</script>",
        data.to_string().replace("</", "<\\/")
    );
    page.push_str(SCRIPT);
    page.push_str("</body>\n</html>\n");
    page
}

fn step_json(ast: &Ast<'_>, step: &Step, line_of: &BTreeMap<InstrId, usize>) -> Value {
    let notes = annotate(ast, step);
    let line = |instr: &InstrId| line_of.get(instr).copied();
    let note_map: serde_json::Map<String, Value> = notes
        .notes
        .iter()
        .filter_map(|(instr, n)| Some((line(instr)?.to_string(), json!(n.join(" | ")))))
        .collect();
    let mut details = vec![step_line(step)];
    details.extend(notes.faults.iter().map(|f| fault_line(ast, f, step)));
    json!({
        "n": step.number,
        "peer": step.peer,
        "details": details,
        "notes": note_map,
        "created": notes.created.iter().filter_map(line).collect::<Vec<_>>(),
        "learned": notes.learned.iter().filter_map(line).collect::<Vec<_>>(),
        "faults": notes.faults.iter().filter_map(|f| line(&f.instr)).collect::<Vec<_>>(),
    })
}

fn lane_x(index: usize) -> usize {
    index * LANE_WIDTH + LANE_WIDTH / 2 + 10
}

fn step_y(number: usize) -> usize {
    TOP + (number - 1) * ROW
}

fn diagram(life: &Life, lanes: &[String]) -> String {
    let width = lanes.len() * LANE_WIDTH + 20;
    let height = TOP + life.steps.len() * ROW + 10;
    let lane_of = |peer: &str| lanes.iter().position(|l| l == peer).unwrap_or(0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg id=\"diagram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" data-lanes=\"{}\" data-steps=\"{}\">",
        lanes.len(),
        life.steps.len()
    );
    svg.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#446\"/></marker></defs>\n",
    );
    for (i, peer) in lanes.iter().enumerate() {
        let x = lane_x(i);
        let _ = writeln!(
            svg,
            "<g class=\"lane\" data-peer=\"{}\"><title>{}</title><text class=\"peer\" x=\"{x}\" y=\"22\">{}</text><line x1=\"{x}\" y1=\"32\" x2=\"{x}\" y2=\"{}\"/></g>",
            escape(peer),
            escape(peer),
            escape(&short_peer(peer)),
            height - 4
        );
    }
    // Arrows first, boxes over them.
    let mut last_of_peer: BTreeMap<&str, usize> = BTreeMap::new();
    for step in &life.steps {
        let (x, y) = (lane_x(lane_of(&step.peer)), step_y(step.number));
        let from = match &step.cause {
            Cause::Data {
                from,
                step: Some(n),
            } => Some((lane_of(from), *n, "hop")),
            Cause::Injected {
                data_from_step: Some(n),
            } => life
                .steps
                .get(n - 1)
                .map(|s| (lane_of(&s.peer), *n, "hop injected")),
            Cause::Results => last_of_peer
                .get(step.peer.as_str())
                .map(|&n| (lane_of(&step.peer), n, "answer")),
            _ => None,
        };
        if let Some((lane, n, class)) = from {
            let (x0, y0) = (lane_x(lane), step_y(n) + BOX_HEIGHT);
            if class == "answer" {
                let bend = x + BOX_WIDTH / 2 + 14;
                let answers: Vec<String> = step
                    .answers
                    .iter()
                    .map(|(id, a)| format!("#{id}: {} {}", a.ret_code, short_text(&a.result)))
                    .collect();
                let _ = writeln!(
                    svg,
                    "<path class=\"answer\" d=\"M{},{} H{bend} V{} H{}\" marker-end=\"url(#arrow)\"><title>answers to the call requests of step {n}\n{}</title></path>",
                    x + BOX_WIDTH / 2,
                    y0 - BOX_HEIGHT / 2,
                    y + BOX_HEIGHT / 2,
                    x + BOX_WIDTH / 2,
                    escape(&answers.join("\n"))
                );
            } else {
                let _ = writeln!(
                    svg,
                    "<path class=\"{class}\" d=\"M{x0},{y0} L{x},{y}\" marker-end=\"url(#arrow)\"><title>data of step {n}</title></path>"
                );
            }
        }
        last_of_peer.insert(&step.peer, step.number);
    }
    for step in &life.steps {
        let (x, y) = (lane_x(lane_of(&step.peer)), step_y(step.number));
        let failed = step.ret_code != 0;
        let summary = if failed {
            format!("error {}", step.ret_code)
        } else if !step.requests.is_empty() {
            let r = &step.requests[0];
            let more = if step.requests.len() > 1 {
                format!(" +{}", step.requests.len() - 1)
            } else {
                String::new()
            };
            format!(
                "{}{more}",
                short_to(&service(&r.service_id, &r.function_name), 16)
            )
        } else if !step.next_peers.is_empty() {
            format!("→ {} peer(s)", step.next_peers.len())
        } else {
            cause(step)
        };
        let _ = writeln!(
            svg,
            "<g class=\"step{}\" data-step=\"{}\" data-peer=\"{}\" tabindex=\"0\"><title>{}</title><rect x=\"{}\" y=\"{y}\" width=\"{BOX_WIDTH}\" height=\"{BOX_HEIGHT}\" rx=\"6\"/><text class=\"num\" x=\"{x}\" y=\"{}\">#{}</text><text class=\"sum\" x=\"{x}\" y=\"{}\">{}</text></g>",
            if failed { " failed" } else { "" },
            step.number,
            escape(&step.peer),
            escape(&step_line(step)),
            x - BOX_WIDTH / 2,
            y + 18,
            step.number,
            y + 35,
            escape(&short_to(&summary, 20))
        );
        if !step.requests.is_empty() {
            let _ = writeln!(
                svg,
                "<g class=\"request\"><title>{}</title><path d=\"M{},{} h16\" marker-end=\"url(#arrow)\"/></g>",
                escape(
                    &step
                        .requests
                        .iter()
                        .map(|r| format!(
                            "call request #{} {} {}",
                            r.id,
                            service(&r.service_id, &r.function_name),
                            short_text(&r.arguments)
                        ))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                x + BOX_WIDTH / 2,
                y + 10
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn short_to(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 8px 16px; border-bottom: 1px solid #ddd; background: #fff; }
header h1 { font-size: 18px; margin: 0; }
header p { margin: 2px 0 0; color: #555; }
main { display: flex; gap: 12px; padding: 12px; align-items: flex-start; }
#diagram-pane { flex: 0 0 auto; max-width: 48vw; overflow: auto; max-height: calc(100vh - 90px); }
#script-pane { flex: 1 1 auto; overflow: auto; max-height: calc(100vh - 90px); background: #fff; border: 1px solid #ddd; }
svg text { font: 12px system-ui, sans-serif; text-anchor: middle; }
.lane line { stroke: #bbb; stroke-dasharray: 4 4; }
.lane text.peer { font-weight: 600; }
.step { cursor: pointer; }
.step rect { fill: #e8f0fe; stroke: #4a6fa5; stroke-width: 1.5; }
.step.failed rect { fill: #fde2e2; stroke: #c00; }
.step.failed text { fill: #900; }
.step.selected rect { stroke-width: 3.5; }
.step text.num { font-weight: 700; }
path.hop { stroke: #446; stroke-width: 1.5; fill: none; }
path.hop.injected { stroke-dasharray: 2 3; }
path.answer { stroke: #7a7; stroke-width: 1.2; fill: none; stroke-dasharray: 5 3; }
.request path { stroke: #a70; stroke-width: 1.5; }
#details { font: 12px ui-monospace, monospace; white-space: pre-wrap; padding: 8px; background: #fff; border: 1px solid #ddd; margin-top: 8px; }
#details .fault { color: #c00; }
#script { font: 12px/1.5 ui-monospace, monospace; padding: 6px 0; }
.line { padding: 0 8px; white-space: pre; }
.line .loc { color: #999; display: inline-block; min-width: 5.5em; }
.line .note { color: #2a6; margin-left: 2em; }
.line.hl { background: #fff3b0; }
.line.learned { background: #dcecff; }
.line.err { background: #fde2e2; }
.line.err .note { color: #c00; }
.key { padding: 0 4px; border-radius: 3px; }
.key.hl { background: #fff3b0; }
.key.learned { background: #dcecff; }
.key.err { background: #fde2e2; }
.key.answer { color: #585; border-bottom: 2px dashed #7a7; }
</style>
"#;

const SCRIPT: &str = r#"<script>
(function () {
  const life = JSON.parse(document.getElementById('life').textContent);
  const lines = Array.from(document.querySelectorAll('#script .line'));
  const details = document.getElementById('details');
  function select(n) {
    const step = life.steps[n - 1];
    if (!step) return;
    document.querySelectorAll('.step').forEach(function (el) {
      el.classList.toggle('selected', Number(el.dataset.step) === n);
    });
    const created = new Set(step.created), learned = new Set(step.learned);
    const faults = new Set(step.faults);
    lines.forEach(function (el, i) {
      el.classList.toggle('hl', created.has(i));
      el.classList.toggle('learned', learned.has(i));
      el.classList.toggle('err', faults.has(i));
      el.querySelector('.note').textContent = step.notes[i] ? '# ' + step.notes[i] : '';
    });
    details.textContent = '';
    step.details.forEach(function (text, i) {
      const div = document.createElement('div');
      div.textContent = text;
      if (i > 0) div.className = 'fault';
      details.appendChild(div);
    });
    const first = lines[step.faults[0] !== undefined ? step.faults[0] : step.created[0]];
    if (first) first.scrollIntoView({ block: 'nearest' });
  }
  document.querySelectorAll('.step').forEach(function (el) {
    el.addEventListener('click', function () { select(Number(el.dataset.step)); });
    el.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') select(Number(el.dataset.step));
    });
  });
  select(life.steps.length);
})();
</script>
"#;
