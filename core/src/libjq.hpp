#pragma once

// libjq 1.6 ships C headers without extern "C" and with C-style casts in its macros:
// tattle includes them from here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wunused-function"
extern "C" {
#include <jq.h>
}
#pragma GCC diagnostic pop
