#include "tattle/rule_sandbox.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace tattle {

namespace {

// The wire between parent and evaluator: frames of [u32 length][payload], little
// endian as the machine is (both ends are the same binary). Strings are [u32 length][bytes].
class Writer {
public:
    void u8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
    void u32(std::size_t value) {
        const auto narrow = static_cast<std::uint32_t>(value);
        out_.append(reinterpret_cast<const char*>(&narrow), sizeof narrow);
    }
    void str(std::string_view text) {
        u32(text.size());
        out_.append(text);
    }
    // The payload as a frame.
    std::string frame() const {
        Writer framed;
        framed.str(out_);
        return std::move(framed.out_);
    }

private:
    std::string out_;
};

struct ProtocolError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    std::uint8_t u8() {
        need(1);
        return static_cast<std::uint8_t>(in_[at_++]);
    }
    std::size_t u32() {
        need(sizeof(std::uint32_t));
        std::uint32_t value = 0;
        std::memcpy(&value, in_.data() + at_, sizeof value);
        at_ += sizeof value;
        return value;
    }
    std::string_view str() {
        const std::size_t length = u32();
        need(length);
        const std::string_view text = in_.substr(at_, length);
        at_ += length;
        return text;
    }

private:
    void need(std::size_t bytes) const {
        if (in_.size() - at_ < bytes) throw ProtocolError("truncated message from the rule evaluator");
    }
    std::string_view in_;
    std::size_t at_ = 0;
};

// Takes one whole frame's payload off the front of buffer, if there is one.
std::optional<std::string> take_frame(std::string& buffer) {
    if (buffer.size() < sizeof(std::uint32_t)) return std::nullopt;
    std::uint32_t length = 0;
    std::memcpy(&length, buffer.data(), sizeof length);
    if (buffer.size() - sizeof length < length) return std::nullopt;
    std::string payload = buffer.substr(sizeof length, length);
    buffer.erase(0, sizeof length + length);
    return payload;
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t written = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(written));
    }
    return true;
}

// Blocking read of one frame (the evaluator's side). nullopt at end of stream.
std::optional<std::string> read_frame_blocking(int fd, std::string& buffer) {
    for (;;) {
        if (auto frame = take_frame(buffer)) return frame;
        char chunk[65536];
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return std::nullopt;
        buffer.append(chunk, static_cast<std::size_t>(got));
    }
}

constexpr std::uint8_t kReady = 'R';

std::vector<LibjqOutcome> read_answer(std::string_view frame) {
    Reader reader(frame);
    std::vector<LibjqOutcome> outcomes(reader.u32());
    for (auto& outcome : outcomes) {
        outcome.rule_index = reader.u32();
        outcome.kind = static_cast<LibjqOutcome::Kind>(reader.u8());
        const bool annotated = reader.u8() != 0;
        const std::string_view text = reader.str();
        if (annotated) {
            outcome.annotation = boost::json::parse(text);
        } else {
            outcome.message = std::string(text);
        }
    }
    return outcomes;
}

std::string& evaluator_program() {
    static std::string program;
    return program;
}

std::string describe_size(std::size_t bytes) {
    return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

void set_rule_evaluator_program(std::string program) { evaluator_program() = std::move(program); }

void log_rule_evaluator_unavailable(std::string_view why, std::string_view what) {
    spdlog::error("the rule evaluator process could not start ({}); {} run in this process, so one that "
                  "never ends would stall alerting",
                  why, what);
}

std::unique_ptr<RuleSandbox> start_rule_sandbox(std::vector<FilterRule> rules, RuleCompilation compilation,
                                                RuleBudget budget, std::string_view what, EvaluatorStart start) {
    const std::string& program = rule_evaluator_program();
    if (program.empty()) return nullptr;  // a library user that never named the evaluator
    try {
        return std::make_unique<RuleSandbox>(std::move(rules), compilation, budget, program, start);
    } catch (const std::exception& e) {
        log_rule_evaluator_unavailable(e.what(), what);
        return nullptr;
    }
}
const std::string& rule_evaluator_program() { return evaluator_program(); }

// ---------------------------------------------------------------------------
// The evaluator.

int run_rule_evaluator(int channel_fd) {
    // Never outlive the sandbox that started it: when the parent closes its end (or
    // dies), leave, even while a rule is looping on the main thread. (PR_SET_PDEATHSIG
    // would fire when the parent's starting thread ends, and workers come and go.)
    std::thread([channel_fd] {
        pollfd hangup{channel_fd, POLLRDHUP, 0};
        while (::poll(&hangup, 1, -1) < 0 && errno == EINTR) {
        }
        ::_exit(0);
    }).detach();
    spdlog::set_level(spdlog::level::off);  // everything it has to say goes to the parent

    std::string buffer;
    auto init = read_frame_blocking(channel_fd, buffer);
    if (!init) return 0;
    std::vector<FilterRule> rules;
    RuleCompilation compilation = RuleCompilation::indexed;
    try {
        Reader reader(*init);
        compilation = static_cast<RuleCompilation>(reader.u8());
        const std::size_t count = reader.u32();
        rules.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            FilterRule rule;
            rule.name = std::string(reader.str());
            rule.jq_program = std::string(reader.str());
            rules.push_back(std::move(rule));
        }
    } catch (const ProtocolError&) {
        return 3;
    }
    std::vector<Diagnostic> problems_already_reported_by_the_parent;
    FilterStage filter(std::move(rules), problems_already_reported_by_the_parent,
                       FilterOptions{compilation, std::nullopt});
    Writer ready;
    ready.u8(kReady);
    if (!write_all(channel_fd, ready.frame())) return 0;

    boost::json::parse_options parse_options;
    parse_options.max_depth = 100'000;  // the parent's [limits] max_depth applied already
    std::vector<std::size_t> job_rules;
    for (;;) {
        auto request = read_frame_blocking(channel_fd, buffer);
        // Closed: leave as the hang-up watcher does, without running destructors under it.
        if (!request) ::_exit(0);
        try {
            Reader reader(*request);
            const std::size_t jobs = reader.u32();
            for (std::size_t job = 0; job < jobs; ++job) {
                job_rules.resize(reader.u32());
                for (auto& rule : job_rules) rule = reader.u32();
                const std::string_view event_text = reader.str();
                std::vector<LibjqOutcome> outcomes;
                boost::system::error_code error;
                const boost::json::value event =
                    boost::json::parse(event_text, error, boost::json::storage_ptr(), parse_options);
                if (error || !event.is_object()) {
                    for (std::size_t rule : job_rules) {
                        outcomes.push_back(LibjqOutcome{rule, LibjqOutcome::Kind::error, std::nullopt,
                                                        "the rule evaluator could not read the event"});
                    }
                } else {
                    outcomes = filter.run_libjq(event.get_object(), job_rules);
                }
                Writer reply;
                reply.u32(outcomes.size());
                for (const auto& outcome : outcomes) {
                    reply.u32(outcome.rule_index);
                    reply.u8(static_cast<std::uint8_t>(outcome.kind));
                    reply.u8(outcome.annotation ? 1 : 0);
                    reply.str(outcome.annotation ? boost::json::serialize(*outcome.annotation) : outcome.message);
                }
                if (!write_all(channel_fd, reply.frame())) return 0;
            }
        } catch (const ProtocolError&) {
            return 3;
        }
    }
}

// ---------------------------------------------------------------------------
// The parent's side.

RuleSandbox::RuleSandbox(std::vector<FilterRule> rules, RuleCompilation compilation, RuleBudget budget,
                         std::string program, EvaluatorStart start_mode)
    : rules_(std::move(rules)),
      compilation_(compilation),
      budget_(budget),
      program_(std::move(program)),
      stopped_(rules_.size(), false) {
    spawn();
    if (start_mode == EvaluatorStart::wait_until_ready) await_ready();
}

RuleSandbox::~RuleSandbox() { stop(); }

void RuleSandbox::start() {
    spawn();
    await_ready();
}

void RuleSandbox::spawn() {
    ready_ = false;
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
        throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    int child_end = ends[1];
    // posix_spawn's dup2 onto the same number would keep close-on-exec set.
    if (child_end == 3) {
        child_end = ::fcntl(ends[1], F_DUPFD_CLOEXEC, 10);
        ::close(ends[1]);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_end, 3);
    // stdin and stdout belong to the parent (the stdout sink, pipes a caller waits on);
    // stderr stays for what a sanitizer or the C library has to say.
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 4);
    std::string command(kRuleEvaluatorCommand);
    char* argv[] = {program_.data(), command.data(), nullptr};
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, program_.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(child_end);
    if (spawned != 0) {
        ::close(ends[0]);
        throw std::system_error(spawned, std::generic_category(), "cannot start " + program_);
    }
    pid_ = pid;
    channel_ = ends[0];
    pending_.clear();
    if (::clock_getcpuclockid(pid_, &cpu_clock_) != 0) cpu_clock_ = CLOCK_MONOTONIC;

    Writer init;
    init.u8(static_cast<std::uint8_t>(compilation_));
    init.u32(rules_.size());
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        init.str(rules_[i].name);
        init.str(stopped_[i] ? std::string_view() : std::string_view(rules_[i].jq_program));
    }
    // A program that is no evaluator may be gone already: await_ready tells.
    init_sent_ = write_all(channel_, init.frame());
}

void RuleSandbox::await_ready() {
    std::optional<std::string> ready;
    if (init_sent_) ready = read_frame_blocking(channel_, pending_);
    if (!ready || ready->size() != 1 || static_cast<std::uint8_t>((*ready)[0]) != kReady) {
        stop();
        throw RuleEvaluatorNotReady(program_ + " did not start as a rule evaluator");
    }
    ready_ = true;
    baseline_rss_ = child_rss();
}

void RuleSandbox::stop() noexcept {
    if (channel_ >= 0) {
        ::close(channel_);
        channel_ = -1;
    }
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
}

long RuleSandbox::child_cpu_ns() const {
    timespec now{};
    if (::clock_gettime(cpu_clock_, &now) != 0) return 0;
    return now.tv_sec * 1'000'000'000L + now.tv_nsec;
}

std::size_t RuleSandbox::child_rss() const {
    std::ifstream statm("/proc/" + std::to_string(pid_) + "/statm");
    std::size_t size_pages = 0;
    std::size_t resident_pages = 0;
    if (!(statm >> size_pages >> resident_pages)) return 0;
    return resident_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::string RuleSandbox::death_reason(int status) const {
    if (WIFSIGNALED(status)) {
        const int signal_number = WTERMSIG(status);
        const char* name = ::strsignal(signal_number);
        return "crashed the rule evaluator (signal " + std::to_string(signal_number) +
               (name != nullptr ? std::string(", ") + name : std::string()) + ")";
    }
    if (WIFEXITED(status)) {
        return "made the rule evaluator exit (status " + std::to_string(WEXITSTATUS(status)) + ")";
    }
    return "stopped the rule evaluator";
}

RuleSandbox::Progress RuleSandbox::run_jobs(std::span<const Job> jobs,
                                            std::vector<std::vector<LibjqOutcome>>& results) {
    Progress progress;
    Writer request;
    request.u32(jobs.size());
    for (const auto& job : jobs) {
        std::size_t live = 0;
        for (std::size_t rule : *job.rules) live += stopped_[rule] ? 0U : 1U;
        request.u32(live);
        for (std::size_t rule : *job.rules) {
            if (!stopped_[rule]) request.u32(rule);
        }
        request.str(*job.event_json);
    }
    // The evaluator reads the whole request before it answers, so this cannot deadlock.
    bool alive = write_all(channel_, request.frame());
    progress.before_any_job = !alive;

    using Clock = std::chrono::steady_clock;
    constexpr auto kCheckEvery = std::chrono::milliseconds(10);
    const long cpu_budget_ns = static_cast<long>(budget_.cpu.count()) * 1'000'000L;
    long job_started_cpu = child_cpu_ns();
    auto last_check = Clock::now();
    bool killed = false;
    while (alive && progress.completed < jobs.size()) {
        pollfd readable{channel_, POLLIN, 0};
        const int ready = ::poll(&readable, 1, static_cast<int>(kCheckEvery.count()));
        if (ready > 0) {
            char chunk[65536];
            const ssize_t got = ::read(channel_, chunk, sizeof chunk);
            if (got > 0) {
                pending_.append(chunk, static_cast<std::size_t>(got));
                bool answered = false;
                while (auto frame = take_frame(pending_)) {
                    results.push_back(read_answer(*frame));
                    ++progress.completed;
                    answered = true;
                }
                if (answered) job_started_cpu = child_cpu_ns();
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                alive = false;
                break;
            }
        } else if (ready < 0 && errno != EINTR) {
            alive = false;
            break;
        }
        if (Clock::now() - last_check < kCheckEvery) continue;
        last_check = Clock::now();
        if (child_cpu_ns() - job_started_cpu > cpu_budget_ns) {
            progress.cause = StopCause::cpu;
            progress.reason = "ran for more than " + std::to_string(budget_.cpu.count()) +
                              " ms of CPU time on one event";
            killed = true;
        } else if (const std::size_t rss = child_rss(); rss > baseline_rss_ + budget_.memory_bytes) {
            progress.cause = StopCause::memory;
            progress.reason = "used more than " + describe_size(budget_.memory_bytes) + " of memory on one event";
            killed = true;
        }
        if (killed) {
            ::kill(pid_, SIGKILL);
            alive = false;
        }
    }
    if (progress.completed == jobs.size()) return progress;

    // It died (or was killed) during job `completed`: answers it sent before are kept.
    progress.died = true;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (!killed) progress.reason = death_reason(status);
    char chunk[65536];
    for (;;) {
        const ssize_t got = ::read(channel_, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        pending_.append(chunk, static_cast<std::size_t>(got));
    }
    while (progress.completed < jobs.size()) {
        auto frame = take_frame(pending_);
        if (!frame) break;
        results.push_back(read_answer(*frame));
        ++progress.completed;
    }
    ::close(channel_);
    channel_ = -1;
    return progress;
}

bool RuleSandbox::running(std::string& why_not) {
    if (pid_ > 0) return true;
    try {
        start();
        ++restarts_;
        return true;
    } catch (const std::exception& e) {
        why_not = std::string("the rule evaluator could not be restarted: ") + e.what();
        return false;
    }
}

std::vector<std::vector<LibjqOutcome>> RuleSandbox::run(std::span<const Job> jobs) {
    std::vector<std::vector<LibjqOutcome>> results;
    results.reserve(jobs.size());
    std::size_t failures_without_a_rule = 0;
    auto fail_the_rest = [&](const std::string& why) {
        while (results.size() < jobs.size()) {
            std::vector<LibjqOutcome> outcomes;
            for (std::size_t rule : *jobs[results.size()].rules) {
                outcomes.push_back(LibjqOutcome{rule, LibjqOutcome::Kind::error, std::nullopt, why});
            }
            results.push_back(std::move(outcomes));
        }
    };
    // Started without waiting: the first run waits. An evaluator that never became ready
    // is the caller's to handle (no rule is to blame).
    if (pid_ > 0 && !ready_) await_ready();
    // Killed from outside while idle (the OOM killer): start another.
    if (pid_ > 0) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            ::close(channel_);
            channel_ = -1;
        }
    }
    std::string why_not;
    while (results.size() < jobs.size()) {
        if (!running(why_not)) {
            fail_the_rest(why_not);
            break;
        }
        const std::size_t first = results.size();
        const Progress progress = run_jobs(jobs.subspan(first), results);
        if (!progress.died) continue;
        const std::size_t failed = results.size();  // the job it was working on
        if (failed >= jobs.size()) continue;         // died after its last answer
        if (progress.before_any_job) {
            // Gone before it was given anything (killed from outside): no rule to blame.
            if (++failures_without_a_rule > 2) {
                fail_the_rest("the rule evaluator keeps stopping: it " + progress.reason);
                break;
            }
            continue;
        }
        std::vector<std::size_t> live;
        for (std::size_t rule : *jobs[failed].rules) {
            if (!stopped_[rule]) live.push_back(rule);
        }
        if (live.empty()) {
            results.emplace_back();
            continue;
        }
        if (live.size() == 1) {
            stopped_[live.front()] = true;
            results.push_back({LibjqOutcome{live.front(), LibjqOutcome::Kind::stopped, std::nullopt, progress.reason,
                                             progress.cause}});
            continue;
        }
        // Several rules shared the job: run each alone on the event to find which.
        std::vector<LibjqOutcome> outcomes;
        for (std::size_t rule : live) {
            const std::vector<std::size_t> alone{rule};
            const Job single{jobs[failed].event_json, &alone};
            std::vector<std::vector<LibjqOutcome>> single_result;
            if (!running(why_not)) {
                outcomes.push_back(LibjqOutcome{rule, LibjqOutcome::Kind::error, std::nullopt, why_not});
                continue;
            }
            const Progress alone_progress = run_jobs(std::span(&single, 1), single_result);
            if (alone_progress.died) {
                stopped_[rule] = true;
                outcomes.push_back(LibjqOutcome{rule, LibjqOutcome::Kind::stopped, std::nullopt, alone_progress.reason,
                                                alone_progress.cause});
            } else {
                for (auto& outcome : single_result.front()) outcomes.push_back(std::move(outcome));
            }
        }
        results.push_back(std::move(outcomes));
    }
    return results;
}

}  // namespace tattle
