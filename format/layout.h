/* The on-disk layout of a .sage file: magic, versions, field offsets and
 * section kinds, shared by the writer and the reader. format/FORMAT.md is the
 * normative description; this header must agree with it. */
#ifndef SAGE_LAYOUT_H
#define SAGE_LAYOUT_H

#include <stdint.h>

/* Format versions. A reader refuses a major it does not know and accepts any
 * minor of a major it knows (minors only add section kinds or fields that
 * older readers may ignore).
 *   1.0  header, section table, footer; BUILD, DOCS and TEXT sections.
 *   1.1  CHUNKS, CHUNK_TEXT, NORMS, POSTINGS and LEXICON: the inverted index.
 *   1.2  VECTORS: dense vectors of the chunks (written only with embeddings);
 *        CHUNK_META: pages and headings of the chunks, apart from their text;
 *        HNSW: a graph over the vectors for approximate search (optional);
 *        OCR_PAGES: text read by OCR, by page image, for later builds.
 *   1.3  DOCS seq, content and alias_seq in a shard's index, BUILD merged_from
 *        in a merged one (sage-indexer build --shard, sage-indexer merge). */
#define SAGE_FORMAT_MAJOR 1
#define SAGE_FORMAT_MINOR 3

#define SAGE_MAGIC "\x89SAGE\r\n\x1a"   /* 8 bytes; catches text-mode copies */
#define SAGE_MAGIC_LEN 8
#define SAGE_PAGE 4096u                  /* section alignment */
#define SAGE_SECTIONS_MAX 4096u          /* so open reads at most 49 pages of header */
#define SAGE_VERSION "0.1.0"             /* of the tools, recorded in build records */

/* Header, at offset 0. */
enum {
    SAGE_HDR_MAGIC = 0,         /* 8  magic */
    SAGE_HDR_MAJOR = 8,         /* 2  format major */
    SAGE_HDR_MINOR = 10,        /* 2  format minor */
    SAGE_HDR_PAGE = 12,         /* 4  section alignment (4096) */
    SAGE_HDR_LEN = 16,          /* 4  header length incl. section table, multiple of page */
    SAGE_HDR_NSECT = 20,        /* 4  number of section table entries */
    SAGE_HDR_FILE_SIZE = 24,    /* 8  total file size */
    SAGE_HDR_NDOCS = 32,        /* 8  documents in the index */
    SAGE_HDR_NCHUNKS = 40,      /* 8  chunks in the index */
    SAGE_HDR_CHECKSUM = 48,     /* 8  XXH3-64 of the header, this field zero */
    SAGE_HDR_RESERVED = 56,     /* 8  zero */
    SAGE_HDR_FIXED = 64         /* section table starts here */
};

/* Section table entry. */
enum {
    SAGE_SEC_KIND = 0,          /* 4  section kind */
    SAGE_SEC_CODEC = 4,         /* 2  enum sage_codec */
    SAGE_SEC_FLAGS = 6,         /* 2  zero in 1.x */
    SAGE_SEC_OFF = 8,           /* 8  offset, multiple of page */
    SAGE_SEC_LEN = 16,          /* 8  stored length */
    SAGE_SEC_RAW_LEN = 24,      /* 8  length after decoding */
    SAGE_SEC_CHECKSUM = 32,     /* 8  XXH3-64 of the stored bytes */
    SAGE_SEC_RESERVED = 40,     /* 8  zero */
    SAGE_SEC_ENTRY = 48
};

/* Footer, the last 32 bytes. */
enum {
    SAGE_FTR_FILE_CHECKSUM = 0, /* 8  XXH3-64 of every byte before the footer */
    SAGE_FTR_HDR_CHECKSUM = 8,  /* 8  copy of the header checksum */
    SAGE_FTR_CHECKSUM = 16,     /* 8  XXH3-64 of footer bytes [0,16) */
    SAGE_FTR_MAGIC = 24,        /* 8  magic again */
    SAGE_FTR_LEN = 32
};

enum sage_codec {
    SAGE_CODEC_RAW = 0,
    SAGE_CODEC_ZSTD = 1         /* one zstd frame; raw_len is its decoded size */
};

/* Section kinds. Readers skip kinds they do not know. Numbers are forever. */
enum sage_section_kind {
    SAGE_SECTION_BUILD = 1,     /* msgpack map: the build record */
    SAGE_SECTION_DOCS = 2,      /* record table of msgpack maps, one per document */
    SAGE_SECTION_TEXT = 3,      /* record table of UTF-8 text, one per document (1.0 only) */
    SAGE_SECTION_CHUNKS = 4,    /* u64 n, then per chunk u32 doc, u32 ordinal in the doc */
    SAGE_SECTION_CHUNK_TEXT = 5,/* chunk records (msgpack) in zstd blocks with a block index */
    SAGE_SECTION_NORMS = 6,     /* u32 token count per chunk */
    SAGE_SECTION_POSTINGS = 7,  /* per term: block skip table, then blocks of 128 postings */
    SAGE_SECTION_LEXICON = 8,   /* sorted terms, front-coded blocks with a block index */
    SAGE_SECTION_VECTORS = 9,   /* per chunk: f32 row, int8 row and scale, text hash (1.2) */
    SAGE_SECTION_CHUNK_META = 10,   /* per chunk: page and heading, apart from the text (1.2) */
    SAGE_SECTION_HNSW = 11,     /* HNSW graph over the VECTORS rows (1.2) */
    SAGE_SECTION_OCR_PAGES = 12,    /* text read by OCR, by page image digest and engine (1.2) */
    SAGE_SECTION_KIND_MAX_KNOWN = 12
};

/* Name of a known kind ("build"), or NULL. */
const char *sage_section_kind_name(uint32_t kind);
/* Name of a codec ("raw", "zstd"), or NULL for an unknown one. */
const char *sage_codec_name(uint32_t codec);

#endif
