/* Shared pieces of the loader fixtures: a plugin written in plain C against the ABI header. */
#include <stdlib.h>
#include <string.h>

#include "tattle_plugin.h"

static const char* fixture_error = "";

TATTLE_PLUGIN_EXPORT const char* tattle_plugin_last_error(void* handle) {
    (void)handle;
    return fixture_error;
}
TATTLE_PLUGIN_EXPORT void* tattle_sink_create(const tattle_create_args* args, tattle_rc* rc) {
    (void)args;
    *rc = TATTLE_RC_OK;
    return malloc(1);
}
TATTLE_PLUGIN_EXPORT void tattle_sink_destroy(void* handle) { free(handle); }
