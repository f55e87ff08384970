# meshbridge: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# External tools the tests drive as a user would, each kept out of the project's environment:
# sslyze pins cryptography<47, which must not replace the project's own cryptography.
TOOLS       ?= .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: setup tools oracle kube istiod clusters-up clusters-down test-clusters demo demo-istiod test lint typecheck unit security vegeta toxiproxy bench clean

# Each step says what it does; the install itself shows pip's progress (the first run takes about a minute).
$(STAMP): pyproject.toml
	@echo "setup 1/3: a virtual environment in $(VENV) ($(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	@echo "setup 2/3: upgrading pip"
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "setup 3/3: installing meshbridge and its test tools (Envoy, the Lambda runtime, pytest, ruff, mypy)"
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	touch $@
	@echo "setup: done; the CLI is $(BIN)/meshbridge (shell completion: $(BIN)/meshbridge --install-completion)"

setup: $(STAMP)

$(TOOLS_STAMP):
	@echo "tools 1/2: a virtual environment in $(TOOLS) for the external scanners"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	@echo "tools 2/2: installing sslyze"
	$(TOOLS)/bin/python -m pip install --progress-bar on 'sslyze>=6.1,<7'
	touch $@

## tools: external scanners in their own venv (.venv-tools): sslyze, for the TLS profile scan (S8)
tools: $(TOOLS_STAMP)

## oracle: istiod's own translation (tools/istio-oracle, Go), built once and cached by the hash of its sources.
## Without Go it says so in one line and the oracle's tests skip.
oracle: setup
	@if command -v go >/dev/null 2>&1; then $(BIN)/python -m meshbridge.istiod.oracle; \
	else echo "oracle: skipped (no Go toolchain on PATH; the oracle's tests will skip)"; fi

## kube: Kubernetes' API server and etcd from source (tools/kube, Go), built once and cached by the hash of its
## sources (cold: 5 to 10 minutes on 2 cores). Without Go it says so in one line and the real-server tests skip.
kube: setup
	@if command -v go >/dev/null 2>&1; then $(BIN)/python -m meshbridge.kube.binaries; \
	else echo "kube: skipped (no Go toolchain on PATH; the tests on real API servers will skip)"; fi

## istiod: Istio's control plane and its agent (tools/istiod: pilot-discovery and pilot-agent of the Istio the oracle
## pins, Go), built once and cached by the hash of its sources. Without Go it says so and the istiod tests skip.
istiod: setup
	@if command -v go >/dev/null 2>&1; then $(BIN)/python -m meshbridge.istiod.pilot; \
	else echo "istiod: skipped (no Go toolchain on PATH; the tests on istiod will skip)"; fi

## clusters-up: a real API server per mesh of the seed bridge (eks, gke: etcd and kube-apiserver from tools/kube,
## loopback, TLS, RBAC), Istio's CRDs and an Istio stand-in; prints the KUBECONFIG and a plan to try (.clusters/)
clusters-up: kube
	$(BIN)/python -m meshbridge.kube.envtest up

## clusters-down: stops what clusters-up started and removes .clusters/ (its keys included)
clusters-down: setup
	$(BIN)/python -m meshbridge.kube.envtest down

## demo: the article's scenario end to end on this machine (real Envoy, ALB emulator, Lambda runtime)
demo: setup
	$(BIN)/meshbridge demo

## demo-istiod: the same path on the real control plane (a kube-apiserver, etcd and istiod per mesh, the gateways'
## and the app's pilot-agents fed over xDS; needs Go or cached builds, and root): local up, the Lambda's 200, down
demo-istiod: setup kube istiod
	@state=$$(mktemp -d) && trap '$(BIN)/meshbridge local down -f examples/seed/bridge.yaml --state-dir '"$$state"' >/dev/null; rm -rf "$$state"' EXIT && \
	$(BIN)/meshbridge local up --control-plane istiod -f examples/seed/bridge.yaml --state-dir "$$state" && \
	$(BIN)/meshbridge local curl -i --bridge examples/seed/bridge.yaml --state-dir "$$state" http://lambda.external/hello-world

## test: lint, type-check, then every test tier that runs here, the cluster suite last (on the two real API
## servers it starts; it skips without Go and without a cached build of tools/kube)
test: setup tools oracle kube istiod lint typecheck
	$(BIN)/pytest
	$(BIN)/pytest -m cluster tests/cluster

## test-clusters: the cluster suite (-m cluster) on two real API servers it starts (tools/kube; needs Go or a
## cached build, skips without), or on MESHBRIDGE_CONTEXTS when set (docs/clusters.md)
test-clusters: kube istiod
	$(BIN)/pytest -m cluster tests/cluster

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

## security: the security suite alone (mTLS refusals, CRL, TLS profile with sslyze, SNI/Host, edge limits)
security: setup tools
	$(BIN)/pytest -m security tests/security

## vegeta: the benchmarks' load generator (tools/vegeta, Go), built once and cached by the hash of its sources.
## Without Go it says so in one line and the benchmarks use the Python generator.
vegeta: setup
	@if command -v go >/dev/null 2>&1; then $(BIN)/python -m benchmarks.vegeta; \
	else echo "vegeta: skipped (no Go toolchain on PATH; the benchmarks use the Python generator)"; fi

## toxiproxy: the WAN benchmark's latency-injecting proxy (tools/toxiproxy, Go), built once and cached likewise.
toxiproxy: setup
	$(BIN)/python benchmarks/wan.py --build

## bench: the bridge end to end against its floors (bridge.py), then across an emulated WAN (wan.py); not part of test
bench: setup vegeta toxiproxy
	$(BIN)/python benchmarks/bridge.py
	$(BIN)/python benchmarks/wan.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
