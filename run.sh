#!/usr/bin/env bash
# The README's two commands. Each first runs the set-up (quick when nothing
# changed), then:
#   ./run.sh demo   runs the main job
#   ./run.sh test   runs the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
  demo) scripts/setup.sh && exec node dist/control/cli/main.js demo "${@:2}" ;;
  test) scripts/setup.sh && exec node_modules/.bin/vitest run ;;
  *)
    echo "usage: ./run.sh demo | test" >&2
    exit 2
    ;;
esac
