// The plugin loader: refusals of plugins built wrong on purpose, and a plugin
// written in plain C against the ABI header loaded and driven end to end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "tattle/plugin_catalog.hpp"

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const fs::path kFixtures = TATTLE_LOADER_FIXTURE_DIR;

std::string refusal_of(const std::string& file) {
    tattle::PluginCatalog catalog;
    try {
        catalog.load_file(kFixtures / file);
    } catch (const tattle::PluginLoadError& e) {
        return e.what();
    }
    return "loaded";
}

TEST(Loader, RefusesWrongMajorNamingFileAndVersions) {
    EXPECT_THAT(refusal_of("tattle_sink_wrong_major.so"),
                AllOf(HasSubstr("tattle_sink_wrong_major.so"), HasSubstr("plugin ABI 2.0"),
                      HasSubstr("major versions must match")));
}

TEST(Loader, RefusesNewerMinor) {
    EXPECT_THAT(refusal_of("tattle_sink_newer_minor.so"),
                AllOf(HasSubstr("tattle_sink_newer_minor.so"), HasSubstr("upgrade tattle")));
}

TEST(Loader, RefusesMissingSymbolNamingIt) {
    EXPECT_THAT(refusal_of("tattle_sink_missing_send.so"),
                AllOf(HasSubstr("tattle_sink_missing_send.so"), HasSubstr("missing symbol tattle_sink_send")));
}

TEST(Loader, RefusesLibraryThatIsNotAPlugin) {
    EXPECT_THAT(refusal_of("tattle_not_a_plugin.so"),
                AllOf(HasSubstr("tattle_not_a_plugin.so"), HasSubstr("not a tattle plugin")));
}

TEST(Loader, RefusesUnparsableSchema) {
    EXPECT_THAT(refusal_of("tattle_sink_bad_schema.so"),
                AllOf(HasSubstr("tattle_sink_bad_schema.so"), HasSubstr("not valid JSON")));
}

TEST(Loader, RefusesMissingFileWithReason) {
    EXPECT_THAT(refusal_of("tattle_sink_does_not_exist.so"),
                AllOf(HasSubstr("tattle_sink_does_not_exist.so"), HasSubstr("cannot load")));
}

TEST(Loader, DirectoryLoadKeepsGoodPluginsAndReportsEveryRefusal) {
    tattle::PluginCatalog catalog;
    const auto refusals = catalog.load_directory(kFixtures);
    EXPECT_EQ(refusals.size(), 5U);
    ASSERT_NE(catalog.find(TATTLE_PLUGIN_KIND_SINK, "c_echo"), nullptr);
    EXPECT_EQ(catalog.find(TATTLE_PLUGIN_KIND_SINK, "missing_send"), nullptr);
}

TEST(Loader, WantedTypeLoadsOnlyTheFileNamedForIt) {
    tattle::PluginCatalog catalog;
    const auto refusals = catalog.load_wanted({kFixtures}, {{TATTLE_PLUGIN_KIND_SINK, "c_echo"}});
    EXPECT_THAT(refusals, ::testing::IsEmpty());  // the fixtures built wrong were not opened
    ASSERT_EQ(catalog.plugins().size(), 1U);
    EXPECT_EQ(catalog.plugins().front()->type_name, "c_echo");
}

TEST(Loader, WantedTypeNoFileIsNamedForLoadsEveryFileAndReportsEachRefusalOnce) {
    for (const std::string type : {"no_such_type", "wrong_major"}) {
        SCOPED_TRACE(type);
        tattle::PluginCatalog catalog;
        const auto refusals = catalog.load_wanted({kFixtures}, {{TATTLE_PLUGIN_KIND_SINK, type}});
        EXPECT_EQ(refusals.size(), 5U);
        EXPECT_EQ(std::count_if(refusals.begin(), refusals.end(),
                                [](const std::string& refusal) {
                                    return refusal.find("tattle_sink_wrong_major.so") != std::string::npos;
                                }),
                  1);
        // An unknown type's error lists every type there is.
        EXPECT_THAT(catalog.type_names(TATTLE_PLUGIN_KIND_SINK), ::testing::ElementsAre("c_echo"));
    }
}

TEST(Loader, WantedTypeComesFromTheFirstDirectoryThatHasIt) {
    const fs::path first = fs::temp_directory_path() / ("tattle_loader_first_" + std::to_string(::getpid()));
    fs::create_directories(first);
    fs::copy_file(kFixtures / "tattle_sink_c_echo.so", first / "tattle_sink_c_echo.so",
                  fs::copy_options::overwrite_existing);
    tattle::PluginCatalog catalog;
    const auto refusals = catalog.load_wanted({first, kFixtures}, {{TATTLE_PLUGIN_KIND_SINK, "c_echo"}});
    EXPECT_THAT(refusals, ::testing::IsEmpty());
    ASSERT_EQ(catalog.plugins().size(), 1U);
    EXPECT_EQ(catalog.plugins().front()->location, (first / "tattle_sink_c_echo.so").string());
    std::error_code ec;
    fs::remove_all(first, ec);
}

TEST(Loader, RefusesSecondPluginOfTheSameType) {
    tattle::PluginCatalog catalog;
    catalog.load_file(kFixtures / "tattle_sink_c_echo.so");
    EXPECT_THROW(catalog.load_file(kFixtures / "tattle_sink_c_echo.so"), tattle::PluginLoadError);
}

TEST(Loader, CPluginSendsAndMapsResults) {
    tattle::PluginCatalog catalog;
    auto plugin = catalog.load_file(kFixtures / "tattle_sink_c_echo.so");
    EXPECT_EQ(plugin->version, "1.0.0");
    EXPECT_TRUE(plugin->config_schema.is_object());
    tattle::SinkInstance sink(plugin, "echo", boost::json::object{{"label", "x"}});
    EXPECT_EQ(sink.send(R"({"ok":1})").code, tattle::SendOutcome::Code::Ok);
    const auto failed = sink.send(R"({"x":"fail-me"})");
    EXPECT_EQ(failed.code, tattle::SendOutcome::Code::Fail);
    EXPECT_EQ(failed.message, "rejected permanently");
    const auto retry = sink.send(R"({"x":"retry-me"})");
    EXPECT_EQ(retry.code, tattle::SendOutcome::Code::Retry);
    ASSERT_TRUE(retry.retry_after.has_value());
    EXPECT_EQ(retry.retry_after->count(), 1500);
}

TEST(Loader, BuiltinRegistryHoldsTheStaticallyLinkedPlugins) {
    tattle::PluginCatalog catalog;
    catalog.add_builtin_plugins();
    const auto sinks = catalog.type_names(TATTLE_PLUGIN_KIND_SINK);
    EXPECT_THAT(sinks, ::testing::IsSupersetOf({"file", "stdout"}));
    EXPECT_NE(catalog.find(TATTLE_PLUGIN_KIND_SOURCE, "file"), nullptr);
    EXPECT_EQ(catalog.find(TATTLE_PLUGIN_KIND_SOURCE, "file")->location, "built-in");
}

TEST(Loader, SearchPathHonoursEnvironment) {
    ::setenv("TATTLE_PLUGIN_PATH", "/opt/a:/opt/b", 1);
    const auto dirs = tattle::PluginCatalog::default_search_path();
    ::unsetenv("TATTLE_PLUGIN_PATH");
    ASSERT_GE(dirs.size(), 2U);
    EXPECT_EQ(dirs[dirs.size() - 2], fs::path("/opt/a"));
    EXPECT_EQ(dirs.back(), fs::path("/opt/b"));
}

}  // namespace
