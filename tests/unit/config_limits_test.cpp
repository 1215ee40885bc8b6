// The root config's [limits] table (see README "Limits").
#include "tattle/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tattle {
namespace {

using ::testing::ElementsAre;

const std::string kRule = "[[rule]]\nname = \"r\"\njq_match = \".\"\n";

std::vector<std::string> problems_of(const std::string& toml_text) {
    try {
        parse_config(toml_text, "limits.toml");
    } catch (const ConfigError& error) {
        std::vector<std::string> lines;
        for (const auto& problem : error.problems()) {
            lines.push_back(problem.where.file + ":" + std::to_string(problem.where.line) + ":" +
                            std::to_string(problem.where.column) + ": " + problem.message);
        }
        return lines;
    }
    return {"loaded without problems"};
}

TEST(ConfigLimits, DefaultsWhenAbsent) {
    const Config config = parse_config(kRule, "limits.toml");
    const InputLimits defaults;
    EXPECT_EQ(config.limits.max_batch_bytes, defaults.max_batch_bytes);
    EXPECT_EQ(config.limits.max_decompressed_bytes, std::size_t{4} << 30);
    EXPECT_EQ(config.limits.max_record_bytes, std::size_t{1} << 20);
    EXPECT_EQ(config.limits.max_depth, 128u);
    EXPECT_EQ(config.limits.max_records_per_batch, 1'000'000u);
    EXPECT_EQ(config.limits.max_alerts_per_batch, 10'000u);
}

TEST(ConfigLimits, EveryKeyIsRead) {
    const Config config = parse_config("[limits]\nmax_batch_bytes = 1000\nmax_decompressed_bytes = 2000\n"
                                       "max_record_bytes = 3000\nmax_depth = 4\nmax_records_per_batch = 5\n"
                                       "max_alerts_per_batch = 6\n" + kRule,
                                       "limits.toml");
    EXPECT_EQ(config.limits.max_batch_bytes, 1000u);
    EXPECT_EQ(config.limits.max_decompressed_bytes, 2000u);
    EXPECT_EQ(config.limits.max_record_bytes, 3000u);
    EXPECT_EQ(config.limits.max_depth, 4u);
    EXPECT_EQ(config.limits.max_records_per_batch, 5u);
    EXPECT_EQ(config.limits.max_alerts_per_batch, 6u);
}

TEST(ConfigLimits, UnknownKeysWrongTypesAndRangesAreReportedWithTheirPlace) {
    EXPECT_THAT(problems_of("[limits]\nmax_record_byte = 5\nmax_depth = 0\nmax_record_bytes = 10\n"
                            "max_batch_bytes = \"1 GB\"\nmax_alerts_per_batch = -1\n" + kRule),
                ElementsAre("limits.toml:2:1: limits: unknown key \"max_record_byte\" (did you mean "
                            "\"max_record_bytes\"?)",
                            "limits.toml:3:13: limits.max_depth must be an integer from 1 to 1000",
                            "limits.toml:4:20: limits.max_record_bytes must be an integer from 1024 to "
                            "1125899906842624",
                            "limits.toml:5:19: limits.max_batch_bytes must be an integer from 1 to "
                            "1125899906842624",
                            "limits.toml:6:24: limits.max_alerts_per_batch must be an integer from 1 to "
                            "1125899906842624"));
}

TEST(ConfigLimits, LimitsMustBeATable) {
    EXPECT_THAT(problems_of("limits = 5\n" + kRule), ElementsAre("limits.toml:1:10: limits must be a table ([limits])"));
}

}  // namespace
}  // namespace tattle
