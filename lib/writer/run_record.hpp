// The run registry record (interop spec 1.6): <P>/<runs>/<TS>_run_id=<R>_<uuid4hex>/run.yaml,
// YAML in the shape of yaml.safe_dump(record, sort_keys=True, default_flow_style=False).
// Nobody in shardyfusion reads it; shardy's cleanup does (to spare runs still in flight).
#pragma once

#include <optional>
#include <shardy/manifest.hpp>
#include <string>
#include <string_view>

namespace shardy::writer {

struct RunRecord {
  std::string db_path_template;
  std::optional<std::string> error_message;
  std::optional<std::string> error_type;
  std::int64_t format_version = 1;
  Timestamp lease_expires_at{};
  std::optional<std::string> manifest_ref;
  std::string run_id;
  std::string s3_prefix;
  std::string shard_prefix;
  Timestamp started_at{};
  std::string status = "running";  ///< running / succeeded / failed
  Timestamp updated_at{};
  std::string writer_type = "cpp";
};

/// Keys sorted, one `key: value` line each; strings plain when YAML would read them back as the
/// same string, else quoted; datetimes quoted (as PyYAML quotes timestamp-looking strings).
std::string serialize_run_record(const RunRecord& r);

/// Reads what serialize_run_record (or PyYAML for a flat record) writes. Unknown keys are
/// ignored; nullopt if `status` or `run_id` is missing.
std::optional<RunRecord> parse_run_record(std::string_view yaml);

/// A YAML scalar for `s` as PyYAML's safe_dump would emit it (plain, 'single' or "double").
std::string yaml_scalar(std::string_view s);

}  // namespace shardy::writer
