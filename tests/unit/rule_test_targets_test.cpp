// What `tattle test` arguments mean (rule_test_targets.cpp): config files, bundle
// files found through their root config, directories, and the errors for bad ones.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/rule_test_targets.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr const char* kRoot = R"(bundles = ["bundles/*.toml"]

[[destination]]
id = "security"
type = "stdout"
share_with = ["*"]
)";

std::string bundle(const std::string& team, const std::string& destination = "security") {
    return "team = \"" + team + "\"\n\n[[rule]]\nid = \"r\"\nname = \"R\"\n"
           "jq_match = 'select(.eventName == \"CreateUser\")'\ndestinations = [\"" + destination + "\"]\n\n"
           "[[rule.test]]\nevent = '{\"eventName\": \"CreateUser\"}'\nmatch = true\n";
}

std::string own_destination_bundle(const std::string& team) {
    return bundle(team, "out") + "\n[[destination]]\nid = \"out\"\ntype = \"stdout\"\n";
}

std::vector<std::string> rule_ids(const Config& config) {
    std::vector<std::string> ids;
    for (const auto& rule : config.rules) ids.push_back(rule.key());
    return ids;
}

std::string all_messages(const ConfigError& error) {
    std::string text;
    for (const auto& problem : error.problems()) text += problem.to_string() + '\n';
    return text;
}

class RuleTestTargetsTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device random;
        dir_ = fs::temp_directory_path() / ("tattle_test_targets_" + std::to_string(random()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path file = dir_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

    std::string resolve_error(const std::vector<fs::path>& arguments) {
        try {
            resolve_rule_test_targets(arguments);
        } catch (const ConfigError& error) {
            return all_messages(error);
        }
        ADD_FAILURE() << "no ConfigError";
        return "";
    }

    fs::path dir_;
};

TEST_F(RuleTestTargetsTest, ClassifiesBundlesRootsAndPlainConfigs) {
    EXPECT_EQ(classify_config_file(write("b.toml", bundle("a"))), ConfigFileKind::Bundle);
    EXPECT_EQ(classify_config_file(write("root.toml", kRoot)), ConfigFileKind::RootWithBundles);
    EXPECT_EQ(classify_config_file(write("plain.toml", "[[rule]]\nname = \"x\"\n")), ConfigFileKind::Config);
    // Not TOML: a config, so that load_config reports the syntax error with its line.
    EXPECT_EQ(classify_config_file(write("broken.toml", "team = \n")), ConfigFileKind::Config);
}

TEST_F(RuleTestTargetsTest, ABundleIsTestedThroughTheRootBesideItWithOnlyItsRules) {
    const fs::path root = write("library/root.toml", R"(bundles = ["a.toml", "b.toml"]

[[destination]]
id = "security"
type = "stdout"
share_with = ["*"]
)");
    const fs::path a = write("library/a.toml", bundle("a"));
    write("library/b.toml", bundle("b"));
    const auto targets = resolve_rule_test_targets({a});
    ASSERT_THAT(targets, SizeIs(1));
    EXPECT_FALSE(targets[0].synthetic_root);
    EXPECT_EQ(targets[0].config.path, root);
    EXPECT_THAT(rule_ids(targets[0].config), ElementsAre("a/r", "b/r"));
    EXPECT_THAT(rule_ids(rules_declared_in(targets[0].config, targets[0].only_files)), ElementsAre("a/r"));
}

TEST_F(RuleTestTargetsTest, ARootOneDirectoryUpIsFound) {
    write("teams/root.toml", kRoot);
    const fs::path payments = write("teams/bundles/payments.toml", bundle("payments"));
    const auto targets = resolve_rule_test_targets({payments});
    ASSERT_THAT(targets, SizeIs(1));
    EXPECT_THAT(rule_ids(rules_declared_in(targets[0].config, targets[0].only_files)), ElementsAre("payments/r"));
}

TEST_F(RuleTestTargetsTest, ABrokenBundleReportsItsOwnProblemThroughItsRoot) {
    write("teams/root.toml", kRoot);
    const fs::path broken = write("teams/bundles/broken.toml", bundle("broken", "nowhere"));
    EXPECT_THAT(resolve_error({broken}), HasSubstr("unknown destination \"nowhere\""));
}

TEST_F(RuleTestTargetsTest, AnUnrelatedBrokenRootIsNotTheBundlesRoot) {
    write("loose/other-root.toml", "bundles = [\"missing/*.toml\"]\n");
    const fs::path solo = write("loose/solo.toml", own_destination_bundle("solo"));
    const auto targets = resolve_rule_test_targets({solo});
    ASSERT_THAT(targets, SizeIs(1));
    EXPECT_TRUE(targets[0].synthetic_root);
    EXPECT_THAT(rule_ids(targets[0].config), ElementsAre("solo/r"));
}

TEST_F(RuleTestTargetsTest, ABundleNeedingARootDestinationSaysItHadNoRoot) {
    const fs::path lone = write("lone/team.toml", bundle("team"));
    const std::string message = resolve_error({lone});
    EXPECT_THAT(message, HasSubstr("unknown destination \"security\""));
    EXPECT_THAT(message, HasSubstr("without a root config"));
}

TEST_F(RuleTestTargetsTest, ADirectoryMeansItsOneRootConfig) {
    write("library/root.toml", R"(bundles = ["a.toml"]

[[destination]]
id = "security"
type = "stdout"
share_with = ["*"]
)");
    write("library/a.toml", bundle("a"));
    const auto targets = resolve_rule_test_targets({dir_ / "library"});
    ASSERT_THAT(targets, SizeIs(1));
    EXPECT_FALSE(targets[0].synthetic_root);
    EXPECT_THAT(targets[0].only_files, IsEmpty());
    EXPECT_THAT(rule_ids(targets[0].config), ElementsAre("a/r"));
}

TEST_F(RuleTestTargetsTest, ADirectoryWithoutARootIsAllItsBundles) {
    write("loose/x.toml", own_destination_bundle("x"));
    write("loose/y.toml", own_destination_bundle("y"));
    const auto targets = resolve_rule_test_targets({dir_ / "loose"});
    ASSERT_THAT(targets, SizeIs(1));
    EXPECT_TRUE(targets[0].synthetic_root);
    EXPECT_THAT(rule_ids(targets[0].config), ElementsAre("x/r", "y/r"));
}

TEST_F(RuleTestTargetsTest, BadArgumentsAreNamed) {
    write("two/a.toml", "bundles = [\"x.toml\"]\n");
    write("two/b.toml", "bundles = [\"y.toml\"]\n");
    EXPECT_THAT(resolve_error({dir_ / "two"}), HasSubstr("2 root configs (files with `bundles =`: a.toml, b.toml)"));
    fs::create_directories(dir_ / "empty");
    EXPECT_THAT(resolve_error({dir_ / "empty"}), HasSubstr("no *.toml file"));
    EXPECT_THAT(resolve_error({dir_ / "missing.toml"}), HasSubstr("missing.toml: no such file or directory"));
}

TEST_F(RuleTestTargetsTest, ATestHasOneIdentityHoweverItsFileIsSpelt) {
    const fs::path file = write("library/a.toml", bundle("a"));
    const SourceLocation direct{file.string(), 7, 1};
    const SourceLocation roundabout{(dir_ / "library" / ".." / "library" / "a.toml").string(), 7, 1};
    EXPECT_EQ(rule_test_identity("a/r", direct), rule_test_identity("a/r", roundabout));
    EXPECT_NE(rule_test_identity("a/r", direct), rule_test_identity("a/r", SourceLocation{file.string(), 8, 1}));
}

}  // namespace
}  // namespace tattle
