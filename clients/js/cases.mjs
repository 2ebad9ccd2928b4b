// The cases of fixtures/aqua/cases.json and what both runners share: placeholders,
// arguments, comparison.
import { readFile } from "node:fs/promises";
import { isDeepStrictEqual } from "node:util";
import path from "node:path";
import { aquaDir } from "./compile.mjs";
import { callbacks } from "./services.mjs";

/** A peer id that no node of the suite has (the ed25519 key whose secret bytes are all 7). */
export const DEAD_PEER = "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7";

export async function loadCases() {
  const text = await readFile(path.join(aquaDir, "cases.json"), "utf8");
  return JSON.parse(text).cases;
}

/**
 * The placeholders of a run: "@N" node N's peer id (from 1), "@client2" the second
 * client's, "@dead" a peer id nobody has.
 */
export function placeholders(nodeIds, client2) {
  const names = { dead: DEAD_PEER, client2 };
  nodeIds.forEach((id, i) => (names[String(i + 1)] = id));
  return names;
}

/** Replaces the placeholders in every string of a value. */
export function substitute(value, names) {
  if (typeof value === "string") {
    return value.replace(/@(dead|client2|\d+)/g, (whole, what) => {
      const id = names[what];
      if (!id) throw new Error(`${whole}: no such peer in this run`);
      return id;
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, names));
  if (value && typeof value === "object") {
    if (typeof value.callback === "string") return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, names)]));
  }
  return value;
}

/** A case's arguments: callbacks become their functions. */
export function caseArgs(c, names) {
  return substitute(c.args, names).map((a) => {
    if (a && typeof a === "object" && typeof a.callback === "string") {
      const f = callbacks[a.callback];
      if (!f) throw new Error(`${c.function}: no callback named ${a.callback}`);
      return f;
    }
    return a;
  });
}

const sortKey = (v) => JSON.stringify(v);

/** Whether `got` is the case's expected result (with placeholders replaced). */
export function matches(c, got, names) {
  let expected = substitute(c.expected, names);
  if (c.compare === "sorted" && Array.isArray(got) && Array.isArray(expected)) {
    got = [...got].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    expected = [...expected].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  }
  return isDeepStrictEqual(got, expected);
}
