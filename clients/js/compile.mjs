// Compiles every fixtures/aqua/*.aqua with the real Aqua compiler
// (@fluencelabs/aqua-api) into the JS modules the client imports, in .build/ (each
// function and its AIR script `<name>_script`; each exported service `register<Name>`).
import { compileFromPath } from "@fluencelabs/aqua-api";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const aquaDir = path.resolve(here, "../../fixtures/aqua");
export const buildDir = path.join(here, ".build");

/** Compiles each Aqua file that exports functions; returns {file: path of its JS module}. */
export async function compileAll() {
  await mkdir(buildDir, { recursive: true });
  const files = (await readdir(aquaDir)).filter((f) => f.endsWith(".aqua"));
  const out = {};
  for (const file of files.sort()) {
    const filePath = path.join(aquaDir, file);
    const js = await compileFromPath({ filePath, targetType: "js", imports: [] });
    if (js.errors.length > 0) {
      throw new Error(`${file}: the Aqua compiler failed:\n${js.errors.join("\n")}`);
    }
    const source = js.generatedSources.find((s) => s.jsSource);
    if (!source) throw new Error(`${file}: the compiler generated no JS module`);
    const modulePath = path.join(buildDir, file.replace(/\.aqua$/, ".js"));
    await writeFile(modulePath, source.jsSource);
    out[file] = modulePath;
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const all = await compileAll();
  for (const [file, modulePath] of Object.entries(all)) console.log(file, "->", modulePath);
}
