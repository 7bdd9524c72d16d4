#!/usr/bin/env bash
# Set up one host of cluster.yaml; `ray up` runs it after syncing the project to ~/latfarm:
#     bash ~/latfarm/deploy/cluster-host-setup.sh head|worker
#
# 1. checks the prerequisites (python3 new enough, with venv and ensurepip) and fails with one line;
# 2. installs latfarm in ~/latfarm-venv (editable, so a re-synced project needs no reinstall), with
#    torch's CPU build unless `nvidia-smi -L` lists a GPU, and the extras this host's devices need
#    (`python -m farm.host_extras`); skipped when pyproject.toml, the inventory, the role and the
#    torch variant are unchanged since the last run (the stamp in ~/.latfarm/installed);
# 3. checks that every file the inventory names for this host's devices is here (`python -m farm.host_files`);
# 4. token authentication: the head generates the cluster's token once (~/.ray/auth_token, mode 0600);
#    cluster.yaml's cluster_synced_files copies it to every worker, which checks it arrived;
# 5. writes ~/.latfarm/env (the venv, RAY_AUTH_MODE=token, RAY_TMPDIR) and sources it from ~/.bashrc,
#    so `ray submit`/`ray exec` commands and the start commands share the cluster's settings.
set -euo pipefail

role="${1:-}"
[ "$role" = head ] || [ "$role" = worker ] || { echo "usage: $0 head|worker" >&2; exit 2; }

project="$HOME/latfarm"
venv="$HOME/latfarm-venv"
state="$HOME/.latfarm"
torch_version="2.13.0"                    # the Makefile's pin
cpu_index="https://download.pytorch.org/whl/cpu"
host="$(hostname)"

fail() { echo "latfarm setup on $host: $*" >&2; exit 2; }

# --- 1. prerequisites
command -v python3 >/dev/null 2>&1 || fail "python3 not found; install Python (apt-get install python3 python3-venv)"
required="$(sed -n 's/^requires-python *= *">= *\([0-9.]*\)".*/\1/p' "$project/pyproject.toml")"
python3 - "$required" <<'EOF' || fail "python3 is $(python3 -V 2>&1 | cut -d' ' -f2); latfarm needs Python >= $required"
import sys
wanted = tuple(int(part) for part in (sys.argv[1] or "0").split("."))
sys.exit(0 if sys.version_info[:len(wanted)] >= wanted else 1)
EOF
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || fail "python3 has no venv/ensurepip; install python3-venv (apt-get install python3-venv)"

mkdir -p "$state"
chmod 700 "$state"

# --- 2. latfarm in ~/latfarm-venv
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  torch_variant=cuda                        # PyPI's default Linux wheel carries the CUDA libraries
  torch_spec="torch==$torch_version"
  torch_index=()
else
  torch_variant=cpu                         # about 2.7 GB smaller than the CUDA build
  torch_spec="torch==$torch_version+cpu"
  torch_index=(--index-url "$cpu_index")
fi
stamp="$(cat "$project/pyproject.toml" "$project/inventory.yaml" | sha256sum | cut -c1-16)-$role-$torch_variant"
if [ -x "$venv/bin/python" ] && [ "$(cat "$state/installed" 2>/dev/null)" = "$stamp" ]; then
  echo "latfarm setup on $host: ~/latfarm-venv is up to date ($stamp)"
else
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip install -q --no-compile)  # bytecode is written on first import
  installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
  case "$torch_variant:$installed" in
    cpu:*+cpu) torch_ok=yes ;;              # the CPU build is there
    cuda:*+cpu | cuda: | cpu:*) torch_ok=no ;;
    *) torch_ok=yes ;;                      # a CUDA build on a GPU host
  esac
  if [ "$torch_ok" = no ]; then
    # --no-deps: torch's own dependencies come from the default index with latfarm's below.
    "${pip[@]}" --no-deps "${torch_index[@]}" "$torch_spec"
  fi
  "${pip[@]}" -e "$project"
  extras="$(cd "$project" && "$venv/bin/python" -m farm.host_extras --inventory inventory.yaml $([ "$role" = head ] && echo --head))"
  if [ -n "$extras" ]; then
    "${pip[@]}" -e "$project[$extras]"
  fi
  echo "$stamp" > "$state/installed"
  echo "latfarm setup on $host: installed latfarm${extras:+[$extras]} with torch ($torch_variant) in ~/latfarm-venv"
fi

# --- 3. the inventory's files for this host's devices
(cd "$project" && "$venv/bin/python" -m farm.host_files --inventory inventory.yaml $([ "$role" = head ] && echo --head))

# --- 4. the cluster's token
if [ "$role" = head ]; then
  if [ ! -s "$HOME/.ray/auth_token" ]; then
    (umask 077 && "$venv/bin/ray" get-auth-token --generate >/dev/null)
  fi
  chmod 600 "$HOME/.ray/auth_token"
  # `ray submit` runs measure.py in the home folder: its ./inventory.yaml is the synced one.
  ln -sf "$project/inventory.yaml" "$HOME/inventory.yaml"
else
  [ -s "$HOME/.ray/auth_token" ] \
    || fail "~/.ray/auth_token did not arrive from the head; keep ~/.ray/auth_token in cluster.yaml's cluster_synced_files"
  chmod 600 "$HOME/.ray/auth_token"
fi

# --- 5. the environment of every command Ray runs on this host
cat > "$state/env" <<EOF
# Written by ~/latfarm/deploy/cluster-host-setup.sh; sourced from ~/.bashrc.
. "$venv/bin/activate"
export RAY_AUTH_MODE=token      # every Ray process of this cluster requires the token in ~/.ray/auth_token
export RAY_TMPDIR="$state"      # Ray's temp dir is $state/ray: a driver here finds the cluster it records there
EOF
grep -qs 'latfarm/env' "$HOME/.bashrc" || echo '[ -f ~/.latfarm/env ] && . ~/.latfarm/env' >> "$HOME/.bashrc"
