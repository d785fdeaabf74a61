/* Stream records: round trips of every dtype, and every malformed input rejected with a
 * message naming the stream and the record. */
#include <stdlib.h>

#include "../lib/stream.h"
#include "test.h"

/* A stream built in memory and read back through fmemopen. */
static int
read_all(const void *buf, size_t len, int *nrecords, qvl_err *err)
{
	FILE *f = fmemopen((void *)buf, len, "rb");
	qvl_reader *r = qvl_reader_new(f, "mem");
	qvl_record rec;
	int rc;

	*nrecords = 0;
	while ((rc = qvl_reader_next(r, &rec, err)) == 1) {
		(*nrecords)++;
		qvl_record_free(&rec);
	}
	qvl_reader_free(r);
	fclose(f);
	return rc;
}

/* Writes one record with a hand-made header (and payload bytes) into buf. */
static size_t
raw_record(unsigned char *buf, const char *magic, const char *header, uint32_t header_len,
    size_t payload)
{
	size_t len = strlen(header);

	memcpy(buf, magic, 4);
	buf[4] = header_len & 0xff;
	buf[5] = (header_len >> 8) & 0xff;
	buf[6] = (header_len >> 16) & 0xff;
	buf[7] = (unsigned char)(header_len >> 24);
	memcpy(buf + 8, header, len);
	memset(buf + 8 + len, 0x3c, payload);
	return 8 + len + payload;
}

static void
test_round_trip(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	qvl_err err;

	for (int d = 0; d < QVL_DTYPE_COUNT; d++) {
		qvl_record rec;
		int64_t shape[3] = {2, 3, d + 1};
		json_t *meta = json_pack("{s:s, s:[ii]}", "source", "x.png", "orig_size", 7, d);
		CHECK(qvl_record_new(&rec, qvl_dtype_name((qvl_dtype)d), (qvl_dtype)d, 3, shape,
		    meta, &err) == 0, "record_new %s", qvl_dtype_name((qvl_dtype)d));
		for (size_t i = 0; i < rec.t.nbytes; i++)
			((unsigned char *)rec.t.data)[i] = (unsigned char)(i * 7 + d);
		CHECK(qvl_write_record(f, &rec, &err) == 0, "write %s", rec.name);
		json_decref(meta);
		qvl_record_free(&rec);
	}
	/* a scalar and an empty tensor */
	qvl_record rec;
	CHECK(qvl_record_new(&rec, "scalar", QVL_F32, 0, NULL, NULL, &err) == 0, "scalar");
	*(float *)rec.t.data = 1.5f;
	qvl_write_record(f, &rec, &err);
	qvl_record_free(&rec);
	int64_t zero[2] = {0, 5};
	CHECK(qvl_record_new(&rec, "empty", QVL_F32, 2, zero, NULL, &err) == 0, "empty");
	qvl_write_record(f, &rec, &err);
	qvl_record_free(&rec);
	fclose(f);

	CHECK(buf[4] % 8 == 0, "first header length %d is padded to 8", buf[4]);
	FILE *in = fmemopen(buf, len, "rb");
	qvl_reader *r = qvl_reader_new(in, "mem");
	for (int d = 0; d < QVL_DTYPE_COUNT; d++) {
		int rc = qvl_reader_next(r, &rec, &err);
		CHECK(rc == 1, "read %s: %s", qvl_dtype_name((qvl_dtype)d), rc < 0 ? err.msg : "");
		if (rc != 1)
			break;
		int same = rec.t.dtype == (qvl_dtype)d && rec.t.ndim == 3 && rec.t.shape[2] == d + 1;
		for (size_t i = 0; i < rec.t.nbytes; i++)
			same &= ((unsigned char *)rec.t.data)[i] == (unsigned char)(i * 7 + d);
		CHECK(same, "%s payload and shape survive", qvl_dtype_name((qvl_dtype)d));
		CHECK(((uintptr_t)rec.t.data & 63) == 0, "payload is 64-byte aligned");
		CHECK(strcmp(json_string_value(json_object_get(rec.meta, "source")), "x.png") == 0,
		    "meta survives");
		int64_t size[2];
		CHECK(qvl_meta_get_ints(rec.meta, "orig_size", size, 2, &err) == 0 && size[1] == d,
		    "meta ints");
		qvl_record_free(&rec);
	}
	CHECK(qvl_reader_next(r, &rec, &err) == 1 && rec.t.ndim == 0 &&
	    *(float *)rec.t.data == 1.5f, "scalar record");
	qvl_record_free(&rec);
	CHECK(qvl_reader_next(r, &rec, &err) == 1 && rec.t.nbytes == 0, "empty record");
	qvl_record_free(&rec);
	CHECK(qvl_reader_next(r, &rec, &err) == 0, "clean EOF");
	qvl_reader_free(r);
	fclose(in);
	free(buf);
}

static void
expect_error(const char *what, const unsigned char *buf, size_t len, const char *needle)
{
	qvl_err err = {{0}};
	int n;
	int rc = read_all(buf, len, &n, &err);

	CHECK(rc == -1 && strstr(err.msg, needle) != NULL && strstr(err.msg, "mem: record") != NULL,
	    "%s rejected (got rc %d, \"%s\")", what, rc, err.msg);
}

static void
test_malformed(void)
{
	static unsigned char buf[1 << 16];
	const char *good = "{\"name\":\"x\",\"dtype\":\"F32\",\"shape\":[2],\"meta\":{}}    ";
	size_t n;
	int count;
	qvl_err err;

	n = raw_record(buf, "QVL1", good, (uint32_t)strlen(good), 8);
	CHECK(read_all(buf, n, &count, &err) == 0 && count == 1, "hand-made record reads");
	n = raw_record(buf, "QVL2", good, (uint32_t)strlen(good), 8);
	expect_error("bad magic", buf, n, "bad magic");
	n = raw_record(buf, "QVL1", good, (2u << 20), 8);
	expect_error("header over 1 MiB", buf, n, "1 MiB");
	n = raw_record(buf, "QVL1", good, (uint32_t)strlen(good) + 100, 8);
	expect_error("header cut short", buf, n, "cut short");
	const char *badjson = "{\"name\":\"x\",\"dtype\":\"F32\",\"shape\":[2],  ";
	n = raw_record(buf, "QVL1", badjson, (uint32_t)strlen(badjson), 8);
	expect_error("invalid JSON", buf, n, "JSON");
	const char *baddtype = "{\"name\":\"x\",\"dtype\":\"F128\",\"shape\":[2]}";
	n = raw_record(buf, "QVL1", baddtype, (uint32_t)strlen(baddtype), 8);
	expect_error("unknown dtype", buf, n, "unknown dtype");
	const char *negative = "{\"name\":\"x\",\"dtype\":\"F32\",\"shape\":[-2]}";
	n = raw_record(buf, "QVL1", negative, (uint32_t)strlen(negative), 8);
	expect_error("negative shape", buf, n, "negative");
	const char *overflow =
	    "{\"name\":\"x\",\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16]}";
	n = raw_record(buf, "QVL1", overflow, (uint32_t)strlen(overflow), 8);
	expect_error("overflowing shape", buf, n, "overflow");
	const char *noname = "{\"dtype\":\"F32\",\"shape\":[2]}";
	n = raw_record(buf, "QVL1", noname, (uint32_t)strlen(noname), 8);
	expect_error("missing name", buf, n, "name");
	const char *shapestr = "{\"name\":\"x\",\"dtype\":\"F32\",\"shape\":[\"2\"]}";
	n = raw_record(buf, "QVL1", shapestr, (uint32_t)strlen(shapestr), 8);
	expect_error("non-integer shape", buf, n, "shape");
	const char *huge = "{\"name\":\"x\",\"dtype\":\"F32\",\"shape\":[1099511627776]}";
	n = raw_record(buf, "QVL1", huge, (uint32_t)strlen(huge), 64);
	expect_error("4 TiB claimed, 64 bytes sent", buf, n, "got 64 of 4398046511104 bytes");
	n = raw_record(buf, "QVL1", good, (uint32_t)strlen(good), 5);
	expect_error("payload cut short", buf, n, "payload cut short: got 5 of 8 bytes");
	/* a good record followed by garbage: the error names record 1 */
	n = raw_record(buf, "QVL1", good, (uint32_t)strlen(good), 8);
	memcpy(buf + n, "xyz", 3);
	{
		qvl_err e = {{0}};
		int rc = read_all(buf, n + 3, &count, &e);
		CHECK(rc == -1 && count == 1 && strstr(e.msg, "record 1") != NULL,
		    "trailing garbage rejected at record 1 (\"%s\")", e.msg);
	}
	n = raw_record(buf, "QVL1", good, (uint32_t)strlen(good), 8);
	memcpy(buf + n, "QVL1\x10\0\0\0{}", 10);
	expect_error("truncated second header", buf, n + 10, "record 1");
	CHECK(read_all(buf, 0, &count, &err) == 0 && count == 0, "empty stream is no records");
}

int
main(int argc, char **argv)
{
	TEST_INIT(argc, argv);
	test_round_trip();
	test_malformed();
	return TEST_DONE();
}
