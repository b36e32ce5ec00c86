#!/usr/bin/env bash
# Runs the seed suite end to end with no network and no keys: a local OpenAI-compatible stand-in
# server (versus-fake-openai, which echoes the prompt) plays two models, versus runs the five seed
# tasks on them, stores everything in ./versus-demo.db and writes ./versus-demo-report.md.
# Until the local engine lands, this is the offline demonstration of the whole loop.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p versus -p versus-testkit
fifo=$(mktemp -u)
mkfifo "$fifo"
./target/release/versus-fake-openai --port 0 --latency-ms 50 --chunk-delay-ms 2 >"$fifo" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo"' EXIT
read -r base_url <"$fifo"

./target/release/versus --db versus-demo.db run --builtin seed \
  --model phi-4-standin=openai-compatible:phi-4 \
  --model gpt-4o-mini-standin=openai-compatible:gpt-4o-mini \
  --base-url "$base_url"
./target/release/versus --db versus-demo.db report -o versus-demo-report.md
./target/release/versus --db versus-demo.db runs
echo "report written to $(pwd)/versus-demo-report.md"
