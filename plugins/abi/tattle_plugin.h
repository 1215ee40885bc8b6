/*
 * tattle plugin ABI, version 1.1.
 *
 * This header is the whole contract between the tattle host and a plugin.
 * It is plain C so that plugins built with another compiler, another C++
 * standard library or another language can be loaded: no C++ type and no
 * exception ever crosses it.
 *
 * Rules of evolution: structs carry their own size and only ever grow by
 * appending fields; a new optional function is a new exported symbol. Any
 * other change bumps TATTLE_PLUGIN_ABI_MAJOR, and the host refuses a plugin
 * whose major differs from its own, or whose minor is newer than its own.
 *
 * Memory: every pointer a plugin hands out stays owned by the plugin and
 * stays valid until the documented release point (the next call on the same
 * handle, ack, or destroy). Every pointer the host hands in is valid only for
 * the duration of the call.
 *
 * Errors: functions return a tattle_rc; on failure the plugin stores a
 * human-readable message that the host reads with tattle_plugin_last_error.
 *
 * Most plugins do not use this header directly but the C++ SDK
 * (tattle/sdk.hpp), which implements it and catches every exception.
 */
#ifndef TATTLE_PLUGIN_H
#define TATTLE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TATTLE_PLUGIN_ABI_MAJOR 1
#define TATTLE_PLUGIN_ABI_MINOR 1

#if defined(_WIN32)
#define TATTLE_PLUGIN_EXPORT __declspec(dllexport)
#else
#define TATTLE_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

typedef int32_t tattle_rc;

enum {
    TATTLE_RC_OK = 0,
    /* source: no more batches now; a finite source is exhausted */
    TATTLE_RC_EOF = 1,
    /* sink: temporary failure, the core may try again (see retry_after_ms) */
    TATTLE_RC_RETRY = 2,
    /* sink: permanent failure for this alert (e.g. HTTP 400/404/410) */
    TATTLE_RC_FAIL = 3,
    /* any: the call failed; the message is in tattle_plugin_last_error */
    TATTLE_RC_ERROR = 4,
    /* source (ABI 1.1): no batch now, call next again later (after acknowledging what
       is settled). Only returned to a host that set TATTLE_HOST_ACCEPTS_AGAIN. */
    TATTLE_RC_AGAIN = 5
};

/* Bits of tattle_create_args.host_flags (ABI 1.1). */
enum {
    /* The host understands TATTLE_RC_AGAIN from tattle_source_next. A plugin must check
       struct_size before reading host_flags: a 1.0 host's args end before it. */
    TATTLE_HOST_ACCEPTS_AGAIN = 1u << 0
};

typedef enum tattle_plugin_kind {
    TATTLE_PLUGIN_KIND_SOURCE = 1,
    TATTLE_PLUGIN_KIND_SINK = 2
} tattle_plugin_kind;

typedef enum tattle_log_level {
    TATTLE_LOG_TRACE = 0,
    TATTLE_LOG_DEBUG = 1,
    TATTLE_LOG_INFO = 2,
    TATTLE_LOG_WARN = 3,
    TATTLE_LOG_ERROR = 4
} tattle_log_level;

/* Describes a plugin. Returned by tattle_plugin_get_info; static storage. */
typedef struct tattle_plugin_info {
    uint32_t struct_size; /* sizeof(tattle_plugin_info) as the plugin knew it */
    uint32_t abi_major;   /* TATTLE_PLUGIN_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;   /* TATTLE_PLUGIN_ABI_MINOR the plugin was built with */
    int32_t kind;         /* tattle_plugin_kind */
    const char* type_name;     /* config "type" it provides, e.g. "slack_webhook" */
    const char* version;       /* the plugin's own semver, e.g. "1.2.0" */
    const char* description;   /* one line */
    const char* config_schema; /* JSON Schema (draft 2020-12 subset) of the config table */
} tattle_plugin_info;

/* Services the host offers to a plugin; valid until the plugin object is destroyed. */
typedef struct tattle_host_api {
    uint32_t struct_size;
    void* host_ctx;
    /* Log one message on behalf of the plugin instance. msg is UTF-8, no newline. */
    void (*log)(void* host_ctx, int32_t level, const char* msg);
} tattle_host_api;

/* Arguments of create, shared by sources and sinks. */
typedef struct tattle_create_args {
    uint32_t struct_size;
    const tattle_host_api* host;
    const char* instance_id; /* the [[source]]/[[destination]] id from the config */
    const char* config_json; /* the instance's config table, validated against config_schema,
                                with schema defaults filled in */
    /* ABI 1.1: TATTLE_HOST_* bits; present when struct_size covers it, else read as 0. */
    uint32_t host_flags;
} tattle_create_args;

/* One unit of acknowledgement handed out by a source: a file, an object, a message. */
typedef struct tattle_batch {
    uint32_t struct_size;
    uint64_t batch_id;   /* chosen by the source, unique among its unacknowledged batches */
    const char* origin;  /* where it came from, for people: a path, s3://bucket/key, a message id */
    const uint8_t* data; /* the raw bytes (maybe gzip); owned by the source until ack */
    size_t size;
} tattle_batch;

/* What happened to a batch, told by the host to the source in tattle_source_ack. */
enum {
    /* every alert born from the batch is settled: the source may delete/commit it */
    TATTLE_BATCH_SETTLED = 0,
    /* the batch could not be processed or delivered: the source should make it
       available again (e.g. leave the SQS message visible) */
    TATTLE_BATCH_RELEASE = 1
};

/* How a sink asks for a retry. */
typedef struct tattle_send_result {
    uint32_t struct_size;
    int64_t retry_after_ms; /* with TATTLE_RC_RETRY: minimum delay asked for, or -1 if none */
} tattle_send_result;

/* ---- exported by every plugin ------------------------------------------ */

/* Required. Static info; must not fail. */
TATTLE_PLUGIN_EXPORT const tattle_plugin_info* tattle_plugin_get_info(void);

/* Required. The last error of a handle (or of the last failed create when handle
   is NULL on this thread). Valid until the next call on that handle. Never NULL. */
TATTLE_PLUGIN_EXPORT const char* tattle_plugin_last_error(void* handle);

/* ---- exported by sinks -------------------------------------------------- */

/* Required. Returns a handle, or NULL with rc set and the message in
   tattle_plugin_last_error(NULL). */
TATTLE_PLUGIN_EXPORT void* tattle_sink_create(const tattle_create_args* args, tattle_rc* rc);
/* Required. Deliver one alert (a JSON document, see the README). Must not
   sleep or retry: return TATTLE_RC_RETRY and let the core schedule it. */
TATTLE_PLUGIN_EXPORT tattle_rc tattle_sink_send(void* handle, const char* alert_json, size_t len,
                                                tattle_send_result* result);
/* Optional. Make everything sent so far durable (flush buffers, fsync). */
TATTLE_PLUGIN_EXPORT tattle_rc tattle_sink_flush(void* handle);
/* Required. */
TATTLE_PLUGIN_EXPORT void tattle_sink_destroy(void* handle);

/* ---- exported by sources ------------------------------------------------ */

/* Required. Same contract as tattle_sink_create. */
TATTLE_PLUGIN_EXPORT void* tattle_source_create(const tattle_create_args* args, tattle_rc* rc);
/* Required. Fill *batch with the next batch: TATTLE_RC_OK, or TATTLE_RC_EOF when a
   finite source is exhausted, or TATTLE_RC_ERROR for a batch that could not be
   read (batch->origin names it when known; the source goes on with the next), or
   (ABI 1.1, only when the host set TATTLE_HOST_ACCEPTS_AGAIN) TATTLE_RC_AGAIN when
   there is nothing now and a later call may have something: the host acknowledges
   what is settled, waits a little and calls again. */
TATTLE_PLUGIN_EXPORT tattle_rc tattle_source_next(void* handle, tattle_batch* batch);
/* Required. Settle or release a batch handed out by tattle_source_next; its
   memory may be freed now. */
TATTLE_PLUGIN_EXPORT tattle_rc tattle_source_ack(void* handle, uint64_t batch_id, int32_t outcome);
/* Required. */
TATTLE_PLUGIN_EXPORT void tattle_source_destroy(void* handle);

#ifdef __cplusplus
}
#endif

#endif /* TATTLE_PLUGIN_H */
