#!/usr/bin/env bash
# The README's test command (`npm test`): every tier, set-up included.
#
# As root, it first runs scripts/setup-test-infra.sh (idempotent, a few seconds when everything is
# already there) to install and start the real parts, then runs every tier: build, type check,
# lint, unit (hermetic, golden and CLI tests) and integration (real Swarm, HAProxy, Nginx,
# carbon-cache). Without root it cannot install anything: it runs the hermetic tiers and says,
# once, which tier it skipped and the one command that enables it.
set -euo pipefail
cd "$(dirname "$0")/.."

tier() { printf '\n[npm test] %s\n' "$*"; }

integration=yes
if [ "$(id -u)" -eq 0 ]; then
  tier "setting up the real parts (scripts/setup-test-infra.sh)"
  bash scripts/setup-test-infra.sh
elif [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
  echo "[npm test] CI must run as root: the integration tier needs the real parts" >&2
  exit 1
else
  integration=no
fi

tier "build"
npm run --silent build
tier "type check"
npm run --silent typecheck
tier "lint"
npm run --silent lint
tier "unit tier"
npx vitest run --project unit
if [ "$integration" = yes ]; then
  tier "integration tier"
  npx vitest run --project integration
else
  printf '\n[npm test] skipped: the integration tier (real Docker Swarm, HAProxy, Nginx, carbon-cache). Enable it with: sudo npm test\n'
fi
