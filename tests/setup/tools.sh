#!/usr/bin/env bash
# Placeholder until the gateway and Kubernetes work fill it in.
set -euo pipefail
