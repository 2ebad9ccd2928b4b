// Starts N real `braid node` processes on loopback, each listening on TCP (for the
// other nodes) and WebSocket (for the JS client), node k joining through nodes 1..k-1.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The braid binary: $BRAID_BIN, else the release build of this checkout. */
export function braidBinary() {
  const candidates = [
    process.env.BRAID_BIN,
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, "release/braid"),
    path.join(root, "target/release/braid"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `no braid binary (looked at ${candidates.join(", ")}): run \`cargo build --release -p braid-cli\` or set BRAID_BIN`,
    );
  }
  return found;
}

/** Waits for a node's first line: `braid node <peer id> listening on <addr> …`. */
function firstLine(child, name) {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${name} printed no address within 20 s`)), 20000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}) before it listened`));
    });
  });
}

/**
 * Starts `count` nodes; returns {nodes: [{name, peerId, tcp, ws, child}], stop()}.
 * Node k's key is 32 bytes of value k, so its peer id is the same on every run.
 */
export async function startNetwork(count, { log = () => {} } = {}) {
  const bin = braidBinary();
  const dir = await mkdtemp(path.join(os.tmpdir(), "braid-js-suite-"));
  const nodes = [];
  const stop = async () => {
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise((resolve) => {
            if (n.child.exitCode !== null) return resolve();
            n.child.once("exit", resolve);
            n.child.kill("SIGTERM");
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let k = 1; k <= count; k++) {
      const name = `node${k}`;
      const keyFile = path.join(dir, `${name}.key`);
      // Only its user may read a key file (braid refuses one others can read).
      await writeFile(keyFile, k.toString(16).padStart(2, "0").repeat(32) + "\n", { mode: 0o600 });
      const args = [
        "node",
        "--listen", "/ip4/127.0.0.1/tcp/0",
        "--listen", "/ip4/127.0.0.1/tcp/0/ws",
        "--key-file", keyFile,
      ];
      for (const other of nodes) args.push("--bootstrap", `${other.tcp}/p2p/${other.peerId}`);
      const child = spawn(bin, args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
      });
      child.stderr.on("data", (d) => log(`${name}: ${d}`));
      const line = await firstLine(child, name);
      const m = /^braid node (\S+) listening on (.*)$/.exec(line);
      if (!m) throw new Error(`${name}: unexpected first line: ${line}`);
      const addrs = m[2].split(" ");
      const tcp = addrs.find((a) => !a.includes("/ws"))?.replace(/\/p2p\/.*$/, "");
      const ws = addrs.find((a) => a.includes("/ws"))?.replace(/\/p2p\/.*$/, "");
      if (!tcp || !ws) throw new Error(`${name}: no TCP or WebSocket address in: ${line}`);
      nodes.push({ name, peerId: m[1], tcp, ws, child });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { nodes, stop };
}
