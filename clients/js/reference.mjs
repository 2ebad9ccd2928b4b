// Derives the expected results on the reference: runs each case's compiled AIR with
// every peer (the client, a second client and five nodes) on AquaVM 0.64.1 behind `oracle serve`
// (../../../shared/oracle), compares with fixtures/aqua/cases.json and prints
// what differs.
//
//   node reference.mjs ORACLE [FUNCTION...]
//
// The driver delivers particles first in, first out. Nodes answer the built-ins the
// cases call as Nox does (an error is ret_code 1 and the message as a JSON string);
// the client answers as the JS client 0.9.0 does: getDataSrv (the arguments and
// -relay-), callbackSrv (the arrows and the response), errorHandlingSrv, the same
// pure built-ins as a node (the client has them too), and the services of services.mjs (a throw becomes the client's message
// `Service call failed. fnName=… serviceId=… error: …`). `peer.timeout` answers only
// when nothing else can run, as time passes only while everyone waits; `slow.wait`
// and particles to a peer that does not exist are never answered.
import { spawn } from "node:child_process";
import readline from "node:readline";
import { compileFromPath } from "@fluencelabs/aqua-api";
import path from "node:path";
import { aquaDir } from "./compile.mjs";
import { loadCases, caseArgs, matches, substitute, placeholders } from "./cases.mjs";
import { clientServices } from "./services.mjs";

const [oraclePath, ...only] = process.argv.slice(2);
if (!oraclePath) {
  console.error("usage: node reference.mjs ORACLE [FUNCTION...]");
  process.exit(2);
}
const CLIENT = "client";
const CLIENT2 = "client2";
const NODES = ["node1", "node2", "node3", "node4", "node5"];
const NAMES = placeholders(NODES, CLIENT2);
const PARTICLE = { particle_id: "reference-run", timestamp: 1700000000000, ttl: 15000 };

const oracle = spawn(oraclePath, ["serve"], { stdio: ["pipe", "pipe", "inherit"] });
const answers = readline.createInterface({ input: oracle.stdout });
const waiting = [];
answers.on("line", (line) => waiting.shift()(JSON.parse(line)));
function invoke(request) {
  return new Promise((resolve) => {
    waiting.push(resolve);
    oracle.stdin.write(JSON.stringify(request) + "\n");
  });
}

const ok = (v) => ({ ret_code: 0, result: JSON.stringify(v ?? "") });
const err = (message) => ({ ret_code: 1, result: JSON.stringify(message) });

/** A node's built-ins, as Nox answers them; null: never answered; "timeout": deferred. */
function nodeCall(service, fn, args) {
  const key = `${service}.${fn}`;
  switch (key) {
    case "op.noop": return ok("");
    case "op.identity": return ok(args[0]);
    case "op.concat_strings": return ok(args.join(""));
    case "op.array_length": return ok(args[0].length);
    case "math.add": return ok(args[0] + args[1]);
    case "math.sub": return ok(args[0] - args[1]);
    case "math.mul": return ok(args[0] * args[1]);
    case "math.div": return args[1] === 0 ? err("division by zero") : ok(Math.trunc(args[0] / args[1]));
    case "array.sum": return ok(args[0].reduce((a, b) => a + b, 0));
    case "peer.timeout": return { deferred: ok(args[1] ?? "") };
    default: return err(`Service with id '${service}' not found (function ${fn})`);
  }
}

/** The client's answers; sets run.result / run.error. */
async function clientCall(run, service, fn, args) {
  if (service === "getDataSrv") {
    if (fn === "-relay-") return ok(NODES[0]);
    if (!(fn in run.named)) return err(`no argument ${fn}`);
    return ok(run.named[fn]);
  }
  if (service === "callbackSrv" && fn === "response") {
    run.result = args.length === 1 ? args[0] : args;
    return ok("");
  }
  if (service === "errorHandlingSrv" && fn === "error") {
    run.error = args[0];
    return ok("");
  }
  if (service === "callbackSrv" && typeof run.named[fn] === "function") return ok(await run.named[fn](...args));
  if (service === "slow") return null;
  const impl = clientServices[service]?.[fn];
  if (!impl && ["op", "math", "array", "peer"].includes(service)) return nodeCall(service, fn, args);
  if (!impl) {
    return err(`No service found for service call: serviceId='${service}', fnName='${fn}' args='${JSON.stringify(args)}'`);
  }
  try {
    return ok(await impl(...args));
  } catch (e) {
    return err(`Service call failed. fnName="${fn}" serviceId="${service}" error: ${e.message}`);
  }
}

/** The second client: the services of services.mjs and the client's built-ins. */
async function otherClientCall(service, fn, args) {
  const impl = clientServices[service]?.[fn];
  if (!impl && ["op", "math", "array", "peer"].includes(service)) return nodeCall(service, fn, args);
  if (!impl) return err(`No service found for service call: serviceId='${service}', fnName='${fn}' args='${JSON.stringify(args)}'`);
  try {
    return ok(await impl(...args));
  } catch (e) {
    return err(`Service call failed. fnName="${fn}" serviceId="${service}" error: ${e.message}`);
  }
}

async function runCase(c, def, script) {
  const names = Object.keys(def.arrow.domain.fields ?? {});
  const args = caseArgs(c, NAMES);
  const run = { named: Object.fromEntries(names.map((n, i) => [n, args[i]])) };
  const peers = new Set([CLIENT, CLIENT2, ...NODES]);
  const stored = {};
  const queue = [{ peer: CLIENT, data: "", results: {} }];
  const deferred = [];
  let steps = 0;
  while ((queue.length > 0 || deferred.length > 0) && run.result === undefined && run.error === undefined) {
    if (queue.length === 0) queue.push(deferred.shift());
    const { peer, data, results } = queue.shift();
    if (++steps > 500) throw new Error("more than 500 invokes");
    const answer = await invoke({
      air: script,
      prev_data: stored[peer] ?? "",
      data,
      params: { init_peer_id: CLIENT, current_peer_id: peer, ...PARTICLE },
      call_results: results,
    });
    if (answer.error) throw new Error(`oracle: ${answer.error}`);
    if (answer.ret_code !== 0) run.interpreterErrors = [...(run.interpreterErrors ?? []), `${peer}: ${answer.ret_code} ${answer.error_message}`];
    stored[peer] = answer.data;
    for (const next of answer.next_peer_pks) {
      if (peers.has(next)) queue.push({ peer: next, data: answer.data, results: {} });
    }
    const now = {};
    for (const [id, req] of Object.entries(answer.call_requests)) {
      const args = req.arguments;
      const a = peer === CLIENT
        ? await clientCall(run, req.service_id, req.function_name, args)
        : peer === CLIENT2
          ? await otherClientCall(req.service_id, req.function_name, args)
          : nodeCall(req.service_id, req.function_name, args);
      if (a === null) continue;
      if (a.deferred) deferred.push({ peer, data: "", results: { [id]: a.deferred } });
      else now[id] = a;
    }
    if (Object.keys(now).length > 0) queue.push({ peer, data: "", results: now });
  }
  return run;
}

const cases = (await loadCases()).filter((c) => only.length === 0 || only.includes(c.function));
const compiled = {};
let same = 0;
let different = 0;
for (const c of cases) {
  compiled[c.file] ??= await compileFromPath({ filePath: path.join(aquaDir, c.file), imports: [] });
  const f = compiled[c.file].functions[c.function];
  if (!f) throw new Error(`${c.file} has no function ${c.function}`);
  const run = await runCase(c, f.funcDef, f.script);
  const got = run.error !== undefined ? { error: run.error } : run.result;
  if (run.result !== undefined && matches(c, run.result, NAMES)) {
    same++;
    console.log(`same      ${c.function}`);
  } else {
    different++;
    console.log(`DIFFERENT ${c.function}\n  cases.json ${JSON.stringify(substitute(c.expected, NAMES))}\n  reference  ${JSON.stringify(got)}`);
  }
  if (run.interpreterErrors) console.log(`  interpreter errors: ${run.interpreterErrors.join("; ")}`);
}
oracle.stdin.end();
console.log(`${same} same as the reference, ${different} different`);
process.exit(different === 0 ? 0 : 1);
