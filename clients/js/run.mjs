// The suite: compiles fixtures/aqua with the real Aqua compiler, starts five real
// `braid node` processes, connects the real JS client (@fluencelabs/js-client 0.9.0,
// its AquaVM 0.62.0) to node 1 over WebSocket (and a second client to node 3) and runs
// every case of fixtures/aqua/cases.json through it, each against its expected result.
//
//   npm ci && node run.mjs [FUNCTION...]
//
// BRAID_BIN names the braid binary (default: the release build of this checkout);
// VERBOSE=1 shows the nodes' logs.
//
// Exit 0 iff every case gave its expected result.

// Node.js 20 lacks Promise.withResolvers, which packages the client pulls in call
// (../../../shared/interop/README.md); define it before the client loads.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
const { createClient } = await import("@fluencelabs/js-client");
const { compileAll } = await import("./compile.mjs");
const { startNetwork } = await import("./network.mjs");
const { loadCases, caseArgs, matches, substitute, placeholders } = await import("./cases.mjs");
const { clientServices } = await import("./services.mjs");

const NODES = 5;
const CASE_TIMEOUT_MS = 30000;
/** The interpreter version the client's AquaVM writes in particle data. */
const CLIENT_AVM = "0.62.0";
const only = process.argv.slice(2);
const verbose = !!process.env.VERBOSE;

const errorText = (e) => (e instanceof Error ? e.message : JSON.stringify(e));

/** The `interpreter_version` in a particle's data (the reference's envelope). */
function writtenBy(data) {
  const text = Buffer.from(data).toString("latin1");
  const m = /interpreter_version[\s\S]{1,3}?(\d+\.\d+\.\d+(?:\+[0-9A-Za-z.-]+)?)/.exec(text);
  return m ? m[1] : data.length === 0 ? "(no data)" : "(unknown)";
}

/**
 * Checks one case's particles on the wire: the client sends data its AquaVM wrote and
 * receives data braid wrote. Counts each particle's turns: the client sent it with its
 * own data and it came back with braid's (braid read the client's data, and the
 * client's AquaVM then read braid's, or the result would not have come). Returns the
 * fewest turns of the case's particles.
 */
function mixedData(log) {
  const ours = new Set(log.filter((w) => w.dir === "out").map((w) => w.id));
  if (ours.size === 0) return { turns: 0 };
  let fewest = Infinity;
  for (const id of ours) {
    let turns = 0;
    let sent = false;
    for (const w of log.filter((w) => w.id === id)) {
      if (w.dir === "out") {
        if (w.version !== CLIENT_AVM) return { turns, problem: `the client sent data written by ${w.version}` };
        sent = true;
      } else {
        if (!w.version.includes("+braid")) return { turns, problem: `the client received data written by ${w.version}` };
        if (sent) turns++;
        sent = false;
      }
    }
    fewest = Math.min(fewest, turns);
  }
  return { turns: fewest };
}

const t0 = Date.now();
const modules = await compileAll();
const loaded = {};
for (const [file, modulePath] of Object.entries(modules)) loaded[file] = await import(modulePath);
console.log(`compiled ${Object.keys(modules).length} Aqua files in ${Date.now() - t0} ms`);

const network = await startNetwork(NODES, { log: verbose ? (l) => process.stderr.write(l) : () => {} });
const peerIds = network.nodes.map((n) => n.peerId);
let failed = 0;
let passed = 0;
let client;
let client2;
try {
  // Let the later nodes finish joining before the first particle crosses them all.
  await new Promise((r) => setTimeout(r, 1000));
  const relay = `${network.nodes[0].ws}/p2p/${peerIds[0]}`;
  const t1 = Date.now();
  client = await createClient(relay, { defaultTtlMs: 15000 });
  console.log(`client ${client.getPeerId()} connected to ${relay} in ${Date.now() - t1} ms`);

  // What crosses the wire: every particle the client sends to node 1 and receives from
  // it, with the interpreter version its data was written by.
  const wire = [];
  const connection = client.connection;
  const send = connection.sendParticle.bind(connection);
  connection.sendParticle = (next, particle) => {
    wire.push({ dir: "out", id: particle.id, version: writtenBy(particle.data) });
    return send(next, particle);
  };
  connection.particleSource.subscribe((particle) => {
    wire.push({ dir: "in", id: particle.id, version: writtenBy(particle.data) });
  });

  // A second client, on node 3, whose service the first reaches through node 3.
  client2 = await createClient(`${network.nodes[2].ws}/p2p/${peerIds[2]}`, { defaultTtlMs: 15000 });
  const names = placeholders(peerIds, client2.getPeerId());

  const services = loaded["services.aqua"];
  services.registerGreeter(client2, clientServices.greeter);
  services.registerGreeter(client, clientServices.greeter);
  services.registerCounter(client, clientServices.counter);
  services.registerFaulty(client, clientServices.faulty);
  services.registerSlow(client, clientServices.slow);

  const cases = (await loadCases()).filter((c) => only.length === 0 || only.includes(c.function));
  for (const c of cases) {
    const f = loaded[c.file]?.[c.function];
    const start = Date.now();
    const wireStart = wire.length;
    let outcome;
    if (typeof f !== "function") {
      outcome = { error: `${c.file} exports no function ${c.function}` };
    } else {
      try {
        const args = caseArgs(c, names);
        const timer = new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`no result within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS),
        );
        if (c.concurrent) {
          // `concurrent` calls at once, as an app that starts many (Promise.all).
          const calls = Array.from({ length: c.concurrent }, () => f(client, ...args, { ttl: 15000 }));
          const all = await Promise.race([Promise.allSettled(calls), timer]);
          const wrong = all.filter((r) => r.status !== "fulfilled" || !matches(c, r.value, names));
          if (wrong.length > 0) {
            const r = wrong[0];
            const first = r.status === "fulfilled" ? JSON.stringify(r.value) : errorText(r.reason);
            throw new Error(`${wrong.length} of ${c.concurrent} calls at once failed; the first: ${first}`);
          }
          outcome = { value: all[0].value };
        } else {
          outcome = { value: await Promise.race([f(client, ...args, { ttl: 15000 }), timer]) };
        }
      } catch (e) {
        outcome = { error: errorText(e) };
      }
    }
    const ms = Date.now() - start;
    const mixed = mixedData(wire.slice(wireStart));
    if ("value" in outcome && mixed.problem === undefined && mixed.turns < (c.min_turns ?? 1)) {
      mixed.problem = `the data changed hands ${mixed.turns} times, at least ${c.min_turns ?? 1} expected`;
    }
    if ("value" in outcome && mixed.problem !== undefined) {
      outcome = { error: `the result came, but ${mixed.problem}` };
    }
    if ("value" in outcome && matches(c, outcome.value, names)) {
      passed++;
      const times = c.concurrent ? `, ${c.concurrent} calls at once` : "";
      console.log(`ok   ${c.function} (${ms} ms${times}; client/braid data turns: ${mixed.turns})`);
    } else {
      failed++;
      const got = "value" in outcome ? JSON.stringify(outcome.value) : `error: ${outcome.error}`;
      console.log(`FAIL ${c.function} (${ms} ms)\n     expected ${JSON.stringify(substitute(c.expected, names))}\n     got      ${got}`);
    }
  }
} finally {
  if (client) await client.disconnect().catch(() => {});
  if (client2) await client2.disconnect().catch(() => {});
  await network.stop();
}
console.log(`${passed} passed, ${failed} failed (${Date.now() - t0} ms in all)`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
