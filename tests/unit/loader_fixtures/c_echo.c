/* A correct sink written in plain C: it fails alerts whose JSON contains "fail-me",
   asks for a retry on "retry-me", and accepts the rest. */
#include "fixture_common.h"

static const tattle_plugin_info info = {
    sizeof(tattle_plugin_info), TATTLE_PLUGIN_ABI_MAJOR, TATTLE_PLUGIN_ABI_MINOR, TATTLE_PLUGIN_KIND_SINK,
    "c_echo", "1.0.0", "a sink written in C",
    "{\"type\":\"object\",\"properties\":{\"label\":{\"type\":\"string\"}},\"additionalProperties\":false}"};
TATTLE_PLUGIN_EXPORT const tattle_plugin_info* tattle_plugin_get_info(void) { return &info; }
TATTLE_PLUGIN_EXPORT tattle_rc tattle_sink_send(void* h, const char* json, size_t n, tattle_send_result* r) {
    (void)h;
    (void)n;
    if (strstr(json, "fail-me") != NULL) {
        fixture_error = "rejected permanently";
        return TATTLE_RC_FAIL;
    }
    if (strstr(json, "retry-me") != NULL) {
        fixture_error = "try later";
        r->retry_after_ms = 1500;
        return TATTLE_RC_RETRY;
    }
    return TATTLE_RC_OK;
}
