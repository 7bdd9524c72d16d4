# The README's two commands: `make demo` and `make test`. Each does its own set-up from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
ARGS ?=
# `make demo EXTRAS=dev` skips the 1.1 GB converters; tests want them all.
EXTRAS ?= dev,tflite,convert,executorch

# `make demo` keeps its store, registry, predictions and reports here; a second run reuses them.
DEMO_DIR ?= .demo
# `make pretrain` imports HELP's NB201 table into STORE and registers a base predictor in REGISTRY.
STORE ?= measurements
REGISTRY ?= registry

.PHONY: venv demo pretrain test bench clean sshd-deps

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned to the CPU build: a bare range may pull a multi-GB CUDA build.
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt "torch==2.13.0"
	# The tests run the real converters and interpreters, so they take every optional extra.
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
	# Reference implementations the space tests compare against; old, so without their deps.
	$(PIP) install -q --no-deps "xautodl==1.0.0" "ofa==0.1.0.post202307202001"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# The real sshd the SSH agent tests talk to, and rsync, which Ray's cluster launcher needs
# (tests/e2e/test_ray_up.py); the tests that need them skip when they cannot be installed.
sshd-deps:
	@(command -v /usr/sbin/sshd && command -v rsync) >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && apt-get install -y -qq openssh-server rsync >/dev/null) || \
	   echo "openssh-server or rsync not installed: the SSH and ray up tests will be skipped")

# The main job: public table -> pre-trained base -> `farm add-device cpu-local` (about 20 real measurements)
# -> 100 more measured archs as ground truth -> Spearman of the predictions against them, and the wall time.
demo: venv
	$(PY) -m loop.demo --root $(DEMO_DIR) $(ARGS)

# A base predictor for `farm add-device` with the default folders (./measurements, ./registry).
pretrain: venv
	$(PY) -m loop.base --store $(STORE) --registry $(REGISTRY) $(ARGS)

test: venv sshd-deps
	$(PY) -m pytest -q $(ARGS)

bench: venv
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
