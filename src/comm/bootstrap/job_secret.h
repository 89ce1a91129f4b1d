// The secret that the processes of one job share when no root info travels between them: the
// ranks of a rank-table job (HcclCommInitClusterInfo) and the launchers of a multi-node
// distbarrier-run job. 32 random bytes written as 64 hex digits (`openssl rand -hex 32`), given
// in DISTBARRIER_JOB_SECRET, or in a file named by DISTBARRIER_JOB_SECRET_FILE that only its
// owner may read (like ssh keys). Setting both is refused as ambiguous.
//
// Like the rank table parser, this depends on nothing of the library but fmt, so
// distbarrier-run compiles it too.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace distbarrier::comm {

inline constexpr size_t kJobSecretBytes = 32;
using JobSecret = std::array<uint8_t, kJobSecretBytes>;

inline constexpr const char* kJobSecretEnv = "DISTBARRIER_JOB_SECRET";
inline constexpr const char* kJobSecretFileEnv = "DISTBARRIER_JOB_SECRET_FILE";

// The secret in `hex` (64 hex digits, surrounding white space ignored), or why not; `source`
// names where it came from in the message. The message never contains the secret.
std::variant<JobSecret, std::string> ParseJobSecret(std::string_view hex, const std::string& source);

// The secret in the file at `path` (owner-only permissions), or why not.
std::variant<JobSecret, std::string> ReadJobSecretFile(const std::string& path);

// The secret from the environment: nullopt when neither variable is set, an error message when
// one is set but unusable or both are set.
std::variant<std::optional<JobSecret>, std::string> JobSecretFromEnvironment();

// Constant time: no early exit that would tell how much of a guess was right.
bool JobSecretsEqual(const uint8_t* a, const uint8_t* b);

}  // namespace distbarrier::comm
