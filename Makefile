# Two commands on a fresh machine: `make demo` and `make test`. Every target sets itself up first;
# setup is idempotent and takes a second once done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := -c constraints.txt
STAMP := $(VENV)/.installed
VIEWER := src/embedscope/server/static/index.html
DEMO := demo
SUBTOMOS := $(DEMO)/subtomograms
MICS := $(DEMO)/micrographs
MICROGRAPH_NET := --arch resnet18 --dim 128 --pred-dim 64 --input-size 128 --epochs 15 --batch-size 16 --force

.PHONY: setup demo test bench clean

setup: $(STAMP) $(VIEWER)

# torch first, from the pinned CPU build; every later pip call passes the same constraints.
$(STAMP): pyproject.toml constraints.txt .ci/install-chromium
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet $(CONSTRAINTS) torch==2.13.0
	$(PIP) install --quiet $(CONSTRAINTS) -e ".[all,dev]"
	@bash .ci/install-chromium
	@touch $(STAMP)

# The viewer's front end (TypeScript + Vite), built into the package; skipped with a note where npm is missing.
$(VIEWER): frontend/package.json frontend/package-lock.json frontend/index.html frontend/vite.config.ts \
		$(wildcard frontend/src/*)
	@if command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent; \
	else echo "note: npm not found; the viewer serves a placeholder page until Node.js is installed" >&2; fi

demo: setup
	$(BIN)/python -m embedscope.datasets $(DEMO)
	$(BIN)/embedscope import $(DEMO)/vectors.npy --meta $(DEMO)/metadata.csv --on id --metric euclidean \
		-o $(DEMO)/demo.atlas --force
	$(BIN)/embedscope thumbs $(DEMO)/demo.atlas --from micrograph --root $(DEMO) --kind particle --size 48
	$(BIN)/embedscope map $(DEMO)/demo.atlas --method umap --score
	$(BIN)/embedscope cluster $(DEMO)/demo.atlas --method kmeans --k 6
	$(BIN)/embedscope figures $(DEMO)/demo.atlas --layer umap --color kmeans \
		--kinds scatter,thumbnails,neighbors,matrix --colors -o $(DEMO)/figures
	$(BIN)/embedscope info $(DEMO)/demo.atlas
	$(BIN)/embedscope train tomograms $(DEMO)/tomograms/tomograms.txt -o $(DEMO)/tomograms/run --epochs 20 \
		--batch-size 32 --width 16 --lr 0.1 --save-every 0 --force
	$(BIN)/embedscope embed tomograms $(DEMO)/tomograms/tomograms.txt --model $(DEMO)/tomograms/run/model_last.pth \
		-o $(DEMO)/tomograms.atlas --force
	$(BIN)/embedscope map $(DEMO)/tomograms.atlas --method umap --neighbors 15 --min-dist 0.5
	$(BIN)/embedscope cluster $(DEMO)/tomograms.atlas --method overcluster --k 4
	$(BIN)/embedscope figures $(DEMO)/tomograms.atlas --layer umap --color overcluster --kinds scatter,thumbnails \
		-o $(DEMO)/tomogram-figures
	$(BIN)/embedscope paint $(DEMO)/tomograms.atlas --tomograms $(DEMO)/tomograms/tomograms.txt \
		--color-by overcluster -o $(DEMO)/painted --blend 0.6
	$(BIN)/embedscope train micrographs $(MICS)/micrographs --metadata $(MICS)/metadata -o $(MICS)/real $(MICROGRAPH_NET)
	$(BIN)/embedscope embed micrographs $(MICS)/micrographs --metadata $(MICS)/metadata \
		--model $(MICS)/real/checkpoints/model_best.pth.tar -o $(DEMO)/micrographs.atlas --force
	$(BIN)/embedscope map $(DEMO)/micrographs.atlas --method umap --neighbors 10
	$(BIN)/embedscope cluster $(DEMO)/micrographs.atlas --method kmeans --k 6 --spherical
	$(BIN)/embedscope figures $(DEMO)/micrographs.atlas --layer umap --color kmeans --kinds scatter,thumbnails,neighbors \
		-o $(DEMO)/micrograph-figures
	$(BIN)/embedscope train subtomograms $(SUBTOMOS)/tomograms --masks $(SUBTOMOS)/instances --min-size 300 \
		--epochs 15 --batch-size 8 --lr 0.5 --num-filters 8,16,32,32 --dim 64 --pred-dim 16 -o $(SUBTOMOS)/run --force
	$(BIN)/embedscope cryosiam simsiam_embeddings_predict --config_file=$(SUBTOMOS)/run/subtomo_embeddings.yaml
	$(BIN)/embedscope cryosiam simsiam_embeddings_kmeans_clustering --config_file=$(SUBTOMOS)/run/subtomo_embeddings.yaml
	$(BIN)/embedscope cryosiam simsiam_embeddings_spectral_clustering --config_file=$(SUBTOMOS)/run/subtomo_embeddings.yaml
	$(BIN)/embedscope cryosiam simsiam_visualize_embeddings --config_file=$(SUBTOMOS)/run/subtomo_embeddings.yaml
	$(BIN)/embedscope view $(DEMO)/demo.atlas $(if $(DISPLAY),,--no-browser)

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/foundation.py
	$(BIN)/python benchmarks/figures.py
	$(BIN)/python benchmarks/maps.py --sizes 50000
	$(BIN)/python benchmarks/tomograms.py
	$(BIN)/python benchmarks/micrographs.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .hypothesis frontend/node_modules src/embedscope/server/static
