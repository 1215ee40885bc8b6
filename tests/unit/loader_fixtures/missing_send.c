/* A sink that forgot tattle_sink_send. */
#include "fixture_common.h"

static const tattle_plugin_info info = {sizeof(tattle_plugin_info), TATTLE_PLUGIN_ABI_MAJOR,
                                        TATTLE_PLUGIN_ABI_MINOR, TATTLE_PLUGIN_KIND_SINK,
                                        "missing_send", "1.0.0", "no send function",
                                        "{\"type\":\"object\"}"};
TATTLE_PLUGIN_EXPORT const tattle_plugin_info* tattle_plugin_get_info(void) { return &info; }
