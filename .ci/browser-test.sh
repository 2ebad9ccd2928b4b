#!/usr/bin/env bash
# The explain page in a real browser: for a few conformance scenarios and a recorded
# multi-node run, `braid` writes the page, headless Chromium (Debian's package, driven
# by playwright-core) opens it, counts the diagram's lanes and steps against the run's
# transcript, clicks a step and checks that the script shows its notes, and takes a
# screenshot (target/browser-test/*.png). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/browser-test
mkdir -p "$out"

if ! command -v chromium >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
if [ ! -d "$out/node_modules/playwright-core" ]; then
  npm install --silent --no-audit --no-fund --prefix "$out" playwright-core@1.65.1 >/dev/null
fi

cargo build --quiet --release --bin braid
braid=target/release/braid
scenarios=../shared/conformance/scenarios
cases=()
for name in call/merged_two_peers fold/lfold canon/basic errors/rebubble_from_xor_right_branch \
            negative/iterable_shadowing issues/issue_177; do
  file="$scenarios/$name.json"
  slug=${name//\//-}
  "$braid" sim "$file" --html "$out/$slug.html" > "$out/$slug.transcript.json" 2>/dev/null
  cases+=("$slug")
done

# Lives recorded by in-memory nodes.
rm -rf "$out/records"
"$braid" run fixtures/examples/par_seq_timestamps.air --peers 4 \
  --arg relay1=@1 --arg relay2=@2 --arg relay3=@3 --record "$out/records" >/dev/null
"$braid" explain fixtures/examples/par_seq_timestamps.air "$out/records" \
  --html "$out/recorded.html" > "$out/recorded.txt" 2>/dev/null
cases+=(recorded)
rm -rf "$out/hello-records"
"$braid" run fixtures/examples/hello_world_remote.air --peers 2 --arg name='"braid"' \
  --record "$out/hello-records" >/dev/null
"$braid" explain fixtures/examples/hello_world_remote.air "$out/hello-records" \
  --html "$out/hello.html" > "$out/hello.txt" 2>/dev/null
cases+=(hello)

PLAYWRIGHT_CORE="$PWD/$out/node_modules/playwright-core" node .ci/browser-test.cjs "$out" "${cases[@]}"
