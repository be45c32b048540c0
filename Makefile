# Set-up and the main jobs. `make demo` and `make test` build their own
# virtual environment in .venv with everything they need.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
CORPORA ?= ../shared/corpora
SAMPLE ?= $(firstword $(wildcard $(CORPORA)/bench/alice29.txt) README.md)

.PHONY: demo test venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,plot]'
	touch $@

# Compress and decompress a sample with the shipped default model, check the
# round trip, print bits per character; then the book's model writes text.
demo: venv
	$(BIN)/rnnzip models
	$(BIN)/rnnzip compress -v -f -o /tmp/rnnzip-demo.rnz $(SAMPLE)
	$(BIN)/rnnzip info /tmp/rnnzip-demo.rnz
	$(BIN)/rnnzip decompress -v -c /tmp/rnnzip-demo.rnz | cmp - $(SAMPLE)
	@echo "round trip OK: $(SAMPLE)"
	$(BIN)/rnnzip generate models/timemachine-d2l --prefix 'time traveller' -n 50

test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
