// Credentials providers and S3Options::from_environment. Everything is read when the factory is
// called; nothing is cached in statics.
#include <shardy/credentials.hpp>
#include <shardy/s3_client.hpp>

#include "s3/aws_config.hpp"

namespace shardy {
namespace {

class StaticCredentials final : public CredentialsProvider {
 public:
  StaticCredentials(Credentials c, std::string what)
      : creds_(std::move(c)), what_(std::move(what)) {}
  boost::asio::awaitable<Credentials> get() override { co_return creds_; }
  std::string describe() const override { return what_; }

 private:
  Credentials creds_;
  std::string what_;
};

class MissingCredentials final : public CredentialsProvider {
 public:
  explicit MissingCredentials(std::string tried) : tried_(std::move(tried)) {}
  boost::asio::awaitable<Credentials> get() override {
    throw error(errc::credentials_error, "no AWS credentials found (tried " + tried_ + ")");
    co_return Credentials{};
  }
  std::string describe() const override { return "none (" + tried_ + ")"; }

 private:
  std::string tried_;
};

std::filesystem::path home_path(const char* rel) {
  if (auto home = s3::env("HOME")) return std::filesystem::path(*home) / rel;
  return {};
}

}  // namespace

boost::asio::awaitable<Credentials> RefreshingCredentialsProvider::get() {
  {
    std::lock_guard lock(mutex_);
    if (cached_ && (!cached_->expiration ||
                    std::chrono::system_clock::now() + refresh_margin_ < *cached_->expiration)) {
      co_return *cached_;
    }
  }
  Credentials fresh = co_await fetch();
  if (fresh.empty()) {
    throw error(errc::credentials_error, describe() + " returned no access key or secret");
  }
  {
    std::lock_guard lock(mutex_);
    cached_ = fresh;
  }
  co_return fresh;
}

std::shared_ptr<CredentialsProvider> make_static_credentials(Credentials credentials) {
  return std::make_shared<StaticCredentials>(std::move(credentials), "static credentials");
}

std::shared_ptr<CredentialsProvider> make_environment_credentials() {
  auto id = s3::env("AWS_ACCESS_KEY_ID");
  auto secret = s3::env("AWS_SECRET_ACCESS_KEY");
  if (!id || !secret) return nullptr;
  Credentials c;
  c.access_key_id = std::move(*id);
  c.secret_access_key = std::move(*secret);
  c.session_token = s3::env("AWS_SESSION_TOKEN").value_or("");
  return std::make_shared<StaticCredentials>(std::move(c), "environment (AWS_ACCESS_KEY_ID)");
}

AwsSharedFiles AwsSharedFiles::from_environment() {
  AwsSharedFiles f;
  if (auto p = s3::env("AWS_SHARED_CREDENTIALS_FILE")) {
    f.credentials_file = *p;
  } else {
    f.credentials_file = home_path(".aws/credentials");
  }
  if (auto p = s3::env("AWS_CONFIG_FILE")) {
    f.config_file = *p;
  } else {
    f.config_file = home_path(".aws/config");
  }
  f.profile = s3::env("AWS_PROFILE").value_or("default");
  return f;
}

std::shared_ptr<CredentialsProvider> make_profile_credentials(const AwsSharedFiles& files) {
  auto from_section =
      [&](const std::map<std::string, std::string>* s,
          const std::filesystem::path& file) -> std::shared_ptr<CredentialsProvider> {
    if (!s) return nullptr;
    auto id = s->find("aws_access_key_id");
    auto secret = s->find("aws_secret_access_key");
    if (id == s->end() || secret == s->end() || id->second.empty() || secret->second.empty()) {
      return nullptr;
    }
    Credentials c;
    c.access_key_id = id->second;
    c.secret_access_key = secret->second;
    if (auto t = s->find("aws_session_token"); t != s->end()) c.session_token = t->second;
    return std::make_shared<StaticCredentials>(
        std::move(c), "profile " + files.profile + " (" + file.string() + ")");
  };
  if (!files.credentials_file.empty()) {
    auto ini = s3::load_ini(files.credentials_file);
    if (auto p =
            from_section(s3::credentials_profile(ini, files.profile), files.credentials_file)) {
      return p;
    }
  }
  if (!files.config_file.empty()) {
    auto ini = s3::load_ini(files.config_file);
    return from_section(s3::config_profile(ini, files.profile), files.config_file);
  }
  return nullptr;
}

std::shared_ptr<CredentialsProvider> make_default_credentials() {
  if (auto p = make_environment_credentials()) return p;
  auto files = AwsSharedFiles::from_environment();
  if (auto p = make_profile_credentials(files)) return p;
  return std::make_shared<MissingCredentials>(
      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile '" + files.profile + "' in " +
      files.credentials_file.string() + " and " + files.config_file.string());
}

S3Options S3Options::from_environment() {
  S3Options o;
  auto files = AwsSharedFiles::from_environment();
  auto config = files.config_file.empty() ? s3::IniFile{} : s3::load_ini(files.config_file);
  const auto* profile = s3::config_profile(config, files.profile);
  auto from_profile = [&](const char* key) -> std::optional<std::string> {
    if (!profile) return std::nullopt;
    auto it = profile->find(key);
    if (it == profile->end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  if (auto r = s3::env("AWS_REGION")) {
    o.region = *r;
  } else if (auto r2 = s3::env("AWS_DEFAULT_REGION")) {
    o.region = *r2;
  } else if (auto r3 = from_profile("region")) {
    o.region = *r3;
  }
  if (auto e = s3::env("AWS_ENDPOINT_URL_S3")) {
    o.endpoint = *e;
  } else if (auto e2 = s3::env("AWS_ENDPOINT_URL")) {
    o.endpoint = *e2;
  } else if (auto e3 = from_profile("s3.endpoint_url")) {
    o.endpoint = *e3;
  } else if (auto e4 = from_profile("endpoint_url")) {
    o.endpoint = *e4;
  }
  return o;
}

}  // namespace shardy
