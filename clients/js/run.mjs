// The suite: compiles fixtures/aqua with the real Aqua compiler, starts five real
// `braid node` processes, connects the real JS client (@fluencelabs/js-client 0.9.0,
// its AquaVM 0.62.0) to node 1 over WebSocket and runs every case of
// fixtures/aqua/cases.json through it, each against its expected result.
//
//   npm ci && node run.mjs [FUNCTION...]     (BRAID_BIN: the braid binary)
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
const { loadCases, caseArgs, matches, substitute } = await import("./cases.mjs");
const { clientServices } = await import("./services.mjs");

const NODES = 5;
const CASE_TIMEOUT_MS = 30000;
const only = process.argv.slice(2);
const verbose = !!process.env.VERBOSE;

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
try {
  // Let the later nodes finish joining before the first particle crosses them all.
  await new Promise((r) => setTimeout(r, 1000));
  const relay = `${network.nodes[0].ws}/p2p/${peerIds[0]}`;
  const t1 = Date.now();
  client = await createClient(relay, { defaultTtlMs: 15000 });
  console.log(`client ${client.getPeerId()} connected to ${relay} in ${Date.now() - t1} ms`);

  const services = loaded["services.aqua"];
  services.registerGreeter(client, clientServices.greeter);
  services.registerCounter(client, clientServices.counter);
  services.registerFaulty(client, clientServices.faulty);
  services.registerSlow(client, clientServices.slow);

  const cases = (await loadCases()).filter((c) => only.length === 0 || only.includes(c.function));
  for (const c of cases) {
    const f = loaded[c.file]?.[c.function];
    const start = Date.now();
    let outcome;
    if (typeof f !== "function") {
      outcome = { error: `${c.file} exports no function ${c.function}` };
    } else {
      try {
        const args = caseArgs(c, peerIds);
        const call = f(client, ...args, { ttl: 15000 });
        const timer = new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`no result within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS),
        );
        outcome = { value: await Promise.race([call, timer]) };
      } catch (e) {
        outcome = { error: e instanceof Error ? e.message : JSON.stringify(e) };
      }
    }
    const ms = Date.now() - start;
    if ("value" in outcome && matches(c, outcome.value, peerIds)) {
      passed++;
      console.log(`ok   ${c.function} (${ms} ms)`);
    } else {
      failed++;
      const got = "value" in outcome ? JSON.stringify(outcome.value) : `error: ${outcome.error}`;
      console.log(`FAIL ${c.function} (${ms} ms)\n     expected ${JSON.stringify(substitute(c.expected, peerIds))}\n     got      ${got}`);
    }
  }
} finally {
  if (client) await client.disconnect().catch(() => {});
  await network.stop();
}
console.log(`${passed} passed, ${failed} failed (${Date.now() - t0} ms in all)`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
