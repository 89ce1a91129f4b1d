// The rank table parser (HcclCommInitClusterInfo's file): a good table gives the plan, and
// every way a file can be wrong is refused with a message that names the field.
#include "comm/bootstrap/rank_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace distbarrier::comm {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

Json Device(int device_id, int rank_id) {
  return {{"device_id", std::to_string(device_id)},
          {"super_device_id", std::to_string(rank_id)},
          {"device_ip", "192.168.1." + std::to_string(rank_id + 10)},
          {"device_port", "16666"},
          {"host_port", "16665"},
          {"rank_id", std::to_string(rank_id)}};
}

// Two servers of two devices each on two hosts, one super pod: CANN's A3 layout.
Json GoodTable() {
  return {{"status", "completed"},
          {"version", "1.2"},
          {"server_count", "2"},
          {"server_list",
           {{{"server_id", "node_0"}, {"host_ip", "198.18.0.1"}, {"device", {Device(0, 0), Device(1, 1)}}},
            {{"server_id", "node_1"}, {"host_ip", "198.18.0.2"}, {"device", {Device(0, 2), Device(1, 3)}}}}},
          {"super_pod_list",
           {{{"super_pod_id", "0"}, {"server_list", {{{"server_id", "node_0"}}, {{"server_id", "node_1"}}}}}}}};
}

std::string ErrorOf(const std::string& text) {
  auto parsed = ParseRankTable(text);
  if (auto* why = std::get_if<std::string>(&parsed)) return *why;
  return "(parsed)";
}

std::string ErrorAfter(const std::function<void(Json&)>& change) {
  Json table = GoodTable();
  change(table);
  return ErrorOf(table.dump());
}

TEST(RankTableTest, GoodTableGivesEveryRanksServerAndDevice) {
  const std::string text = GoodTable().dump(2);
  auto parsed = ParseRankTable(text);
  ASSERT_TRUE(std::holds_alternative<RankTable>(parsed)) << std::get<std::string>(parsed);
  const RankTable& table = std::get<RankTable>(parsed);
  EXPECT_EQ(table.version, "1.2");
  EXPECT_EQ(table.rank_count, 4u);
  ASSERT_EQ(table.servers.size(), 2u);
  EXPECT_EQ(table.ServerOf(0).host_ip, "198.18.0.1");
  EXPECT_EQ(table.ServerOf(3).server_id, "node_1");
  EXPECT_EQ(table.DeviceOf(2).device_id, 0);
  EXPECT_EQ(table.DeviceOf(3).device_id, 1);
  EXPECT_EQ(table.FieldOf(3), "server_list[1].device[1]");
  EXPECT_TRUE(table.SpansHosts());
  // The job id comes from the bytes: the same file gives the same id, another file another.
  EXPECT_EQ(std::get<RankTable>(ParseRankTable(text)).content_hash, table.content_hash);
  EXPECT_NE(std::get<RankTable>(ParseRankTable(GoodTable().dump())).content_hash, table.content_hash);
}

TEST(RankTableTest, RankIdsNeedNotFollowFileOrder) {
  Json table = GoodTable();
  table["server_list"][0]["device"] = {Device(0, 3), Device(1, 2)};
  table["server_list"][1]["device"] = {Device(0, 1), Device(1, 0)};
  table["server_list"][1]["host_ip"] = "198.18.0.1";
  auto parsed = ParseRankTable(table.dump());
  ASSERT_TRUE(std::holds_alternative<RankTable>(parsed)) << std::get<std::string>(parsed);
  const RankTable& result = std::get<RankTable>(parsed);
  EXPECT_EQ(result.ServerOf(0).server_id, "node_1");
  EXPECT_EQ(result.DeviceOf(0).device_id, 1);
  EXPECT_EQ(result.FieldOf(2), "server_list[0].device[1]");
  EXPECT_FALSE(result.SpansHosts());
}

TEST(RankTableTest, Version10NamesServersByIp) {
  Json table = GoodTable();
  table["version"] = "1.0";
  table.erase("super_pod_list");
  for (auto& server : table["server_list"]) {
    server["server_id"] = server["host_ip"];
    server.erase("host_ip");
  }
  auto parsed = ParseRankTable(table.dump());
  ASSERT_TRUE(std::holds_alternative<RankTable>(parsed)) << std::get<std::string>(parsed);
  EXPECT_EQ(std::get<RankTable>(parsed).ServerOf(2).host_ip, "198.18.0.2");
  // Version 1.2 has no such fallback.
  table["version"] = "1.2";
  EXPECT_THAT(ErrorOf(table.dump()), HasSubstr("server_list[0].host_ip: missing"));
}

TEST(RankTableTest, NotJsonIsRefused) {
  EXPECT_THAT(ErrorOf("{\"status\": \"completed\",,}"), HasSubstr("not valid JSON"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("not valid JSON"));
  EXPECT_THAT(ErrorOf("[1, 2]"), HasSubstr("top level must be a JSON object"));
}

// A few MB of brackets nest deeper than any stack: refused with a message, not a crash from
// printing the value (a recursive dump).
TEST(RankTableTest, DeeplyNestedValuesAreRefusedWithoutRecursion) {
  const size_t depth = 1 << 20;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_THAT(ErrorOf("{\"status\": \"completed\", \"version\": \"1.2\", \"server_count\": \"1\", "
                      "\"server_list\": [" +
                      nested + "]}"),
              HasSubstr("server_list[0]: must be an object, got an array of 1 elements"));
  EXPECT_THAT(ErrorOf(nested), HasSubstr("the top level must be a JSON object, got an array of 1 elements"));
}

TEST(RankTableTest, TopLevelFieldsAreChecked) {
  EXPECT_THAT(ErrorAfter([](Json& t) { t.erase("status"); }), HasSubstr("status: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["status"] = "initializing"; }),
              HasSubstr("status: \"initializing\" (the rank table is usable only when status is \"completed\")"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["status"] = 1; }), HasSubstr("status: must be a string, got 1"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t.erase("version"); }), HasSubstr("version: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["version"] = "2.0"; }), HasSubstr("version: \"2.0\" is not supported"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t.erase("server_count"); }), HasSubstr("server_count: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_count"] = 2; }),
              HasSubstr("server_count: must be a string of decimal digits"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_count"] = "two"; }),
              HasSubstr("server_count: \"two\" is not a decimal number"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_count"] = "3"; }),
              HasSubstr("server_count: \"3\" but server_list has 2 servers"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t.erase("server_list"); }), HasSubstr("server_list: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"] = "node_0"; }), HasSubstr("server_list: must be an array"));
  EXPECT_THAT(ErrorAfter([](Json& t) {
                t["server_list"] = Json::array();
                t["server_count"] = "0";
              }),
              HasSubstr("server_list: is empty"));
}

TEST(RankTableTest, ServerFieldsAreChecked) {
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1] = "node_1"; }),
              HasSubstr("server_list[1]: must be an object"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1].erase("server_id"); }),
              HasSubstr("server_list[1].server_id: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["server_id"] = "node_0"; }),
              HasSubstr("server_list[1].server_id: \"node_0\" is also server_list[0]'s"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1].erase("host_ip"); }),
              HasSubstr("server_list[1].host_ip: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["host_ip"] = "198.18.0.300"; }),
              HasSubstr("server_list[1].host_ip: must be an IPv4 address string"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["host_ip"] = "::1"; }),
              HasSubstr("server_list[1].host_ip: must be an IPv4 address string, got \"::1\""));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][0].erase("device"); }),
              HasSubstr("server_list[0].device: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][0]["device"] = Json::array(); }),
              HasSubstr("server_list[0].device: is empty"));
}

TEST(RankTableTest, DeviceFieldsAreChecked) {
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][0].erase("device_id"); }),
              HasSubstr("server_list[1].device[0].device_id: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][0]["device_id"] = 0; }),
              HasSubstr("server_list[1].device[0].device_id: must be a string of decimal digits"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][0]["device_id"] = "-1"; }),
              HasSubstr("server_list[1].device[0].device_id: \"-1\" is not a decimal number"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][0]["device_id"] = "99999999999"; }),
              HasSubstr("server_list[1].device[0].device_id: 99999999999 is out of range"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["device_id"] = "0"; }),
              HasSubstr("server_list[1].device[1].device_id: device 0 appears twice in server \"node_1\""));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1].erase("rank_id"); }),
              HasSubstr("server_list[1].device[1].rank_id: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["rank_id"] = "3a"; }),
              HasSubstr("server_list[1].device[1].rank_id: \"3a\" is not a decimal number"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["super_device_id"] = "x"; }),
              HasSubstr("server_list[1].device[1].super_device_id: \"x\" is not a decimal number"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["device_port"] = "70000"; }),
              HasSubstr("server_list[1].device[1].device_port: 70000 is out of range [0, 65535]"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["device_ip"] = "1.2.3"; }),
              HasSubstr("server_list[1].device[1].device_ip: must be an IP address string"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1] = 7; }),
              HasSubstr("server_list[1].device[1]: must be an object"));
}

TEST(RankTableTest, RankIdsAreUniqueWithoutGapsAndContiguousPerServer) {
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["rank_id"] = "1"; }),
              HasSubstr("server_list[1].device[1].rank_id: rank_id 1 appears twice (also "
                        "server_list[0].device[1].rank_id)"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["server_list"][1]["device"][1]["rank_id"] = "4"; }),
              HasSubstr("server_list[1].device: the rank ids of one server must be contiguous, server \"node_1\" "
                        "has 2, 4"));
  // Contiguous per server, but no server has rank 2: the gap is named.
  EXPECT_THAT(ErrorAfter([](Json& t) {
                t["server_list"][1]["device"][0]["rank_id"] = "3";
                t["server_list"][1]["device"][1]["rank_id"] = "4";
              }),
              HasSubstr("server_list[1].device[0].rank_id: rank_id 3 but rank_id 2 is in no server"));
  // Ranks interleaved across servers are not contiguous per server.
  EXPECT_THAT(ErrorAfter([](Json& t) {
                t["server_list"][0]["device"][1]["rank_id"] = "2";
                t["server_list"][1]["device"][0]["rank_id"] = "1";
              }),
              HasSubstr("server_list[0].device: the rank ids of one server must be contiguous"));
}

TEST(RankTableTest, SuperPodsNameKnownServersOnce) {
  EXPECT_THAT(ErrorAfter([](Json& t) { t["super_pod_list"] = "0"; }), HasSubstr("super_pod_list: must be an array"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["super_pod_list"][0].erase("super_pod_id"); }),
              HasSubstr("super_pod_list[0].super_pod_id: missing"));
  EXPECT_THAT(ErrorAfter([](Json& t) { t["super_pod_list"][0]["server_list"][1]["server_id"] = "node_7"; }),
              HasSubstr("super_pod_list[0].server_list[1].server_id: \"node_7\" is not a server_id of server_list"));
  EXPECT_THAT(ErrorAfter([](Json& t) {
                t["super_pod_list"].push_back({{"super_pod_id", "1"}, {"server_list", {{{"server_id", "node_1"}}}}});
              }),
              HasSubstr("super_pod_list[1].server_list[0].server_id: server \"node_1\" is already in super pod \"0\""));
}

// Files: the path and the file itself.
class RankTableFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/rank_table_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    for (const char* name : {"table.json", "fifo"}) unlink((directory_ + "/" + std::string(name)).c_str());
    rmdir(directory_.c_str());
  }
  std::string Write(const std::string& text) {
    const std::string path = directory_ + "/table.json";
    std::ofstream(path) << text;
    return path;
  }
  static std::string ErrorOfFile(const std::string& path) {
    auto read = ReadRankTable(path.c_str());
    if (auto* why = std::get_if<std::string>(&read)) return *why;
    return "(read)";
  }
  std::string directory_;
};

TEST_F(RankTableFileTest, GoodFileIsRead) {
  const std::string path = Write(GoodTable().dump());
  auto read = ReadRankTable(path.c_str());
  ASSERT_TRUE(std::holds_alternative<RankTable>(read)) << std::get<std::string>(read);
  EXPECT_EQ(std::get<RankTable>(read).rank_count, 4u);
}

TEST_F(RankTableFileTest, BadPathsAreRefused) {
  EXPECT_THAT(ErrorOfFile(""), HasSubstr("path is empty"));
  EXPECT_THAT(ErrorOfFile("/" + std::string(4095, 'a')), HasSubstr("longer than 4096 bytes"));
  EXPECT_THAT(ErrorOfFile(directory_ + "/absent.json"),
              HasSubstr(directory_ + "/absent.json: cannot open: No such file or directory"));
  EXPECT_THAT(ErrorOfFile(directory_), HasSubstr("not a regular file"));
  // A FIFO with no writer would block a plain open: refused, not waited on.
  const std::string fifo = directory_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ErrorOfFile(fifo), HasSubstr("not a regular file"));
}

TEST_F(RankTableFileTest, ContentErrorsNameTheFileAndTheField) {
  Json table = GoodTable();
  table["server_list"][0]["device"][0]["rank_id"] = 0;
  const std::string path = Write(table.dump());
  EXPECT_THAT(ErrorOfFile(path), HasSubstr("rank table " + path +
                                           ": server_list[0].device[0].rank_id: must be a "
                                           "string of decimal digits"));
}

}  // namespace
}  // namespace distbarrier::comm
