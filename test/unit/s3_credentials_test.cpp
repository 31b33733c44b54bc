// AWS shared config/credentials parsing and the credential providers (no network).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <fstream>
#include <shardy/credentials.hpp>
#include <shardy/s3_client.hpp>

#include "s3/aws_config.hpp"
#include "support/test_support.hpp"

namespace asio = boost::asio;

namespace {

shardy::Credentials resolve(const std::shared_ptr<shardy::CredentialsProvider>& p) {
  asio::io_context io;
  auto f = asio::co_spawn(io, p->get(), asio::use_future);
  io.run();
  return f.get();
}

// Sets environment variables for one test and restores them afterwards.
class EnvGuard {
 public:
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvGuard() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

void write(const std::filesystem::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

}  // namespace

TEST(S3Ini, SectionsKeysCommentsAndNesting) {
  auto ini = shardy::s3::parse_ini(
      "# comment\n"
      "[default]\n"
      "aws_access_key_id = AKIDDEFAULT\r\n"
      "AWS_Secret_Access_Key=secret = with equals\n"
      "; another comment\n"
      "[profile dev]\n"
      "region = eu-west-1\n"
      "s3 =\n"
      "  endpoint_url = http://127.0.0.1:9000\n"
      "  addressing_style = path\n"
      "output = json\n"
      "[broken\n"
      "ignored = yes\n");
  ASSERT_TRUE(ini.count("default"));
  EXPECT_EQ(ini["default"]["aws_access_key_id"], "AKIDDEFAULT");
  EXPECT_EQ(ini["default"]["aws_secret_access_key"], "secret = with equals");
  EXPECT_EQ(ini["profile dev"]["region"], "eu-west-1");
  EXPECT_EQ(ini["profile dev"]["s3.endpoint_url"], "http://127.0.0.1:9000");
  EXPECT_EQ(ini["profile dev"]["s3.addressing_style"], "path");
  EXPECT_EQ(ini["profile dev"]["output"], "json");
  EXPECT_FALSE(ini.count("broken"));
  for (auto& [name, keys] : ini) EXPECT_FALSE(keys.count("ignored")) << name;
}

TEST(S3Ini, ProfileLookup) {
  auto config =
      shardy::s3::parse_ini("[default]\nregion=a\n[profile x]\nregion=b\n[x]\nregion=c\n");
  ASSERT_NE(shardy::s3::config_profile(config, "default"), nullptr);
  EXPECT_EQ(shardy::s3::config_profile(config, "default")->at("region"), "a");
  EXPECT_EQ(shardy::s3::config_profile(config, "x")->at("region"), "b");
  EXPECT_EQ(shardy::s3::config_profile(config, "missing"), nullptr);
  auto creds = shardy::s3::parse_ini("[x]\naws_access_key_id=1\n");
  EXPECT_EQ(shardy::s3::credentials_profile(creds, "x")->at("aws_access_key_id"), "1");
  EXPECT_EQ(shardy::s3::credentials_profile(creds, "profile x"), nullptr);
}

TEST(S3Credentials, EnvironmentWinsAndIsReadWhenBuilt) {
  EnvGuard env;
  env.set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env.set("AWS_SECRET_ACCESS_KEY", "envsecret");
  env.set("AWS_SESSION_TOKEN", "tok");
  auto p = shardy::make_default_credentials();
  env.set("AWS_ACCESS_KEY_ID", "CHANGED");  // already read: no effect on p
  auto c = resolve(p);
  EXPECT_EQ(c.access_key_id, "AKIDENV");
  EXPECT_EQ(c.secret_access_key, "envsecret");
  EXPECT_EQ(c.session_token, "tok");
  EXPECT_EQ(resolve(shardy::make_environment_credentials()).access_key_id, "CHANGED");
}

TEST(S3Credentials, ProfileFromCredentialsThenConfig) {
  EnvGuard env;
  env.set("AWS_ACCESS_KEY_ID", nullptr);
  env.set("AWS_SECRET_ACCESS_KEY", nullptr);
  env.set("AWS_SESSION_TOKEN", nullptr);
  auto dir = shardy::test::make_temp_dir("s3_credentials");
  write(dir / "credentials",
        "[default]\naws_access_key_id=D\naws_secret_access_key=DS\n"
        "[work]\naws_access_key_id = W\naws_secret_access_key = WS\n"
        "aws_session_token = WT\n");
  write(dir / "config",
        "[profile cfgonly]\naws_access_key_id=C\naws_secret_access_key=CS\n"
        "region = ap-south-1\n[profile work]\nregion=eu-central-1\n"
        "endpoint_url = http://localhost:1234\n");
  env.set("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").c_str());
  env.set("AWS_CONFIG_FILE", (dir / "config").c_str());
  env.set("AWS_REGION", nullptr);
  env.set("AWS_DEFAULT_REGION", nullptr);
  env.set("AWS_ENDPOINT_URL_S3", nullptr);
  env.set("AWS_ENDPOINT_URL", nullptr);

  env.set("AWS_PROFILE", nullptr);
  EXPECT_EQ(resolve(shardy::make_default_credentials()).access_key_id, "D");

  env.set("AWS_PROFILE", "work");
  auto c = resolve(shardy::make_default_credentials());
  EXPECT_EQ(c.access_key_id, "W");
  EXPECT_EQ(c.secret_access_key, "WS");
  EXPECT_EQ(c.session_token, "WT");
  auto opts = shardy::S3Options::from_environment();
  EXPECT_EQ(opts.region, "eu-central-1");
  EXPECT_EQ(opts.endpoint, "http://localhost:1234");

  env.set("AWS_REGION", "us-west-2");
  env.set("AWS_ENDPOINT_URL", "http://generic:1");
  env.set("AWS_ENDPOINT_URL_S3", "http://s3specific:2");
  opts = shardy::S3Options::from_environment();
  EXPECT_EQ(opts.region, "us-west-2");
  EXPECT_EQ(opts.endpoint, "http://s3specific:2");

  env.set("AWS_PROFILE", "cfgonly");
  EXPECT_EQ(resolve(shardy::make_default_credentials()).access_key_id, "C");

  env.set("AWS_PROFILE", "nobody");
  auto missing = shardy::make_default_credentials();
  try {
    resolve(missing);
    FAIL() << "expected credentials_error";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), shardy::errc::credentials_error);
    EXPECT_NE(e.diagnostics().find("nobody"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

namespace {
class CountingProvider final : public shardy::RefreshingCredentialsProvider {
 public:
  explicit CountingProvider(std::chrono::seconds lifetime)
      : RefreshingCredentialsProvider(std::chrono::seconds(60)), lifetime_(lifetime) {}
  int fetches = 0;
  std::string describe() const override { return "counting"; }

 protected:
  asio::awaitable<shardy::Credentials> fetch() override {
    ++fetches;
    shardy::Credentials c;
    c.access_key_id = "K" + std::to_string(fetches);
    c.secret_access_key = "S";
    c.expiration = std::chrono::system_clock::now() + lifetime_;
    co_return c;
  }

 private:
  std::chrono::seconds lifetime_;
};
}  // namespace

TEST(S3Credentials, RefreshingProviderCachesUntilNearExpiry) {
  auto longlived = std::make_shared<CountingProvider>(std::chrono::seconds(3600));
  EXPECT_EQ(resolve(longlived).access_key_id, "K1");
  EXPECT_EQ(resolve(longlived).access_key_id, "K1");
  EXPECT_EQ(longlived->fetches, 1);
  // Expires within the 60 s margin: every get() refreshes.
  auto shortlived = std::make_shared<CountingProvider>(std::chrono::seconds(30));
  EXPECT_EQ(resolve(shortlived).access_key_id, "K1");
  EXPECT_EQ(resolve(shortlived).access_key_id, "K2");
  EXPECT_EQ(shortlived->fetches, 2);
}
