# Two set-up commands on a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint format bench clean system-packages

# Debian packages the applications use: Tesseract (the OCR baseline of handwriting), the handwriting fonts (its
# font lines), espeak-ng/flite/sox (synthesised connected speech), fluidsynth + a General MIDI soundfont (music
# to WAV), Noto Color Emoji (captioning's pictures) and chromium (the server page's browser test). Installed once
# where apt-get can (root); elsewhere the tests that need them say so and skip.
DEBS := tesseract-ocr fonts-dkg-handwriting fonts-bwht fonts-femkeklaver fonts-rufscript fonts-humor-sans \
	fonts-sjfonts fonts-breip fonts-comic-neue fonts-dancingscript fonts-ecolier-court fonts-kristi \
	fonts-kaushanscript fonts-cabinsketch fonts-leckerli-one fonts-lobster fonts-havana \
	espeak-ng flite sox fluidsynth fluid-soundfont-gm fonts-noto-color-emoji chromium chromium-driver
SYSSTAMP := $(VENV)/.installed-debs

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[plot,apps]'
	touch $@

$(DEVSTAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,plot,apps]'
	touch $@

$(SYSSTAMP): $(BIN)/python Makefile
	@if dpkg -s $(DEBS) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; } \
			|| echo "note: apt-get could not install $(DEBS); the tests that need them will skip"; \
	else echo "note: cannot install $(DEBS) (needs root and apt-get); the tests that need them will skip"; fi
	touch $@

system-packages: $(SYSSTAMP)

demo: $(STAMP) $(SYSSTAMP)
	$(BIN)/rnnkit demo

# After the whole suite, the engine's tests again under the other builds torch can select (what AVX2-only,
# ARM and older x86 machines get); each build has its own cache folder, so only the first run compiles.
test: $(DEVSTAMP) $(SYSSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -q
	ATEN_CPU_CAPABILITY=avx2 RNNKIT_REQUIRE_FUSED=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fused.py
	ATEN_CPU_CAPABILITY=default RNNKIT_REQUIRE_FUSED=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fused.py

format: $(DEVSTAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/rnnkit bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
