// AWS credentials for the S3 client: static keys, the AWS_* environment, the shared
// ~/.aws/credentials + ~/.aws/config files (AWS_PROFILE), and an interface for custom sources
// with expiry and refresh.
//
// No global state: every factory reads the environment and the files when it is called, never
// from a cache. A provider is shared by all requests of a client (and may be shared by clients);
// implementations must be safe to call concurrently from several threads.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <shardy/error.hpp>
#include <string>

namespace shardy {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< temporary credentials only (sent as x-amz-security-token)
  /// When the credentials stop working; empty = never expire.
  std::optional<std::chrono::system_clock::time_point> expiration;

  bool empty() const noexcept { return access_key_id.empty() || secret_access_key.empty(); }
};

/// A source of credentials. get() is called once per request (before signing), so it must be
/// cheap when nothing changed. Failures throw shardy::error with errc::credentials_error.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  virtual boost::asio::awaitable<Credentials> get() = 0;
  /// A short description for diagnostics ("static", "environment", "profile default", ...).
  virtual std::string describe() const = 0;
};

/// Base for custom sources whose credentials expire (STS, a vault, a sidecar...): implement
/// fetch(); get() returns the cached credentials and calls fetch() again once they are within
/// `refresh_margin` of their expiration (or have none yet). Concurrent callers during a refresh
/// may each fetch; the last result wins (fetch must tolerate that).
class RefreshingCredentialsProvider : public CredentialsProvider {
 public:
  explicit RefreshingCredentialsProvider(
      std::chrono::seconds refresh_margin = std::chrono::seconds(300))
      : refresh_margin_(refresh_margin) {}

  boost::asio::awaitable<Credentials> get() override;

 protected:
  virtual boost::asio::awaitable<Credentials> fetch() = 0;

 private:
  std::chrono::seconds refresh_margin_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
};

/// Always the same credentials.
std::shared_ptr<CredentialsProvider> make_static_credentials(Credentials credentials);

/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, read now. Returns nullptr when
/// the key id or the secret is not set.
std::shared_ptr<CredentialsProvider> make_environment_credentials();

/// Where the shared files are: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, and
/// $AWS_CONFIG_FILE or ~/.aws/config; the profile is $AWS_PROFILE or "default". Read now.
struct AwsSharedFiles {
  std::filesystem::path credentials_file;
  std::filesystem::path config_file;
  std::string profile;
  static AwsSharedFiles from_environment();
};

/// The profile's aws_access_key_id / aws_secret_access_key / aws_session_token, from the
/// credentials file ("[name]" sections) or else the config file ("[profile name]", or
/// "[default]"). Files are read now. Returns nullptr when the profile has no keys.
std::shared_ptr<CredentialsProvider> make_profile_credentials(const AwsSharedFiles& files);

/// The default chain, resolved now: the environment, then the shared files (AWS_PROFILE). When
/// neither has credentials, the returned provider fails every get() with
/// errc::credentials_error naming what was tried (so a client can still be built).
std::shared_ptr<CredentialsProvider> make_default_credentials();

}  // namespace shardy
