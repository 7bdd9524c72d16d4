#!/usr/bin/env bash
# Run the nightly retraining as a Ray job on the farm's cluster (cluster.yaml), one Ray task per target.
# The job's working directory is this repository; --store and --registry must be paths every node sees
# (a shared file system), because the tasks write candidate predictors under the registry.
#   RAY_ADDRESS=http://<head>:8265 deploy/ray-job.sh /shared/measurements /shared/registry
set -euo pipefail
store="${1:?usage: ray-job.sh STORE REGISTRY}"
registry="${2:?usage: ray-job.sh STORE REGISTRY}"
cd "$(dirname "$0")/.."
exec ray job submit --working-dir . -- python -m trainer nightly --store "$store" --registry "$registry" --ray --json
