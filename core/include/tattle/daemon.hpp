#pragma once

// `tattle serve`: the configured sources run continuously (an SQS queue polled, a
// directory followed) through the same pipeline as `tattle run`, with an HTTP endpoint
// for health, readiness and Prometheus metrics, a config reload on SIGHUP or
// POST /-/reload (a bad new config is rejected with its problems and the old one keeps
// running), and a graceful stop on SIGTERM/SIGINT within the grace period.

#include <chrono>
#include <string>
#include <vector>

namespace tattle::daemon {

struct ServeOptions {
    std::string config_path;
    std::vector<std::string> plugin_dirs;
    // host:port of the HTTP endpoint; port 0 picks a free one (logged at start).
    std::string listen = "127.0.0.1:9464";
    // From SIGTERM/SIGINT to exit: no new batch is read, alerts get until shortly before
    // the end to be delivered, then are spooled (or their batches released).
    std::chrono::milliseconds grace_period{std::chrono::seconds(30)};
    // How long to wait before asking sources that had nothing again.
    std::chrono::milliseconds idle_poll_interval{std::chrono::seconds(1)};
};

// Runs until stopped. Returns the exit code: 0 after a graceful stop, 1 when the grace
// period ran out before the work was settled, 2 when the first config cannot be used or
// the endpoint cannot listen.
int serve(const ServeOptions& options);

}  // namespace tattle::daemon
