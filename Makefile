# ocmembers: every result of van Groeningen et al. (2023), from raw queries to the PDF.
#
#   make demo                       the whole chain on a few simulated clusters (no data, no network)
#   make test                       the test suite (offline)
#   make all [SOURCE=archive|local|sim|hats] [DATA_DIR=../shared/data] [CLUSTERS="A B"] [JOBS=N] [SCHEDULER=tcp://host:8786]
#   make <stage>                    catalogues cones crossmatch isochrones sets train members validate figures paper
#   make fig-<name>                 one figure (fig1_sets fig2_training fig3_venn fig4_clusters_t22 ...)
#   make verify                     re-hash every product of the run against its manifest
#   make catalogue-members          member lists for every cluster of the catalogue, one HATS catalogue
#   make bench | bench-scaling | truthbench | forecast | compare | pr22 | image | snapshot | clean
#
# Every stage target runs its stage (and the stages before it, in order); each stage decides
# per cluster: a product is up to date iff it verifies against its manifest and the manifest
# records the same config digest, input sha256s and code version the stage would record now.
# Everything up to date costs only hashing; an interrupted run resumes. No stamps, no file times.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

SOURCE     ?= archive
DATA_DIR   ?= ../shared/data
CLUSTERS   ?=
JOBS       ?= 1
SCHEDULER  ?=
OUTPUT_DIR ?= data
CONFIG     ?=
MODEL      ?=
VARIANT    ?=
IMAGE      ?= ocmembers:latest
# The environment: by default a virtual environment that `make` creates on first use
# (and again when the lock changes) from requirements/lock.txt, every package exact and
# hashed (scripts/lock.sh writes it from the ranges of pyproject.toml). Point PYTHON at
# an interpreter that already has the package (the container does: PYTHON=python3) to
# skip it.
VENV       ?= .venv
PYTHON     ?= $(VENV)/bin/python

PKG := src/ocmembers
OCM := PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m ocmembers.cli
ARGS = --source $(SOURCE) --data-dir $(DATA_DIR) --output-dir $(OUTPUT_DIR) --jobs $(JOBS) \
       $(if $(strip $(CLUSTERS)),--clusters "$(CLUSTERS)") $(foreach c,$(CONFIG),--config $(c)) \
       $(if $(MODEL),--set membership.model=$(MODEL)) $(if $(VARIANT),--set membership.variant=$(VARIANT)) \
       $(if $(SCHEDULER),--scheduler $(SCHEDULER))

OUT := $(OUTPUT_DIR)/$(SOURCE)
KEY := $(if $(strip $(CLUSTERS)),$(strip $(CLUSTERS)),all)

ENV_STAMP := $(VENV)/.ocmembers-installed
ENV := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(ENV_STAMP))
LOCK := requirements/lock.txt
NODEPS_LOCK := requirements/lock-nodeps.txt
# torch is locked to the CPU build (2.13.0+cpu) by its hash, so no CUDA wheel can be
# installed; where pip's configuration has no such wheel, point TORCH_INDEX at the
# PyTorch CPU index (ARG TORCH_INDEX of the Dockerfile).
TORCH_INDEX ?=

$(ENV_STAMP): $(LOCK) $(NODEPS_LOCK) pyproject.toml
	@echo "== creating $(VENV) from $(LOCK) (exact versions, hash-checked)"
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --require-hashes \
	    $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -r $(LOCK)
	@# the authors' published model (DS10_v02) for --model vg23 and the fidelity test;
	@# its declared torchvision dependency is not needed for the network, hence --no-deps
	$(VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r $(NODEPS_LOCK)
	@# the package itself, its dependencies already there; built with the locked setuptools
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

env: $(ENV)

STAGES := catalogues cones crossmatch isochrones sets train members validate figures paper
.PHONY: env all demo test report bench bench-scaling catalogue-members truthbench realism forecast compare pr22 pr22-all image snapshot clean help verify $(STAGES)

help:
	@sed -n '2,15p' Makefile | sed 's/^# \{0,1\}//'

# On the simulated sky with the real catalogues in DATA_DIR, the realism report (issue 16) is
# made before the paper, whose appendix quotes it.
REALISM := $(if $(and $(filter sim,$(SOURCE)),$(wildcard $(DATA_DIR)/catalogues/t22_members_edr3.csv.gz)),realism)
# On the simulated sky, the second paper (Pena Ramirez et al. 2022, issue 12) too: its 37 clusters,
# or those of CLUSTERS among them (none: nothing to do).
# After the paper: its comparison with the Deep Sets network reads the model that the paper's
# train stage makes (before it, a run from scratch found no model, and a retrain left it stale).
PR22_ALL := $(if $(filter sim,$(SOURCE)),pr22-all)
# On the simulated sky with the CG20 table in DATA_DIR, the DR4 forecast (issue 15) too, before the
# paper, whose section "What Gaia DR4 will add" quotes it.
FORECAST := $(if $(and $(filter sim,$(SOURCE)),$(wildcard $(DATA_DIR)/catalogues/cg20_table1.csv)),forecast)
all: $(REALISM) $(FORECAST) paper $(PR22_ALL)
	@$(OCM) report $(ARGS)

# Each stage: `make <stage>` runs it after the stages it needs, always: the stage itself
# decides, per cluster, from the records in its products' manifests (no stamps, no times).
# run_stage: run the CLI subcommand; a stage that is not built yet fails with a clear message
define run_stage
	@echo "== $(1) [SOURCE=$(SOURCE) CLUSTERS=$(KEY)]"
	@$(OCM) $(1) $(ARGS) $(2) || { rc=$$?; if [ $$rc -eq 3 ]; then \
	  echo "make: stage '$(1)' is not built yet in this version of ocmembers; stopping here." >&2; fi; exit $$rc; }
endef

catalogues: | $(ENV)
	$(call run_stage,catalogues)
cones: catalogues
	$(call run_stage,cones)
crossmatch: cones
	$(call run_stage,crossmatch)
isochrones: catalogues
	$(call run_stage,isochrones)
sets: crossmatch isochrones
	$(call run_stage,sets)
train: sets
	$(call run_stage,train)
members: train
	$(call run_stage,members)

# Every cluster of the catalogues stage's cluster table (CLUSTERS: a subset of it) through
# cones .. sets, the model trained once (nothing to train with MODEL=vg23 or a path), then
# the member lists and one HATS member catalogue (data/<source>/catalogue_members/members).
catalogue-members: catalogues
	@names="$$($(OCM) catalogue-members $(ARGS) --list)"; \
	  $(MAKE) --no-print-directory sets train CLUSTERS="$$names"
	$(call run_stage,catalogue-members)
validate: members
	$(call run_stage,validate)
figures: validate
	$(call run_stage,figures)
paper: figures
	@command -v latexmk >/dev/null || bash scripts/install_tex.sh
	$(call run_stage,paper)

# One figure (a script figures/fig_*.py draws it): `make fig-fig3_venn`; redrawn only when its
# record (its inputs' sha256, its script, the figures stage's code) changed.
fig-%: validate
	$(call run_stage,figures,--only $*)

# Re-hash every product of the run against its manifest (exit 1 when anything is bad).
verify: | $(ENV)
	@$(OCM) verify $(ARGS)

# The embedded default: the simulated sky, a handful of clusters, no data, no network.
demo: | $(ENV)
	$(MAKE) paper SOURCE=sim OUTPUT_DIR=data/demo CONFIG=$(PKG)/demo.toml DATA_DIR=$(DATA_DIR) JOBS=$(JOBS) PYTHON=$(PYTHON)

test: | $(ENV)
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m pytest -q

bench: | $(ENV)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; PYTHONPATH=src $(PYTHON) $$b; done

# 40 simulated clusters of the CG20 table in DATA_DIR with 1 and then 2 workers (docs/scaling.md)
bench-scaling: | $(ENV)
	PYTHONPATH=src $(PYTHON) benchmarks/bench_scaling.py --data-dir $(DATA_DIR)

truthbench: | $(ENV)
	$(MAKE) members SOURCE=sim OUTPUT_DIR=$(OUTPUT_DIR) CONFIG="$(CONFIG)" CLUSTERS="$(CLUSTERS)" JOBS=$(JOBS)
	@$(OCM) truthbench $(subst --source $(SOURCE),--source sim,$(ARGS))

# What Gaia DR4 will add (issue 15): the truth benchmark of the clusters of FORECAST_CONFIG on the
# simulated sky seen by DR3 and again by DR4 (dr4.toml on top), each with its own model, in
# $(OUTPUT_DIR)/forecast/{dr3,dr4}; then the table and figure in $(OUTPUT_DIR)/sim/forecast.
# Its test clusters are CG20's: DATA_DIR must hold the CG20 table.
FORECAST_CONFIG ?= $(PKG)/forecast.toml
forecast: | $(ENV)
	$(MAKE) truthbench SOURCE=sim DATA_DIR=$(DATA_DIR) OUTPUT_DIR=$(OUTPUT_DIR)/forecast/dr3 CONFIG="$(FORECAST_CONFIG)" CLUSTERS= MODEL= VARIANT= JOBS=$(JOBS) SCHEDULER=$(SCHEDULER)
	$(MAKE) truthbench SOURCE=sim DATA_DIR=$(DATA_DIR) OUTPUT_DIR=$(OUTPUT_DIR)/forecast/dr4 CONFIG="$(FORECAST_CONFIG) $(PKG)/dr4.toml" CLUSTERS= MODEL= VARIANT= JOBS=$(JOBS) SCHEDULER=$(SCHEDULER)
	@$(OCM) forecast $(subst --source $(SOURCE),--source sim,$(ARGS))

# the simulated sky against the real T22 and CG18 lists and the real M67 cone (issue 16)
realism: | $(ENV)
	$(MAKE) catalogues SOURCE=sim OUTPUT_DIR=$(OUTPUT_DIR) CONFIG="$(CONFIG)" CLUSTERS="$(CLUSTERS)" JOBS=$(JOBS)
	@$(OCM) realism $(subst --source $(SOURCE),--source sim,$(ARGS))

report: | $(ENV)
	@$(OCM) report $(ARGS)

compare: | $(ENV)
	@$(OCM) compare $(ARGS)

# Pena Ramirez et al. (2022): their 37 clusters (CLUSTERS: a subset), XDGMM -> UPMASK, masses,
# paper/pr22/ms.pdf; on the simulated VVV sky with truth metrics, on SOURCE=archive|local with
# Gaia + 2MASS + VIRAC2 fetched for the clusters of the catalogues stage.
pr22: $(if $(filter sim,$(SOURCE)),,catalogues) | $(ENV)
	@command -v latexmk >/dev/null || bash scripts/install_tex.sh
	$(call run_stage,pr22)
pr22-all: | $(ENV)
	@command -v latexmk >/dev/null || bash scripts/install_tex.sh
	$(call run_stage,pr22,--if-any)

snapshot: | $(ENV)
	@$(OCM) snapshot $(ARGS)

image:
	bash scripts/build_image.sh $(IMAGE)

clean:
	rm -rf $(OUTPUT_DIR)/archive $(OUTPUT_DIR)/local $(OUTPUT_DIR)/sim $(OUTPUT_DIR)/demo \
	       figures/*/ figures/*.pdf figures/*.png paper/generated paper/build paper/ms*.pdf \
	       .pytest_cache
