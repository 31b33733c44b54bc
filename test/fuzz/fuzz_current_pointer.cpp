// libFuzzer: parse_current_pointer must never crash; what it accepts must round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <shardy/manifest.hpp>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  shardy::error_code ec;
  std::string diag;
  shardy::CurrentPointer p = shardy::parse_current_pointer(text, ec, &diag);
  if (ec) {
    if (ec != shardy::errc::manifest_parse_error || diag.empty()) std::abort();
    return 0;
  }
  // Accepted: serializing and parsing again gives the same pointer (timestamps within range).
  std::string again;
  try {
    again = shardy::serialize_current_pointer(p);
  } catch (const shardy::error&) {
    return 0;  // e.g. a string that is not UTF-8 cannot be written by json.dumps either
  }
  shardy::CurrentPointer q = shardy::parse_current_pointer(again, ec, &diag);
  if (ec || q.manifest_ref != p.manifest_ref || q.run_id != p.run_id ||
      q.updated_at != p.updated_at || q.format_version != p.format_version)
    std::abort();
  return 0;
}
