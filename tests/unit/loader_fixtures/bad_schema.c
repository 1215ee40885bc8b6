#include "fixture_common.h"

static const tattle_plugin_info info = {sizeof(tattle_plugin_info), TATTLE_PLUGIN_ABI_MAJOR,
                                        TATTLE_PLUGIN_ABI_MINOR, TATTLE_PLUGIN_KIND_SINK,
                                        "bad_schema", "1.0.0", "schema is not JSON",
                                        "{\"type\": \"object\", "};
TATTLE_PLUGIN_EXPORT const tattle_plugin_info* tattle_plugin_get_info(void) { return &info; }
TATTLE_PLUGIN_EXPORT tattle_rc tattle_sink_send(void* h, const char* j, size_t n, tattle_send_result* r) {
    (void)h; (void)j; (void)n; (void)r;
    return TATTLE_RC_OK;
}
