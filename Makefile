# ocmembers: every result of van Groeningen et al. (2023), from raw queries to the PDF.
#
#   make demo                       the whole chain on a few simulated clusters (no data, no network)
#   make test                       the test suite (offline)
#   make all [SOURCE=archive|local|sim] [DATA_DIR=../shared/data] [CLUSTERS="A B"] [JOBS=N]
#   make <stage>                    catalogues cones crossmatch isochrones sets train members validate figures paper
#   make bench | truthbench | compare | image | snapshot | clean
#
# Stages depend on each other through files under $(OUTPUT_DIR)/$(SOURCE)/: a stamp
# per stage, rebuilt when its inputs or the code of the stage change; inside a stage,
# each cluster is skipped when its outputs are up to date, so an interrupted run resumes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

SOURCE     ?= archive
DATA_DIR   ?= ../shared/data
CLUSTERS   ?=
JOBS       ?= 1
OUTPUT_DIR ?= data
CONFIG     ?=
MODEL      ?=
IMAGE      ?= ocmembers:latest
# The environment: by default a virtual environment that `make` creates and fills from
# the pins of pyproject.toml on first use. Point PYTHON at an interpreter that already
# has the package (the container does: PYTHON=python3) to skip it.
VENV       ?= .venv
PYTHON     ?= $(VENV)/bin/python

PKG := src/ocmembers
OCM := PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m ocmembers.cli
ARGS = --source $(SOURCE) --data-dir $(DATA_DIR) --output-dir $(OUTPUT_DIR) --jobs $(JOBS) \
       $(if $(strip $(CLUSTERS)),--clusters "$(CLUSTERS)") $(if $(CONFIG),--config $(CONFIG)) \
       $(if $(MODEL),--set membership.model=$(MODEL))

OUT := $(OUTPUT_DIR)/$(SOURCE)
comma := ,
empty :=
space := $(empty) $(empty)
# one stamp set per cluster subset, so CLUSTERS=A and the full run do not mix
KEY := $(if $(strip $(CLUSTERS)),$(subst $(space),_,$(subst $(comma),_,$(strip $(CLUSTERS)))),all)
STAMP := $(OUT)/.stamps/$(KEY)

CONF_DEPS := $(PKG)/config.py $(PKG)/config.toml $(CONFIG)
SRC_SOURCES := $(wildcard $(PKG)/sources/*.py $(PKG)/sources/sim/*.py $(PKG)/sim/*.py) $(PKG)/cache.py $(PKG)/pipeline.py

ENV_STAMP := $(VENV)/.ocmembers-installed
ENV := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(ENV_STAMP))

$(ENV_STAMP): pyproject.toml
	@echo "== creating $(VENV) with the pinned dependencies (once)"
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@# torch first and exactly pinned: the CPU build; an unpinned torch would pull CUDA
	$(VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	@# the authors' published model (DS10_v02) for --model vg23 and the fidelity test;
	@# its declared torchvision dependency is not needed for the network, hence --no-deps
	$(VENV)/bin/python -m pip install --quiet --no-deps gaia-oc-amd==0.2.1
	@touch $@

env: $(ENV)

STAGES := catalogues cones crossmatch isochrones sets train members validate figures paper
.PHONY: env all demo test report bench truthbench compare image snapshot clean help $(STAGES)

help:
	@sed -n '2,12p' Makefile | sed 's/^# \{0,1\}//'

all: paper
	@$(OCM) report $(ARGS)

# Each stage: `make <stage>` runs it (and what it needs) for the current SOURCE/CLUSTERS.
catalogues: $(STAMP)/catalogues
cones:      $(STAMP)/cones
crossmatch: $(STAMP)/crossmatch
isochrones: $(STAMP)/isochrones
sets:       $(STAMP)/sets
train:      $(STAMP)/train
members:    $(STAMP)/members
validate:   $(STAMP)/validate
figures:    $(STAMP)/figures
paper:      $(STAMP)/paper

# run_stage: run the CLI subcommand; a stage that is not built yet fails with a clear message
define run_stage
	@mkdir -p $(@D)
	@echo "== $(1) [SOURCE=$(SOURCE) CLUSTERS=$(KEY)]"
	@$(OCM) $(1) $(ARGS) || { rc=$$?; if [ $$rc -eq 3 ]; then \
	  echo "make: stage '$(1)' is not built yet in this version of ocmembers; stopping here." >&2; fi; exit $$rc; }
	@touch $@
endef

$(STAMP)/catalogues: $(PKG)/catalogues.py $(PKG)/samples.py $(SRC_SOURCES) $(CONF_DEPS) | $(ENV)
	$(call run_stage,catalogues)
$(STAMP)/cones: $(STAMP)/catalogues $(PKG)/cones.py
	$(call run_stage,cones)
$(STAMP)/crossmatch: $(STAMP)/cones $(PKG)/crossmatch.py
	$(call run_stage,crossmatch)
$(STAMP)/isochrones: $(STAMP)/catalogues $(wildcard $(PKG)/isochrones.py)
	$(call run_stage,isochrones)
$(STAMP)/sets: $(STAMP)/crossmatch $(STAMP)/isochrones $(wildcard $(PKG)/sets.py $(PKG)/selection.py $(PKG)/features.py $(PKG)/preprocessing.py)
	$(call run_stage,sets)
$(STAMP)/train: $(STAMP)/sets $(wildcard $(PKG)/train.py $(PKG)/training.py $(PKG)/model.py)
	$(call run_stage,train)
$(STAMP)/members: $(STAMP)/train $(wildcard $(PKG)/members.py $(PKG)/membership.py)
	$(call run_stage,members)
$(STAMP)/validate: $(STAMP)/members $(wildcard $(PKG)/validate.py $(PKG)/validation.py)
	$(call run_stage,validate)
$(STAMP)/figures: $(STAMP)/validate $(wildcard $(PKG)/figures.py figures/fig_*.py)
	$(call run_stage,figures)
$(STAMP)/paper: $(STAMP)/figures $(wildcard $(PKG)/paper.py paper/*.tex paper/*.bib)
	@command -v latexmk >/dev/null || bash scripts/install_tex.sh
	$(call run_stage,paper)

# The embedded default: the simulated sky, a handful of clusters, no data, no network.
demo: | $(ENV)
	$(MAKE) paper SOURCE=sim OUTPUT_DIR=data/demo CONFIG=$(PKG)/demo.toml DATA_DIR=$(DATA_DIR) JOBS=$(JOBS) PYTHON=$(PYTHON)

test: | $(ENV)
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m pytest -q

bench: | $(ENV)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; PYTHONPATH=src $(PYTHON) $$b; done

truthbench: | $(ENV)
	$(MAKE) members SOURCE=sim OUTPUT_DIR=$(OUTPUT_DIR) CONFIG=$(CONFIG) CLUSTERS="$(CLUSTERS)" JOBS=$(JOBS)
	@$(OCM) truthbench $(subst --source $(SOURCE),--source sim,$(ARGS))

report: | $(ENV)
	@$(OCM) report $(ARGS)

compare: | $(ENV)
	@$(OCM) compare $(ARGS)

snapshot: | $(ENV)
	@$(OCM) snapshot $(ARGS)

image:
	bash scripts/build_image.sh $(IMAGE)

clean:
	rm -rf $(OUTPUT_DIR)/archive $(OUTPUT_DIR)/local $(OUTPUT_DIR)/sim $(OUTPUT_DIR)/demo \
	       figures/*.pdf figures/*.png paper/generated paper/ms.pdf .pytest_cache
