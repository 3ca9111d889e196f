# Chorus kube-router — the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN = $(shell scripts/ensure-node.sh)
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
NODES ?= 3
PODS ?= 2
ONCE ?=
DEVICE ?= linux
ROUTING ?= vxlan
IP_FAMILY ?= ipv4
CLI := bin/chorus-kube-router

.PHONY: help build bundle system-deps node deps prometheus-tools run test test-unit lint typecheck checks bench clean lab-clean

help:
	@echo "make run     bring up the local lab and show the overlay working (ONCE=1 NODES=3 PODS=2 DEVICE=linux|citrix|f5 ROUTING=vxlan|direct|auto);"
	@echo "             with KUBECONFIG set, run the coordinator against that cluster"
	@echo "make test    install what is needed and run lint, typecheck and every test"
	@echo "make build   install system packages, a suitable Node and the npm dependencies"
	@echo "make bundle  build the CLI ahead of time into dist/ (what the images and make run run)"
	@echo "make bench   run the benchmarks (BENCH=agent,scale,gateway,dataplane,f5 NODES=5000; results in bench/results/)"
	@echo "make lab-clean  remove every lab namespace left behind by a killed run"

build: system-deps node deps

system-deps:
	@scripts/install-system-deps.sh

node:
	@scripts/ensure-node.sh >/dev/null

# Debian's promtool and prometheus, unpacked into .tools/ for the alert tests (no service installed)
prometheus-tools:
	@scripts/ensure-prometheus.sh >/dev/null

deps: node_modules/.install-stamp

node_modules/.install-stamp: package.json package-lock.json | node
	@echo "build: installing npm dependencies (node $$(node --version))"
	@npm ci --no-audit --no-fund --loglevel=error
	@ln -sfn ../../bin/chorus-kube-router node_modules/.bin/chorus-kube-router
	@touch $@

# the product's roles as the images run them: bundled ahead of time (dist/)
bundle: build
	@node scripts/bundle.ts

run: bundle
ifdef KUBECONFIG
	node dist/chorus-kube-router.js coordinator
else
	$(CLI) lab run --components bundle --nodes $(NODES) --pods-per-node $(PODS) --device $(DEVICE) --routing $(ROUTING) --ip-family $(IP_FAMILY) $(if $(ONCE),--once,)
endif

typecheck: build
	node_modules/.bin/tsc --noEmit -p .

lint: build
	node_modules/.bin/eslint --max-warnings 0 .

# typecheck and lint side by side (the two cores), then the tests (scripts/test.sh)
checks: build
	@$(MAKE) --no-print-directory -j2 typecheck lint

test: build prometheus-tools checks
	@scripts/test.sh

test-unit: build
	node_modules/.bin/vitest run test/unit

# `make bench NODES=5000` sizes the scale and gateway suites (NODES given for `run` is not used here)
BENCH_SIZE = $(if $(filter command line environment,$(origin NODES)),BENCH_NODES=$(NODES) BENCH_GATEWAY_NODES=$(NODES) BENCH_F5_NODES=$(NODES),)
bench: bundle
	$(BENCH_SIZE) node --disable-warning=ExperimentalWarning bench/run.ts

lab-clean: build
	$(CLI) lab down --all

clean:
	rm -rf node_modules .tools dist
