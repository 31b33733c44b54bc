// Parsing of the AWS shared credentials/config files (INI dialect of botocore). Pure functions.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace shardy::s3 {

/// section -> key -> value. Keys are lower-cased (as botocore's configparser does); values are
/// trimmed. Indented "key = value" lines under a key with an empty value become "parent.key"
/// (e.g. "s3.endpoint_url"). Lines starting with '#' or ';' are comments.
using IniFile = std::map<std::string, std::map<std::string, std::string>, std::less<>>;

IniFile parse_ini(std::string_view text);

/// The file's contents parsed; an empty IniFile when it does not exist or cannot be read.
IniFile load_ini(const std::filesystem::path& path);

/// The section of `profile` in a config file: "[profile NAME]", or "[default]" for "default"
/// (which may also be written "[profile default]").
const std::map<std::string, std::string>* config_profile(const IniFile& config,
                                                         std::string_view profile);

/// The section of `profile` in a credentials file ("[NAME]").
const std::map<std::string, std::string>* credentials_profile(const IniFile& credentials,
                                                              std::string_view profile);

/// getenv that treats empty as unset.
std::optional<std::string> env(const char* name);

}  // namespace shardy::s3
