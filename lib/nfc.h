/* nfc.h: Unicode NFC as the reference tokenizer normalises, with Unicode 9.0 data whatever
 * libutf8proc is installed, in time linear in the text (n log n at worst). */
#ifndef QVL_NFC_H
#define QVL_NFC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Whether NFC may change the valid UTF-8 s (conservative: 1 means "run qvl_nfc"). */
int qvl_nfc_needed(const unsigned char *s, size_t n);

/* Writes the NFC form of the valid UTF-8 s to a new buffer *out (the caller frees it) of
 * *out_len bytes. */
int qvl_nfc(const unsigned char *s, size_t n, unsigned char **out, size_t *out_len,
    qvl_err *err);

/* Whether a text made only of characters like cp is already in NFC: cp has combining class 0,
 * no canonical decomposition, and is never the second character of a composition. */
int qvl_nfc_inert(uint32_t cp);

/* Whether cp was assigned after Unicode 9.0 and some later version gives it a combining class,
 * a canonical decomposition or a part in one: the characters the normaliser treats as the
 * reference does, as unassigned. */
int qvl_nfc_newer_than_9(uint32_t cp);

#endif
