# ocr.mk: batch OCR with make.  Every PDF and image of a directory becomes Markdown, one page
# at a time, incrementally and in parallel:
#
#	cd scans && make -f /path/to/qvl/examples/ocr.mk -j4 QVL_MODEL=/models/Qwen2.5-VL-7B-Instruct
#
# or `include /path/to/qvl/examples/ocr.mk` in a Makefile of your own.  For every document
# NAME.pdf (pages rendered at DPI by pdftoppm) or NAME.png/.jpg (through qvl-resize --dpi auto):
#
#	out/NAME/p001.png	the page as an image
#	out/NAME/p001.png.emb	its image embeddings (qvl-resize | qvl-vit | qvl-merge): a cache
#	out/NAME/p001.json	qvl-decode --json's result: text, finish_reason, token counts
#	out/NAME/p001.md	the page's text
#	out/NAME/p001.log	one line: how the page was read
#	out/NAME.md		all pages joined, in order
#	out/NAME.log		all pages' lines; "REPETITION" flags a page that was read again
#
# A page whose decoding stops on repetition (finish_reason "repetition") is read once more at
# RETRY_DPI/DPI of its size, and flagged in out/NAME.log.  Make cannot see a changed variable,
# so each stage's settings are kept in out/.render, out/.vision and out/.decode, rewritten only
# when they change: a new PROMPT re-runs the decoder on every page but not the vision tower.
# (They are written when make reads this file, under -n and -q too.)
# Nothing half-written is left by an interrupt: every recipe writes $@.tmpPID and renames it.
# The embeddings may be deleted to save space; they are only remade when a page's text is.
# File names must not contain spaces, colons or '%'.  Needs GNU make >= 4.2 and bash.

# --- settings (on the command line, or before the include) ----------------------------------
# Only QVL_MODEL and QVL_BIN are also taken from the environment: an OUT or PROMPT there may
# be meant for anything.
$(foreach v,PROMPT DPI RETRY_DPI MAX_TOKENS THREADS DECODE_FLAGS DOCS OUT,\
	$(if $(filter environment,$(origin $(v))),$(eval undefine $(v))))
QVL_MODEL ?=
PROMPT ?= Read all the text on this page and write it out as Markdown.
DPI ?= 72
RETRY_DPI ?= 48
MAX_TOKENS ?= 2048
# worker threads per program: with make -jN on C cores, THREADS=C/N avoids oversubscription
THREADS ?=
# extra qvl-decode options, e.g. --max-repeat 8
DECODE_FLAGS ?=
# the directory of the qvl programs (empty: found on PATH)
QVL_BIN ?=
DOCS ?= $(sort $(wildcard *.pdf *.PDF *.png *.PNG *.jpg *.JPG *.jpeg *.JPEG))
OUT ?= out

# the default goal, whatever comes below
all: ocr

# temporary files are per make process, so two makes on one out/ never share one
MAKEPID := $(shell echo $$PPID)
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DELETE_ON_ERROR:

qvl = $(if $(QVL_BIN),$(QVL_BIN:%/=%)/)qvl-$(1)
threads = $(if $(THREADS),--threads $(THREADS))
RESIZE = $(call qvl,resize)
VISION = $(call qvl,vit) $(threads) | $(call qvl,merge) $(threads)
DECODE = $(call qvl,decode) --json --max-tokens $(MAX_TOKENS) $(threads) $(DECODE_FLAGS) \
	-p "$$QVL_OCR_PROMPT"

# The programs read the model directory from $QVL_MODEL; the prompt travels the same way, so
# no quoting can go wrong (and, taken with $(value), a '$' in it stays a '$').
export QVL_MODEL
export QVL_OCR_PROMPT := $(value PROMPT)

# --- the documents ---------------------------------------------------------------------------
name = $(basename $(notdir $(1)))
is_pdf = $(filter %.pdf %.PDF,$(1))
pdf_page_count = $(shell pdfinfo '$(1)' 2>/dev/null | sed -n 's/^Pages: *//p')
page_names = $(if $(1),$(shell seq -f 'p%03g' $(1)))

NAMES := $(foreach d,$(DOCS),$(call name,$(d)))
DUPLICATES := $(strip $(foreach n,$(sort $(NAMES)),$(if $(word 2,$(filter $(n),$(NAMES))),$(n))))
ifneq ($(DUPLICATES),)
$(error ocr.mk: documents share a name (and would share out/NAME): $(DUPLICATES))
endif

# pages FILE: its page names p001 p002 ... (none, with a warning, for a PDF pdfinfo cannot read)
pages = $(call page_names,$(if $(call is_pdf,$(1)),$(or $(call pdf_page_count,$(1)),\
	$(warning ocr.mk: $(1): pdfinfo cannot read it (is poppler-utils installed?); skipped)),1))

# document FILE NAME PAGES: the rules of one document: its pages' images, and the joins.
define document
ifneq ($(strip $(3)),)
NAMES.ok += $(2)
pages.$(2) := $(addprefix $(OUT)/$(2)/,$(3))
ALL_PAGES += $$(pages.$(2))
$(if $(call is_pdf,$(1)),$(call pdf_pages,$(1),$(2),$(3)),$(call image_page,$(1),$(2)))
$(OUT)/$(2).md: $$(pages.$(2):=.md)
	$$(join_pages)
$(OUT)/$(2).log: $$(pages.$(2):=.log)
	@cat $$^ > $$@.tmp$(MAKEPID) && mv $$@.tmp$(MAKEPID) $$@
endif
endef

# PDF pages: pdftoppm renders page K of FILE at DPI (the stem of out/NAME/pK.png is K).
define pdf_pages
$(addprefix $(OUT)/$(2)/,$(3:=.png)): $(OUT)/$(2)/p%.png: $(1) $(OUT)/.render
	$$(render_pdf_page)
endef

# An image is one page: qvl-resize --dpi auto brings a scan to about 72 dpi (its density says
# how) and writes the image the model will see.
define image_page
$(OUT)/$(2)/p001.png: $(1)
	$$(render_image)
endef

render_pdf_page = @mkdir -p $(@D) && echo "  PDF     $@" && \
	pdftoppm -r $(DPI) -f $$((10\#$*)) -l $$((10\#$*)) -png -singlefile $< $@.tmp$(MAKEPID) && \
	mv $@.tmp$(MAKEPID).png $@
render_image = @mkdir -p $(@D) && echo "  PAGE    $@" && \
	$(RESIZE) --dpi auto --png $@.tmp$(MAKEPID).png $< > /dev/null && mv $@.tmp$(MAKEPID).png $@
join_pages = @echo "  JOIN    $@" && \
	for f in $^; do p=$${f\#\#*/p}; echo "<!-- page $$((10\#$${p%.md})) -->"; echo; \
	cat $$f; echo; done > $@.tmp$(MAKEPID) && mv $@.tmp$(MAKEPID) $@
# summary FILE: a decoder result in a few words, for the .log lines
summary = sed -n 's/.*"finish_reason":"\([a-z_]*\)".*"prompt_tokens":\([0-9]*\).*"completion_tokens":\([0-9]*\).*/\2 prompt tokens, \3 generated, finish \1/p'

$(foreach d,$(DOCS),$(eval $(call document,$(d),$(call name,$(d)),$(call pages,$(d)))))

# --- every page: image -> embeddings -> decoder's result -> text -------------------------------
$(OUT)/%.png.emb: $(OUT)/%.png $(OUT)/.vision
	@echo "  VISION  $@"
	@$(RESIZE) $< | $(VISION) > $@.tmp$(MAKEPID) && mv $@.tmp$(MAKEPID) $@

# Decodes a page; on repetition, reads the page again at RETRY_DPI/DPI of its size and keeps
# that result.  The page's .log line says which.  (One recipe makes both files.)
$(OUT)/%.json $(OUT)/%.log: $(OUT)/%.png.emb $(OUT)/.decode
	@echo "  DECODE  $(OUT)/$*.json"
	@j=$(OUT)/$*.json; $(DECODE) < $< > $$j.tmp$(MAKEPID) && \
	line="$(notdir $*): $$($(summary) $$j.tmp$(MAKEPID))" && \
	if grep -q '"finish_reason":"repetition"' $$j.tmp$(MAKEPID); then \
		echo "  RETRY   $$j at $(RETRY_DPI) dpi"; \
		$(RESIZE) --dpi $(DPI):$(RETRY_DPI) $(OUT)/$*.png | $(VISION) | $(DECODE) > $$j.tmp$(MAKEPID) && \
		line="$(notdir $*): REPETITION at $(DPI) dpi, read again at $(RETRY_DPI) dpi: $$($(summary) $$j.tmp$(MAKEPID))"; \
	fi && echo "$$line" > $(OUT)/$*.log.tmp$(MAKEPID) && \
	mv $(OUT)/$*.log.tmp$(MAKEPID) $(OUT)/$*.log && mv $$j.tmp$(MAKEPID) $$j

$(OUT)/%.md: $(OUT)/%.json
	@echo "  TEXT    $@"
	@LC_ALL=C awk "$$QVL_OCR_JSON_TEXT" < $< > $@.tmp$(MAKEPID) && mv $@.tmp$(MAKEPID) $@

# The "text" string of a qvl-decode --json result, unescaped (jansson writes UTF-8 as is and
# escapes only quotes, backslashes and control characters; \uXXXX is decoded all the same).
# Written without a dollar sign so that make passes it through untouched.
define QVL_OCR_JSON_TEXT
function hexval(s,   i, v) {
	v = 0
	for (i = 1; i <= 4; i++)
		v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
	return v
}
function utf8(c) {
	if (c < 128)
		return sprintf("%c", c)
	if (c < 2048)
		return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
	if (c < 65536)
		return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
	return sprintf("%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64,
	    128 + int(c / 64) % 64, 128 + c % 64)
}
BEGIN {
	while ((getline line) > 0)
		json = json line "\n"
	if (!match(json, /"text"[ \t\r\n]*:[ \t\r\n]*"/)) {
		print "ocr.mk: no \"text\" in the decoder's result" > "/dev/stderr"
		exit 1
	}
	rest = substr(json, RSTART + RLENGTH)
	out = ""
	while (match(rest, /["\\]/)) {
		out = out substr(rest, 1, RSTART - 1)
		if (substr(rest, RSTART, 1) == "\"")
			break
		e = substr(rest, RSTART + 1, 1)
		rest = substr(rest, RSTART + 2)
		if (e == "n") out = out "\n"
		else if (e == "t") out = out "\t"
		else if (e == "r") out = out "\r"
		else if (e == "b") out = out "\b"
		else if (e == "f") out = out "\f"
		else if (e == "u") {
			c = hexval(rest)
			rest = substr(rest, 5)
			if (c >= 55296 && c < 56320 && substr(rest, 1, 2) == "\\u") {
				c = 65536 + (c - 55296) * 1024 + hexval(substr(rest, 3)) - 56320
				rest = substr(rest, 7)
			}
			out = out utf8(c)
		} else
			out = out e
	}
	printf "%s", out
	if (out != "" && substr(out, length(out), 1) != "\n")
		printf "\n"
}
endef
export QVL_OCR_JSON_TEXT

# --- settings stamps -------------------------------------------------------------------------
render_settings = DPI=$(DPI)
vision_settings = QVL_MODEL=$(QVL_MODEL)
decode_settings = QVL_MODEL=$(QVL_MODEL) MAX_TOKENS=$(MAX_TOKENS) RETRY_DPI=$(RETRY_DPI) \
	DECODE_FLAGS=$(DECODE_FLAGS) PROMPT=$(value PROMPT)

ifeq ($(filter clean-ocr,$(MAKECMDGOALS)),)
ifeq ($(QVL_MODEL),)
$(error ocr.mk: set QVL_MODEL to a Qwen2.5-VL checkpoint directory)
endif
ifneq ($(file <$(OUT)/.render),$(render_settings))
$(shell mkdir -p $(OUT))
$(file >$(OUT)/.render,$(render_settings))
endif
ifneq ($(file <$(OUT)/.vision),$(vision_settings))
$(shell mkdir -p $(OUT))
$(file >$(OUT)/.vision,$(vision_settings))
endif
ifneq ($(file <$(OUT)/.decode),$(decode_settings))
$(shell mkdir -p $(OUT))
$(file >$(OUT)/.decode,$(decode_settings))
endif
endif

# --- goals -----------------------------------------------------------------------------------
ocr: $(NAMES.ok:%=$(OUT)/%.md) $(NAMES.ok:%=$(OUT)/%.log)

clean-ocr:
	rm -rf $(OUT)

# For other runners (GNU parallel --sshlogin, a batch queue): `make pages` renders every page
# here; `make -s todo` lists the pages (out/NAME/pNNN) whose decoder result is missing or older
# than its page or the settings.  Anywhere with the programs, the model and this file,
# `make -f ocr.mk out/NAME/pNNN.json out/NAME/pNNN.log` makes a page from its .png alone;
# once the results are back, `make` here only joins them.
pages: $(ALL_PAGES:=.png)
todo: pages
	@for p in $(ALL_PAGES); do \
		[ $$p.json -nt $$p.png ] && [ $$p.json -nt $(OUT)/.vision ] && \
		[ $$p.json -nt $(OUT)/.decode ] && [ -e $$p.log ] || echo $$p; \
	done

# Embeddings and decoder results are caches, not goals: make neither deletes them as
# intermediates nor remakes them when they alone are missing.
.SECONDARY: $(ALL_PAGES:=.png.emb) $(ALL_PAGES:=.json)
.PHONY: ocr all clean-ocr pages todo
