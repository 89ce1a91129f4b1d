// The job secret of rank-table jobs and multi-node launches: 64 hex digits, from the
// environment or an owner-only file; every malformed form is refused without echoing it.
#include "comm/bootstrap/job_secret.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace distbarrier::comm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kHex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

std::string ErrorOf(const std::variant<JobSecret, std::string>& parsed) {
  if (auto* why = std::get_if<std::string>(&parsed)) return *why;
  return "(parsed)";
}

TEST(JobSecretTest, SixtyFourHexDigitsOfEitherCase) {
  auto parsed = ParseJobSecret(" " + kHex + "\n", "test");  // as `openssl rand -hex 32 > file` writes it
  ASSERT_TRUE(std::holds_alternative<JobSecret>(parsed)) << ErrorOf(parsed);
  const JobSecret& secret = std::get<JobSecret>(parsed);
  EXPECT_EQ(secret[0], 0x00);
  EXPECT_EQ(secret[1], 0x11);
  EXPECT_EQ(secret[31], 0xff);
  EXPECT_TRUE(JobSecretsEqual(secret.data(), std::get<JobSecret>(ParseJobSecret(kHex, "test")).data()));
  JobSecret other = secret;
  other[31] ^= 1;
  EXPECT_FALSE(JobSecretsEqual(secret.data(), other.data()));
}

TEST(JobSecretTest, MalformedSecretsAreRefusedWithoutEchoingThem) {
  EXPECT_THAT(ErrorOf(ParseJobSecret("", "src")), HasSubstr("src: the job secret must be 64 hex digits"));
  EXPECT_THAT(ErrorOf(ParseJobSecret(kHex.substr(1), "src")), HasSubstr("got 63 characters"));
  EXPECT_THAT(ErrorOf(ParseJobSecret(kHex + "0", "src")), HasSubstr("got 65 characters"));
  std::string bad = kHex;
  bad[10] = 'g';
  const std::string message = ErrorOf(ParseJobSecret(bad, "src"));
  EXPECT_THAT(message, HasSubstr("hex digits only (character 10 is not one)"));
  EXPECT_THAT(message, Not(HasSubstr(bad.substr(0, 10))));
}

class JobSecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/job_secret_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
    unsetenv(kJobSecretEnv);
    unsetenv(kJobSecretFileEnv);
  }
  void TearDown() override {
    unlink(Path().c_str());
    rmdir(directory_.c_str());
  }
  std::string Path() const { return directory_ + "/secret"; }
  std::string Write(const std::string& text, mode_t mode) {
    std::ofstream(Path()) << text;
    chmod(Path().c_str(), mode);
    return Path();
  }
  std::string directory_;
};

TEST_F(JobSecretFileTest, OwnerOnlyFileIsRead) {
  auto read = ReadJobSecretFile(Write(kHex + "\n", 0600));
  ASSERT_TRUE(std::holds_alternative<JobSecret>(read)) << ErrorOf(read);
  EXPECT_EQ(std::get<JobSecret>(read)[1], 0x11);
  read = ReadJobSecretFile(Write(kHex, 0400));
  EXPECT_TRUE(std::holds_alternative<JobSecret>(read)) << ErrorOf(read);
}

TEST_F(JobSecretFileTest, BadFilesAreRefused) {
  EXPECT_THAT(ErrorOf(ReadJobSecretFile(Write(kHex, 0640))), HasSubstr("other users may access it (mode 0640)"));
  EXPECT_THAT(ErrorOf(ReadJobSecretFile(Write("not hex", 0600))), HasSubstr(Path() + ": the job secret must be"));
  EXPECT_THAT(ErrorOf(ReadJobSecretFile(directory_)), HasSubstr("not a regular file"));
  EXPECT_THAT(ErrorOf(ReadJobSecretFile(directory_ + "/absent")), HasSubstr("cannot open: No such file"));
}

TEST_F(JobSecretFileTest, EnvironmentGivesOneSecretOrNone) {
  auto none = JobSecretFromEnvironment();
  ASSERT_TRUE(std::holds_alternative<std::optional<JobSecret>>(none));
  EXPECT_FALSE(std::get<std::optional<JobSecret>>(none).has_value());
  setenv(kJobSecretFileEnv, Write(kHex, 0600).c_str(), 1);
  auto from_file = JobSecretFromEnvironment();
  ASSERT_TRUE(std::holds_alternative<std::optional<JobSecret>>(from_file));
  EXPECT_EQ((*std::get<std::optional<JobSecret>>(from_file))[31], 0xff);
  setenv(kJobSecretEnv, kHex.c_str(), 1);
  auto both = JobSecretFromEnvironment();
  ASSERT_TRUE(std::holds_alternative<std::string>(both));
  EXPECT_THAT(std::get<std::string>(both), HasSubstr("both DISTBARRIER_JOB_SECRET and DISTBARRIER_JOB_SECRET_FILE"));
}

}  // namespace
}  // namespace distbarrier::comm
