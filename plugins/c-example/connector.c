/*
 * A minimal Trellis connector written in C, using only the generated header
 * plugins/sdk/include/trellis_connector.h. It proves that the plugin contract is not tied to
 * Rust: the conformance kit drives this library exactly as it drives a Rust one.
 *
 * It produces `count` conversations ("c-1" ... "c-<count>") in batches of 10, each batch ending
 * with a checkpoint {"next": N} of the stream "conversations", so a resumed read starts after the
 * last committed conversation. Config: {"count": <integer >= 0>}.
 *
 * Messages are protobuf (proto/trellis/connector/v1/connector.proto), written and read by the
 * few lines of wire-format code below; a bigger C connector would use a protobuf library.
 *
 * Build: cc -shared -fPIC -std=c11 -I plugins/sdk/include plugins/c-example/connector.c \
 *          -o libtrellis_c_example.so
 */

#include "trellis_connector.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_SIZE 10

static const char CONFIG_SCHEMA[] =
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
    "\"required\":[\"count\"],\"additionalProperties\":false,"
    "\"properties\":{\"count\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1000000}}}";

/* ---- protobuf wire format: just what this connector needs ---- */

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} Writer;

static void put_raw(Writer *w, const void *bytes, size_t len) {
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        while (cap < w->len + len) cap *= 2;
        uint8_t *grown = realloc(w->data, cap);
        if (!grown) abort();
        w->data = grown;
        w->cap = cap;
    }
    if (len) memcpy(w->data + w->len, bytes, len);
    w->len += len;
}

static void put_varint(Writer *w, uint64_t value) {
    uint8_t byte;
    do {
        byte = value & 0x7f;
        value >>= 7;
        if (value) byte |= 0x80;
        put_raw(w, &byte, 1);
    } while (value);
}

static void put_uint(Writer *w, uint32_t field, uint64_t value) {
    put_varint(w, (uint64_t)field << 3);
    put_varint(w, value);
}

static void put_bytes(Writer *w, uint32_t field, const void *bytes, size_t len) {
    put_varint(w, ((uint64_t)field << 3) | 2);
    put_varint(w, len);
    put_raw(w, bytes, len);
}

static void put_string(Writer *w, uint32_t field, const char *text) {
    put_bytes(w, field, text, strlen(text));
}

/* Embeds `inner` as field `field` of `w`, and frees it. */
static void put_message(Writer *w, uint32_t field, Writer *inner) {
    put_bytes(w, field, inner->data, inner->len);
    free(inner->data);
    *inner = (Writer){0};
}

/* Hands a finished message to the host as a TrellisBuffer (freed by buffer_free). */
static void hand_over(Writer *w, TrellisBuffer *out) {
    if (!out) {
        free(w->data);
        return;
    }
    out->data = w->len ? w->data : NULL;
    out->len = w->len;
    if (!w->len) free(w->data);
}

static bool get_varint(const uint8_t **at, const uint8_t *end, uint64_t *value) {
    *value = 0;
    for (int shift = 0; shift < 64 && *at < end; shift += 7) {
        uint8_t byte = *(*at)++;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return true;
    }
    return false;
}

/* Calls `visit` for every length-delimited field of a message; returns false on bad input. */
static bool each_bytes_field(const uint8_t *data, size_t len,
                             void (*visit)(uint32_t field, const uint8_t *bytes, size_t len, void *ctx),
                             void *ctx) {
    const uint8_t *at = data, *end = data + len;
    while (at < end) {
        uint64_t key, value;
        if (!get_varint(&at, end, &key)) return false;
        switch (key & 7) {
        case 0:
            if (!get_varint(&at, end, &value)) return false;
            break;
        case 1:
            if (end - at < 8) return false;
            at += 8;
            break;
        case 2:
            if (!get_varint(&at, end, &value) || (uint64_t)(end - at) < value) return false;
            visit((uint32_t)(key >> 3), at, (size_t)value, ctx);
            at += value;
            break;
        case 5:
            if (end - at < 4) return false;
            at += 4;
            break;
        default:
            return false;
        }
    }
    return true;
}

/* ---- errors ---- */

static int32_t fail(TrellisBuffer *out, int32_t status, const char *field, const char *message) {
    Writer w = {0};
    put_uint(&w, 1, (uint64_t)status); /* ErrorKind numbers equal the status codes */
    put_string(&w, 2, message);
    if (field) put_string(&w, 3, field);
    hand_over(&w, out);
    return status;
}

/* ---- config and state ---- */

/* The integer after "key": in a small JSON object, or -1 when absent or not an integer. */
static long long json_integer(const char *json, const char *key) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = strstr(json, quoted);
    if (!at) return -1;
    at += strlen(quoted);
    while (*at == ' ' || *at == ':') at++;
    char *end;
    long long value = strtoll(at, &end, 10);
    if (end == at || value < 0) return -1;
    return value;
}

typedef struct {
    char *config;  /* CheckRequest/DiscoverRequest/ReadRequest field 1 */
    char *state;   /* ReadRequest field 2 -> StreamState field 2, for "conversations" */
} Request;

static char *copy_text(const uint8_t *bytes, size_t len) {
    char *text = malloc(len + 1);
    if (!text) abort();
    memcpy(text, bytes, len);
    text[len] = 0;
    return text;
}

typedef struct {
    char *stream;
    char *state_json;
} StreamState;

static void visit_stream_state(uint32_t field, const uint8_t *bytes, size_t len, void *ctx) {
    StreamState *state = ctx;
    if (field == 1 && !state->stream) state->stream = copy_text(bytes, len);
    if (field == 2 && !state->state_json) state->state_json = copy_text(bytes, len);
}

static void visit_request(uint32_t field, const uint8_t *bytes, size_t len, void *ctx) {
    Request *request = ctx;
    if (field == 1 && !request->config) request->config = copy_text(bytes, len);
    if (field == 2) {
        StreamState state = {0};
        each_bytes_field(bytes, len, visit_stream_state, &state);
        if (state.stream && strcmp(state.stream, "conversations") == 0 && !request->state) {
            request->state = state.state_json;
            state.state_json = NULL;
        }
        free(state.stream);
        free(state.state_json);
    }
}

static void request_free(Request *request) {
    free(request->config);
    free(request->state);
}

/* Parses a request and its config's count; on error fills `out` and returns the status. */
static int32_t parse_request(const uint8_t *data, size_t len, Request *request, long long *count,
                             TrellisBuffer *out) {
    *request = (Request){0};
    if (!each_bytes_field(data, len, visit_request, request))
        return fail(out, TRELLIS_STATUS_SYSTEM_ERROR, NULL, "the request does not decode");
    *count = json_integer(request->config ? request->config : "", "count");
    if (*count < 0 || *count > 1000000)
        return fail(out, TRELLIS_STATUS_CONFIG_ERROR, "count",
                    "count is missing or not an integer from 0 to 1000000; set it, e.g. {\"count\": 25}");
    return TRELLIS_STATUS_OK;
}

/* ---- the connector ---- */

struct TrellisInstance {
    int unused;
};

struct TrellisReader {
    long long next;
    long long count;
    bool finished;
    atomic_bool cancelled;
};

static void put_stream_spec(Writer *w, uint32_t field) {
    Writer stream = {0};
    put_string(&stream, 1, "conversations");
    put_uint(&stream, 2, 2); /* RECORD_KIND_CONVERSATION */
    put_string(&stream, 3, "n");
    put_string(&stream, 4, "external_id");
    put_message(w, field, &stream);
}

static int32_t instance_new(TrellisInstance **out_instance, TrellisBuffer *out_error) {
    TrellisInstance *instance = calloc(1, sizeof *instance);
    if (!instance) return fail(out_error, TRELLIS_STATUS_SYSTEM_ERROR, NULL, "out of memory");
    *out_instance = instance;
    return TRELLIS_STATUS_OK;
}

static void instance_free(TrellisInstance *instance) { free(instance); }

static int32_t spec(TrellisInstance *instance, TrellisBuffer *out) {
    (void)instance;
    Writer w = {0};
    put_string(&w, 1, "c-example");
    put_string(&w, 2, "0.1.0");
    put_uint(&w, 3, 5); /* PLATFORM_KIND_QA_FORUM */
    put_string(&w, 4, CONFIG_SCHEMA);
    put_stream_spec(&w, 5);
    put_string(&w, 6, "numbered conversations, from a connector written in C");
    hand_over(&w, out);
    return TRELLIS_STATUS_OK;
}

static int32_t check(TrellisInstance *instance, const uint8_t *request, size_t request_len,
                     TrellisBuffer *out) {
    (void)instance;
    Request parsed;
    long long count;
    int32_t status = parse_request(request, request_len, &parsed, &count, out);
    request_free(&parsed);
    if (status != TRELLIS_STATUS_OK) return status;
    Writer w = {0};
    char message[64];
    snprintf(message, sizeof message, "%lld conversations", count);
    put_string(&w, 1, message);
    hand_over(&w, out);
    return TRELLIS_STATUS_OK;
}

static int32_t discover(TrellisInstance *instance, const uint8_t *request, size_t request_len,
                        TrellisBuffer *out) {
    (void)instance;
    Request parsed;
    long long count;
    int32_t status = parse_request(request, request_len, &parsed, &count, out);
    request_free(&parsed);
    if (status != TRELLIS_STATUS_OK) return status;
    Writer w = {0};
    put_stream_spec(&w, 1);
    hand_over(&w, out);
    return TRELLIS_STATUS_OK;
}

static int32_t read_open(TrellisInstance *instance, const uint8_t *request, size_t request_len,
                         TrellisReader **out_reader, TrellisBuffer *out_error) {
    (void)instance;
    Request parsed;
    long long count;
    int32_t status = parse_request(request, request_len, &parsed, &count, out_error);
    if (status != TRELLIS_STATUS_OK) {
        request_free(&parsed);
        return status;
    }
    long long next = parsed.state ? json_integer(parsed.state, "next") : 1;
    request_free(&parsed);
    if (next < 1)
        return fail(out_error, TRELLIS_STATUS_CONFIG_ERROR, "state",
                    "the saved state has no \"next\"; run a full refresh of the source");
    TrellisReader *reader = calloc(1, sizeof *reader);
    if (!reader) return fail(out_error, TRELLIS_STATUS_SYSTEM_ERROR, NULL, "out of memory");
    reader->next = next;
    reader->count = count;
    atomic_init(&reader->cancelled, false);
    *out_reader = reader;
    return TRELLIS_STATUS_OK;
}

static int32_t read_next(TrellisReader *reader, TrellisBuffer *out) {
    if (atomic_load(&reader->cancelled))
        return fail(out, TRELLIS_STATUS_CANCELLED, NULL, "the read was cancelled by the host");
    Writer batch = {0};
    char text[96];
    for (int i = 0; i < BATCH_SIZE && reader->next <= reader->count; i++, reader->next++) {
        Writer ref = {0}, conversation = {0}, record = {0}, item = {0};
        snprintf(text, sizeof text, "c-%lld", reader->next);
        put_string(&ref, 2, text); /* RecordRef.external_id; the host sets the source */
        put_message(&conversation, 1, &ref);
        put_uint(&conversation, 2, 5); /* PLATFORM_KIND_QA_FORUM */
        snprintf(text, sizeof text, "Question number %lld", reader->next);
        put_string(&conversation, 4, text);
        put_uint(&conversation, 8, 1); /* open */
        put_string(&record, 1, "conversations");
        put_message(&record, 3, &conversation);
        put_message(&item, 1, &record);
        put_message(&batch, 1, &item);
    }
    /* The checkpoint: everything before it is emitted; resume at `next`. */
    Writer state = {0}, item = {0};
    put_string(&state, 1, "conversations");
    snprintf(text, sizeof text, "{\"next\":%lld}", reader->next);
    put_string(&state, 2, text);
    put_message(&item, 2, &state);
    put_message(&batch, 1, &item);
    if (reader->next > reader->count) {
        reader->finished = true;
        put_uint(&batch, 2, 1); /* end */
    }
    hand_over(&batch, out);
    return TRELLIS_STATUS_OK;
}

static void read_cancel(TrellisReader *reader) { atomic_store(&reader->cancelled, true); }

static void read_close(TrellisReader *reader) { free(reader); }

static void buffer_free(TrellisBuffer buffer) { free(buffer.data); }

static const TrellisConnectorV1 TABLE = {
    .struct_size = sizeof(TrellisConnectorV1),
    .abi_major = TRELLIS_ABI_MAJOR,
    .abi_minor = TRELLIS_ABI_MINOR,
    .instance_new = instance_new,
    .instance_free = instance_free,
    .spec = spec,
    .check = check,
    .discover = discover,
    .read_open = read_open,
    .read_next = read_next,
    .read_cancel = read_cancel,
    .read_close = read_close,
    .buffer_free = buffer_free,
};

const TrellisConnectorV1 *trellis_connector_v1(uint16_t host_abi_major, uint16_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == TRELLIS_ABI_MAJOR ? &TABLE : NULL;
}
