#!/usr/bin/env bash
# Placeholder until the Kubernetes work fills it in.
set -euo pipefail
