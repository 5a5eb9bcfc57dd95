#!/usr/bin/env bash
# One entry point for a fresh machine: installs from uv.lock, then runs the demo or the tests.
#   ./run.sh demo      the whole pipeline for about a minute, with a summary
#   ./run.sh test      the test suite (starts its own Kafka broker and embedded ClickHouse)
#   ./run.sh bench     every benchmark under bench/
#   ./run.sh mutation  mutation testing of the delivery-critical modules (mutmut)
#   ./run.sh lock      refresh uv.lock from pyproject.toml (after changing a dependency)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9            # also [tool.uv] required-version in pyproject.toml
TOOLS=.cache/uv-$UV_VERSION  # uv itself, in a virtualenv of its own (never in .venv)
UV="$TOOLS/bin/uv"
export UV_PROJECT_ENVIRONMENT=.venv UV_PYTHON_DOWNLOADS=never

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 2; }; }

bootstrap_uv() {
  need "$PYTHON" "Python 3.11+"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ required (set PYTHON=python3.12, say)" >&2; exit 2; }
  if [ ! -x "$UV" ]; then
    echo "==> installing uv $UV_VERSION into $TOOLS"
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
}

install() {  # install(extra...): .venv exactly as uv.lock says, with these extras on top of the default
  bootstrap_uv
  need java "Java 17+ runs the local Kafka broker: apt-get install openjdk-17-jre-headless"
  need mvn "Maven fetches the Kafka jars from Maven Central: apt-get install maven"
  local args=()
  for extra in "$@"; do args+=(--extra "$extra"); done
  # --locked: install what uv.lock says, and refuse a lock that pyproject.toml has outgrown
  # (`./run.sh lock` refreshes it); --inexact: keep extras another
  # command installed (the demo after the tests does not uninstall pytest).
  "$UV" sync --locked --inexact --quiet --python "$PYTHON" "${args[@]}"
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    install embedded
    exec .venv/bin/llmwatch demo "$@"
    ;;
  test)
    install embedded test reference
    # The HTML report test renders in headless Chromium (Debian's package).
    if ! command -v chromium >/dev/null 2>&1 && [ -z "${LLMWATCH_CHROMIUM:-}" ]; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium for the report test"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
      else
        echo "error: the report test needs Chromium: sudo apt-get install chromium (or set LLMWATCH_CHROMIUM)" >&2
        exit 2
      fi
    fi
    # The install smoke test builds a second virtualenv from the same lock with this uv.
    export LLMWATCH_UV="$PWD/$UV"
    exec .venv/bin/python -m pytest "$@"
    ;;
  bench)
    install embedded test reference train
    exec .venv/bin/python bench/run_all.py "$@"
    ;;
  mutation)
    # Mutation testing of the modules [tool.mutmut] names in pyproject.toml; the score goes to
    # BENCHMARKS.md. About 15 minutes on 2 cores.
    install embedded test mutation
    rm -rf mutants
    .venv/bin/mutmut run --max-children "$(nproc 2>/dev/null || echo 2)" "$@" || true
    exec .venv/bin/python bench/mutation_score.py
    ;;
  lock)
    bootstrap_uv
    exec "$UV" lock "$@"
    ;;
  *)
    echo "usage: ./run.sh demo | test | bench | mutation | lock" >&2
    exit 2
    ;;
esac
