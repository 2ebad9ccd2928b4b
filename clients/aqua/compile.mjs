// braid's glue to the Aqua compiler: `node compile.mjs FILE 'func(1, "a")' [DATA_JSON]`
// prints the compiled call's AIR on stdout, or the compiler's errors on stderr (exit 1).
// Run by `braid run app.aqua -f 'func(…)'`; install with `npm ci` in this folder.
import { compileAquaCallFromPath } from "@fluencelabs/aqua-api";

const [filePath, funcCall, data] = process.argv.slice(2);
if (!filePath || !funcCall) {
  console.error("usage: node compile.mjs FILE.aqua 'func(args)' [DATA_JSON]");
  process.exit(2);
}
const result = await compileAquaCallFromPath({
  filePath,
  funcCall,
  data: data ? JSON.parse(data) : undefined,
  imports: [],
});
if (result.errors.length > 0) {
  console.error(result.errors.join("\n"));
  process.exit(1);
}
process.stdout.write(result.functionCall.script);
