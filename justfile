# swift: `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
default:
    @just --list

# Build the release binary (what the README tells people to run)
build:
    cargo build --release

# Fetch the test model (SmolLM2-135M-Instruct Q4_1 GGUF) into fixtures/cache/
fixtures:
    fixtures/fetch-smollm2.sh >/dev/null

# Run the test suite (fetches the test model first)
test: fixtures
    cargo test --release --all-targets

# clippy with warnings as errors, and rustfmt
lint:
    cargo clippy --release --all-targets -- -D warnings
    cargo fmt --check

# Regenerate completions/ and man/ from the clap tree
gen:
    cargo run --release --quiet --example gen

# Benchmarks beside the peers: decode vs llama.cpp, serving, finetune (LoRA, QLoRA) vs TRL and
# ms-swift, dpo vs TRL (the peers go into venvs under fixtures/cache; figures in target/bench/).
# `just bench --quick` is a smoke run (3 steps, one round); a full run takes ~25 minutes.
bench *args: build fixtures
    bash fixtures/bench.sh
    python3 fixtures/bench_serve.py || echo "(bench_serve.py failed)"
    python3 fixtures/bench_train.py {{args}} || echo "(bench_train.py failed)"
    python3 fixtures/bench_dpo.py {{args}} || echo "(bench_dpo.py failed)"

# What CI runs
ready: lint test
