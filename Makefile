# The two set-up commands: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export DATABASE_URL ?= postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable

.PHONY: build demo train test test-kafka chaos test-race test-short fuzz bench eval pg-start pg-stop clean

build:
	$(GO) build -o bin/ ./cmd/...

pg-start:
	@scripts/pg.sh start >/dev/null

pg-stop:
	@scripts/pg.sh stop

# Runs the whole pipeline embedded on a generated dataset.
demo: build pg-start
	./bin/dsctl demo -dir demo -records 20000

# The whole suite: unit, integration (real Postgres, kfake), multi-process end to end.
# With DSPIPE_TEST_KAFKA_BROKERS set (scripts/kafka.sh start prints it), the
# service suites run a second time against that Apache Kafka broker.
# The multi-process tests run verbosely (filtered) so the log shows which
# broker they ran on and each kill.
test: build pg-start
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v /internal/e2e)
	@mkdir -p bin; if $(GO) test -count=1 -v -timeout 15m ./internal/e2e > bin/e2e.log 2>&1; then \
		grep -E '^(--- |    --- |ok)|Apache Kafka|killed|SKIPPED' bin/e2e.log; else cat bin/e2e.log; exit 1; fi
	@if [ -n "$$DSPIPE_TEST_KAFKA_BROKERS" ]; then $(MAKE) --no-print-directory test-kafka; fi

# The in-process service suites against Apache Kafka (scripts/kafka.sh start).
test-kafka: build pg-start
	@test -n "$$DSPIPE_TEST_KAFKA_BROKERS" || { echo 'run: eval "$$(scripts/kafka.sh start)"'; exit 1; }
	DSPIPE_TEST_KAFKA=external $(GO) test -count=1 -timeout 15m ./internal/app ./internal/api

# The fault campaign (docs/RELIABILITY.md): seeded, on kfake and, when
# scripts/kafka.sh runs, Apache Kafka. DSPIPE_CHAOS_SEED and
# DSPIPE_CHAOS_ROUNDS replay a campaign.
chaos: build pg-start
	@if [ -z "$$DSPIPE_TEST_KAFKA_BROKERS" ] && env=$$(scripts/kafka.sh start); then eval "$$env"; fi; \
	DSPIPE_CHAOS_SEED=$${DSPIPE_CHAOS_SEED:-1} DSPIPE_CHAOS_ROUNDS=$${DSPIPE_CHAOS_ROUNDS:-20} DSPIPE_CHAOS_OUT=$(CURDIR)/docs/RELIABILITY.md \
		$(GO) test -count=1 -timeout 80m -run 'TestChaos' -v ./internal/e2e > bin/chaos.log 2>&1; rc=$$?; \
	grep -E '^(--- |    --- |ok|FAIL)|round [0-9]+:|replay' bin/chaos.log; \
	if [ $$rc -ne 0 ]; then echo "full log: bin/chaos.log"; fi; exit $$rc

# The race detector over everything but the two slowest pipeline tests.
test-race: build pg-start
	$(GO) test -race -count=1 -timeout 20m -skip 'TestMalformed|TestExecutionTimeout' ./...

test-short:
	$(GO) test -short -count=1 ./...

# Short fuzzing of every parser (go test -fuzz runs one target at a time).
fuzz:
	$(GO) test ./events -run XXX -fuzz FuzzDecode -fuzztime 20s
	$(GO) test ./internal/source -run XXX -fuzz FuzzFramers -fuzztime 20s
	$(GO) test ./internal/stage -run XXX -fuzz FuzzValidateStandardize -fuzztime 20s
	$(GO) test ./internal/source -run XXX -fuzz FuzzParquet -fuzztime 20s
	$(GO) test ./internal/pii -run XXX -fuzz FuzzDetect -fuzztime 20s
	$(GO) test ./internal/crisis -run XXX -fuzz FuzzAssess -fuzztime 20s
	$(GO) test ./internal/content -run XXX -fuzz FuzzAssess -fuzztime 20s
	$(GO) test ./internal/textmatch -run XXX -fuzz FuzzEach -fuzztime 20s
	$(GO) test ./internal/quality -run XXX -fuzz FuzzAssess -fuzztime 20s
	$(GO) test ./internal/bias -run XXX -fuzz FuzzDetect -fuzztime 20s
	$(GO) test ./internal/lang -run XXX -fuzz FuzzDetect -fuzztime 20s

# The detectors' trained models, rebuilt from the data committed under
# each detector's traindata/ (see NOTICE). The output is identical byte for
# byte on every run; a test checks the committed models against it.
train:
	$(GO) run ./internal/train

# Detector quality on ../shared/eval (never copied here): writes docs/EVALUATION.md.
eval: build
	$(GO) run ./internal/eval/cmd -shared ../shared/eval -out docs/EVALUATION.md

bench: build pg-start
	$(GO) test -run XXX -bench . -benchmem -count 1 ./events ./internal/stage ./internal/source ./internal/pii ./internal/crisis ./internal/content ./internal/safety ./internal/quality ./internal/bias ./internal/lang ./internal/fusion ./internal/crypt | grep -E '^(Benchmark|goos|cpu|pkg)' > bin/micro.txt
	$(GO) run ./internal/bench/cmd -out docs/BENCHMARKS.md -micro bin/micro.txt
	@cat docs/BENCHMARKS.md

clean:
	rm -rf bin demo out
